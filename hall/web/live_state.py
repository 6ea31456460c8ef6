"""The screen state of one hall as a pure fold over its events.

The live hub keeps one ``ScreenState`` per hall, starting from ``QueueService.snapshot`` and
folding each event read from the log. ``apply`` returns the patch a client applies to its own
copy; folding every event after a snapshot must give the snapshot taken at the later seq (the
live tests compare them).
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from hall.domain.tickets import (
    COUNTER_TRANSITIONS,
    CounterState,
    CounterStatus,
    Event,
    EventType,
    apply_counter,
)

RECENT_CALLS = 20  # the snapshot's default length of the recent-calls list (screens filter it)

# Ticket events that take a ticket off the counter it was active at.
_ENDS_ACTIVE = frozenset(
    {
        EventType.TICKET_FINISHED,
        EventType.TICKET_NO_SHOW,
        EventType.TICKET_CANCELLED,
        EventType.TICKET_TRANSFERRED,
        EventType.TICKET_PARKED,
    }
)


class FoldError(Exception):
    """An event does not fit the state; the hub re-reads a snapshot."""


class ScreenState:
    """A hall snapshot (the dict ``QueueService.snapshot`` returns) kept current by events."""

    def __init__(self, snapshot: dict[str, Any]) -> None:
        self.data: dict[str, Any] = copy.deepcopy(snapshot)
        self.hall_id: str = self.data["hall"]["id"]
        self._counters: dict[int, dict[str, Any]] = {c["number"]: c for c in self.data["counters"]}
        self._status: dict[int, CounterStatus] = {
            c["number"]: CounterStatus(
                hall_id=self.hall_id,
                number=c["number"],
                state=CounterState(c["state"]),
                state_since=datetime.fromisoformat(c["state_since"]),
                pause_reason=c["pause_reason"],
                clerk=None,
            )
            for c in self.data["counters"]
        }

    @property
    def seq(self) -> int:
        value: int = self.data["seq"]
        return value

    def apply(self, seq: int, event: Event) -> dict[str, Any]:
        """Fold the event with hall seq ``seq``; return the patch (changed parts only)."""
        if seq != self.seq + 1:
            raise FoldError(f"expected seq {self.seq + 1}, got {seq}")
        patch: dict[str, Any] = {}
        waiting: dict[str, int] = self.data["waiting"]
        d = event.details
        service = d.get("service_code")
        number = d.get("display_number")
        t = event.type

        def bump(code: Any, delta: int) -> None:
            if isinstance(code, str) and code in waiting:
                waiting[code] = max(0, waiting[code] + delta)
                patch.setdefault("waiting", {})[code] = waiting[code]

        entry = self._counters.get(event.counter_number) if event.counter_number else None
        was_active = (
            entry is not None
            and entry["ticket"] is not None
            and entry["ticket"]["number"] == number
        )
        if t is EventType.TICKET_ISSUED or t is EventType.TICKET_CALLED_BACK:
            bump(service, +1)
        elif t is EventType.TICKET_CALLED or (t is EventType.TICKET_CANCELLED and not was_active):
            bump(service, -1)
        elif t is EventType.TICKET_TRANSFERRED:
            bump(d.get("to_service") or service, +1)

        if entry is not None and t in COUNTER_TRANSITIONS:
            if t is EventType.TICKET_CANCELLED and not was_active:
                pass  # a waiting ticket cancelled by a clerk does not move the counter
            else:
                self._fold_counter(entry, event, number, service)
                patch["counters"] = [copy.deepcopy(entry)]

        if t in (EventType.TICKET_CALLED, EventType.TICKET_RECALLED):
            call = {
                "seq": seq,
                "at": event.at.isoformat(),
                "number": number,
                "counter": event.counter_number,
                "recall": t is EventType.TICKET_RECALLED,
            }
            calls: list[dict[str, Any]] = self.data["recent_calls"]
            calls.insert(0, call)
            del calls[RECENT_CALLS:]
            patch["call"] = dict(call)
        self.data["seq"] = seq
        return patch

    def _fold_counter(self, entry: dict[str, Any], event: Event, number: Any, service: Any) -> None:
        status = self._status[entry["number"]]
        try:
            status = apply_counter(status, event)
        except Exception as exc:  # IllegalTransition: our copy is out of step with the log
            raise FoldError(str(exc)) from exc
        self._status[entry["number"]] = status
        entry["state"] = str(status.state)
        entry["state_since"] = status.state_since.isoformat()
        entry["pause_reason"] = status.pause_reason
        t = event.type
        if t is EventType.TICKET_CALLED:
            entry["ticket"] = {"number": number, "service": service, "state": "called"}
        elif t is EventType.TICKET_STARTED and entry["ticket"] is not None:
            entry["ticket"] = {**entry["ticket"], "state": "serving"}
        elif t in _ENDS_ACTIVE:
            entry["ticket"] = None


def public_event(event: Event) -> dict[str, Any]:
    """What screens may show of an event: no actor, ids or free-text reasons."""
    d = event.details
    out: dict[str, Any] = {
        "type": str(event.type),
        "at": event.at.isoformat(),
        "counter": event.counter_number,
        "number": d.get("display_number"),
        "service": d.get("service_code"),
    }
    if event.type is EventType.TICKET_TRANSFERRED:
        out["to_service"] = d.get("to_service")
        out["to_counter"] = d.get("to_counter")
    return out


def full_event(event: Event) -> dict[str, Any]:
    """Everything about an event, for staff dashboards."""
    return {
        **public_event(event),
        "actor": event.actor,
        "ticket_id": event.ticket_id,
        "details": dict(event.details),
    }
