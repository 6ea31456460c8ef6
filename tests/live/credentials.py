"""Credentials for ``hall serve`` processes, by pool and wall clock.

``tests.access_helpers`` covers in-process apps (and an admin bearer by pool); the live tests
against server processes also need a staff cookie session (browsers cannot send headers on a
WebSocket) and a display device token.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from hall.security import tokens
from hall.security.passwords import hash_password
from hall.storage import access_repo
from tests.access_helpers import FAST_SCRYPT


@dataclass(frozen=True)
class Credential:
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def staff_session(
    pool: asyncpg.Pool,
    now: datetime,
    *,
    job_no: str = "live-admin",
    roles: tuple[str, ...] = ("admin",),
    hall: str = "test",
    kind: access_repo.SessionKind = "bearer",
) -> Credential:
    async with pool.acquire() as conn:
        await access_repo.save_account(
            conn,
            job_no,
            password_hash=hash_password(secrets.token_urlsafe(12), FAST_SCRYPT),
            name="直播测试",
            roles=list(roles),
            halls=[hall],
        )
    prefix = tokens.SESSION_PREFIX
    token = tokens.new_token(prefix)
    await access_repo.create_session(
        pool,
        login_id=secrets.token_hex(8),
        job_no=job_no,
        kind=kind,
        token_hash=tokens.token_hash(token),
        csrf_token=secrets.token_urlsafe(16) if kind == "cookie" else None,
        now=now,
        expires_at=now + timedelta(hours=12),
        user_agent=None,
        ip=None,
    )
    return Credential(token)


async def display_token(pool: asyncpg.Pool, now: datetime, hall: str = "test") -> Credential:
    token = tokens.new_token(tokens.DEVICE_PREFIX)
    await access_repo.create_device_token(
        pool,
        kind="display",
        hall_id=hall,
        device_id=f"tv-{secrets.token_hex(3)}",
        name="综合屏",
        token_hash=tokens.token_hash(token),
        created_by="test",
        now=now,
    )
    return Credential(token)
