"""Counter actions are decided on an unlocked read and written only if it still holds."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from hall.config.models import HallConfig
from hall.domain.errors import CounterBusy, NoActiveTicket
from hall.domain.tickets import Event, EventType, apply_counter, apply_ticket
from hall.ports import FixedClock
from hall.services.directory import Directory
from hall.services.queue import ActionParams, CounterAction, IssueTicket, QueueService
from hall.storage import repo

A = CounterAction


@pytest.fixture
def service(pool: asyncpg.Pool, config: HallConfig, clock: FixedClock) -> QueueService:
    return QueueService(pool, Directory(config), clock)


async def fingerprint(pool: asyncpg.Pool) -> tuple[object, ...]:
    counters = await pool.fetch("SELECT * FROM counters ORDER BY hall_id, number")
    tickets = await pool.fetch("SELECT * FROM tickets ORDER BY id")
    events = await pool.fetchval("SELECT count(*) FROM events")
    return tuple(map(tuple, counters)), tuple(map(tuple, tickets)), events


async def test_one_counter_pressing_call_ten_times_at_once_calls_one_ticket(
    service: QueueService, pool: asyncpg.Pool
) -> None:
    for _ in range(5):
        await service.issue(IssueTicket(hall_id="test", service_code="BDC"))
    await service.act("test", 1, A.OPEN, "c001")

    results = await asyncio.gather(
        *(service.act("test", 1, A.CALL_NEXT, "c001") for _ in range(10)),
        return_exceptions=True,
    )

    called = [r for r in results if not isinstance(r, BaseException)]
    assert len(called) == 1
    assert [type(r) for r in results if isinstance(r, BaseException)] == [CounterBusy] * 9
    assert called[0].ticket is not None and called[0].ticket.display_number == "A001"
    states = await pool.fetch("SELECT display_number, state::text FROM tickets ORDER BY id")
    assert [tuple(r) for r in states] == [("A001", "called")] + [
        (f"A{n:03d}", "waiting") for n in range(2, 6)
    ]
    assert await pool.fetchval("SELECT count(*) FROM events WHERE type = 'ticket.called'") == 1


async def test_finish_pressed_twice_at_once_finishes_once(
    service: QueueService, pool: asyncpg.Pool
) -> None:
    await service.issue(IssueTicket(hall_id="test", service_code="BDC"))
    for action in (A.OPEN, A.CALL_NEXT, A.START):
        await service.act("test", 1, action, "c001")

    results = await asyncio.gather(
        service.act("test", 1, A.FINISH, "c001"),
        service.act("test", 1, A.FINISH, "c001"),
        return_exceptions=True,
    )

    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert any(isinstance(r, NoActiveTicket) for r in results)
    assert await pool.fetchval("SELECT count(*) FROM events WHERE type = 'ticket.finished'") == 1
    assert await pool.fetchval("SELECT state::text FROM counters WHERE number = 1") == "idle"


async def _call_write(
    pool: asyncpg.Pool, clock: FixedClock
) -> tuple[repo.CounterRead, repo.CounterWrite, repo.TicketWrite, Event]:
    """What calling A001 at counter 1 would write, decided on a read taken now."""
    async with pool.acquire() as conn:
        read = await repo.counter_for_action(conn, "test", 1)
        [(_, ticket)] = await repo.candidates(
            conn, "test", 1, ["BDC"], appointments_from=clock.now()
        )
    assert read is not None
    event = Event(
        type=EventType.TICKET_CALLED,
        at=clock.now(),
        actor="c001",
        ticket_id=ticket.id,
        counter_number=1,
        details={"display_number": ticket.display_number},
    )
    return (
        read,
        repo.CounterWrite(apply_counter(read.status, event), read.version),
        repo.TicketWrite(ticket, apply_ticket(ticket, event)),
        event,
    )


async def _call_write_then_taken(
    service: QueueService, pool: asyncpg.Pool, clock: FixedClock
) -> tuple[repo.CounterWrite, repo.TicketWrite, Event]:
    """Counter 1's write for calling A001, after counter 2 called A001 first; counter 1
    itself is unchanged since its read."""
    await service.issue(IssueTicket(hall_id="test", service_code="BDC"))
    await service.act("test", 1, A.OPEN, "c001")
    await service.act("test", 2, A.OPEN, "c001")
    _, counter, ticket, event = await _call_write(pool, clock)
    await service.act("test", 2, A.CALL_NEXT, "c001")
    return counter, ticket, event


async def test_a_write_on_a_stale_counter_read_changes_nothing(
    service: QueueService, pool: asyncpg.Pool, clock: FixedClock
) -> None:
    await service.issue(IssueTicket(hall_id="test", service_code="BDC"))
    await service.act("test", 1, A.OPEN, "c001")
    _, counter, ticket, event = await _call_write(pool, clock)
    # Another action on the counter commits between the read and the write.
    await service.act("test", 1, A.PAUSE, "c001", params=ActionParams(reason="午休"))
    before = await fingerprint(pool)

    with pytest.raises(repo.CounterChanged):
        async with pool.acquire() as conn:
            await repo.write_action(conn, "test", counter=counter, ticket=ticket, events=[event])

    assert await fingerprint(pool) == before


async def test_a_ticket_taken_meanwhile_rolls_back_the_counter_too(
    service: QueueService, pool: asyncpg.Pool, clock: FixedClock
) -> None:
    counter, ticket, event = await _call_write_then_taken(service, pool, clock)
    before = await fingerprint(pool)

    with pytest.raises(repo.TicketChanged):
        async with pool.acquire() as conn:
            await repo.write_action(conn, "test", counter=counter, ticket=ticket, events=[event])

    # The counter update in the same statement did not survive without its ticket.
    assert await fingerprint(pool) == before
    assert await pool.fetchval("SELECT state::text FROM counters WHERE number = 1") == "idle"
    owner = await pool.fetchval("SELECT counter_number FROM tickets WHERE id = $1", ticket.after.id)
    assert owner == 2


async def test_a_refused_write_inside_a_transaction_leaves_it_usable(
    service: QueueService, pool: asyncpg.Pool, clock: FixedClock
) -> None:
    counter, ticket, event = await _call_write_then_taken(service, pool, clock)

    async with pool.acquire() as conn, conn.transaction():
        with pytest.raises(repo.TicketChanged):
            await repo.write_action(conn, "test", counter=counter, ticket=ticket, events=[event])
        # A device event's transaction goes on to record its outcome after a refusal.
        assert await conn.fetchval("SELECT 1") == 1

    assert await pool.fetchval("SELECT counter_number FROM tickets") == 2
    assert await pool.fetchval("SELECT state::text FROM counters WHERE number = 1") == "idle"
