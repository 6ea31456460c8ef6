"""Ticket and counter lifecycles: every (state, event) pair, then properties of random days.

The expected tables below are written out independently of ``hall.domain.tickets``: they are
the lifecycle as clerks and citizens see it (see /work/shared/domain.md), so a change to the
domain's tables fails here.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hall.domain.errors import IllegalTransition
from hall.domain.tickets import (
    ACTIVE_STATES,
    FINAL_STATES,
    CounterState,
    CounterStatus,
    Event,
    EventType,
    Ticket,
    TicketState,
    apply_counter,
    apply_ticket,
    format_number,
    issue_ticket,
    replay_tickets,
)

E = EventType
T0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
SEC = timedelta(seconds=1)

# --- the lifecycle as users know it -------------------------------------------------------

TICKET_LABELS = {
    "waiting": "等候中",
    "called": "已叫号",
    "serving": "办理中",
    "done": "已办结",
    "no_show": "已过号",
    "cancelled": "已取消",
    "parked": "已挂起",
}
COUNTER_LABELS = {
    "closed": "窗口关闭",
    "idle": "空闲",
    "calling": "呼叫中",
    "serving": "服务中",
    "paused": "暂停服务",
}
# (event, state it leaves) -> state it enters; every pair not listed is refused.
TICKET_ALLOWED = {
    ("ticket.called", "waiting"): "called",
    ("ticket.recalled", "called"): "called",
    ("ticket.started", "called"): "serving",
    ("ticket.finished", "serving"): "done",
    ("ticket.no_show", "called"): "no_show",
    ("ticket.cancelled", "waiting"): "cancelled",
    ("ticket.cancelled", "called"): "cancelled",
    ("ticket.transferred", "called"): "waiting",
    ("ticket.transferred", "serving"): "waiting",
    ("ticket.parked", "called"): "parked",
    ("ticket.parked", "serving"): "parked",
    ("ticket.called_back", "parked"): "waiting",
}
TICKET_EVENTS = {e for e, _ in TICKET_ALLOWED}  # the others are not about a ticket's state
COUNTER_ALLOWED = {
    ("counter.opened", "closed"): "idle",
    ("counter.paused", "idle"): "paused",
    ("counter.resumed", "paused"): "idle",
    ("counter.closed", "idle"): "closed",
    ("counter.closed", "paused"): "closed",
    ("ticket.called", "idle"): "calling",
    ("ticket.recalled", "calling"): "calling",
    ("ticket.started", "calling"): "serving",
    ("ticket.finished", "serving"): "idle",
    ("ticket.no_show", "calling"): "idle",
    ("ticket.cancelled", "calling"): "idle",
    ("ticket.transferred", "calling"): "idle",
    ("ticket.transferred", "serving"): "idle",
    ("ticket.parked", "calling"): "idle",
    ("ticket.parked", "serving"): "idle",
}
COUNTER_EVENTS = {e for e, _ in COUNTER_ALLOWED}


# --- building tickets, counters and events ------------------------------------------------


def issued(
    ticket_id: int = 1,
    at: datetime = T0,
    *,
    slot: tuple[str, str] | None = None,
    priority: str | None = None,
) -> Event:
    details: dict[str, Any] = {
        "hall_id": "test",
        "service_code": "BDC",
        "number_group": "A",
        "business_day": "2026-11-24",
        "seq": ticket_id,
        "display_number": format_number("A", ticket_id, 3),
        "purpose": "walk_in",
        "priority_class": priority,
    }
    if slot is not None:
        details["appointment_start"], details["appointment_end"] = slot
    return Event(E.TICKET_ISSUED, at, "kiosk:k1", ticket_id=ticket_id, details=details)


def event(
    type_: EventType,
    at: datetime,
    *,
    ticket_id: int | None = 1,
    counter: int | None = 3,
    **details: Any,
) -> Event:
    return Event(type_, at, "c001", ticket_id=ticket_id, counter_number=counter, details=details)


def details_for(type_: EventType, at: datetime) -> dict[str, Any]:
    """What the queue service puts into each event."""
    if type_ is E.TICKET_TRANSFERRED:
        return {"to_service": "SOC", "to_counter": 7, "queue_key": (at - 600 * SEC).isoformat()}
    if type_ is E.TICKET_CALLED_BACK:
        return {"queue_key": (at - 900 * SEC).isoformat(), "to_counter": 5}
    if type_ is E.COUNTER_PAUSED:
        return {"reason": "午休"}
    if type_ is E.COUNTER_OPENED:
        return {"clerk": "c002"}
    return {}


def fold(history: list[tuple[EventType, int]]) -> Ticket:
    """Ticket 1 after the given events (each at ``T0 + seconds``, at counter 3)."""
    ticket = issue_ticket(issued())
    for type_, seconds in history:
        at = T0 + seconds * SEC
        ticket = apply_ticket(ticket, event(type_, at, **details_for(type_, at)))
    return ticket


# Histories reaching every state, some of them several ways (so that fields kept from an
# earlier part of the life are checked too).
HISTORIES: dict[str, list[tuple[EventType, int]]] = {
    "fresh": [],
    "transferred": [(E.TICKET_CALLED, 60), (E.TICKET_RECALLED, 90), (E.TICKET_TRANSFERRED, 120)],
    "called back": [(E.TICKET_CALLED, 60), (E.TICKET_PARKED, 80), (E.TICKET_CALLED_BACK, 200)],
    "called": [(E.TICKET_CALLED, 60)],
    "recalled twice": [(E.TICKET_CALLED, 60), (E.TICKET_RECALLED, 90), (E.TICKET_RECALLED, 95)],
    "serving": [(E.TICKET_CALLED, 60), (E.TICKET_RECALLED, 70), (E.TICKET_STARTED, 100)],
    "parked": [(E.TICKET_CALLED, 60), (E.TICKET_STARTED, 100), (E.TICKET_PARKED, 300)],
    "parked after recalls": [
        (E.TICKET_CALLED, 60),
        (E.TICKET_RECALLED, 70),
        (E.TICKET_RECALLED, 80),
        (E.TICKET_PARKED, 90),
    ],
    "done": [(E.TICKET_CALLED, 60), (E.TICKET_STARTED, 100), (E.TICKET_FINISHED, 400)],
    "no show": [(E.TICKET_CALLED, 60), (E.TICKET_NO_SHOW, 400)],
    "cancelled": [(E.TICKET_CANCELLED, 30)],
}


def test_histories_reach_every_state() -> None:
    assert {fold(h).state for h in HISTORIES.values()} == set(TicketState)


def expected_ticket(before: Ticket, ev: Event) -> Ticket:
    """The ticket after ``ev``, field by field, as the lifecycle promises it."""
    after = TicketState(TICKET_ALLOWED[(str(ev.type), str(before.state))])
    d = ev.details
    new: dict[str, Any] = {"state": after}
    if ev.type is E.TICKET_CALLED:
        new |= {
            "counter_number": ev.counter_number,
            "called_at": ev.at,
            "first_called_at": before.first_called_at if before.first_called_at else ev.at,
            "target_counter": None,
            "parked_by": None,
        }
    elif ev.type is E.TICKET_RECALLED:
        new |= {"recall_count": before.recall_count + 1, "called_at": ev.at}
    elif ev.type is E.TICKET_STARTED:
        new |= {"serve_started_at": ev.at}
    elif ev.type in (E.TICKET_FINISHED, E.TICKET_NO_SHOW, E.TICKET_CANCELLED):
        new |= {"finished_at": ev.at, "counter_number": None}
    elif ev.type is E.TICKET_TRANSFERRED:
        new |= {
            "service_code": d["to_service"],
            "target_counter": d["to_counter"],
            "queue_key": datetime.fromisoformat(d["queue_key"]),
            "counter_number": None,
            "called_at": None,
            "serve_started_at": None,
            "recall_count": 0,
        }
    elif ev.type is E.TICKET_PARKED:
        new |= {"counter_number": None, "parked_by": before.counter_number}
    elif ev.type is E.TICKET_CALLED_BACK:
        new |= {
            "target_counter": d["to_counter"],
            "queue_key": datetime.fromisoformat(d["queue_key"]),
            "called_at": None,
            "serve_started_at": None,
            "recall_count": 0,
        }
    return dataclasses.replace(before, **new)


# --- the ticket table -----------------------------------------------------------------------


@pytest.mark.parametrize("history", list(HISTORIES), ids=str)
@pytest.mark.parametrize("type_", list(EventType), ids=str)
def test_ticket_transition_table(history: str, type_: EventType) -> None:
    before = fold(HISTORIES[history])
    at = T0 + 1000 * SEC
    ev = event(type_, at, counter=4, **details_for(type_, at))
    if (str(type_), str(before.state)) in TICKET_ALLOWED:
        assert apply_ticket(before, ev) == expected_ticket(before, ev)
        return
    with pytest.raises(IllegalTransition) as raised:
        apply_ticket(before, ev)
    err = raised.value
    assert err.code == "illegal_transition"
    assert err.status == 409
    if str(type_) in TICKET_EVENTS:
        label = TICKET_LABELS[str(before.state)]
        assert err.detail == f"号码 A001 当前状态为「{label}」，不能执行此操作"
        assert err.fields == {"event": str(type_), "state": str(before.state)}
    else:
        assert err.detail == f"号码 A001 不支持操作 {type_}"
        assert err.fields == {"event": str(type_)}


def test_final_states_accept_no_event() -> None:
    assert {str(s) for s in FINAL_STATES} == {"done", "no_show", "cancelled"}
    assert {str(s) for s in ACTIVE_STATES} == {"called", "serving"}
    assert not any(state in FINAL_STATES for _, state in TICKET_ALLOWED)


def test_issued_ticket_fields() -> None:
    ticket = issue_ticket(
        issued(7, T0, slot=("2026-11-24T02:30:00+00:00", "2026-11-24T03:00:00+00:00"))
    )
    assert ticket == Ticket(
        id=7,
        hall_id="test",
        service_code="BDC",
        number_group="A",
        business_day=date(2026, 11, 24),
        seq=7,
        display_number="A007",
        purpose="walk_in",
        priority_class=None,
        state=TicketState.WAITING,
        issued_at=T0,
        queue_key=T0,
        counter_number=None,
        target_counter=None,
        recall_count=0,
        first_called_at=None,
        called_at=None,
        serve_started_at=None,
        finished_at=None,
        parked_by=None,
        appointment_start=datetime(2026, 11, 24, 2, 30, tzinfo=UTC),
        appointment_end=datetime(2026, 11, 24, 3, 0, tzinfo=UTC),
    )
    assert issue_ticket(issued(8, priority="elderly")).priority_class == "elderly"
    # Times already parsed (as read back from the database) are kept as they are.
    slot_start = T0 + 1800 * SEC
    ev = issued(9)
    ev = dataclasses.replace(ev, details={**ev.details, "appointment_start": slot_start})
    assert issue_ticket(ev).appointment_start == slot_start
    assert issue_ticket(ev).appointment_end is None


@pytest.mark.parametrize(
    "ev",
    [
        Event(E.TICKET_CALLED, T0, "c001", ticket_id=1, details=issued().details),
        dataclasses.replace(issued(), ticket_id=None),
    ],
    ids=["not an issue event", "no ticket id"],
)
def test_issue_ticket_refuses_other_events(ev: Event) -> None:
    with pytest.raises(IllegalTransition) as raised:
        issue_ticket(ev)
    assert raised.value.detail == "不是取号事件"


def test_format_number_pads_and_grows() -> None:
    assert format_number("A", 23, 3) == "A023"
    assert format_number("B", 1234, 3) == "B1234"
    assert format_number("", 5, 1) == "5"


@pytest.mark.parametrize("type_", [E.TICKET_TRANSFERRED, E.TICKET_CALLED_BACK])
def test_moving_back_to_the_queue_needs_a_queue_key(type_: EventType) -> None:
    before = fold(HISTORIES["serving"] if type_ is E.TICKET_TRANSFERRED else HISTORIES["parked"])
    with pytest.raises(IllegalTransition) as raised:
        apply_ticket(before, event(type_, T0 + 999 * SEC, to_counter=2))
    assert raised.value.detail == "事件缺少 queue_key"


def test_transfer_to_a_counter_only_keeps_the_service() -> None:
    before = fold(HISTORIES["serving"])
    key = T0 - 60 * SEC
    after = apply_ticket(
        before, event(E.TICKET_TRANSFERRED, T0 + 999 * SEC, to_counter=2, queue_key=key)
    )
    assert (after.service_code, after.target_counter, after.queue_key) == ("BDC", 2, key)


def test_call_back_without_a_counter_goes_to_the_counter_that_parked_it() -> None:
    before = fold(HISTORIES["parked"])
    assert before.parked_by == 3
    key = (T0 + 500 * SEC).isoformat()
    after = apply_ticket(
        before, event(E.TICKET_CALLED_BACK, T0 + 999 * SEC, counter=6, queue_key=key)
    )
    assert after.target_counter == 3
    # Calling it again clears the routing and who parked it.
    called = apply_ticket(after, event(E.TICKET_CALLED, T0 + 1200 * SEC))
    assert (called.target_counter, called.parked_by) == (None, None)


def test_transfer_resets_recalls_to_zero() -> None:
    before = fold(HISTORIES["recalled twice"])
    assert before.recall_count == 2
    at = T0 + 999 * SEC
    after = apply_ticket(
        before, event(E.TICKET_TRANSFERRED, at, **details_for(E.TICKET_TRANSFERRED, at))
    )
    assert after.recall_count == 0
    recalled = apply_ticket(
        apply_ticket(after, event(E.TICKET_CALLED, at)), event(E.TICKET_RECALLED, at)
    )
    assert recalled.recall_count == 1


# --- the counter table ----------------------------------------------------------------------

COUNTER_HISTORIES: dict[str, list[EventType]] = {
    "closed": [],
    "idle": [E.COUNTER_OPENED],
    "paused": [E.COUNTER_OPENED, E.COUNTER_PAUSED],
    "resumed": [E.COUNTER_OPENED, E.COUNTER_PAUSED, E.COUNTER_RESUMED],
    "calling": [E.COUNTER_OPENED, E.TICKET_CALLED],
    "serving": [E.COUNTER_OPENED, E.TICKET_CALLED, E.TICKET_STARTED],
    "closed again": [E.COUNTER_OPENED, E.COUNTER_PAUSED, E.COUNTER_CLOSED],
}


def counter_after(history: list[EventType]) -> CounterStatus:
    status = CounterStatus(hall_id="test", number=3, state=CounterState.CLOSED, state_since=T0)
    for i, type_ in enumerate(history, 1):
        at = T0 + 60 * i * SEC
        status = apply_counter(status, event(type_, at, **details_for(type_, at)))
    return status


def test_counter_histories_reach_every_state() -> None:
    assert {counter_after(h).state for h in COUNTER_HISTORIES.values()} == set(CounterState)


def expected_counter(before: CounterStatus, ev: Event) -> CounterStatus:
    after = CounterState(COUNTER_ALLOWED[(str(ev.type), str(before.state))])
    new: dict[str, Any] = {"state": after, "state_since": ev.at}
    if ev.type is E.COUNTER_OPENED:
        new["clerk"] = ev.details["clerk"]
    elif ev.type is E.COUNTER_PAUSED:
        new["pause_reason"] = ev.details["reason"]
    elif ev.type is E.COUNTER_RESUMED:
        new["pause_reason"] = None
    elif ev.type is E.COUNTER_CLOSED:
        new |= {"pause_reason": None, "clerk": None}
    elif ev.type is E.TICKET_RECALLED:
        new["state_since"] = before.state_since  # still the same call
    return dataclasses.replace(before, **new)


@pytest.mark.parametrize("history", list(COUNTER_HISTORIES), ids=str)
@pytest.mark.parametrize("type_", list(EventType), ids=str)
def test_counter_transition_table(history: str, type_: EventType) -> None:
    before = counter_after(COUNTER_HISTORIES[history])
    at = T0 + 3600 * SEC
    ev = event(type_, at, **details_for(type_, at))
    if (str(type_), str(before.state)) in COUNTER_ALLOWED:
        assert apply_counter(before, ev) == expected_counter(before, ev)
        return
    with pytest.raises(IllegalTransition) as raised:
        apply_counter(before, ev)
    err = raised.value
    assert (err.code, err.status) == ("illegal_transition", 409)
    if str(type_) in COUNTER_EVENTS:
        label = COUNTER_LABELS[str(before.state)]
        assert err.detail == f"3号窗口当前状态为「{label}」，不能执行此操作"
        assert err.fields == {"event": str(type_), "state": str(before.state)}
    else:
        assert err.detail == f"3号窗口不支持操作 {type_}"
        assert err.fields == {"event": str(type_)}


def test_paused_counter_keeps_reason_and_clerk_until_closed() -> None:
    paused = counter_after(COUNTER_HISTORIES["paused"])
    assert (paused.clerk, paused.pause_reason) == ("c002", "午休")
    closed = counter_after(COUNTER_HISTORIES["closed again"])
    assert (closed.state, closed.clerk, closed.pause_reason) == (CounterState.CLOSED, None, None)


def test_opening_without_a_named_clerk_records_the_actor() -> None:
    closed = counter_after([])
    opened = apply_counter(closed, event(E.COUNTER_OPENED, T0 + SEC))
    assert opened.clerk == "c001"
    assert apply_counter(closed, event(E.COUNTER_OPENED, T0 + SEC, clerk="")).clerk == "c001"


# --- properties ------------------------------------------------------------------------------


def check_ticket_invariants(t: Ticket) -> None:
    """What no reachable ticket may look like, whatever the order of clerks' actions."""
    assert (t.counter_number is not None) == (t.state in ACTIVE_STATES)
    assert (t.finished_at is not None) == (t.state in FINAL_STATES)
    if t.state is TicketState.WAITING:
        assert (t.called_at, t.serve_started_at, t.recall_count) == (None, None, 0)
    if t.state is TicketState.CALLED:
        assert t.called_at is not None and t.serve_started_at is None
        assert t.first_called_at is not None and t.first_called_at <= t.called_at
    if t.state is TicketState.SERVING:
        assert t.called_at is not None and t.serve_started_at is not None
    if t.state is TicketState.DONE:  # nobody finishes what was never started
        assert t.serve_started_at is not None and t.finished_at is not None
        assert t.serve_started_at <= t.finished_at
    if t.state is TicketState.NO_SHOW:
        assert t.serve_started_at is None
    if t.state is TicketState.PARKED:
        assert t.parked_by is not None


