"""Group commit of issuing: tickets of one service issued at once share transactions, keep
gapless unique numbers, and a failing request never takes the others down with it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncpg

from hall.config.models import HallConfig
from hall.domain.errors import HallError, IdempotencyMismatch
from hall.ports import Clock
from hall.services.directory import Directory
from hall.services.group_commit import BatchAborted, GroupCommit, Statement
from hall.services.queue import IssueTicket, QueueService, TicketView

N = 60


async def _numbers(pool: asyncpg.Pool, service: str) -> list[str]:
    rows = await pool.fetch(
        "SELECT display_number FROM tickets WHERE service_code = $1 ORDER BY id", service
    )
    return [r["display_number"] for r in rows]


async def test_concurrent_tickets_share_commits_and_keep_gapless_numbers(
    pool: asyncpg.Pool, config: HallConfig, clock: Clock
) -> None:
    queue = QueueService(pool, Directory(config), clock)
    views = await asyncio.gather(
        *(queue.issue(IssueTicket(hall_id="test", service_code="BDC")) for _ in range(N))
    )
    numbers = sorted(v.ticket.display_number for v in views)
    assert numbers == sorted(await _numbers(pool, "BDC"))
    assert len(set(numbers)) == N
    # Gapless: every number from the first to the last was handed out once.
    values = sorted(int(n[1:]) for n in numbers)
    assert values == list(range(values[0], values[0] + N))
    # Places in the queue as the citizens were told them: 0..N-1 ahead, each once.
    assert sorted(v.people_ahead or 0 for v in views) == list(range(N))
    assert queue.group_commit is not None
    assert queue.group_commit.jobs == N
    assert queue.group_commit.batches < N  # some tickets shared a transaction


async def test_a_failing_request_in_a_batch_fails_alone(
    pool: asyncpg.Pool, config: HallConfig, clock: Clock
) -> None:
    queue = QueueService(pool, Directory(config), clock)
    first = await queue.issue(IssueTicket(hall_id="test", service_code="BDC", idempotency_key="k1"))

    async def reuse_key_for_other_service() -> TicketView:
        # Same key, different request: refused (409), nothing written.
        return await queue.issue(
            IssueTicket(hall_id="test", service_code="BDC", kiosk="k9", idempotency_key="k1")
        )

    jobs = [queue.issue(IssueTicket(hall_id="test", service_code="BDC")) for _ in range(20)]
    jobs[7:7] = [reuse_key_for_other_service()]
    jobs[3:3] = [queue.issue(IssueTicket(hall_id="test", service_code="BDC", idempotency_key="k1"))]
    results = await asyncio.gather(*jobs, return_exceptions=True)
    refused = [r for r in results if isinstance(r, HallError)]
    assert [type(r) for r in refused] == [IdempotencyMismatch]
    replayed = [r for r in results if isinstance(r, TicketView) and r.replayed]
    assert [r.ticket.id for r in replayed] == [first.ticket.id]
    issued = [r for r in results if isinstance(r, TicketView) and not r.replayed]
    assert len(issued) == 20
    stored = await _numbers(pool, "BDC")
    assert len(stored) == 21 == len(set(stored))
    values = sorted(int(n[1:]) for n in stored)
    assert values == list(range(values[0], values[0] + 21))


async def test_a_batch_failing_at_commit_is_not_redone(pool: asyncpg.Pool) -> None:
    """A COMMIT that fails may or may not have been written: its callers hear that error
    itself, never BatchAborted (which would make them issue a second ticket)."""
    await pool.execute("CREATE TABLE gc_probe (k int UNIQUE DEFERRABLE INITIALLY DEFERRED, v text)")
    gc = GroupCommit(pool)
    started = asyncio.Event()
    release = asyncio.Event()

    async def first(conn: asyncpg.Connection) -> str:
        started.set()
        await release.wait()  # the others queue behind this lone job and form one batch
        await conn.execute("INSERT INTO gc_probe VALUES (1, 'first')")
        return "first"

    async def clash(conn: asyncpg.Connection) -> str:
        # Both insert k = 2: the deferred unique check fails only at the batch's COMMIT.
        await conn.execute("INSERT INTO gc_probe VALUES (2, 'clash')")
        return "clash"

    lone = asyncio.create_task(gc.run("key", first))
    await started.wait()
    batch = [asyncio.create_task(gc.run("key", clash)) for _ in range(2)]
    await asyncio.sleep(0)  # one loop turn: each task runs up to awaiting its batch
    assert len(gc._pending["key"]) == 2  # both queued behind the lone job
    release.set()
    assert await lone == "first"
    outcomes = await asyncio.gather(*batch, return_exceptions=True)
    assert [type(o) for o in outcomes] == [asyncpg.UniqueViolationError] * 2
    assert gc.batches == 2
    rows = await pool.fetch("SELECT v FROM gc_probe ORDER BY k")
    assert [r["v"] for r in rows] == ["first"]  # the failed batch left nothing


async def _logged_pool(database_url: str, queries: list[str]) -> asyncpg.Pool:
    """A one-connection pool whose connection records every query it sends."""

    async def init(conn: asyncpg.Connection) -> None:
        conn.add_query_logger(lambda record: queries.append(record.query))

    async def reset(conn: asyncpg.Connection) -> None:
        pass  # as the server's pool: nothing sent on release (hall.storage.db)

    pool: asyncpg.Pool = await asyncpg.create_pool(
        database_url, min_size=1, max_size=1, init=init, reset=reset
    )
    return pool


async def _queued_batch(
    gc: GroupCommit, jobs: list[Statement]
) -> tuple[asyncio.Task[str], list[asyncio.Task[asyncpg.Record | None]], asyncio.Event]:
    """A lone job that waits for the returned event, and ``jobs`` queued behind it (so they
    form one batch when it is set)."""
    started, release = asyncio.Event(), asyncio.Event()

    async def lone(conn: asyncpg.Connection) -> str:
        started.set()
        await release.wait()
        return "lone"

    first = asyncio.create_task(gc.run("key", lone))
    await started.wait()
    batch = [asyncio.create_task(gc.run("key", job)) for job in jobs]
    await asyncio.sleep(0)  # one loop turn: each task runs up to awaiting its batch
    return first, batch, release


def _noting(noted: list[int], k: int) -> Callable[[asyncpg.Connection], None]:
    return lambda _conn: noted.append(k)


def _nothing(_conn: asyncpg.Connection) -> None:
    pass


async def test_a_batch_of_one_statement_is_one_round_trip(
    pool: asyncpg.Pool, database_url: str
) -> None:
    """Tickets without an idempotency key are one statement each: a batch of them is sent
    as one pipeline (no BEGIN, no COMMIT, no round trip per ticket) and committed by it."""
    await pool.execute("DROP TABLE IF EXISTS gc_rows; CREATE TABLE gc_rows (k int PRIMARY KEY)")
    queries: list[str] = []
    logged = await _logged_pool(database_url, queries)
    try:
        gc = GroupCommit(logged)
        noted: list[int] = []
        sql = "INSERT INTO gc_rows VALUES ($1) RETURNING k * 10 AS v"
        jobs = [Statement(sql, (k,), _noting(noted, k), True) for k in range(5)]
        first, batch, release = await _queued_batch(gc, jobs)
        queries.clear()
        release.set()
        assert await first == "lone"
        rows = await asyncio.gather(*batch)
        assert [r["v"] for r in rows if r is not None] == [
            0,
            10,
            20,
            30,
            40,
        ]  # each its own row, in order
        assert queries == [sql]  # one round trip for the five
        assert noted == [0, 1, 2, 3, 4]
        assert gc.batches == 2
        assert [r["k"] for r in await pool.fetch("SELECT k FROM gc_rows ORDER BY k")] == [
            0,
            1,
            2,
            3,
            4,
        ]
    finally:
        await logged.close()


async def test_a_failing_statement_aborts_its_whole_pipeline(pool: asyncpg.Pool) -> None:
    """An error in one execution of a pipeline leaves nothing of the batch written, and
    every job of it hears BatchAborted (so each is redone alone)."""
    await pool.execute("DROP TABLE IF EXISTS gc_rows; CREATE TABLE gc_rows (k int PRIMARY KEY)")
    await pool.execute("INSERT INTO gc_rows VALUES (3)")
    gc = GroupCommit(pool)
    sql = "INSERT INTO gc_rows VALUES ($1) RETURNING k"
    jobs = [Statement(sql, (k,), _nothing, True) for k in (1, 2, 3, 4)]
    first, batch, release = await _queued_batch(gc, jobs)
    release.set()
    await first
    outcomes = await asyncio.gather(*batch, return_exceptions=True)
    assert [type(o) for o in outcomes] == [BatchAborted] * 4
    assert [r["k"] for r in await pool.fetch("SELECT k FROM gc_rows")] == [3]


async def test_a_pipeline_that_may_refuse_commits_only_when_none_refused(
    pool: asyncpg.Pool,
) -> None:
    """Statements that may return no row (a quota) run in a transaction of their own: a
    batch in which one returned nothing is rolled back and its jobs are redone alone."""
    await pool.execute("DROP TABLE IF EXISTS gc_rows; CREATE TABLE gc_rows (k int PRIMARY KEY)")
    gc = GroupCommit(pool)
    sql = "INSERT INTO gc_rows SELECT $1::int WHERE $1::int < 3 RETURNING k"
    jobs = [Statement(sql, (k,), _nothing, False) for k in (1, 2)]
    first, batch, release = await _queued_batch(gc, jobs)
    release.set()
    await first
    assert [r["k"] for r in await asyncio.gather(*batch) if r is not None] == [1, 2]
    refused = [Statement(sql, (k,), _nothing, False) for k in (5, 6)]
    first, batch, release = await _queued_batch(gc, refused)
    release.set()
    await first
    assert [type(o) for o in await asyncio.gather(*batch, return_exceptions=True)] == [
        BatchAborted
    ] * 2
    mixed = [Statement(sql, (k,), _nothing, False) for k in (0, 7)]
    first, batch, release = await _queued_batch(gc, mixed)
    release.set()
    await first
    assert [type(o) for o in await asyncio.gather(*batch, return_exceptions=True)] == [
        BatchAborted
    ] * 2
    # The refused batches left nothing, not even the row that was returned.
    assert [r["k"] for r in await pool.fetch("SELECT k FROM gc_rows ORDER BY k")] == [1, 2]


async def test_concurrent_tickets_up_to_the_quota_are_issued_gapless(
    pool: asyncpg.Pool, clock: Clock
) -> None:
    """More tickets than a quota allows, at once: the batches run in a transaction that
    refused ones roll back, so exactly the quota is issued, numbered without a gap, and
    every other request hears the quota."""
    from hall.domain.errors import QuotaExhausted
    from hall.storage.config_store import apply_config
    from tests.factories import hall_config

    config = hall_config(quota=7)
    async with pool.acquire() as conn:
        await apply_config(conn, config)
    queue = QueueService(pool, Directory(config), clock)
    results = await asyncio.gather(
        *(queue.issue(IssueTicket(hall_id="test", service_code="BDC")) for _ in range(12)),
        return_exceptions=True,
    )
    issued = sorted(r.ticket.display_number for r in results if isinstance(r, TicketView))
    assert issued == [f"A{n:03d}" for n in range(1, 8)]
    assert [type(r) for r in results if not isinstance(r, TicketView)] == [QuotaExhausted] * 5
    assert sorted(await _numbers(pool, "BDC")) == issued
