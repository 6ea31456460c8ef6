"""Ticket and counter lifecycles as pure folds over events.

Use cases build an ``Event``, fold it into the current ``Ticket``/``CounterStatus`` with
``apply_ticket``/``apply_counter`` and store both results in one transaction; replaying the
event log through the same functions must give the stored state (a test checks this).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from hall.domain.errors import IllegalTransition


class TicketState(enum.StrEnum):
    WAITING = "waiting"
    CALLED = "called"
    SERVING = "serving"
    DONE = "done"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"
    PARKED = "parked"


ACTIVE_STATES = frozenset({TicketState.CALLED, TicketState.SERVING})
FINAL_STATES = frozenset({TicketState.DONE, TicketState.NO_SHOW, TicketState.CANCELLED})


class CounterState(enum.StrEnum):
    CLOSED = "closed"
    IDLE = "idle"
    CALLING = "calling"
    SERVING = "serving"
    PAUSED = "paused"


class EventType(enum.StrEnum):
    TICKET_ISSUED = "ticket.issued"
    TICKET_CALLED = "ticket.called"
    TICKET_RECALLED = "ticket.recalled"
    TICKET_STARTED = "ticket.started"
    TICKET_FINISHED = "ticket.finished"
    TICKET_NO_SHOW = "ticket.no_show"
    TICKET_CANCELLED = "ticket.cancelled"
    TICKET_TRANSFERRED = "ticket.transferred"
    TICKET_PARKED = "ticket.parked"
    TICKET_CALLED_BACK = "ticket.called_back"
    COUNTER_OPENED = "counter.opened"
    COUNTER_PAUSED = "counter.paused"
    COUNTER_RESUMED = "counter.resumed"
    COUNTER_CLOSED = "counter.closed"
    # Electronic supervision (电子监察): an alarm raised or cleared at a counter; staff only.
    SUPERVISION_ALARM = "supervision.alarm"
    SUPERVISION_CLEARED = "supervision.cleared"


_S = TicketState
# event -> (states it may leave, state it enters)
TICKET_TRANSITIONS: Mapping[EventType, tuple[frozenset[TicketState], TicketState]] = {
    EventType.TICKET_CALLED: (frozenset({_S.WAITING}), _S.CALLED),
    EventType.TICKET_RECALLED: (frozenset({_S.CALLED}), _S.CALLED),
    EventType.TICKET_STARTED: (frozenset({_S.CALLED}), _S.SERVING),
    EventType.TICKET_FINISHED: (frozenset({_S.SERVING}), _S.DONE),
    EventType.TICKET_NO_SHOW: (frozenset({_S.CALLED}), _S.NO_SHOW),
    EventType.TICKET_CANCELLED: (frozenset({_S.WAITING, _S.CALLED}), _S.CANCELLED),
    EventType.TICKET_TRANSFERRED: (frozenset({_S.CALLED, _S.SERVING}), _S.WAITING),
    EventType.TICKET_PARKED: (frozenset({_S.CALLED, _S.SERVING}), _S.PARKED),
    EventType.TICKET_CALLED_BACK: (frozenset({_S.PARKED}), _S.WAITING),
}

_C = CounterState
COUNTER_TRANSITIONS: Mapping[EventType, tuple[frozenset[CounterState], CounterState]] = {
    EventType.COUNTER_OPENED: (frozenset({_C.CLOSED}), _C.IDLE),
    EventType.COUNTER_PAUSED: (frozenset({_C.IDLE}), _C.PAUSED),
    EventType.COUNTER_RESUMED: (frozenset({_C.PAUSED}), _C.IDLE),
    EventType.COUNTER_CLOSED: (frozenset({_C.IDLE, _C.PAUSED}), _C.CLOSED),
    EventType.TICKET_CALLED: (frozenset({_C.IDLE}), _C.CALLING),
    EventType.TICKET_RECALLED: (frozenset({_C.CALLING}), _C.CALLING),
    EventType.TICKET_STARTED: (frozenset({_C.CALLING}), _C.SERVING),
    EventType.TICKET_FINISHED: (frozenset({_C.SERVING}), _C.IDLE),
    EventType.TICKET_NO_SHOW: (frozenset({_C.CALLING}), _C.IDLE),
    EventType.TICKET_CANCELLED: (frozenset({_C.CALLING}), _C.IDLE),
    EventType.TICKET_TRANSFERRED: (frozenset({_C.CALLING, _C.SERVING}), _C.IDLE),
    EventType.TICKET_PARKED: (frozenset({_C.CALLING, _C.SERVING}), _C.IDLE),
}

# Chinese labels for what users see.
TICKET_STATE_LABELS: Mapping[TicketState, str] = {
    _S.WAITING: "等候中",
    _S.CALLED: "已叫号",
    _S.SERVING: "办理中",
    _S.DONE: "已办结",
    _S.NO_SHOW: "已过号",
    _S.CANCELLED: "已取消",
    _S.PARKED: "已挂起",
}
COUNTER_STATE_LABELS: Mapping[CounterState, str] = {
    _C.CLOSED: "窗口关闭",
    _C.IDLE: "空闲",
    _C.CALLING: "呼叫中",
    _C.SERVING: "服务中",
    _C.PAUSED: "暂停服务",
}


@dataclass(frozen=True, slots=True)
class Event:
    """One fact appended to the hall's event log."""

    type: EventType
    at: datetime
    actor: str
    ticket_id: int | None = None
    counter_number: int | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Ticket:
    """Current state of one ticket."""

    id: int
    hall_id: str
    service_code: str
    number_group: str
    business_day: date
    seq: int
    display_number: str
    purpose: str
    priority_class: str | None
    state: TicketState
    issued_at: datetime
    queue_key: datetime
    counter_number: int | None = None
    target_counter: int | None = None
    recall_count: int = 0
    first_called_at: datetime | None = None
    called_at: datetime | None = None
    serve_started_at: datetime | None = None
    finished_at: datetime | None = None
    parked_by: int | None = None
    appointment_start: datetime | None = None
    appointment_end: datetime | None = None