EVENT_TYPES = [e for e in EventType if e is not E.TICKET_ISSUED]


@st.composite
def days(draw: st.DrawFn) -> list[tuple[str, int, int, int]]:
    """Random actions: (kind, ticket or counter index, counter, seconds later)."""
    kinds = st.sampled_from(["issue", "ticket", "counter"])
    return draw(
        st.lists(
            st.tuples(kinds, st.integers(0, 5), st.integers(1, 3), st.integers(1, 120)),
            max_size=80,
        )
    )


class Day:
    """A small hall: tickets and counters driven only by the domain folds, and the log."""

    def __init__(self) -> None:
        self.now = T0
        self.log: list[Event] = []
        self.tickets: dict[int, Ticket] = {}
        self.counters = {n: CounterStatus("test", n, CounterState.CLOSED, T0) for n in (1, 2, 3)}
        self.active: dict[int, int] = {}  # counter -> its called or serving ticket
        self.refused = 0

    def issue(self, appointment: bool) -> None:
        n = len(self.tickets) + 1
        slot = None
        if appointment:
            start = self.now + 600 * SEC
            slot = (start.isoformat(), (start + 900 * SEC).isoformat())
        ev = issued(n, self.now, slot=slot, priority="elderly" if n % 4 == 0 else None)
        self.tickets[n] = issue_ticket(ev)
        self.log.append(ev)

    def act(self, type_: EventType, ticket_id: int | None, counter: int, *, fold: bool) -> None:
        """One event at ``counter``, folded into its ticket and (if ``fold``) into the counter;
        all or nothing, like the queue service's transaction."""
        ev = event(
            type_, self.now, ticket_id=ticket_id, counter=counter, **details_for(type_, self.now)
        )
        try:
            ticket = None if ticket_id is None else apply_ticket(self.tickets[ticket_id], ev)
            status = apply_counter(self.counters[counter], ev) if fold else None
        except IllegalTransition:
            self.refused += 1
            return
        if ticket is not None:
            self.tickets[ticket.id] = ticket
            check_ticket_invariants(ticket)
        if status is not None:
            self.counters[counter] = status
            if status.state in (CounterState.CALLING, CounterState.SERVING):
                assert ticket_id is not None
                self.active[counter] = ticket_id
            else:
                self.active.pop(counter, None)
        self.log.append(ev)


