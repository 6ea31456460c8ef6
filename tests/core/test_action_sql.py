"""A counter action's statement text is kept per shape: the arguments listed for a kept
text must be the ones its placeholders take, in order, for every shape of write."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime

import pytest

from hall.domain.tickets import CounterState, CounterStatus, Event, EventType, Ticket, TicketState
from hall.storage import repo

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
BEFORE = Ticket(
    id=7, hall_id="test", service_code="BDC", number_group="BDC", business_day=date(2026, 11, 24),
    seq=3, display_number="A003", purpose="apply", priority_class=None,
    state=TicketState.WAITING, issued_at=NOW, queue_key=NOW,
)  # fmt: skip
AFTER = Ticket(
    id=7, hall_id="test", service_code="BDC", number_group="BDC", business_day=date(2026, 11, 24),
    seq=3, display_number="A003", purpose="apply", priority_class=None,
    state=TicketState.CALLED, issued_at=NOW, queue_key=NOW, counter_number=2,
    first_called_at=NOW, called_at=NOW,
)  # fmt: skip
STATUS = CounterStatus(
    hall_id="test", number=2, state=CounterState.CALLING, state_since=NOW, pause_reason=None,
    clerk="c001",
)  # fmt: skip


def _events(n: int) -> list[Event]:
    return [
        Event(
            type=EventType.TICKET_CALLED,
            at=NOW,
            actor=f"c00{i}",
            ticket_id=7,
            counter_number=2,
            details={"reason": "顺序", "i": i},
        )
        for i in range(n)
    ]


@pytest.mark.parametrize(
    ("has_counter", "has_ticket", "skip_locked", "audit"),
    list(itertools.product([True, False], [True, False], [True, False], [None, ("a", 1, None)])),
)
def test_a_kept_statement_text_gets_the_arguments_its_placeholders_take(
    has_counter: bool, has_ticket: bool, skip_locked: bool, audit: tuple[object, ...] | None
) -> None:
    counter = repo.CounterWrite(STATUS, 4, 1 if skip_locked else None) if has_counter else None
    ticket = repo.TicketWrite(BEFORE, AFTER) if has_ticket else None
    built = repo.build_action_statement(
        "test", counter=counter, ticket=ticket, events=_events(1), audit=audit,
        skip_locked=skip_locked,
    )  # fmt: skip
    for n in (1, 1, 2):  # the first builds and keeps the text; the others use it
        expected = repo.build_action_statement(
            "test", counter=counter, ticket=ticket, events=_events(n), audit=audit,
            skip_locked=skip_locked,
        )  # fmt: skip
        got = repo.action_statement(
            "test", counter=counter, ticket=ticket, events=_events(n), audit=audit,
            skip_locked=skip_locked,
        )  # fmt: skip
        assert got == expected
        assert got[0] == built[0]


@pytest.mark.parametrize("audit", [None, ("a", 1, None)])
def test_a_kept_call_statement_text_gets_the_arguments_its_placeholders_take(
    audit: tuple[object, ...] | None,
) -> None:
    counter = repo.CounterWrite(STATUS, 4, 1)
    built = repo.build_call_statement(
        "test", counter=counter, ticket_id=7, at=NOW, events=_events(1), audit=audit
    )
    for n in (1, 1, 2):  # the first builds and keeps the text; the others use it
        expected = repo.build_call_statement(
            "test", counter=counter, ticket_id=7, at=NOW, events=_events(n), audit=audit
        )
        got = repo.call_statement(
            "test", counter=counter, ticket_id=7, at=NOW, events=_events(n), audit=audit
        )
        assert got == expected
        assert got[0] == built[0]
