"""A unit of work whose BEGIN fails gives its connection back to the pool.

``async with`` runs ``__aexit__`` only after ``__aenter__`` succeeded; a BEGIN cancelled by a
shutdown once kept its connection out of the pool, and the server's ``Pool.close`` waited for
it for ever.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from hall.domain.errors import Unavailable
from hall.storage.db import connect_pool
from hall.storage.uow import UnitOfWork


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