def run_day(actions: list[tuple[str, int, int, int]]) -> Day:
    """Issue tickets, and act at counters: mostly on the counter's own ticket, sometimes on any."""
    day = Day()
    for kind, index, counter, seconds in actions:
        day.now += seconds * SEC
        if kind == "issue" or not day.tickets:
            day.issue(appointment=index % 3 == 0)
            continue
        type_ = EVENT_TYPES[(index * 7 + seconds) % len(EVENT_TYPES)]
        any_ticket = (index + seconds) % len(day.tickets) + 1
        if str(type_).startswith("counter."):
            day.act(type_, None, counter, fold=True)
        elif type_ is E.TICKET_CALLED_BACK:
            day.act(type_, any_ticket, counter, fold=False)  # the counter's state is unchanged
        elif type_ is E.TICKET_CANCELLED and kind == "ticket":
            # A citizen withdraws a waiting ticket: no counter is involved.
            if day.tickets[any_ticket].state is TicketState.WAITING:
                day.act(type_, any_ticket, counter, fold=False)
        elif type_ is E.TICKET_CALLED or counter not in day.active:
            day.act(
                type_, any_ticket, counter, fold=True
            )  # refused unless a call at an idle counter
        else:
            day.act(type_, day.active[counter], counter, fold=True)
    return day


