"""SQL of access control: staff accounts, sessions, device tokens and the audit log."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import asyncpg

from hall.domain.pii import mask_text
from hall.domain.text import clean_json, clean_text

SessionKind = Literal["cookie", "bearer"]

# Servers cache session lookups briefly; revocations and staff changes are announced here so
# every server drops what it cached at once. Payload: a session id, or "*" for everything.
ACCESS_CHANNEL = "hall_access"
FLUSH_ALL = "*"
DEVICE_PREFIX = "d"  # payload "d<id>": device token <id> was revoked
DeviceKind = str
"""kiosk, display, bridge, or a feature's pairing kind (hall.web.pairing_kinds)."""


@dataclass(frozen=True, slots=True)
class StaffAccount:
    job_no: str
    name: str
    roles: tuple[str, ...]
    halls: tuple[str, ...]
    counters: tuple[int, ...]
    enabled: bool
    password_hash: str | None
    failed_logins: int = 0  # wrong passwords since the last good one
    locked_until: datetime | None = None  # no login is tried before this


@dataclass(frozen=True, slots=True)
class SessionRow:
    id: int
    login_id: str
    kind: SessionKind
    csrf_token: str | None
    created_at: datetime
    expires_at: datetime
    last_seen_at: datetime
    revoked_at: datetime | None
    staff: StaffAccount


@dataclass(frozen=True, slots=True)
class DeviceToken:
    id: int
    kind: DeviceKind
    hall_id: str
    device_id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: datetime
    actor: str
    actor_kind: str
    session_id: int | None
    route: str
    method: str
    path: str
    params: dict[str, Any]
    remote: str | None
    user_agent: str | None
    status: int


# An account is usable when its staff row is active, or when `hall user add` created it (a
# config reload deactivates every staff member the file does not list), and not disabled.
_ENABLED = "((s.active OR c.origin = 'cli') AND c.disabled_at IS NULL)"

_STAFF_COLUMNS = f"""s.job_no, s.name, s.roles, s.halls, s.counters,
    COALESCE({_ENABLED}, false) AS enabled, c.password_hash,
    COALESCE(c.failed_logins, 0) AS failed_logins, c.locked_until"""


def _account(r: asyncpg.Record) -> StaffAccount:
    return StaffAccount(
        job_no=r["job_no"],
        name=r["name"],
        roles=tuple(r["roles"]),
        halls=tuple(r["halls"]),
        counters=tuple(r["counters"]),
        enabled=bool(r["enabled"]),
        password_hash=r["password_hash"],
        failed_logins=r["failed_logins"],
        locked_until=r["locked_until"],
    )


async def get_account(conn: asyncpg.Connection | asyncpg.Pool, job_no: str) -> StaffAccount | None:
    row = await conn.fetchrow(
        f"""SELECT {_STAFF_COLUMNS} FROM staff s
            LEFT JOIN staff_credentials c ON c.job_no = s.job_no WHERE s.job_no = $1""",
        job_no,
    )
    return None if row is None else _account(row)


async def save_account(
    conn: asyncpg.Connection,
    job_no: str,
    *,
    password_hash: str,
    name: str | None = None,
    roles: Sequence[str] | None = None,
    halls: Sequence[str] | None = None,
    counters: Sequence[int] | None = None,
) -> bool:
    """Create the staff member (origin 'cli') or update the given fields; True when created."""
    async with conn.transaction():
        exists = await conn.fetchval("SELECT true FROM staff WHERE job_no = $1 FOR UPDATE", job_no)
        if not exists:
            if name is None or not roles:
                raise ValueError("a new staff member needs a name and at least one role")
            await conn.execute(
                """INSERT INTO staff (job_no, name, roles, halls, counters, active)
                   VALUES ($1, $2, $3, $4, $5, true)""",
                job_no,
                name,
                list(roles),
                list(halls or []),
                list(counters or []),
            )
        else:
            await conn.execute(
                """UPDATE staff SET name = COALESCE($2, name), roles = COALESCE($3, roles),
                       halls = COALESCE($4, halls), counters = COALESCE($5, counters)
                   WHERE job_no = $1""",
                job_no,
                name,
                None if not roles else list(roles),
                None if halls is None else list(halls),
                None if counters is None else list(counters),
            )
        await conn.execute(
            """INSERT INTO staff_credentials (job_no, password_hash, origin, changed_at)
               VALUES ($1, $2, $3, now())
               ON CONFLICT (job_no) DO UPDATE SET password_hash = $2, changed_at = now(),
                   disabled_at = NULL, failed_logins = 0, locked_until = NULL""",
            job_no,
            password_hash,
            "config" if exists else "cli",
        )
        await announce_staff_change(conn)
    return not exists


