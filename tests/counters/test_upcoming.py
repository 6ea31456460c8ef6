"""The call-order replay on hand-made queue heads (no database)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from counters.upcoming import upcoming
from hall.domain.policy import Candidate, CounterContext, PolicySettings
from hall.domain.tickets import Ticket, TicketState

NOW = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)
SETTINGS = PolicySettings(
    priority_ratio=2,
    max_bypass=timedelta(hours=1),
    appointment_early=timedelta(minutes=10),
    appointment_late=timedelta(minutes=10),
)


def head(n: int, service: str, *, priority: bool = False) -> tuple[Candidate, Ticket]:
    at = NOW - timedelta(minutes=30) + timedelta(seconds=n)
    prefix = "A" if service == "BDC" else "B"
    ticket = Ticket(
        id=n, hall_id="test", service_code=service, number_group=service,
        business_day=date(2026, 12, 3), seq=n, display_number=f"{prefix}{n:03d}",
        purpose="apply", priority_class="elderly" if priority else None,
        state=TicketState.WAITING, issued_at=at, queue_key=at,
    )  # fmt: skip
    return Candidate(n, service, at, priority, None), ticket


COUNTER = CounterContext(1, (("BDC", 1), ("TAX", 1)), "order", 0)


def test_priority_tickets_come_when_the_ratio_is_due_not_when_issued() -> None:
    found = [head(1, "BDC", priority=True), *(head(n, "BDC") for n in range(2, 6))]
    out = upcoming(found, COUNTER, SETTINGS, NOW, per_class=8, per_queue=5, overall=6)
    assert [n.number for n in out] == ["A002", "A003", "A001", "A004", "A005"]
    assert [n.reason for n in out] == ["order", "order", "priority", "order", "order"]
    assert all(n.replayed for n in out)


def test_the_replay_stops_where_a_full_list_runs_out_and_fills_the_other_queue() -> None:
    # 3 BDC heads read with a cap of 3: more BDC tickets wait unread, so the TAX tickets
    # cannot be placed after them; they are listed in their own queue's order, unreplayed.
    found = [head(n, "BDC") for n in (1, 2, 3)] + [head(n, "TAX") for n in (4, 5)]
    out = upcoming(found, COUNTER, SETTINGS, NOW, per_class=3, per_queue=5, overall=6)
    assert [(n.number, n.replayed) for n in out] == [
        ("A001", True), ("A002", True), ("A003", True), ("B004", False), ("B005", False),
    ]  # fmt: skip
