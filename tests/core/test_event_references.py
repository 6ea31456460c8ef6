"""An event's hall and ticket must exist, though the database no longer locks them to check.

Migration 0101 replaced the foreign keys of ``events`` (whose row locks made nearly every write
create a MultiXact on the hall's row) with a plain read in the insert trigger, and refuses
deleting a hall or a ticket that events refer to, waiting for inserts in flight first.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from hall.ports import FixedClock
from hall.services.directory import Directory
from hall.services.queue import CounterAction, IssueTicket, QueueService
from tests.factories import hall_config

EVENT = "INSERT INTO events (hall_id, type, at, actor, ticket_id) VALUES ($1, 'x', now(), 't', $2)"


async def issued(pool: asyncpg.Pool, clock: FixedClock) -> int:
    service = QueueService(pool, Directory(hall_config()), clock)
    view = await service.issue(IssueTicket(hall_id="test", service_code="BDC"))
    ticket_id: int = view.ticket.id
    return ticket_id


async def test_an_event_of_an_unknown_hall_or_ticket_is_refused(
    pool: asyncpg.Pool, clock: FixedClock
) -> None:
    ticket = await issued(pool, clock)
    with pytest.raises(asyncpg.ForeignKeyViolationError, match="unknown hall"):
        await pool.execute(EVENT, "nowhere", None)
    with pytest.raises(asyncpg.ForeignKeyViolationError, match="unknown ticket"):
        await pool.execute(EVENT, "test", ticket + 1000)
    await pool.execute(EVENT, "test", ticket)
    await pool.execute(EVENT, "test", None)
    # The issue and call statements write the ticket and its event in one statement: the
    # event's check sees the ticket written before it.
    service = QueueService(pool, Directory(hall_config()), clock)
    await service.act("test", 1, CounterAction.OPEN, "c001")
    view = await service.act("test", 1, CounterAction.CALL_NEXT, "c001")
    assert view.ticket is not None and view.ticket.id == ticket
    types = await pool.fetch("SELECT type FROM events WHERE ticket_id = $1 ORDER BY id", ticket)
    assert [r["type"] for r in types] == ["ticket.issued", "x", "ticket.called"]


async def test_a_hall_or_ticket_that_events_refer_to_cannot_be_deleted(
    pool: asyncpg.Pool, clock: FixedClock
) -> None:
    ticket = await issued(pool, clock)
    with pytest.raises(asyncpg.ForeignKeyViolationError, match="referenced by events"):
        await pool.execute("DELETE FROM tickets WHERE id = $1", ticket)
    with pytest.raises(asyncpg.ForeignKeyViolationError, match="referenced by events"):
        await pool.execute("DELETE FROM halls WHERE id = 'test'")
    assert await pool.fetchval("SELECT count(*) FROM tickets WHERE id = $1", ticket) == 1


async def test_a_delete_waits_for_an_event_insert_in_flight_and_then_refuses(
    pool: asyncpg.Pool, clock: FixedClock
) -> None:
    ticket = await issued(pool, clock)
    copy = """INSERT INTO tickets (hall_id, service_code, number_group, business_day, seq,
                  display_number, token, purpose, issued_at, queue_key)
              SELECT hall_id, service_code, number_group, business_day, seq + $2,
                  'Z' || $2, 'spare-' || $2, purpose, issued_at, queue_key
              FROM tickets WHERE id = $1 RETURNING id"""
    # A ticket without events (inserted by hand) may be deleted ...
    alone = await pool.fetchval(copy, ticket, 1000)
    await pool.execute("DELETE FROM tickets WHERE id = $1", alone)
    async with pool.acquire() as writer, pool.acquire() as deleter:
        spare = await writer.fetchval(copy, ticket, 2000)
        # ... unless an event that refers to it is being written: the delete waits for that
        # transaction and then refuses.
        tx = writer.transaction()
        await tx.start()
        await writer.execute(EVENT, "test", spare)
        deleting = asyncio.ensure_future(
            deleter.execute("DELETE FROM tickets WHERE id = $1", spare)
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while not await pool.fetchval(
            "SELECT count(*) > 0 FROM pg_locks WHERE NOT granted AND relation = 'events'::regclass"
        ):
            assert loop.time() < deadline, "the delete did not wait for the insert"
            assert not deleting.done(), deleting
            await asyncio.sleep(0.01)
        await tx.commit()
        with pytest.raises(asyncpg.ForeignKeyViolationError, match="referenced by events"):
            await deleting
    assert await pool.fetchval("SELECT count(*) FROM tickets WHERE id = $1", spare) == 1
