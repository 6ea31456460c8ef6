"""SQL of device pairing (migration 0012)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True, slots=True)
class Pairing:
    id: int
    code: str
    expires_at: datetime
    approved_at: datetime | None
    kind: str | None
    hall_id: str | None
    device_id: str | None
    claimed_at: datetime | None


_COLUMNS = "id, code, expires_at, approved_at, kind, hall_id, device_id, claimed_at"


def _pairing(row: asyncpg.Record | None) -> Pairing | None:
    return None if row is None else Pairing(**dict(row))


async def start(
    conn: asyncpg.Connection,
    *,
    code: str,
    secret_hash: bytes,
    now: datetime,
    expires_at: datetime,
    user_agent: str | None,
    ip: str | None,
) -> Pairing | None:
    """A new pairing; None when ``code`` is still live (the caller draws another)."""
    async with conn.transaction():
        await conn.execute(
            "DELETE FROM device_pairings WHERE claimed_at IS NULL AND expires_at <= $1", now
        )
        row = await conn.fetchrow(
            f"""INSERT INTO device_pairings
                       (code, secret_hash, created_at, expires_at, user_agent, ip)
                VALUES ($1, $2, $3, $4, $5, $6)
                ON CONFLICT DO NOTHING
                RETURNING {_COLUMNS}""",
            code,
            secret_hash,
            now,
            expires_at,
            user_agent,
            ip,
        )
    return _pairing(row)


async def by_secret(conn: asyncpg.Connection | asyncpg.Pool, secret_hash: bytes) -> Pairing | None:
    return _pairing(
        await conn.fetchrow(
            f"SELECT {_COLUMNS} FROM device_pairings WHERE secret_hash = $1", secret_hash
        )
    )


async def approve(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    code: str,
    kind: str,
    hall_id: str,
    device_id: str,
    by: str,
    now: datetime,
) -> Pairing | None:
    """Approve the live, unapproved pairing showing ``code``; None if there is none."""
    return _pairing(
        await conn.fetchrow(
            f"""UPDATE device_pairings SET approved_at = $6, approved_by = $5, kind = $2,
                       hall_id = $3, device_id = $4
                 WHERE code = $1 AND claimed_at IS NULL AND approved_at IS NULL
                   AND expires_at > $6
             RETURNING {_COLUMNS}""",
            code,
            kind,
            hall_id,
            device_id,
            by,
            now,
        )
    )


async def claim(
    conn: asyncpg.Connection, pairing_id: int, device_token_id: int, now: datetime
) -> bool:
    """Mark an approved pairing claimed by the token just created; False if it already was."""
    result: str = await conn.execute(
        "UPDATE device_pairings SET claimed_at = $3, device_token_id = $2"
        " WHERE id = $1 AND approved_at IS NOT NULL AND claimed_at IS NULL",
        pairing_id,
        device_token_id,
        now,
    )
    return result.endswith(" 1")


@dataclass(frozen=True, slots=True)
class Pending:
    """A code a browser shows, not yet approved (for the admin page)."""

    code: str
    created_at: datetime
    expires_at: datetime
    user_agent: str | None
    ip: str | None


async def pending(conn: asyncpg.Connection | asyncpg.Pool, now: datetime) -> list[Pending]:
    """Live codes waiting for approval, newest first. Codes belong to no hall until approved."""
    rows = await conn.fetch(
        "SELECT code, created_at, expires_at, user_agent, ip FROM device_pairings"
        " WHERE approved_at IS NULL AND claimed_at IS NULL AND expires_at > $1"
        " ORDER BY created_at DESC LIMIT 50",
        now,
    )
    return [Pending(**dict(r)) for r in rows]