async def record_failed_login(
    conn: asyncpg.Connection | asyncpg.Pool,
    job_no: str,
    now: datetime,
    *,
    lock_after: int,
    lock_for: timedelta,
) -> datetime | None:
    """Count a wrong password; the time the account is locked until when this one locks it.

    A lock that has run out starts a fresh count. Counted in one statement, so wrong
    passwords sent at once through several servers are all counted.
    """
    locked: datetime | None = await conn.fetchval(
        """WITH n AS (
               SELECT CASE WHEN locked_until IS NOT NULL AND locked_until <= $2 THEN 0
                           ELSE failed_logins END + 1 AS failed
               FROM staff_credentials WHERE job_no = $1 FOR UPDATE)
           UPDATE staff_credentials c
           SET failed_logins = n.failed,
               locked_until = CASE WHEN n.failed >= $3 THEN $2 + $4::interval END
           FROM n WHERE c.job_no = $1
           RETURNING c.locked_until""",
        job_no,
        now,
        lock_after,
        lock_for,
    )
    return locked


async def clear_failed_logins(conn: asyncpg.Connection | asyncpg.Pool, job_no: str) -> None:
    await conn.execute(
        """UPDATE staff_credentials SET failed_logins = 0, locked_until = NULL
           WHERE job_no = $1 AND (failed_logins <> 0 OR locked_until IS NOT NULL)""",
        job_no,
    )


async def revoke_other_logins(
    conn: asyncpg.Connection | asyncpg.Pool, session_id: int, by: str, now: datetime
) -> list[int]:
    """Revoke every live session of this session's account except its own login (both of its
    sessions); every server is told, so their sockets close too."""
    rows = await conn.fetch(
        """WITH me AS (SELECT job_no, login_id FROM sessions WHERE id = $1),
           r AS (
               UPDATE sessions s SET revoked_at = $3, revoked_by = $2
               FROM me WHERE s.job_no = me.job_no AND s.login_id <> me.login_id
                 AND s.revoked_at IS NULL
               RETURNING s.id)
           SELECT id FROM r WHERE pg_notify($4, id::text) IS NOT NULL""",
        session_id,
        by,
        now,
        ACCESS_CHANNEL,
    )
    return sorted(r["id"] for r in rows)


async def admin_exists(conn: asyncpg.Connection | asyncpg.Pool) -> bool:
    """Whether some enabled admin has a password."""
    found = await conn.fetchval(
        f"""SELECT true FROM staff s JOIN staff_credentials c ON c.job_no = s.job_no
            WHERE 'admin' = ANY(s.roles) AND {_ENABLED} LIMIT 1"""
    )
    return bool(found)


async def set_password_hash(
    conn: asyncpg.Connection | asyncpg.Pool, job_no: str, value: str
) -> None:
    await conn.execute(
        "UPDATE staff_credentials SET password_hash = $2, changed_at = now() WHERE job_no = $1",
        job_no,
        value,
    )


# --- sessions -------------------------------------------------------------------------------


async def create_session(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    login_id: str,
    job_no: str,
    kind: SessionKind,
    token_hash: bytes,
    csrf_token: str | None,
    now: datetime,
    expires_at: datetime,
    user_agent: str | None,
    ip: str | None,
) -> int:
    session_id: int = await conn.fetchval(
        """INSERT INTO sessions (login_id, job_no, kind, token_hash, csrf_token, created_at,
                                 expires_at, last_seen_at, user_agent, ip)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $6, $8, $9) RETURNING id""",
        login_id,
        job_no,
        kind,
        token_hash,
        csrf_token,
        now,
        expires_at,
        (user_agent or "")[:200] or None,
        ip,
    )
    return session_id


_SESSION_SELECT = f"""SELECT x.id, x.login_id, x.kind, x.csrf_token, x.created_at, x.expires_at,
           x.last_seen_at, x.revoked_at, {_STAFF_COLUMNS}
    FROM sessions x JOIN staff s ON s.job_no = x.job_no
    LEFT JOIN staff_credentials c ON c.job_no = s.job_no"""


