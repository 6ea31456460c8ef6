"""Connections go back to the pool: after a failed BEGIN, idle ones in place, open
transactions rolled back.

A unit of work whose BEGIN fails gives its connection back to the pool.
``async with`` runs ``__aexit__`` only after ``__aenter__`` succeeded; a BEGIN cancelled by a
shutdown once kept its connection out of the pool, and the server's ``Pool.close`` waited for
it for ever.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from hall.domain.errors import Unavailable
from hall.storage.db import connect_pool
from hall.storage.uow import UnitOfWork, acquire


async def _begin_failing(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    async def start(self: asyncpg.transaction.Transaction) -> None:
        raise error

    monkeypatch.setattr(asyncpg.transaction.Transaction, "start", start)


@pytest.mark.parametrize(
    ("error", "raised"),
    [
        (asyncio.CancelledError(), asyncio.CancelledError),
        (ConnectionResetError(), Unavailable),
    ],
)
async def test_a_failed_begin_returns_the_connection_and_the_pool_closes(
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    error: BaseException,
    raised: type[BaseException],
) -> None:
    pool = await connect_pool(database_url, min_size=1, max_size=1)
    try:
        with monkeypatch.context() as patch:
            await _begin_failing(patch, error)
            with pytest.raises(raised):
                async with UnitOfWork(pool):
                    pytest.fail("the block ran without a transaction")
        # The pool's only connection is free again: a second unit of work gets it at once.
        async with asyncio.timeout(5), UnitOfWork(pool) as uow:
            assert await uow.conn.fetchval("SELECT 1") == 1
    finally:
        async with asyncio.timeout(10):
            await pool.close()


async def test_a_committed_unit_with_releasing_gives_its_connection_back_in_the_background(
    database_url: str,
) -> None:
    pool = await connect_pool(database_url, min_size=1, max_size=1)
    releasing: set[asyncio.Task[None]] = set()
    try:
        async with UnitOfWork(pool, releasing=releasing) as uow:
            await uow.conn.execute("CREATE TEMP TABLE t (x int)")
            await uow.commit()
        # The block's caller goes on while the release is under way.
        assert len(releasing) == 1
        assert pool.get_idle_size() == 0
        # ... and the pool's only connection comes back.
        async with asyncio.timeout(5), UnitOfWork(pool) as uow:
            assert await uow.conn.fetchval("SELECT count(*) FROM t") == 0
        assert not releasing
        # A unit that did not commit gives its connection back before its caller goes on.
        with pytest.raises(RuntimeError):
            async with UnitOfWork(pool, releasing=releasing):
                raise RuntimeError("refused")
        assert not releasing
        assert pool.get_idle_size() == 1
    finally:
        async with asyncio.timeout(10):
            await pool.close()


async def test_an_idle_connection_goes_back_to_the_pool_without_a_task(database_url: str) -> None:
    """Releasing a connection with nothing to roll back happens in place: no task of its own
    (asyncpg's release shields one per release, with a timeout: about 20 µs of CPU each),
    and the pool's only connection is at once free again, its commit notices told."""
    from hall.storage.commit_notices import CommitNotices, note_events

    notices = CommitNotices()
    told: list[str] = []
    notices.add(told.append)
    pool = await connect_pool(database_url, min_size=1, max_size=1, commit_notices=notices)
    loop = asyncio.get_running_loop()
    created: list[object] = []
    factory = loop.get_task_factory()

    def counting(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
        created.append(coro)
        return asyncio.Task(coro, loop=loop, **kwargs)

    try:
        loop.set_task_factory(counting)
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT 1") == 1
            note_events(conn, "hall-a")
        async with acquire(pool) as conn:
            note_events(conn, "hall-b")
        loop.set_task_factory(factory)
        assert created == []
        assert told == ["hall-a", "hall-b"]
        async with asyncio.timeout(5), pool.acquire() as conn:
            assert await conn.fetchval("SELECT 2") == 2
    finally:
        loop.set_task_factory(factory)
        async with asyncio.timeout(10):
            await pool.close()


async def test_a_connection_released_in_a_transaction_is_rolled_back(database_url: str) -> None:
    """A connection given back with its transaction open still goes through asyncpg's own
    release, which rolls it back: nothing of it is committed and the next user gets a
    connection outside any transaction."""
    pool = await connect_pool(database_url, min_size=1, max_size=1)
    try:
        await pool.execute("DROP TABLE IF EXISTS release_probe; CREATE TABLE release_probe (k int)")
        conn = await pool.acquire()
        await conn.execute("BEGIN")
        await conn.execute("INSERT INTO release_probe VALUES (1)")
        loop = asyncio.get_running_loop()
        handler = loop.get_exception_handler()
        loop.set_exception_handler(lambda _loop, _context: None)  # asyncpg warns of it
        try:
            await pool.release(conn)
        finally:
            loop.set_exception_handler(handler)
        async with asyncio.timeout(5), pool.acquire() as again:
            assert not again.is_in_transaction()
            assert await again.fetchval("SELECT count(*) FROM release_probe") == 0
    finally:
        async with asyncio.timeout(10):
            await pool.close()


async def test_a_connection_lost_in_an_acquired_block_is_unavailable_and_given_back(
    database_url: str,
) -> None:
    """``acquire``: a connection error inside the block is a 503 (Unavailable), any other
    exception passes as it is, and either way the connection goes back to the pool."""
    pool = await connect_pool(database_url, min_size=1, max_size=1)
    try:
        with pytest.raises(Unavailable) as lost:
            async with acquire(pool):
                raise ConnectionResetError
        assert isinstance(lost.value.__cause__, ConnectionResetError)
        with pytest.raises(KeyError):
            async with acquire(pool):
                raise KeyError("not the database's")
        async with asyncio.timeout(5), acquire(pool) as conn:
            assert await conn.fetchval("SELECT 3") == 3
    finally:
        async with asyncio.timeout(10):
            await pool.close()
