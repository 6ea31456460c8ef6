"""Every way the database can be gone answers 503 problem+json with Retry-After, never 500.

Issue 10 item 4: during a PostgreSQL crash, asyncpg's InternalClientError (and the shutdown
errors PostgreSQL sends while it stops or recovers) escaped as plain-text 500s.
"""

from __future__ import annotations

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from hall.domain.errors import Unavailable
from hall.storage.db import OUTAGE_DETAIL
from hall.storage.uow import run_in_transaction
from hall.web.problems import problem_middleware
from hall.web.state import POOL
from tests.conftest import AppFactory

LOST = [
    ConnectionRefusedError(111, "Connection refused"),
    FileNotFoundError(2, "No such file or directory"),  # the socket file is gone
    ConnectionResetError(104, "Connection reset by peer"),
    TimeoutError(),
    asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg.CannotConnectNowError("the database system is starting up"),
    asyncpg.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.CrashShutdownError("terminating connection because of crash of another server"),
    asyncpg.TooManyConnectionsError("sorry, too many clients already"),
    asyncpg.InterfaceError("connection is closed"),
    asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in progress"),
]


@pytest.mark.parametrize("error", LOST, ids=lambda e: type(e).__name__)
async def test_connection_failure_answers_503(error: BaseException) -> None:
    async def handler(_request: web.Request) -> web.Response:
        raise error

    app = web.Application(middlewares=[problem_middleware])
    app.router.add_post("/api/v1/halls/x/tickets", handler)
    async with TestClient(TestServer(app)) as client:
        response = await client.post("/api/v1/halls/x/tickets")
        assert response.status == 503
        assert response.content_type == "application/problem+json"
        assert int(response.headers["Retry-After"]) > 0
        body = await response.json()
        assert body["code"] == "unavailable"
        assert body["detail"] == OUTAGE_DETAIL


async def test_connection_lost_mid_transaction_is_unavailable(pool: asyncpg.Pool) -> None:
    """The backend of a unit of work is terminated between two statements."""
    async with pool.acquire() as other:

        async def work(uow: object) -> None:
            conn = uow.conn  # type: ignore[attr-defined]
            pid = await conn.fetchval("SELECT pg_backend_pid()")
            await other.execute("SELECT pg_terminate_backend($1)", pid)
            await conn.fetchval("SELECT 1")

        with pytest.raises(Unavailable) as caught:
            await run_in_transaction(pool, work)
    assert caught.value.fields["retry_after_s"] > 0
    assert await pool.fetchval("SELECT 1") == 1  # the pool replaced the dead connection


async def test_healthz_says_when_to_look_again(make_client: AppFactory) -> None:
    """A watchdog polling /healthz during an outage is told to wait, like any request."""
    client = await make_client()
    await client.app[POOL].close()  # every query now fails as during an outage
    response = await client.get("/healthz")
    assert response.status == 503
    assert int(response.headers["Retry-After"]) > 0
    assert (await response.json())["ok"] is False