@dataclass(frozen=True, slots=True)
class CounterStatus:
    hall_id: str
    number: int
    state: CounterState
    state_since: datetime
    pause_reason: str | None = None
    clerk: str | None = None


def format_number(prefix: str, seq: int, width: int) -> str:
    """Display number such as ``A023``; grows past ``width`` rather than wrapping."""
    return f"{prefix}{seq:0{width}d}"


def _check(
    table: Mapping[EventType, tuple[frozenset[Any], Any]], event: EventType, current: Any, what: str
) -> Any:
    try:
        allowed, target = table[event]
    except KeyError:
        raise IllegalTransition(f"{what}不支持操作 {event}", event=str(event)) from None
    if current not in allowed:
        raise IllegalTransition(
            f"{what}当前状态为「{_label(current)}」，不能执行此操作",
            event=str(event),
            state=str(current),
        )
    return target


def _label(state: Any) -> str:
    if isinstance(state, TicketState):
        return TICKET_STATE_LABELS[state]
    if isinstance(state, CounterState):
        return COUNTER_STATE_LABELS[state]
    return str(state)


def issue_ticket(event: Event) -> Ticket:
    """The ticket a ``ticket.issued`` event creates."""
    if event.type is not EventType.TICKET_ISSUED or event.ticket_id is None:
        raise IllegalTransition("不是取号事件")
    d = event.details
    return Ticket(
        id=event.ticket_id,
        hall_id=d["hall_id"],
        service_code=d["service_code"],
        number_group=d["number_group"],
        business_day=date.fromisoformat(d["business_day"]),
        seq=d["seq"],
        display_number=d["display_number"],
        purpose=d["purpose"],
        priority_class=d.get("priority_class"),
        state=TicketState.WAITING,
        issued_at=event.at,
        queue_key=event.at,
        appointment_start=_dt(d.get("appointment_start")),
        appointment_end=_dt(d.get("appointment_end")),
    )


def apply_ticket(ticket: Ticket, event: Event) -> Ticket:
    """Fold one event into a ticket; raise ``IllegalTransition`` if its state forbids it."""
    target: TicketState = _check(
        TICKET_TRANSITIONS, event.type, ticket.state, f"号码 {ticket.display_number} "
    )
    d = event.details
    t = event.type
    changes: dict[str, Any] = {"state": target}
    if t is EventType.TICKET_CALLED:
        changes |= {
            "counter_number": event.counter_number,
            "called_at": event.at,
            "first_called_at": ticket.first_called_at or event.at,
            "target_counter": None,
            "parked_by": None,
        }
    elif t is EventType.TICKET_RECALLED:
        changes |= {"recall_count": ticket.recall_count + 1, "called_at": event.at}
    elif t is EventType.TICKET_STARTED:
        changes["serve_started_at"] = event.at
    elif t in (EventType.TICKET_FINISHED, EventType.TICKET_NO_SHOW, EventType.TICKET_CANCELLED):
        changes |= {"finished_at": event.at, "counter_number": None}
    elif t is EventType.TICKET_TRANSFERRED:
        changes |= {
            "service_code": d.get("to_service") or ticket.service_code,
            "target_counter": d.get("to_counter"),
            "queue_key": _required_dt(d, "queue_key"),
            "counter_number": None,
            "serve_started_at": None,
            "called_at": None,
            "recall_count": 0,
        }
    elif t is EventType.TICKET_PARKED:
        changes |= {"counter_number": None, "parked_by": ticket.counter_number}
    elif t is EventType.TICKET_CALLED_BACK:
        changes |= {
            "target_counter": d.get("to_counter", ticket.parked_by),
            "queue_key": _required_dt(d, "queue_key"),
            "serve_started_at": None,
            "called_at": None,
            "recall_count": 0,
        }
    return dataclasses.replace(ticket, **changes)


def apply_counter(counter: CounterStatus, event: Event) -> CounterStatus:
    """Fold one event into a counter's status."""
    target: CounterState = _check(
        COUNTER_TRANSITIONS, event.type, counter.state, f"{counter.number}号窗口"
    )
    changes: dict[str, Any] = {"state": target, "state_since": event.at}
    if event.type is EventType.COUNTER_OPENED:
        changes["clerk"] = event.details.get("clerk") or event.actor
    elif event.type is EventType.COUNTER_PAUSED:
        changes["pause_reason"] = event.details["reason"]
    elif event.type is EventType.COUNTER_RESUMED:
        changes["pause_reason"] = None
    elif event.type is EventType.COUNTER_CLOSED:
        changes |= {"pause_reason": None, "clerk": None}
    if target == counter.state and event.type is EventType.TICKET_RECALLED:
        changes["state_since"] = counter.state_since
    return dataclasses.replace(counter, **changes)


def replay_tickets(events: Iterable[Event]) -> dict[int, Ticket]:
    """Rebuild every ticket from the log, in log order."""
    tickets: dict[int, Ticket] = {}
    for event in events:
        if event.ticket_id is None:
            continue
        if event.type is EventType.TICKET_ISSUED:
            tickets[event.ticket_id] = issue_ticket(event)
        else:
            tickets[event.ticket_id] = apply_ticket(tickets[event.ticket_id], event)
    return tickets


def _dt(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _required_dt(details: Mapping[str, Any], key: str) -> datetime:
    value = _dt(details.get(key))
    if value is None:
        raise IllegalTransition(f"事件缺少 {key}")
    return value
