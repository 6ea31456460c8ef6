"""A server's own writes poke its sequencer instead of NOTIFYing at commit (migration 0009).

NOTIFY in a transaction serializes commits database-wide until each one's WAL flush; the
server's pool therefore skips it, yet every event still reaches the live feed, and other
writers (the CLI, scripts) still notify.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
import pytest

from hall.config.models import HallConfig
from hall.ports import FixedClock
from hall.services.directory import Directory
from hall.services.queue import CounterAction, IssueTicket, QueueService
from hall.storage.commit_notices import CommitNotices, note_events
from hall.storage.db import connect_pool
from hall.storage.notify import Notifier
from hall.storage.sequencer import EVENTS_CHANNEL, SPACING_S, Sequencer, writer_hall
from tests.core.test_sequencer import Published, unnumbered


class WriterNotices:
    """``{"hall": id}`` notices heard on the sequencer's channel."""

    def __init__(self) -> None:
        self.halls: list[str] = []
        self.heard = asyncio.Event()

    def on_notify(self, payload: str) -> None:
        hall = writer_hall(payload)
        if hall is not None:
            self.halls.append(hall)
            self.heard.set()


@pytest.fixture
async def notices() -> CommitNotices:
    return CommitNotices()


@pytest.fixture
async def server_pool(
    pool: asyncpg.Pool, database_url: str, notices: CommitNotices
) -> AsyncIterator[asyncpg.Pool]:
    """A pool as ``hall serve`` opens it (the ``pool`` fixture has reset the database)."""
    server = await connect_pool(database_url, min_size=1, max_size=8, commit_notices=notices)
    try:
        yield server
    finally:
        await server.close()


@contextlib.asynccontextmanager
async def server_sequencer(
    pool: asyncpg.Pool, notices: CommitNotices, notifier: Notifier, spacing_s: float = SPACING_S
) -> AsyncIterator[Sequencer]:
    """A sequencer for hall ``test`` told of the pool's commits, as ``hall serve`` wires it."""
    sequencer = Sequencer(pool, notifier, lambda: ["test"], spacing_s=spacing_s)
    notices.add(sequencer.poke)
    await sequencer.start()
    try:
        yield sequencer
    finally:
        notices.remove(sequencer.poke)
        await sequencer.close()


async def test_the_servers_writes_reach_the_feed_without_a_notify_at_commit(
    server_pool: asyncpg.Pool,
    notices: CommitNotices,
    notifier: Notifier,
    config: HallConfig,
    clock: FixedClock,
) -> None:
    writers = WriterNotices()
    listening = asyncio.Event()
    await notifier.subscribe(EVENTS_CHANNEL, writers.on_notify, on_up=listening.set)
    published = await Published.following(notifier)
    async with asyncio.timeout(10):
        await listening.wait()
    async with server_sequencer(server_pool, notices, notifier):
        service = QueueService(server_pool, Directory(config), clock)
        await service.act("test", 1, CounterAction.OPEN, "c001")
        await asyncio.gather(
            *(service.issue(IssueTicket(hall_id="test", service_code="BDC")) for _ in range(12))
        )
        await service.act("test", 1, CounterAction.CALL_NEXT, "c001")
        # Opening, twelve tickets, one call: numbered and published, each once, in order.
        await published.reach(14)
    assert await unnumbered(server_pool) == 0
    seqs = [r["seq"] for r in await server_pool.fetch("SELECT seq FROM events ORDER BY seq")]
    assert seqs == list(range(1, 15))
    # The sequencer's own notices came (above); no write notified at its commit.
    assert writers.halls == []


async def test_other_writers_still_notify_at_commit(
    pool: asyncpg.Pool, notifier: Notifier, config: HallConfig, clock: FixedClock
) -> None:
    writers = WriterNotices()
    listening = asyncio.Event()
    await notifier.subscribe(EVENTS_CHANNEL, writers.on_notify, on_up=listening.set)
    async with asyncio.timeout(10):
        await listening.wait()
    # The test pool is opened without commit notices, like the CLI's connections.
    service = QueueService(pool, Directory(config), clock)
    await service.issue(IssueTicket(hall_id="test", service_code="BDC"))
    async with asyncio.timeout(10):
        await writers.heard.wait()
    assert writers.halls == ["test"]


async def test_events_whose_writer_never_poked_are_numbered_by_the_sweep(
    server_pool: asyncpg.Pool,
    notices: CommitNotices,
    notifier: Notifier,
    config: HallConfig,
    clock: FixedClock,
) -> None:
    published = await Published.following(notifier)
    # A sequencer that knows no halls to catch up on at start, and nobody listening to the
    # pool's notices: the writes below are those of a process that died after committing.
    sequencer = Sequencer(server_pool, notifier, lambda: [], sweep_s=0.2)
    await sequencer.start()
    try:
        service = QueueService(server_pool, Directory(config), clock)
        for _ in range(3):
            await service.issue(IssueTicket(hall_id="test", service_code="BDC"))
        await published.reach(3)
    finally:
        await sequencer.close()
    assert await unnumbered(server_pool) == 0


async def test_a_connection_the_pool_closes_still_passes_its_halls_on(
    server_pool: asyncpg.Pool, notices: CommitNotices, config: HallConfig, clock: FixedClock
) -> None:
    told: list[str] = []
    closed = asyncio.Event()

    def tell(hall: str) -> None:
        told.append(hall)
        closed.set()

    notices.add(tell)
    service = QueueService(server_pool, Directory(config), clock, group_commit=False)
    await service.issue(IssueTicket(hall_id="test", service_code="BDC"))
    assert told == ["test"]  # its connection was released after the write
    told.clear()
    # A write on a connection that is closed afterwards rather than reset (as the pool does
    # at its query limit or on expiry).
    conn = await server_pool.acquire()
    note_events(conn, "test")  # what the statements that insert events do
    await conn.close()
    await server_pool.release(conn)
    closed.clear()
    async with asyncio.timeout(5):  # asyncpg calls termination listeners soon, not at once
        await closed.wait()
    assert told == ["test"]


async def test_a_stream_of_writes_is_numbered_in_runs_spaced_apart(
    server_pool: asyncpg.Pool,
    notices: CommitNotices,
    notifier: Notifier,
    config: HallConfig,
    clock: FixedClock,
) -> None:
    published = await Published.following(notifier)
    loop = asyncio.get_running_loop()
    async with server_sequencer(server_pool, notices, notifier, spacing_s=0.25) as sequencer:
        service = QueueService(server_pool, Directory(config), clock, group_commit=False)
        began = loop.time()
        for _ in range(20):
            await service.issue(IssueTicket(hall_id="test", service_code="BDC"))
        await published.reach(20)
        elapsed = loop.time() - began
    # One run per write would be 20 (and more with the catch-up at start); runs that start a
    # spacing apart while writes keep coming are far fewer (the catch-up, the first write's,
    # one per spacing, one trailing), and nothing is left unnumbered.
    assert sequencer.runs <= 3 + elapsed / 0.25
    assert sequencer.runs < 20
    assert await unnumbered(server_pool) == 0
