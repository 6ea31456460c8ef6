"""Credentials for tests: staff sessions, admin and device tokens, real logins.

The fast helpers (``staff_headers``, ``admin_headers``, ``device_headers``) write the staff row
and a session or device token straight through the storage functions the server uses, with the
app's own clock, so a test pays neither scrypt nor the login rate limit. ``login`` goes through
POST /api/v1/login like a browser does (cookie + CSRF token + bearer token).

    headers = await admin_headers(client)
    await client.post("/api/v1/halls/test/counters/1/open", headers=headers)
    clerk = await staff_headers(client, "c001", counters=(1,))
    kiosk = await device_headers(client, "kiosk", device_id="k1")
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from hall.security import tokens
from hall.security.passwords import ScryptParams, hash_password
from hall.storage import access_repo
from hall.storage.access_repo import DeviceKind, SessionKind
from hall.web.access import ACCESS
from hall.web.state import CLOCK, POOL

Client = TestClient[web.Request, web.Application]

PASSWORD = "correct-horse-7"
# Test-only scrypt cost: the stored parameters make verification just as cheap.
FAST_SCRYPT = ScryptParams(n=2**4, r=8, p=1)


async def create_staff(
    client: Client,
    job_no: str,
    *,
    roles: Sequence[str] = ("clerk",),
    halls: Sequence[str] = ("test",),
    counters: Sequence[int] = (),
    password: str = PASSWORD,
    name: str | None = None,
) -> None:
    """Create or update a staff member with a password (as `hall user add` does)."""
    async with client.app[POOL].acquire() as conn:
        await access_repo.save_account(
            conn,
            job_no,
            password_hash=hash_password(password, FAST_SCRYPT),
            name=name or f"测试员工{job_no}",
            roles=list(roles),
            halls=list(halls),
            counters=list(counters),
        )


async def open_session(
    client: Client, job_no: str, kind: SessionKind = "bearer"
) -> tuple[int, str, str | None]:
    """A live session for an existing staff member: (session id, token, csrf token)."""
    now = client.app[CLOCK].now()
    token = tokens.new_token(tokens.SESSION_PREFIX)
    csrf = secrets.token_urlsafe(24) if kind == "cookie" else None
    session_id = await access_repo.create_session(
        client.app[POOL],
        login_id=secrets.token_hex(12),
        job_no=job_no,
        kind=kind,
        token_hash=tokens.token_hash(token),
        csrf_token=csrf,
        now=now,
        expires_at=now + client.app[ACCESS].settings.session_absolute,
        user_agent="tests",
        ip="127.0.0.1",
    )
    return session_id, token, csrf


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def staff_headers(
    client: Client,
    job_no: str = "c001",
    *,
    roles: Sequence[str] = ("clerk",),
    halls: Sequence[str] = ("test",),
    counters: Sequence[int] = (),
) -> dict[str, str]:
    """Authorization headers of a staff member with these roles, halls and counters."""
    await create_staff(client, job_no, roles=roles, halls=halls, counters=counters)
    _, token, _ = await open_session(client, job_no)
    return bearer(token)


async def admin_headers(client: Client, job_no: str = "admin") -> dict[str, str]:
    """An administrator of every hall."""
    return await staff_headers(client, job_no, roles=("admin",), halls=())


async def device_headers(
    client: Client, kind: DeviceKind, *, hall: str = "test", device_id: str = "k1"
) -> dict[str, str]:
    """A kiosk, display or bridge device token of ``hall`` (not checked against the config)."""
    _, token = await create_device(client, kind, hall=hall, device_id=device_id)
    return bearer(token)


async def create_device(
    client: Client, kind: DeviceKind, *, hall: str = "test", device_id: str = "k1"
) -> tuple[int, str]:
    token = tokens.new_token(tokens.DEVICE_PREFIX)
    device = await access_repo.create_device_token(
        client.app[POOL],
        kind=kind,
        hall_id=hall,
        device_id=device_id,
        name=device_id,
        token_hash=tokens.token_hash(token),
        created_by="tests",
        now=client.app[CLOCK].now(),
    )
    return device.id, token


async def login(client: Client, job_no: str, password: str = PASSWORD) -> dict[str, Any]:
    """POST /api/v1/login; the client's cookie jar keeps the session cookie. Returns the body."""
    response = await client.post("/api/v1/login", json={"job_no": job_no, "password": password})
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def admin_bearer_in(pool: Any, job_no: str = "admin") -> dict[str, str]:
    """Admin headers valid for any server process on the database behind ``pool``."""
    from datetime import UTC, datetime, timedelta

    async with pool.acquire() as conn:
        await access_repo.save_account(
            conn,
            job_no,
            password_hash=hash_password(PASSWORD, FAST_SCRYPT),
            name="测试管理员",
            roles=["admin"],
            halls=[],
            counters=[],
        )
    now = datetime.now(UTC)
    token = tokens.new_token(tokens.SESSION_PREFIX)
    await access_repo.create_session(
        pool,
        login_id=secrets.token_hex(12),
        job_no=job_no,
        kind="bearer",
        token_hash=tokens.token_hash(token),
        csrf_token=None,
        now=now,
        expires_at=now + timedelta(hours=2),
        user_agent="tests",
        ip="127.0.0.1",
    )
    return bearer(token)
