"""A counter's next action in a process decides on the counter as that process's last write
of it left it (no read), and still gives the answer a fresh read would."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import asyncpg
import pytest

from hall.config.models import HallConfig
from hall.domain.errors import NoActiveTicket, NotFound, QueueEmpty
from hall.domain.tickets import CounterState
from hall.ports import FixedClock
from hall.services.directory import Directory
from hall.services.queue import ActionParams, CounterAction, IssueTicket, QueueService
from hall.storage import repo
from hall.storage.db import connect_pool
from hall.storage.uow import UnitOfWork

A = CounterAction


def service_of(pool: asyncpg.Pool, config: HallConfig, clock: FixedClock) -> QueueService:
    """One server process's queue service (two of them on one database are two servers)."""
    return QueueService(pool, Directory(config), clock)


async def issue(service: QueueService, n: int) -> None:
    for _ in range(n):
        await service.issue(IssueTicket(hall_id="test", service_code="BDC"))


async def fresh_read(pool: asyncpg.Pool, number: int = 1) -> repo.CounterRead | None:
    async with pool.acquire() as conn:
        return await repo.counter_for_action(conn, "test", number)


@pytest.mark.parametrize("offset_h", [0, 8])
async def test_the_kept_counter_is_exactly_what_a_read_gives_after_every_action(
    pool: asyncpg.Pool, config: HallConfig, offset_h: int
) -> None:
    # With a clock in Shanghai time too: the database gives timestamps back in UTC, and so
    # must the kept counter (answers built from it would otherwise show another offset).
    zone = UTC if offset_h == 0 else timezone(timedelta(hours=offset_h))
    clock = FixedClock(datetime(2026, 11, 24, 2, 0, tzinfo=UTC).astimezone(zone))
    service = service_of(pool, config, clock)
    await issue(service, 4)
    steps: list[tuple[CounterAction, ActionParams]] = [
        (A.OPEN, ActionParams(clerk="c001")),
        (A.CALL_NEXT, ActionParams()),
        (A.RECALL, ActionParams()),
        (A.START, ActionParams()),
        (A.FINISH, ActionParams()),
        (A.PAUSE, ActionParams(reason="午休")),
        (A.RESUME, ActionParams()),
        (A.CALL_NEXT, ActionParams()),
        (A.NO_SHOW, ActionParams()),
        (A.CALL_NEXT, ActionParams()),
        (A.TRANSFER, ActionParams(to_service="TAX")),
        (A.CALL, ActionParams(number="A004")),
        (A.CANCEL, ActionParams(reason="材料不全")),
        (A.CALL_NEXT, ActionParams()),  # the ticket transferred to TAX, which it serves too
        (A.START, ActionParams()),
        (A.FINISH, ActionParams()),
        (A.CLOSE, ActionParams()),
    ]
    for action, params in steps:
        clock.set(clock.now() + timedelta(seconds=7, microseconds=123))
        await service.act("test", 1, action, "c001", params)
        kept = service._reads.get(("test", 1))
        assert kept is not None, action
        assert kept == await fresh_read(pool), action
        assert kept.status.state_since.utcoffset() == timedelta(0)


async def test_a_counter_moved_on_by_another_server_gets_the_answer_a_read_would_give(
    pool: asyncpg.Pool, config: HallConfig, clock: FixedClock
) -> None:
    here, there = service_of(pool, config, clock), service_of(pool, config, clock)
    await issue(here, 3)
    await here.act("test", 1, A.OPEN, "c001")
    first = await here.act("test", 1, A.CALL_NEXT, "c001")
    assert first.ticket is not None and first.ticket.display_number == "A001"
    # The clerk's terminal on the other server serves and finishes A001.
    await there.act("test", 1, A.START, "c001")
    await there.act("test", 1, A.FINISH, "c001")

    # This server last saw the counter calling A001: "busy" would be wrong, it is idle now.
    second = await here.act("test", 1, A.CALL_NEXT, "c001")
    assert second.ticket is not None and second.ticket.display_number == "A002"

    await there.act("test", 1, A.START, "c001")
    await there.act("test", 1, A.FINISH, "c001")
    # Kept as calling A002, which the other server has finished: nothing to finish here.
    with pytest.raises(NoActiveTicket):
        await here.act("test", 1, A.FINISH, "c001")
    finished = await pool.fetchval("SELECT count(*) FROM events WHERE type = 'ticket.finished'")
    assert finished == 2
    assert await pool.fetchval("SELECT state::text FROM counters WHERE number = 1") == "idle"


async def test_a_counter_taken_out_of_the_configuration_refuses_actions_kept_from_before(
    pool: asyncpg.Pool, config: HallConfig, clock: FixedClock
) -> None:
    service = service_of(pool, config, clock)
    await issue(service, 1)
    await service.act("test", 1, A.OPEN, "c001")
    await service.act("test", 1, A.CALL_NEXT, "c001")
    events = await pool.fetchval("SELECT count(*) FROM events")
    # Another server applied a configuration without counter 1 (as config_store does: the
    # row stays, inactive, with its version unchanged).
    await pool.execute("UPDATE counters SET active = false WHERE hall_id = 'test' AND number = 1")

    with pytest.raises(NotFound):
        await service.act("test", 1, A.START, "c001")
    assert await pool.fetchval("SELECT count(*) FROM events") == events
    assert await pool.fetchval("SELECT state::text FROM tickets") == "called"


