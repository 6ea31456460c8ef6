"""Call-next choice: which waiting ticket a counter calls (standard library only).

Rules, in order:

1. **Eligibility.** A candidate targeted to another counter (``target_counter`` set and not
   this counter) is never eligible. A candidate targeted to this counter is eligible whatever
   its service. An untargeted candidate is eligible when its service is one the counter serves.
2. **Targeted** tickets (transferred or called back to this counter) come first, oldest
   ``queue_key`` first. Reason ``"targeted"``; the counter's ``normal_since_priority`` is kept.
3. **Appointments** whose slot is open now, ``start - early <= now <= end + late`` (``end``
   defaults to ``start``), come next, earliest slot first, then ``queue_key``. They are booked
   capacity, so neither the priority ratio nor aging holds them back. Reason
   ``"appointment"``; ``normal_since_priority`` is kept. A late check-in (``now > end + late``)
   and an early one (``now < start - early``) are ranked as walk-ins, by their ``priority``
   flag.
4. **Priority ratio.** A priority call is *due* when ``priority_ratio == 0`` or the counter has
   made ``priority_ratio`` normal calls since its last priority call. When due and a priority
   ticket waits, the oldest priority ticket (any served service) is called: reason
   ``"priority"``, ``normal_since_priority`` becomes 0. When not due, a normal ticket is called
   if any waits; if none does, the oldest priority ticket is called anyway (reason
   ``"priority"``, counter reset to 0).
5. **Aging.** When a priority ticket would be called under rule 4 but the oldest normal ticket
   has ``queue_key < now - max_bypass`` and is older than that priority ticket (so it is being
   passed over), that normal ticket is called instead: reason ``"aged"``. So no normal ticket
   waits more than ``max_bypass`` past its turn because of priority tickets.
6. **Across services** (normal calls): ``"order"`` takes the head (oldest ``queue_key``) of the
   first service in the counter's list that has an eligible ticket; ``"weighted"`` takes the
   service whose head has the largest ``(now - queue_key) * weight`` (waits below zero count as
   zero). Normal and aged calls add 1 to ``normal_since_priority``.

Ties are always broken by ``queue_key``, then ``ticket_id``, so the result is deterministic.

:func:`rank` lists every eligible candidate in the order :func:`choose_next` would pick them if
each earlier one vanished before being called (a lost race), with the counter's state
unchanged; its first element is what :func:`choose_next` returns.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = [
    "CALL_ORDERS",
    "Candidate",
    "Choice",
    "CounterContext",
    "PolicySettings",
    "appointment_open",
    "choose_next",
    "is_eligible",
    "new_normal_since_priority",
    "rank",
    "rank_with_reasons",
    "served_codes",
]

CALL_ORDERS = ("order", "weighted")
_ZERO = timedelta(0)


@dataclass(frozen=True, slots=True)
class Candidate:
    ticket_id: int
    service_code: str
    queue_key: datetime  # order within its queue: issue time, or where a transfer placed it
    priority: bool  # has a priority class (老年人, 残疾人, 军人, 孕妇 …)
    target_counter: int | None  # transferred or called back to one specific counter
    appointment_start: datetime | None = None  # checked-in appointment slot, if any
    appointment_end: datetime | None = None


@dataclass(frozen=True, slots=True)
class CounterContext:
    number: int
    services: tuple[tuple[str, int], ...]  # (service code, weight) in configured order
    call_order: str  # "order" | "weighted"
    normal_since_priority: int  # normal calls at this counter since its last priority call


@dataclass(frozen=True, slots=True)
class PolicySettings:
    priority_ratio: int  # 1 priority per N normal; 0 = priority always first
    max_bypass: timedelta  # a normal ticket passed over longer than this is called first
    appointment_early: timedelta
    appointment_late: timedelta


@dataclass(frozen=True, slots=True)
class Choice:
    candidate: Candidate
    normal_since_priority: int  # the counter's new value after this call
    reason: str  # "targeted", "priority", "aged", "appointment", "order", "weighted"


def _key(c: Candidate) -> tuple[datetime, int]:
    return (c.queue_key, c.ticket_id)


def is_eligible(
    candidate: Candidate, counter: CounterContext, served: AbstractSet[str] | None = None
) -> bool:
    """Rule 1: targeted here, or untargeted and of a service the counter serves (``served``:
    the counter's service codes, for a caller that checks many candidates)."""
    if candidate.target_counter is not None:
        return candidate.target_counter == counter.number
    if served is None:
        served = served_codes(counter)
    return candidate.service_code in served


def served_codes(counter: CounterContext) -> frozenset[str]:
    return frozenset(code for code, _ in counter.services)


def appointment_open(candidate: Candidate, settings: PolicySettings, now: datetime) -> bool:
    """True when the candidate checked in for a slot that is open now (with the grace times)."""
    start = candidate.appointment_start
    if start is None:
        return False
    end = candidate.appointment_end or start
    start, end = _zoned(start, now), _zoned(end, now)
    # Compared as differences: two datetimes always subtract, while a stored slot near
    # datetime.min or datetime.max overflows when a grace time is added to it.
    return start - now <= settings.appointment_early and now - end <= settings.appointment_late


def _zoned(t: datetime, now: datetime) -> datetime:
    """``t`` comparable with ``now``: the driver returns the extreme timestamps without a zone."""
    if (t.tzinfo is None) == (now.tzinfo is None):
        return t
    return t.replace(tzinfo=None) if now.tzinfo is None else t.replace(tzinfo=UTC)


def _validate(counter: CounterContext, settings: PolicySettings) -> None:
    if counter.call_order not in CALL_ORDERS:
        raise ValueError(f"unknown call order {counter.call_order!r}")
    if settings.priority_ratio < 0:
        raise ValueError("priority_ratio must be >= 0")
    if counter.normal_since_priority < 0:
        raise ValueError("normal_since_priority must be >= 0")


class _Normals:
    """Normal tickets per service, each queue oldest first, plus the overall oldest."""

    def __init__(self, normals: list[Candidate], counter: CounterContext) -> None:
        self._order: list[str] = []
        self._weight: dict[str, int] = {}
        for code, weight in counter.services:
            if code not in self._weight:
                self._order.append(code)
                self._weight[code] = weight
        queues: dict[str, list[Candidate]] = {code: [] for code in self._order}
        for c in normals:
            queues[c.service_code].append(c)
        self._queues = {code: deque(sorted(q, key=_key)) for code, q in queues.items()}
        self._taken: set[int] = set()
        self._oldest = deque(sorted(normals, key=_key))

    def __bool__(self) -> bool:
        return bool(self._oldest)

    def _drop_taken(self) -> None:
        while self._oldest and self._oldest[0].ticket_id in self._taken:
            self._oldest.popleft()

    def oldest(self) -> Candidate:
        self._drop_taken()
        return self._oldest[0]

    def take(self, c: Candidate) -> None:
        queue = self._queues[c.service_code]
        assert queue[0] is c
        queue.popleft()
        self._taken.add(c.ticket_id)
        self._drop_taken()

    def next_by_service(self, call_order: str, now: datetime) -> Candidate:
        heads = [self._queues[code][0] for code in self._order if self._queues[code]]
        if call_order == "order":
            return heads[0]

        def score(c: Candidate) -> tuple[timedelta, datetime, int]:
            wait = max(now - c.queue_key, _ZERO) * self._weight[c.service_code]
            # largest weighted wait first, then oldest queue_key, then lowest ticket id
            return (-wait, c.queue_key, c.ticket_id)

        return min(heads, key=score)


def rank_with_reasons(
    candidates: Sequence[Candidate],
    counter: CounterContext,
    settings: PolicySettings,
    now: datetime,
) -> Iterator[tuple[Candidate, str]]:
    """Eligible candidates in preference order, each with the reason it would be called."""
    _validate(counter, settings)
    targeted: list[Candidate] = []
    appointments: list[Candidate] = []
    priority: list[Candidate] = []
    normal: list[Candidate] = []
    seen: set[int] = set()
    # The served codes as a set, once: this loop sees every head of every queue on each
    # call-next (about 70), and scanning the counter's services per head was most of its time.
    served = served_codes(counter)
    for c in candidates:
        if c.ticket_id in seen or not is_eligible(c, counter, served):
            continue
        seen.add(c.ticket_id)
        if c.target_counter is not None:
            targeted.append(c)
        elif appointment_open(c, settings, now):
            appointments.append(c)
        elif c.priority:
            priority.append(c)
        else:
            normal.append(c)

    for c in sorted(targeted, key=_key):
        yield c, "targeted"

    def slot(c: Candidate) -> tuple[datetime, datetime, int]:
        assert c.appointment_start is not None
        return (c.appointment_start, c.queue_key, c.ticket_id)

    for c in sorted(appointments, key=slot):
        yield c, "appointment"

    prio = deque(sorted(priority, key=_key))
    normals = _Normals(normal, counter)
    due = settings.priority_ratio == 0 or counter.normal_since_priority >= settings.priority_ratio
    aged_before = now - settings.max_bypass
    # The counter's state does not change while ranking, so once due, priority stays due.
    while prio and normals and due:
        head = normals.oldest()
        if head.queue_key < aged_before and _key(head) < _key(prio[0]):
            normals.take(head)
            yield head, "aged"
        else:
            yield prio.popleft(), "priority"
    while normals:
        c = normals.next_by_service(counter.call_order, now)
        normals.take(c)
        yield c, counter.call_order
    for c in prio:
        yield c, "priority"


def rank(
    candidates: Sequence[Candidate],
    counter: CounterContext,
    settings: PolicySettings,
    now: datetime,
) -> list[Candidate]:
    """Full preference order; the first is what :func:`choose_next` picks."""
    return [c for c, _ in rank_with_reasons(candidates, counter, settings, now)]


def choose_next(
    candidates: Sequence[Candidate],
    counter: CounterContext,
    settings: PolicySettings,
    now: datetime,
) -> Choice | None:
    """The ticket this counter should call now, or None when no candidate is eligible."""
    first = next(rank_with_reasons(candidates, counter, settings, now), None)
    if first is None:
        return None
    candidate, reason = first
    return Choice(candidate, new_normal_since_priority(counter, reason), reason)


def new_normal_since_priority(counter: CounterContext, reason: str) -> int:
    """The counter's ``normal_since_priority`` after a call made for ``reason``."""
    if reason == "priority":
        return 0
    if reason in ("targeted", "appointment"):
        return counter.normal_since_priority
    return counter.normal_since_priority + 1
