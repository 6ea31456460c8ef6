"""The numbers a counter will call next, in the order call-next would call them.

The kernel's call policy (``hall.domain.policy``) decides one call at a time: tickets sent to
this counter (transfers, call-backs) first, then open appointments, then priority tickets
interleaved with normal ones by the counter's ratio and its tally, aged normal tickets, and the
counter's order across services. The terminal replays that decision call after call on the
heads of the counter's queues, carrying the tally forward, as if nobody else called and
nobody new arrived: what it lists is what F1 would call, then the one after, and so on.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from hall.domain.policy import (
    Candidate,
    CounterContext,
    PolicySettings,
    appointment_open,
    choose_next,
    new_normal_since_priority,
    rank_with_reasons,
)
from hall.domain.tickets import Ticket


@dataclass(frozen=True, slots=True)
class NextUp:
    """One ticket this counter would call, with why (the policy's reason)."""

    number: str
    service_code: str
    reason: str  # "targeted", "appointment", "priority", "aged", "order", "weighted"
    priority: bool
    transferred: bool  # moved here from another service or window
    called_back: bool  # parked at this counter and called back
    replayed: bool  # False: past what the replay could see, ordered within its queue only

    def as_json(self) -> dict[str, object]:
        return {
            "number": self.number,
            "service": self.service_code,
            "reason": self.reason,
            "priority": self.priority,
            "transferred": self.transferred,
            "called_back": self.called_back,
        }


def _group(c: Candidate) -> tuple[str, bool] | int:
    """Which fetched list a candidate came from (``repo.candidates`` caps each)."""
    if c.target_counter is not None:
        return c.target_counter
    return (c.service_code, c.priority)


def _lane(c: Candidate, settings: PolicySettings, now: datetime) -> object:
    """The policy's ordered lane of a candidate: tickets sent here; each open appointment on
    its own (ordered by slot); walk-ins per service and priority."""
    if c.target_counter is not None:
        return "targeted"
    if appointment_open(c, settings, now):
        return c.ticket_id
    return (c.service_code, c.priority)


def upcoming(
    found: Sequence[tuple[Candidate, Ticket]],
    counter: CounterContext,
    settings: PolicySettings,
    now: datetime,
    *,
    per_class: int,
    per_queue: int,
    overall: int,
) -> list[NextUp]:
    """Tickets in the order this counter would call them: replayed until ``overall`` are
    listed and at least ``per_queue`` of each service (or none are left); callers cut each
    queue's list. ``found`` is what ``repo.candidates(per_class=...)`` read.

    The replay stops when a list that was read up to its cap runs out (what comes after it
    was not read); queues still short are then filled with their own remaining tickets in
    the policy's order, marked ``replayed=False``.
    """
    tickets = {c.ticket_id: t for c, t in found}
    sizes = Counter(_group(c) for c, _ in found)
    capped = {g for g, n in sizes.items() if n >= per_class}
    left = [c for c, _ in found]
    remaining = Counter(c.service_code for c in left)
    shown: Counter[str] = Counter()
    used: Counter[tuple[str, bool] | int] = Counter()
    out: list[NextUp] = []
    ctx = counter

    def note(c: Candidate, reason: str, replayed: bool) -> None:
        t = tickets[c.ticket_id]
        shown[c.service_code] += 1
        out.append(
            NextUp(
                number=t.display_number,
                service_code=c.service_code,
                reason=reason,
                priority=c.priority,
                transferred=(t.queue_key != t.issued_at or t.target_counter is not None)
                and t.parked_by is None,
                called_back=t.parked_by is not None,
                replayed=replayed,
            )
        )

    # The policy only ever takes the front of a lane (each kind of ticket of a service waits
    # in its own order), so each step asks it about the fronts alone: same choice, less work.
    lanes: dict[object, deque[Candidate]] = {}
    for c in sorted(left, key=lambda c: (c.queue_key, c.ticket_id)):
        lanes.setdefault(_lane(c, settings, now), deque()).append(c)
    while left:
        choice = choose_next([lane[0] for lane in lanes.values() if lane], ctx, settings, now)
        if choice is None:
            break
        c = choice.candidate
        lanes[_lane(c, settings, now)].popleft()
        left = [x for x in left if x.ticket_id != c.ticket_id]
        remaining[c.service_code] -= 1
        group = _group(c)
        used[group] += 1
        note(c, choice.reason, True)
        ctx = CounterContext(
            ctx.number, ctx.services, ctx.call_order, new_normal_since_priority(ctx, choice.reason)
        )
        if group in capped and used[group] >= sizes[group]:
            break  # the next of this list was not read: the replay cannot go further
        if len(out) >= overall and all(
            shown[code] >= per_queue or not remaining[code] for code, _ in counter.services
        ):
            break
    for code, _ in counter.services:
        rest = [c for c in left if c.service_code == code]
        for c, reason in rank_with_reasons(rest, ctx, settings, now):
            if shown[code] >= per_queue:
                break
            note(c, reason, False)
    return out