async def test_an_action_in_a_callers_transaction_that_rolls_back_leaves_nothing_kept(
    pool: asyncpg.Pool, config: HallConfig, clock: FixedClock
) -> None:
    service = service_of(pool, config, clock)
    await issue(service, 1)
    await service.act("test", 1, A.OPEN, "c001")
    async with UnitOfWork(pool) as uow:  # left without commit: rolled back
        called = await service.act("test", 1, A.CALL_NEXT, "c001", uow=uow)
        assert called.ticket is not None
    assert ("test", 1) not in service._reads
    view = await service.act("test", 1, A.CALL_NEXT, "c001")
    assert view.ticket is not None and view.ticket.display_number == "A001"


async def test_actions_of_several_counters_decided_on_kept_counters_share_a_commit(
    pool: asyncpg.Pool, config: HallConfig, clock: FixedClock
) -> None:
    """Start (and finish) of counters whose state this process kept need no read: their
    writes go through the action group commit, so counters acting at once share a pipeline
    and a commit, and each ends as a fresh read shows it, with one event each."""
    service = service_of(pool, config, clock)
    await issue(service, 4)
    counters = (1, 2, 3, 4)
    for n in counters:
        await service.act("test", n, A.OPEN, "c001", ActionParams(clerk="c001"))
        await service.act("test", n, A.CALL_NEXT, "c001")
    assert service.action_commit is not None
    jobs, batches = service.action_commit.jobs, service.action_commit.batches
    started = await asyncio.gather(*(service.act("test", n, A.START, "c001") for n in counters))
    assert [v.status.state for v in started] == [CounterState.SERVING] * 4
    assert service.action_commit.jobs == jobs + 4
    assert service.action_commit.batches < batches + 4  # shared
    finished = await asyncio.gather(*(service.act("test", n, A.FINISH, "c001") for n in counters))
    assert [v.ticket for v in finished] == [None] * 4
    assert service.action_commit.jobs == jobs + 8
    for n in counters:
        read = await fresh_read(pool, n)
        assert read is not None and read.status.state is CounterState.IDLE
        assert read.active is None
    events = await pool.fetch(
        "SELECT type, count(*) AS n FROM events WHERE type IN ('ticket.started',"
        " 'ticket.finished') GROUP BY type ORDER BY type"
    )
    assert [(r["type"], r["n"]) for r in events] == [("ticket.finished", 4), ("ticket.started", 4)]


async def test_a_kept_action_refused_or_overtaken_is_decided_again_on_a_fresh_read(
    pool: asyncpg.Pool, config: HallConfig, clock: FixedClock
) -> None:
    """A write-only action on a kept counter that another server moved on meanwhile writes
    nothing through the batch and is decided again on a fresh read (here: that server
    finished the ticket, so there is none to finish)."""
    here, there = service_of(pool, config, clock), service_of(pool, config, clock)
    await issue(here, 1)
    await here.act("test", 1, A.OPEN, "c001", ActionParams(clerk="c001"))
    await here.act("test", 1, A.CALL_NEXT, "c001")
    await there.act("test", 1, A.START, "c001")
    await there.act("test", 1, A.FINISH, "c001")
    with pytest.raises(NoActiveTicket):
        await here.act("test", 1, A.START, "c001")
    assert await pool.fetchval("SELECT count(*) FROM events WHERE type = 'ticket.started'") == 1


async def test_call_next_of_counters_at_once_shares_a_commit_holding_no_connection(
    pool: asyncpg.Pool, database_url: str, config: HallConfig, clock: FixedClock
) -> None:
    """Call-next on kept counters reads its queues' heads, gives the connection back and
    writes through the action group commit: counters calling at once share a pipeline and
    a commit, each calls its own ticket with one event, and a pool smaller than the number
    of counters calling does not jam (none waits for a batch while holding a connection)."""
    small = await connect_pool(database_url, min_size=1, max_size=2)
    try:
        service = service_of(small, config, clock)
        await issue(service, 6)
        counters = (1, 2, 3, 4)
        for n in counters:
            await service.act("test", n, A.OPEN, "c001", ActionParams(clerk="c001"))
        assert service.action_commit is not None
        jobs, batches = service.action_commit.jobs, service.action_commit.batches
        async with asyncio.timeout(20):
            called = await asyncio.gather(
                *(service.act("test", n, A.CALL_NEXT, "c001") for n in counters)
            )
        numbers = sorted(v.ticket.display_number for v in called if v.ticket is not None)
        assert numbers == ["A001", "A002", "A003", "A004"]
        assert service.action_commit.jobs == jobs + 4
        assert service.action_commit.batches < batches + 4  # shared
        for n, view in zip(counters, called, strict=True):
            read = await fresh_read(pool, n)
            assert read is not None and read.status.state is CounterState.CALLING
            assert read.active is not None and view.ticket is not None
            assert read.active.id == view.ticket.id
            assert service._reads.get(("test", n)) == read
        rows = await pool.fetch(
            "SELECT counter_number, count(*) AS n FROM events WHERE type = 'ticket.called'"
            " GROUP BY counter_number ORDER BY counter_number"
        )
        assert [(r["counter_number"], r["n"]) for r in rows] == [(n, 1) for n in counters]
    finally:
        async with asyncio.timeout(10):
            await small.close()


async def test_call_next_on_an_empty_queue_is_refused_once_on_a_kept_counter(
    pool: asyncpg.Pool, config: HallConfig, clock: FixedClock
) -> None:
    """An empty queue seen by a kept counter's call-next is the answer (the counter is
    still as kept), and the counter stays kept for its next action."""
    service = service_of(pool, config, clock)
    await service.act("test", 1, A.OPEN, "c001", ActionParams(clerk="c001"))
    with pytest.raises(QueueEmpty):
        await service.act("test", 1, A.CALL_NEXT, "c001")
    assert service._reads.get(("test", 1)) == await fresh_read(pool)
    await issue(service, 1)
    view = await service.act("test", 1, A.CALL_NEXT, "c001")
    assert view.ticket is not None and view.ticket.display_number == "A001"
