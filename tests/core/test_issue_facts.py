"""What the issue statement and ``queue_position`` tell of the counters serving a ticket.

Both read the open and paused counters among those asked for, with the seconds each has
been in its state at the given time, and the waiting tickets of the other services those
counters serve; the wait forecast plays the queue on exactly these.
"""

from __future__ import annotations

from datetime import date, timedelta

import asyncpg

from hall.ports import FixedClock
from hall.storage import repo

DAY = date(2026, 11, 24)


async def _set_counter(
    pool: asyncpg.Pool, number: int, state: str, since_s: float, clock: FixedClock
) -> None:
    await pool.execute(
        "UPDATE counters SET state = $3::counter_state, state_since = $4,"
        " pause_reason = CASE WHEN $3 = 'paused' THEN 'test' END"
        " WHERE hall_id = $1 AND number = $2",
        "test",
        number,
        state,
        clock.now() - timedelta(seconds=since_s),
    )


async def _issue(
    conn: asyncpg.Connection,
    clock: FixedClock,
    counters: list[int],
    service: str = "BDC",
    others: tuple[str, ...] = ("TAX",),
) -> repo.Issued:
    issued = await repo.issue_in_one_statement(
        conn,
        hall_id="test",
        number_group=service,
        business_day=DAY,
        number_start=1,
        service_code=service,
        prefix=service[0],
        width=3,
        token=f"token-{service}-{len(counters)}-{clock.now().timestamp()}",
        purpose="apply",
        priority_class=None,
        issued_at=clock.now(),
        appointment_start=None,
        appointment_end=None,
        kiosk=None,
        idempotency_key=None,
        idempotency_hash=None,
        quota=None,
        actor="test",
        details={},
        counters=counters,
        others=list(others),
    )
    assert issued is not None
    return issued


async def test_open_and_paused_counters_with_their_time_in_state(
    pool: asyncpg.Pool, clock: FixedClock
) -> None:
    await _set_counter(pool, 1, "idle", 30.0, clock)
    await _set_counter(pool, 2, "paused", 90.5, clock)
    await _set_counter(pool, 3, "serving", 12.25, clock)
    await _set_counter(pool, 4, "closed", 5.0, clock)
    expected = [(1, "idle", 30.0), (2, "paused", 90.5), (3, "serving", 12.25)]
    async with pool.acquire() as conn:
        issued = await _issue(conn, clock, [1, 2, 3, 4])
        assert issued.facts is not None
        assert sorted(issued.facts.counters) == expected
        assert issued.facts.serving == 2  # paused ones are not counted as serving
        ticket = await repo.ticket_by_token(conn, f"token-BDC-4-{clock.now().timestamp()}")
        assert ticket is not None
        facts = await repo.queue_position(conn, ticket, [1, 2, 3, 4], at=clock.now())
        assert sorted(facts.counters) == expected
        # Only the counters asked for.
        facts = await repo.queue_position(conn, ticket, [2], at=clock.now())
        assert facts.counters == [(2, "paused", 90.5)]


async def test_a_state_that_began_after_the_reading_time_counts_as_zero_seconds(
    pool: asyncpg.Pool, clock: FixedClock
) -> None:
    # Another server's clock a little ahead of this one's.
    await _set_counter(pool, 1, "calling", -2.0, clock)
    async with pool.acquire() as conn:
        issued = await _issue(conn, clock, [1])
        assert issued.facts is not None
        assert issued.facts.counters == [(1, "calling", 0.0)]


async def test_no_counter_open_among_those_asked_for(pool: asyncpg.Pool, clock: FixedClock) -> None:
    for number in (1, 2, 3, 4):
        await _set_counter(pool, number, "closed", 60.0, clock)
    async with pool.acquire() as conn:
        issued = await _issue(conn, clock, [1, 2, 3, 4])
        assert issued.facts is not None
        assert issued.facts.counters == []
        assert issued.facts.serving == 0
        empty = await _issue(conn, clock, [])
        assert empty.facts is not None
        assert empty.facts.counters == []


async def test_waiting_of_the_other_services(pool: asyncpg.Pool, clock: FixedClock) -> None:
    await _set_counter(pool, 1, "idle", 10.0, clock)
    async with pool.acquire() as conn:
        first = await _issue(conn, clock, [1], others=("TAX", "SOC"))
        assert first.facts is not None
        assert first.facts.others == {}  # no ticket of either yet
        for _ in range(3):
            clock.set(clock.now() + timedelta(seconds=1))
            await _issue(conn, clock, [1], service="TAX", others=())
        clock.set(clock.now() + timedelta(seconds=1))
        issued = await _issue(conn, clock, [1], others=("TAX", "SOC"))
        assert issued.facts is not None
        assert issued.facts.others == {"TAX": 3}
        assert issued.facts.ahead == 1  # the first BDC ticket
        ticket = await repo.ticket_by_token(conn, f"token-BDC-1-{clock.now().timestamp()}")
        assert ticket is not None
        facts = await repo.queue_position(conn, ticket, [1], others=["TAX"], at=clock.now())
        assert facts.others == {"TAX": 3}
        assert facts.ahead == 1
