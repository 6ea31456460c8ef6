"""Group commit of issuing: tickets of one service issued at once share transactions, keep
gapless unique numbers, and a failing request never takes the others down with it."""

from __future__ import annotations

import asyncio

import asyncpg

from hall.config.models import HallConfig
from hall.domain.errors import HallError, IdempotencyMismatch
from hall.ports import Clock
from hall.services.directory import Directory
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
    from hall.services.group_commit import GroupCommit

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
