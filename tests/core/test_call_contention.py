"""Call-next under contention: a ticket another counter is taking is passed over at once,
not waited for, and is still first in line if that counter's transaction fails."""

from __future__ import annotations

import asyncio

import asyncpg

from hall.config.models import HallConfig
from hall.ports import Clock
from hall.services.directory import Directory
from hall.services.queue import ActionParams, CounterAction, IssueTicket, QueueService


async def test_call_next_passes_over_a_ticket_being_taken_and_it_stays_first(
    pool: asyncpg.Pool, config: HallConfig, clock: Clock
) -> None:
    queue = QueueService(pool, Directory(config), clock)
    first = await queue.issue(IssueTicket(hall_id="test", service_code="BDC"))
    second = await queue.issue(IssueTicket(hall_id="test", service_code="BDC"))
    for counter in (1, 2):
        await queue.act("test", counter, CounterAction.OPEN, "c001", ActionParams(clerk="c001"))

    async with pool.acquire() as other:
        # Another counter's call of the first ticket, not yet committed.
        tx = other.transaction()
        await tx.start()
        await other.execute("SELECT 1 FROM tickets WHERE id = $1 FOR UPDATE", first.ticket.id)
        view = await asyncio.wait_for(
            queue.act("test", 1, CounterAction.CALL_NEXT, "c001"), timeout=5
        )
        assert view.ticket is not None
        assert view.ticket.id == second.ticket.id
        await tx.rollback()  # that call failed: the first ticket was never called

    view = await queue.act("test", 2, CounterAction.CALL_NEXT, "c001")
    assert view.ticket is not None
    assert view.ticket.id == first.ticket.id
