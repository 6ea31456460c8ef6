"""Call-next under contention: a ticket another counter is taking is passed over at once,
not waited for, and is still first in line if that counter's transaction fails."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from hall.config.models import HallConfig
from hall.ports import Clock
from hall.services.directory import Directory
from hall.services.queue import (
    ActionParams,
    CounterAction,
    CounterView,
    IssueTicket,
    QueueService,
)


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


async def test_call_next_passes_over_a_head_this_process_called_since_it_was_read(
    pool: asyncpg.Pool, config: HallConfig, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counter 1's heads read shows the first ticket waiting, but counter 2 of the same
    process calls it before counter 1 chooses: counter 1 calls the second ticket at its
    first try, without a write that finds the first one taken."""
    from hall.storage import repo

    queue = QueueService(pool, Directory(config), clock)
    first = await queue.issue(IssueTicket(hall_id="test", service_code="BDC"))
    second = await queue.issue(IssueTicket(hall_id="test", service_code="BDC"))
    for counter in (1, 2):
        await queue.act("test", counter, CounterAction.OPEN, "c001", ActionParams(clerk="c001"))

    heads = repo.call_heads
    statement = repo.call_statement
    overtaken: list[CounterView] = []
    tried: list[tuple[int, int]] = []  # (counter, ticket) of every call write

    async def stale_heads(
        conn: asyncpg.Connection, hall_id: str, number: int, *args: Any, **kwargs: Any
    ) -> Any:
        found = await heads(conn, hall_id, number, *args, **kwargs)
        if number == 1 and not overtaken:
            # Counter 2 calls (and commits) after counter 1's read, before it chooses.
            overtaken.append(await queue.act("test", 2, CounterAction.CALL_NEXT, "c001"))
        return found

    def counted_write(hall_id: str, **kwargs: Any) -> tuple[str, list[object]]:
        # Every call's write is built here, written alone or through a group commit.
        tried.append((kwargs["counter"].status.number, kwargs["ticket_id"]))
        return statement(hall_id, **kwargs)

    monkeypatch.setattr(repo, "call_heads", stale_heads)
    monkeypatch.setattr(repo, "call_statement", counted_write)
    view = await queue.act("test", 1, CounterAction.CALL_NEXT, "c001")
    assert overtaken[0].ticket is not None and overtaken[0].ticket.id == first.ticket.id
    assert view.ticket is not None and view.ticket.id == second.ticket.id
    assert tried == [(2, first.ticket.id), (1, second.ticket.id)]


async def test_a_ticket_called_and_waiting_again_is_called_by_a_later_read(
    pool: asyncpg.Pool, config: HallConfig, clock: Clock
) -> None:
    """Remembering what this process called never hides a ticket that is waiting again: a
    ticket called, then transferred back into a queue, is called by the next call-next."""
    queue = QueueService(pool, Directory(config), clock)
    ticket = await queue.issue(IssueTicket(hall_id="test", service_code="BDC"))
    for counter in (1, 2):
        await queue.act("test", counter, CounterAction.OPEN, "c001", ActionParams(clerk="c001"))
    called = await queue.act("test", 1, CounterAction.CALL_NEXT, "c001")
    assert called.ticket is not None and called.ticket.id == ticket.ticket.id
    await queue.act("test", 1, CounterAction.TRANSFER, "c001", ActionParams(to_service="TAX"))
    again = await queue.act("test", 2, CounterAction.CALL_NEXT, "c001")
    assert again.ticket is not None and again.ticket.id == ticket.ticket.id