def replay_counters(log: list[Event]) -> dict[int, CounterStatus]:
    """Counters rebuilt from the log: every event at a counter but call-backs and withdrawals."""
    counters = {n: CounterStatus("test", n, CounterState.CLOSED, T0) for n in (1, 2, 3)}
    waiting: set[int] = set()
    for ev in log:
        if ev.type in (E.TICKET_ISSUED, E.TICKET_CALLED_BACK, E.TICKET_TRANSFERRED):
            waiting.add(ev.ticket_id or 0)
        elif ev.type is E.TICKET_CALLED:
            waiting.discard(ev.ticket_id or 0)
        if ev.type is E.TICKET_CANCELLED and ev.ticket_id in waiting:
            continue
        if ev.counter_number is not None and ev.type is not E.TICKET_CALLED_BACK:
            counters[ev.counter_number] = apply_counter(counters[ev.counter_number], ev)
    return counters


@settings(max_examples=150, deadline=None)
@given(days())
def test_random_days_stay_in_the_tables_and_replay_exactly(
    actions: list[tuple[str, int, int, int]],
) -> None:
    day = run_day(actions)
    for ticket in day.tickets.values():
        check_ticket_invariants(ticket)
    # One active ticket per counter, and it is the counter's ticket.
    for counter, ticket_id in day.active.items():
        ticket = day.tickets[ticket_id]
        assert ticket.state in ACTIVE_STATES and ticket.counter_number == counter
        expected = (
            CounterState.SERVING if ticket.state is TicketState.SERVING else CounterState.CALLING
        )
        assert day.counters[counter].state is expected
    assert replay_tickets(day.log) == day.tickets
    assert replay_counters(day.log) == day.counters


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(EVENT_TYPES), max_size=30))
def test_any_sequence_on_one_ticket_follows_the_table(types: list[EventType]) -> None:
    ticket = issue_ticket(issued())
    at = T0
    for type_ in types:
        at += 30 * SEC
        ev = event(type_, at, **details_for(type_, at))
        key = (str(type_), str(ticket.state))
        if key in TICKET_ALLOWED:
            ticket = apply_ticket(ticket, ev)
            assert str(ticket.state) == TICKET_ALLOWED[key]
            check_ticket_invariants(ticket)
        else:
            with pytest.raises(IllegalTransition):
                apply_ticket(ticket, ev)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(list(EventType)), max_size=30))
