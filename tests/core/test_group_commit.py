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
