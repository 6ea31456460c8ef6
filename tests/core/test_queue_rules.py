"""Call-next policy, transfers, parking and recalls, through the queue service."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import pytest

from hall.config.models import HallConfig
from hall.domain.errors import Conflict, CounterBusy, IllegalTransition, InvalidInput, QueueEmpty
from hall.ports import FixedClock
from hall.services.directory import Directory
from hall.services.queue import ActionParams, CounterAction, IssueTicket, QueueService

A = CounterAction


@pytest.fixture
def service(pool: asyncpg.Pool, config: HallConfig, clock: FixedClock) -> QueueService:
    return QueueService(pool, Directory(config), clock)


async def take(
    service: QueueService, clock: FixedClock, code: str = "BDC", priority: str | None = None
) -> str:
    clock.set(clock.now() + timedelta(seconds=30))
    view = await service.issue(
        IssueTicket(hall_id="test", service_code=code, priority_class=priority)
    )
    return view.ticket.display_number


async def call(service: QueueService, counter: int) -> str:
    view = await service.act("test", counter, A.CALL_NEXT, "c001")
    assert view.ticket is not None
    number = view.ticket.display_number
    await service.act("test", counter, A.START, "c001")
    await service.act("test", counter, A.FINISH, "c001")
    return number


async def test_priority_ratio_one_in_three(service: QueueService, clock: FixedClock) -> None:
    normal = [await take(service, clock) for _ in range(6)]
    elderly = [await take(service, clock, priority="elderly") for _ in range(2)]
    await service.act("test", 1, A.OPEN, "c001")
    order = [await call(service, 1) for _ in range(8)]
    # Default ratio 3: three normal tickets, then one priority, and so on.
    assert order == normal[:3] + elderly[:1] + normal[3:6] + elderly[1:]


async def test_counter_serves_its_services_in_configured_order(
    service: QueueService, clock: FixedClock
) -> None:
    tax = await take(service, clock, "TAX")
    land = await take(service, clock, "BDC")
    await service.act("test", 1, A.OPEN, "c001")
    assert await call(service, 1) == land  # BDC is listed first for counter 1
    assert await call(service, 1) == tax
    with pytest.raises(QueueEmpty):
        await service.act("test", 1, A.CALL_NEXT, "c001")


async def test_transfer_keeps_number_and_goes_to_the_front(
    service: QueueService, clock: FixedClock
) -> None:
    first = await take(service, clock, "BDC")
    waiting = [await take(service, clock, "SOC") for _ in range(3)]
    await service.act("test", 1, A.OPEN, "c001")
    await service.act("test", 1, A.CALL_NEXT, "c001")
    await service.act("test", 1, A.START, "c001")
    view = await service.act(
        "test", 1, A.TRANSFER, "c001", ActionParams(to_service="SOC", reason="需社保窗口办理")
    )
    assert view.ticket is None and str(view.status.state) == "idle"
    await service.act("test", 90, A.OPEN, "c001")
    called = await service.act("test", 90, A.CALL_NEXT, "c001")
    assert called.ticket is not None
    assert called.ticket.display_number == first  # same number, ahead of the SOC queue
    assert called.ticket.service_code == "SOC"
    assert waiting[0] == "C001"


async def test_transfer_to_a_specific_counter(service: QueueService, clock: FixedClock) -> None:
    first = await take(service, clock)
    other = await take(service, clock)
    for n in (1, 2, 3):
        await service.act("test", n, A.OPEN, "c001")
    await service.act("test", 3, A.PAUSE, "c001", ActionParams(reason="会议"))
    await service.act("test", 1, A.CALL_NEXT, "c001")
    await service.act("test", 1, A.TRANSFER, "c001", ActionParams(to_counter=3))
    # Counter 2 does not get the ticket reserved for counter 3.
    assert (await service.act("test", 2, A.CALL_NEXT, "c001")).ticket.display_number == other  # type: ignore[union-attr]
    await service.act("test", 3, A.RESUME, "c001")
    view = await service.act("test", 3, A.CALL_NEXT, "c001")
    assert view.ticket is not None and view.ticket.display_number == first


async def test_park_and_call_back(service: QueueService, clock: FixedClock) -> None:
    first = await take(service, clock)
    second = await take(service, clock)
    await service.act("test", 1, A.OPEN, "c001")
    await service.act("test", 1, A.CALL_NEXT, "c001")
    await service.act("test", 1, A.START, "c001")
    await service.act("test", 1, A.PARK, "c001", ActionParams(reason="回家取材料"))
    assert await call(service, 1) == second
    await service.act("test", 1, A.CALL_BACK, "c001", ActionParams(number=first))
    # The called-back ticket is the oldest waiting one, but it belongs to counter 1 now:
    # counter 2 (same services) gets the next walk-in instead.
    third = await take(service, clock)
    await service.act("test", 2, A.OPEN, "c001")
    assert await call(service, 2) == third
    view = await service.act("test", 1, A.CALL_NEXT, "c001")
    assert view.ticket is not None and view.ticket.display_number == first
    assert view.ticket.recall_count == 0


async def test_wait_estimate_uses_measured_service_times(
    service: QueueService, clock: FixedClock
) -> None:
    await service.act("test", 1, A.OPEN, "c001")
    for minutes in (2, 4, 9):
        await take(service, clock)
        await service.act("test", 1, A.CALL_NEXT, "c001")
        await service.act("test", 1, A.START, "c001")
        clock.set(clock.now() + timedelta(minutes=minutes))
        await service.act("test", 1, A.FINISH, "c001")
    for _ in range(3):
        await take(service, clock)
    bdc = next(s for s in await service.services("test") if s.code == "BDC")
    # Three measured services of 2, 4 and 9 minutes: their mean is 5 minutes (not the
    # configured default; the long one is kept, service times have a long tail); three
    # people wait for the one open counter, so someone taking a ticket now waits 15 minutes.
    assert bdc.waiting == 3
    assert bdc.estimated_wait_s == 3 * 5 * 60
    assert bdc.wait_low_s is not None and bdc.wait_high_s is not None
    assert bdc.wait_low_s < 15 * 60 < bdc.wait_high_s


async def test_recall_limit_then_no_show(service: QueueService, clock: FixedClock) -> None:
    await take(service, clock)
    await service.act("test", 1, A.OPEN, "c001")
    await service.act("test", 1, A.CALL_NEXT, "c001")
    for _ in range(2):  # max_recalls = 2 in the test config
        await service.act("test", 1, A.RECALL, "c001")
    with pytest.raises(Conflict, match="请标记过号"):
        await service.act("test", 1, A.RECALL, "c001")
    view = await service.act("test", 1, A.NO_SHOW, "c001")
    assert str(view.status.state) == "idle"


async def test_call_specific_number(service: QueueService, clock: FixedClock) -> None:
    await take(service, clock)
    wanted = await take(service, clock)
    await service.act("test", 1, A.OPEN, "c001")
    view = await service.act("test", 1, A.CALL, "c001", ActionParams(number=wanted.lower()))
    assert view.ticket is not None and view.ticket.display_number == wanted
    with pytest.raises(CounterBusy):
        await service.act("test", 1, A.CALL_NEXT, "c001")


async def test_illegal_actions_change_nothing(
    service: QueueService, clock: FixedClock, pool: asyncpg.Pool
) -> None:
    await take(service, clock)
    with pytest.raises(IllegalTransition):
        await service.act("test", 1, A.CALL_NEXT, "c001")  # counter closed
    await service.act("test", 1, A.OPEN, "c001")
    with pytest.raises(Conflict):
        await service.act("test", 1, A.FINISH, "c001")  # nothing active
    with pytest.raises(InvalidInput):
        await service.act("test", 1, A.PAUSE, "c001")  # a pause needs a reason
    await service.act("test", 1, A.PAUSE, "c001", ActionParams(reason="午休"))
    with pytest.raises(IllegalTransition):
        await service.act("test", 1, A.CALL_NEXT, "c001")
    await service.act("test", 1, A.RESUME, "c001")
    assert await pool.fetchval("SELECT state::text FROM tickets") == "waiting"
    types = [r["type"] for r in await pool.fetch("SELECT type FROM events ORDER BY seq")]
    assert types == ["ticket.issued", "counter.opened", "counter.paused", "counter.resumed"]


async def test_an_open_appointment_is_called_first_however_deep_in_the_queue(
    service: QueueService, clock: FixedClock
) -> None:
    """Call-next reads only the heads of the queues, plus the appointments whose slot has
    begun: one checked in behind twenty walk-ins is still called first."""
    await service.act("test", 1, A.OPEN, "c001")
    walk_ins = [await take(service, clock) for _ in range(20)]
    clock.set(clock.now() + timedelta(seconds=30))
    booked = await service.issue(
        IssueTicket(
            hall_id="test",
            service_code="BDC",
            appointment_start=clock.now(),
            appointment_end=clock.now() + timedelta(minutes=30),
        )
    )
    later = await service.issue(
        IssueTicket(
            hall_id="test",
            service_code="BDC",
            appointment_start=clock.now() + timedelta(hours=3),
            appointment_end=clock.now() + timedelta(hours=4),
        )
    )
    assert await call(service, 1) == booked.ticket.display_number
    # A slot hours away is a walk-in for now, behind the others.
    called = [await call(service, 1) for _ in range(21)]
    assert called == [*walk_ins, later.ticket.display_number]


async def test_people_ahead_at_issue_counts_the_waiting_of_the_service_only(
    service: QueueService, clock: FixedClock
) -> None:
    """Given with the ticket, from the statement that numbers it: those called, other
    services and tickets queued later do not count; the ticket page agrees."""
    await service.act("test", 1, A.OPEN, "c001")
    for _ in range(5):
        await take(service, clock)
    await take(service, clock, code="TAX")
    await call(service, 1)
    await call(service, 1)
    clock.set(clock.now() + timedelta(seconds=30))
    view = await service.issue(IssueTicket(hall_id="test", service_code="BDC"))
    assert view.people_ahead == 3
    assert view.estimated_wait_s is not None and view.estimated_wait_s > 0
    again = await service.ticket_status(view.token)
    assert (again.people_ahead, again.estimated_wait_s) == (3, view.estimated_wait_s)