def test_any_sequence_on_one_counter_follows_the_table(types: list[EventType]) -> None:
    status = counter_after([])
    at = T0
    for type_ in types:
        at += 30 * SEC
        ev = event(type_, at, **details_for(type_, at))
        key = (str(type_), str(status.state))
        if key in COUNTER_ALLOWED:
            status = apply_counter(status, ev)
            assert str(status.state) == COUNTER_ALLOWED[key]
            assert (status.clerk is None) == (status.state is CounterState.CLOSED)
            assert (status.pause_reason is not None) == (status.state is CounterState.PAUSED)
        else:
            with pytest.raises(IllegalTransition):
                apply_counter(status, ev)


def test_replay_keeps_appointment_slots_and_every_kind_of_move() -> None:
    slot = ("2026-11-24T02:30:00+00:00", "2026-11-24T02:45:00+00:00")
    log = [issued(1, T0, slot=slot), issued(2, T0 + SEC)]
    steps: list[tuple[EventType, int, int]] = [
        (E.TICKET_CALLED, 1, 10),
        (E.TICKET_RECALLED, 1, 20),
        (E.TICKET_STARTED, 1, 30),
        (E.TICKET_TRANSFERRED, 1, 40),
        (E.TICKET_CALLED, 2, 50),
        (E.TICKET_PARKED, 2, 60),
        (E.TICKET_CALLED_BACK, 2, 70),
        (E.TICKET_CALLED, 1, 80),
    ]
    for type_, ticket_id, seconds in steps:
        at = T0 + seconds * SEC
        log.append(event(type_, at, ticket_id=ticket_id, **details_for(type_, at)))
    rebuilt = replay_tickets(log)
    first, second = rebuilt[1], rebuilt[2]
    assert first.appointment_start == datetime(2026, 11, 24, 2, 30, tzinfo=UTC)
    assert first.appointment_end == datetime(2026, 11, 24, 2, 45, tzinfo=UTC)
    assert (first.state, first.service_code, first.recall_count) == (TicketState.CALLED, "SOC", 0)
    assert first.first_called_at == T0 + 10 * SEC and first.called_at == T0 + 80 * SEC
    assert (second.state, second.target_counter, second.parked_by) == (TicketState.WAITING, 5, 3)
    # Events without a ticket (counter events) are skipped by the ticket replay.
    assert replay_tickets([*log, event(E.COUNTER_OPENED, T0, ticket_id=None)]) == rebuilt


def test_stored_names_of_states_and_events() -> None:
    # These strings are in the database (tickets.state, counters.state, events.type) and in the
    # live feed: renaming one loses history.
    assert {str(s) for s in TicketState} == set(TICKET_LABELS)
    assert {str(s) for s in CounterState} == set(COUNTER_LABELS)
    assert {str(e) for e in EventType} == {
        "ticket.issued",
        *(e for e, _ in TICKET_ALLOWED),
        *(e for e, _ in COUNTER_ALLOWED),
        "supervision.alarm",
        "supervision.cleared",
    }
    assert len(EventType) == 16
