"""Each ticket keeps the estimate it was given at issue (migration 0008), and citizens get a
range that accounts for what else the counters serve."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import pytest

from hall.config.models import HallConfig
from hall.domain.errors import QuotaExhausted
from hall.ports import FixedClock
from hall.services.directory import Directory
from hall.services.queue import CounterAction, IssueTicket, QueueService, TicketView
from tests.factories import hall_config

A = CounterAction


@pytest.fixture
def config() -> HallConfig:
    return hall_config(counters=1, quota=3)


@pytest.fixture
def service(pool: asyncpg.Pool, config: HallConfig, clock: FixedClock) -> QueueService:
    return QueueService(pool, Directory(config), clock)


async def issue(service: QueueService, clock: FixedClock, code: str = "BDC") -> TicketView:
    clock.set(clock.now() + timedelta(seconds=30))
    return await service.issue(IssueTicket(hall_id="test", service_code=code))


async def stored(pool: asyncpg.Pool, ticket_id: int) -> tuple[float | None, ...]:
    row = await pool.fetchrow(
        "SELECT estimate_s, low_s, high_s, naive_s FROM ticket_estimates WHERE ticket_id = $1",
        ticket_id,
    )
    return (None, None, None, None) if row is None else tuple(row)


async def test_estimate_given_at_issue_is_stored_by_the_next_issue_or_a_flush(
    service: QueueService, pool: asyncpg.Pool, clock: FixedClock
) -> None:
    await service.act("test", 1, A.OPEN, "c001")
    first = await issue(service, clock)
    second = await issue(service, clock)
    assert second.estimated_wait_s is not None
    assert second.wait_low_s is not None and second.wait_high_s is not None
    assert second.wait_low_s <= second.estimated_wait_s <= second.wait_high_s
    # The second issue statement wrote the first ticket's estimate; its own waits.
    assert await stored(pool, first.ticket.id) == pytest.approx(
        (first.estimated_wait_s, first.wait_low_s, first.wait_high_s, first.naive_wait_s)
    )
    assert await stored(pool, second.ticket.id) == (None, None, None, None)
    await service.flush_estimates()
    assert await stored(pool, second.ticket.id) == pytest.approx(
        (second.estimated_wait_s, second.wait_low_s, second.wait_high_s, second.naive_wait_s)
    )


async def test_a_refused_ticket_keeps_the_pending_estimates(
    service: QueueService, pool: asyncpg.Pool, clock: FixedClock
) -> None:
    await service.act("test", 1, A.OPEN, "c001")
    views = [await issue(service, clock) for _ in range(3)]
    with pytest.raises(QuotaExhausted):
        await issue(service, clock)  # quota 3: refused, nothing written
    await service.flush_estimates()
    for view in views:
        assert (await stored(pool, view.ticket.id))[0] == pytest.approx(view.estimated_wait_s)


async def test_no_estimate_without_an_open_counter(
    service: QueueService, pool: asyncpg.Pool, clock: FixedClock
) -> None:
    view = await issue(service, clock)
    assert (view.estimated_wait_s, view.wait_low_s, view.naive_wait_s) == (None, None, None)
    await service.flush_estimates()
    assert await stored(pool, view.ticket.id) == (None, None, None, None)


async def test_wait_counts_the_other_services_a_shared_counter_calls_first(
    service: QueueService, clock: FixedClock
) -> None:
    """Counter 90 serves SOC, MED and TAX in that order: a TAX ticket waits behind the SOC
    ones there, which the naive estimate (TAX people ahead only) does not see."""
    await service.act("test", 90, A.OPEN, "c001")
    for _ in range(3):
        await issue(service, clock, "SOC")
    view = await issue(service, clock, "TAX")
    assert view.people_ahead == 0
    assert view.naive_wait_s == 0.0
    assert view.estimated_wait_s == pytest.approx(3 * 8 * 60)  # three SOC visits first
    page = await service.ticket_status(view.token)
    assert page.estimated_wait_s == pytest.approx(3 * 8 * 60)
