"""Shared fixtures: one real PostgreSQL per test session, a clean database per test.

The server is the embedded one (data on a RAM disk when there is one, fsync off) unless
DATABASE_URL names another. Each test starts from TRUNCATE … RESTART IDENTITY plus the seed
configuration, which costs about 10 ms instead of copying a template database.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from hall.app import Settings, create_app, migrate_all
from hall.config.models import HallConfig
from hall.ports import FixedClock
from hall.storage.config_store import apply_config
from hall.storage.db import connect_pool
from hall.storage.embedded import EmbeddedPostgres
from tests.factories import hall_config


def _ram_dir() -> Path:
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix="hall-test-", dir=base))


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """DSN of the session's PostgreSQL, with migrations applied."""
    if url := os.environ.get("DATABASE_URL"):
        dsn = url
        server = None
        root = None
    else:
        root = _ram_dir()
        server = EmbeddedPostgres(root, durable=False, database="hall_test")
        dsn = server.start()

    async def prepare() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await migrate_all(conn)
        finally:
            await conn.close()

    asyncio.run(prepare())
    try:
        yield dsn
    finally:
        if server is not None:
            server.stop()
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)


async def reset_database(conn: asyncpg.Connection, config: HallConfig) -> None:
    tables = await conn.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        " AND tablename <> 'schema_migrations'"
    )
    names = ", ".join(f'"{r["tablename"]}"' for r in tables)
    await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    await apply_config(conn, config)


@pytest.fixture
def config() -> HallConfig:
    """The seed configuration; override in a test module to change it."""
    return hall_config()


@pytest.fixture
async def pool(database_url: str, config: HallConfig) -> AsyncIterator[asyncpg.Pool]:
    pool = await connect_pool(database_url, min_size=1, max_size=60)
    async with pool.acquire() as conn:
        await reset_database(conn, config)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
def clock() -> FixedClock:
    """Tuesday 2026-11-24 10:00 in Shanghai: a working day, inside business hours."""
    return FixedClock(datetime(2026, 11, 24, 2, 0, tzinfo=UTC))


AppFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture
async def make_client(
    pool: asyncpg.Pool, database_url: str, config: HallConfig, clock: FixedClock
) -> AsyncIterator[AppFactory]:
    """Start the real app against the test database; the pool fixture has already seeded it."""
    clients: list[TestClient[web.Request, web.Application]] = []

    async def factory(**overrides: object) -> TestClient[web.Request, web.Application]:
        settings = Settings(database_url=database_url, config=config, clock=clock)
        for key, value in overrides.items():
            setattr(settings, key, value)
        client: TestClient[web.Request, web.Application] = TestClient(
            TestServer(create_app(settings))
        )
        await client.start_server()
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.close()


@pytest.fixture
async def client(make_client: AppFactory) -> TestClient[web.Request, web.Application]:
    return await make_client()
