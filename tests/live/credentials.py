"""Credentials for live tests, written straight to the access tables (no login round trip).

Until the access-control tests publish shared fixtures, this is the smallest stable path:
a staff account with a bearer session (API calls, websocket handshakes with headers), a cookie
session (browsers: WebSocket cannot send headers) and a display device token.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from hall.security import tokens
from hall.security.passwords import ScryptParams, hash_password
from hall.storage import access_repo

_CHEAP = ScryptParams(n=2**10, r=8, p=1)  # nobody logs in with it; keep tests fast


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
            password_hash=hash_password(secrets.token_urlsafe(12), _CHEAP),
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
