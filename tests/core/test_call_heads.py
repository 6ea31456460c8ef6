"""Call-next reads only its heads' ranking columns and takes the called ticket from its write
(``repo.call_heads``, ``repo.call_statement``): what it answers, keeps and logs must be what
a whole read of the ticket gives, and the pages' variant (``repo.candidates``) still lists
whole tickets, the same heads in the same order."""

from __future__ import annotations

import json
from datetime import timedelta

import asyncpg

from hall.config.models import HallConfig
from hall.domain.tickets import Ticket, TicketState
from hall.ports import FixedClock
from hall.services.directory import Directory
from hall.services.queue import ActionParams, CounterAction, IssueTicket, QueueService
from hall.storage import repo

A = CounterAction


async def stored(pool: asyncpg.Pool, counter: int) -> Ticket | None:
    async with pool.acquire() as conn:
        return await repo.active_ticket(conn, "test", counter)


async def test_the_called_ticket_is_the_one_stored_and_keeps_its_first_call(
    pool: asyncpg.Pool, config: HallConfig, clock: FixedClock
) -> None:
    """A ticket called, transferred to another counter and called there: each call answers
    with the ticket exactly as a fresh read shows it (its first call kept from the first
    counter), logs its number and service, and the counter's next action decides on it."""
    queue = QueueService(pool, Directory(config), clock)
    issued = await queue.issue(IssueTicket(hall_id="test", service_code="BDC"))
    for counter in (1, 2):
        await queue.act("test", counter, A.OPEN, "c001", ActionParams(clerk="c001"))

    first_call = clock.now() + timedelta(minutes=3)
    clock.set(first_call)
    view = await queue.act("test", 1, A.CALL_NEXT, "c001")
    assert view.ticket is not None and view.ticket.id == issued.ticket.id
    assert view.ticket == await stored(pool, 1)
    assert (view.ticket.counter_number, view.ticket.called_at) == (1, first_call)

    clock.set(first_call + timedelta(minutes=1))
    await queue.act("test", 1, A.TRANSFER, "c001", ActionParams(to_counter=2))
    second_call = first_call + timedelta(minutes=2)
    clock.set(second_call)
    again = await queue.act("test", 2, A.CALL_NEXT, "c002")
    assert again.ticket is not None and again.ticket == await stored(pool, 2)
    assert again.ticket.first_called_at == first_call
    assert again.ticket.called_at == second_call
    assert (again.ticket.counter_number, again.ticket.target_counter) == (2, None)

    started = await queue.act("test", 2, A.START, "c002")
    assert started.ticket is not None and started.ticket.state == TicketState.SERVING
    assert started.ticket == await stored(pool, 2)

    rows = await pool.fetch(
        "SELECT counter_number, actor, details FROM events"
        " WHERE ticket_id = $1 AND type = 'ticket.called' ORDER BY id",
        issued.ticket.id,
    )
    details = [r["details"] if isinstance(r["details"], dict) else json.loads(r["details"])
               for r in rows]  # fmt: skip
    assert [(r["counter_number"], r["actor"]) for r in rows] == [(1, "c001"), (2, "c002")]
    for d in details:
        assert d["display_number"] == issued.ticket.display_number
        assert d["service_code"] == "BDC"
        assert d["from_state"] == "idle"
    assert details[1]["reason"] == "targeted"


async def test_pages_list_the_same_heads_as_whole_tickets(
    pool: asyncpg.Pool, config: HallConfig, clock: FixedClock
) -> None:
    queue = QueueService(pool, Directory(config), clock)
    for code, priority in [("BDC", None), ("TAX", None), ("BDC", "elderly"), ("BDC", None)]:
        clock.set(clock.now() + timedelta(seconds=30))
        await queue.issue(IssueTicket(hall_id="test", service_code=code, priority_class=priority))
    async with pool.acquire() as conn:
        lean = await repo.call_heads(conn, "test", 1, ["BDC", "TAX"], appointments_from=clock.now())
        whole = await repo.candidates(
            conn, "test", 1, ["BDC", "TAX"], appointments_from=clock.now()
        )
        assert [c for c, _ in lean] == [c for c, _ in whole]
        assert len(whole) == 4
        assert sum(c.priority for c, _ in lean) == 1
        for (_, number), (_, ticket) in zip(lean, whole, strict=True):
            assert ticket.display_number == number
            assert ticket == await repo.ticket_by_number(conn, "test", ticket.business_day, number)