def _session_from_row(row: asyncpg.Record) -> SessionRow:
    return SessionRow(
        id=row["id"],
        login_id=row["login_id"],
        kind=row["kind"],
        csrf_token=row["csrf_token"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        last_seen_at=row["last_seen_at"],
        revoked_at=row["revoked_at"],
        staff=_account(row),
    )


async def find_session(
    conn: asyncpg.Connection | asyncpg.Pool, token_hash: bytes, kind: SessionKind
) -> SessionRow | None:
    row = await conn.fetchrow(
        f"{_SESSION_SELECT} WHERE x.token_hash = $1 AND x.kind = $2", token_hash, kind
    )
    return None if row is None else _session_from_row(row)


async def sessions_by_id(
    conn: asyncpg.Connection | asyncpg.Pool, ids: Collection[int]
) -> dict[int, SessionRow]:
    """Sessions with their accounts as they are now; unknown ids are left out."""
    rows = await conn.fetch(f"{_SESSION_SELECT} WHERE x.id = ANY($1::bigint[])", list(ids))
    return {r["id"]: _session_from_row(r) for r in rows}


async def touch_session(
    conn: asyncpg.Connection | asyncpg.Pool, session_id: int, now: datetime
) -> None:
    await conn.execute(
        "UPDATE sessions SET last_seen_at = $2 WHERE id = $1 AND last_seen_at < $2", session_id, now
    )


async def revoke_login(
    conn: asyncpg.Connection | asyncpg.Pool, session_id: int, by: str, now: datetime
) -> list[int] | None:
    """Revoke the session and its sibling of the same login; None if the id is unknown."""
    rows = await conn.fetch(
        """WITH r AS (
               UPDATE sessions SET revoked_at = COALESCE(revoked_at, $3),
                                   revoked_by = COALESCE(revoked_by, $2)
               WHERE login_id = (SELECT login_id FROM sessions WHERE id = $1) RETURNING id)
           SELECT id FROM r WHERE pg_notify($4, id::text) IS NOT NULL""",
        session_id,
        by,
        now,
        ACCESS_CHANNEL,
    )
    return sorted(r["id"] for r in rows) or None


async def set_disabled(
    conn: asyncpg.Connection, job_no: str, disabled: bool, by: str, now: datetime
) -> list[int] | None:
    """Disable (ending every live session at once) or enable a staff login. Returns the ids of
    the sessions ended (for this process's cache; other servers are told), None when the job
    number has no login."""
    async with conn.transaction():
        found = await conn.fetchval(
            """UPDATE staff_credentials
                  SET disabled_at = CASE WHEN $2::boolean THEN $3::timestamptz END
                WHERE job_no = $1 RETURNING true""",
            job_no,
            disabled,
            now,
        )
        if not found:
            return None
        ended: list[int] = []
        if disabled:
            rows = await conn.fetch(
                """WITH r AS (UPDATE sessions SET revoked_at = $2, revoked_by = $3
                               WHERE job_no = $1 AND revoked_at IS NULL RETURNING id)
                   SELECT id FROM r WHERE pg_notify($4, id::text) IS NOT NULL""",
                job_no,
                now,
                by,
                ACCESS_CHANNEL,
            )
            ended = sorted(r["id"] for r in rows)
        await announce_staff_change(conn)
    return ended


async def announce_staff_change(conn: asyncpg.Connection | asyncpg.Pool) -> None:
    """Tell every server to forget cached sessions (accounts or roles may have changed);
    inside a transaction the notice goes out at commit."""
    await conn.execute("SELECT pg_notify($1, $2)", ACCESS_CHANNEL, FLUSH_ALL)


async def live_sessions(
    conn: asyncpg.Connection | asyncpg.Pool, now: datetime
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT id, login_id, job_no, kind, created_at, expires_at, last_seen_at, user_agent, ip
           FROM sessions WHERE revoked_at IS NULL AND expires_at > $1 ORDER BY id DESC LIMIT 500""",
        now,
    )
    return [dict(r) for r in rows]


# --- device tokens --------------------------------------------------------------------------


def _device(r: asyncpg.Record) -> DeviceToken:
    return DeviceToken(
        id=r["id"],
        kind=r["kind"],
        hall_id=r["hall_id"],
        device_id=r["device_id"],
        name=r["name"],
        created_at=r["created_at"],
        last_used_at=r["last_used_at"],
        revoked_at=r["revoked_at"],
    )


_DEVICE_COLUMNS = "id, kind, hall_id, device_id, name, created_at, last_used_at, revoked_at"


async def create_device_token(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    kind: DeviceKind,
    hall_id: str,
    device_id: str,
    name: str,
    token_hash: bytes,
    created_by: str,
    now: datetime,
) -> DeviceToken:
    row = await conn.fetchrow(
        f"""INSERT INTO device_tokens (kind, hall_id, device_id, name, token_hash, created_at,
                                       created_by)
            VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_DEVICE_COLUMNS}""",
        kind,
        hall_id,
        device_id,
        name,
        token_hash,
        now,
        created_by,
    )
    assert row is not None
    return _device(row)


async def find_device_token(
    conn: asyncpg.Connection | asyncpg.Pool, token_hash: bytes, now: datetime
) -> DeviceToken | None:
    """The live token with this hash, marking it used (at most once a minute)."""
    row = await conn.fetchrow(
        f"""SELECT {_DEVICE_COLUMNS} FROM device_tokens
            WHERE token_hash = $1 AND revoked_at IS NULL""",
        token_hash,
    )
    if row is None:
        return None
    device = _device(row)
    if device.last_used_at is None or (now - device.last_used_at).total_seconds() > 60:
        await conn.execute(
            "UPDATE device_tokens SET last_used_at = $2 WHERE id = $1", device.id, now
        )
    return device


async def device_tokens_of_hall(
    conn: asyncpg.Connection | asyncpg.Pool, hall_id: str
) -> list[DeviceToken]:
    """The hall's live device tokens (paired browsers, bridges), newest first."""
    rows = await conn.fetch(
        f"""SELECT {_DEVICE_COLUMNS} FROM device_tokens
            WHERE hall_id = $1 AND revoked_at IS NULL ORDER BY id DESC LIMIT 500""",
        hall_id,
    )
    return [_device(r) for r in rows]


async def revoke_device_token(
    conn: asyncpg.Connection | asyncpg.Pool,
    token_id: int,
    by: str,
    now: datetime,
    halls: Sequence[str] = (),
) -> bool:
    """Revoke a token; with ``halls``, only a token of one of those halls (else False)."""
    done = await conn.fetchval(
        """WITH r AS (
               UPDATE device_tokens SET revoked_at = COALESCE(revoked_at, $3),
                                        revoked_by = COALESCE(revoked_by, $2)
               WHERE id = $1 AND (cardinality($6::text[]) = 0 OR hall_id = ANY($6::text[]))
               RETURNING id)
           SELECT true FROM r WHERE pg_notify($4, $5 || id::text) IS NOT NULL""",
        token_id,
        by,
        now,
        ACCESS_CHANNEL,
        DEVICE_PREFIX,
        list(halls),
    )
    return bool(done)


# --- audit ----------------------------------------------------------------------------------


# The audit_log columns every insert names, in the order of ``audit_values``.
AUDIT_COLUMNS = (
    "at, actor, actor_kind, session_id, route, method, path, params, remote, user_agent, status"
)


def audit_values(e: AuditEntry) -> tuple[object, ...]:
    """An audit row's values in the order of ``AUDIT_COLUMNS``.

    Whatever a refused request carried is stored: text is cleaned of what PostgreSQL refuses
    (NUL, lone surrogates, NaN in jsonb) and personal numbers are masked, actor included.
    """
    return (
        e.at,
        mask_text(clean_text(e.actor)),
        e.actor_kind,
        e.session_id,
        clean_text(e.route),
        clean_text(e.method),
        _stored_path(e.path),
        clean_json(e.params),
        clean_text(e.remote) if e.remote is not None else None,
        clean_text((e.user_agent or "")[:200]) or None,
        e.status,
    )


_PLAIN_PATHS: dict[str, None] = {}
_PLAIN_PATHS_MAX = 4096


def _stored_path(path: str) -> str:
    """A request path as stored: clean, personal numbers masked.

    Each counter's action paths repeat all day and the two masking expressions cost about
    6 µs a path, so paths with nothing to mask are remembered (a bounded set, emptied when
    full); a path that held a personal number is never kept in memory.
    """
    if path in _PLAIN_PATHS:
        return path
    stored = mask_text(clean_text(path))
    if stored == path:
        if len(_PLAIN_PATHS) >= _PLAIN_PATHS_MAX:
            _PLAIN_PATHS.clear()
        _PLAIN_PATHS[path] = None
    return stored


async def append_audit(conn: asyncpg.Connection | asyncpg.Pool, entry: AuditEntry) -> None:
    await conn.execute(
        f"""INSERT INTO audit_log ({AUDIT_COLUMNS})
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)""",
        *audit_values(entry),
    )


async def audit_page(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    before_id: int | None,
    limit: int,
    actor: str | None = None,
    route: str | None = None,
) -> list[dict[str, Any]]:
    """Newest first, keyset-paginated by id."""
    rows = await conn.fetch(
        """SELECT id, at, actor, actor_kind, session_id, route, method, path, params, remote,
                  user_agent, status
           FROM audit_log
           WHERE ($1::bigint IS NULL OR id < $1) AND ($2::text IS NULL OR actor = $2)
             AND ($3::text IS NULL OR route = $3)
           ORDER BY id DESC LIMIT $4""",
        before_id,
        actor,
        route,
        limit,
    )
    return [dict(r) for r in rows]
