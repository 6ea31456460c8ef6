"""The per-process session cache: hits skip the database, announcements reach other servers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from hall.storage.access_repo import SessionRow, StaffAccount
from hall.storage.config_store import apply_config
from hall.web.access import ACCESS
from hall.web.session_cache import CacheKey, SessionCache
from hall.web.state import POOL
from tests.access.conftest import roomy_settings
from tests.access_helpers import admin_headers, bearer, create_staff, login, open_session
from tests.conftest import AppFactory
from tests.factories import hall_config

Client = TestClient[web.Request, web.Application]


async def me(client: Client, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    response = await client.get("/api/v1/me", headers=headers)
    body: dict[str, Any] = await response.json(content_type=None)
    return response.status, body


async def two_servers(make_client: AppFactory) -> tuple[Client, Client]:
    """Two server processes on one database; caches long enough that only NOTIFY can expire
    them within a test."""
    a = await make_client(access=roomy_settings(session_cache_s=300.0))
    b = await make_client(access=roomy_settings(session_cache_s=300.0))
    for client in (a, b):
        for _ in range(200):
            if client.app[ACCESS].sessions.listening:
                break
            await asyncio.sleep(0.01)
        assert client.app[ACCESS].sessions.listening
    return a, b


async def refused_within(client: Client, headers: dict[str, str], seconds: float = 2.0) -> str:
    """The problem code once ``client`` refuses ``headers`` (polling: NOTIFY is asynchronous)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        status, body = await me(client, headers)
        if status == 401:
            return str(body["code"])
        assert asyncio.get_running_loop().time() < deadline, "still accepted"
        await asyncio.sleep(0.02)


async def test_cached_sessions_are_served_without_a_lookup(make_client: AppFactory) -> None:
    a, _ = await two_servers(make_client)
    await create_staff(a, "c001")
    _, token, _ = await open_session(a, "c001")
    cache = a.app[ACCESS].sessions
    assert (await me(a, bearer(token)))[0] == 200
    hits = cache.hits
    assert (await me(a, bearer(token)))[0] == 200
    assert cache.hits == hits + 1


async def test_revocation_on_one_server_reaches_the_other_servers_cache(
    make_client: AppFactory,
) -> None:
    a, b = await two_servers(make_client)
    await create_staff(a, "c001")
    session_id, token, _ = await open_session(a, "c001")
    assert (await me(b, bearer(token)))[0] == 200
    assert (await me(b, bearer(token)))[0] == 200  # now from b's cache
    admin = await admin_headers(a)
    response = await a.post(f"/api/v1/sessions/{session_id}/revoke", headers=admin)
    assert response.status == 200
    assert (await me(a, bearer(token)))[1]["code"] == "session_revoked"  # at once, locally
    assert await refused_within(b, bearer(token)) == "session_revoked"


async def test_logout_on_one_server_reaches_the_other_servers_cache(
    make_client: AppFactory,
) -> None:
    a, b = await two_servers(make_client)
    await create_staff(a, "c001")
    body = await login(a, "c001")
    a.session.cookie_jar.clear()
    token = body["token"]
    assert (await me(b, bearer(token)))[0] == 200
    assert (await me(b, bearer(token)))[0] == 200
    response = await a.post("/api/v1/logout", headers=bearer(token))
    assert response.status == 204
    assert await refused_within(b, bearer(token)) == "session_revoked"


async def test_a_config_reload_empties_every_cache(make_client: AppFactory) -> None:
    a, b = await two_servers(make_client)
    await create_staff(a, "c001")  # listed in the hall config
    _, token, _ = await open_session(a, "c001")
    assert (await me(b, bearer(token)))[0] == 200
    assert (await me(b, bearer(token)))[0] == 200
    async with a.app[POOL].acquire() as conn:
        await apply_config(conn, hall_config().model_copy(update={"staff": []}))
    assert await refused_within(b, bearer(token)) == "unauthorized"


def _row(session_id: int = 1) -> SessionRow:
    now = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
    staff = StaffAccount("c001", "张三", ("clerk",), ("test",), (), True, None)
    return SessionRow(
        session_id, "l", "bearer", None, now, now + timedelta(hours=1), now, None, staff
    )


def test_the_cache_is_not_trusted_without_its_listen_connection() -> None:
    cache = SessionCache(ttl_s=60)
    key: CacheKey = (b"h", "bearer")
    cache.put(key, _row(), cache.generation)
    assert cache.get(key) is None
    cache.listening = True
    cache.put(key, _row(), cache.generation)
    assert cache.get(key) is not None
    cache.listening = False
    assert cache.get(key) is None


def test_a_lookup_that_raced_an_invalidation_is_not_cached() -> None:
    cache = SessionCache(ttl_s=60)
    cache.listening = True
    key: CacheKey = (b"h", "bearer")
    started = cache.generation
    cache.on_notice("1")  # the session was revoked while its lookup was in flight
    cache.put(key, _row(1), started)
    assert cache.get(key) is None
    cache.put(key, _row(1), cache.generation)
    cache.on_notice("2")
    assert cache.get(key) is not None
    cache.on_notice("1")
    assert cache.get(key) is None
