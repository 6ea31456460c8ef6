"""Queue position and wait estimates shown on tickets, kiosks and screens (standard library only).

Two estimators live here:

* :func:`estimate_wait`, the naive one: ``people ahead × mean service time ÷ counters serving
  the queue``. Kept as the baseline that ``bench/eta.py`` measures ours against.
* :func:`forecast_wait`, the one citizens are shown: it plays the queues forward over the
  counters that are open now, knowing which services each counter serves (and so what else
  competes for it), the priority ratio, and each queue's recent time per ticket at the
  counter; it answers a range, not a false precision.

Means come from the latest finished services of a queue, trimmed so that one forgotten
"finish" press or one instant skip does not swing them.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "MIN_SAMPLES",
    "CallCurve",
    "OpenCounter",
    "QueueState",
    "WaitForecast",
    "aged_priority_wait",
    "call_curve",
    "curve_forecast",
    "estimate_wait",
    "forecast_wait",
    "mean_service_seconds",
    "spread",
    "typical_seconds",
]

MIN_SAMPLES = 3
"""Fewer valid recent durations than this and the configured default is used."""


def estimate_wait(
    position: int, mean_service_seconds: float, serving_counters: int
) -> float | None:
    """Seconds until this ticket is likely called; None when no counter serves the queue now.

    ``position`` is the number of people ahead (0 = next to be called).
    """
    if position < 0:
        raise ValueError(f"position must be >= 0, got {position}")
    if not math.isfinite(mean_service_seconds) or mean_service_seconds < 0:
        raise ValueError(f"mean service time must be finite and >= 0, got {mean_service_seconds}")
    if serving_counters <= 0:
        return None
    return position * mean_service_seconds / serving_counters


def mean_service_seconds(
    recent_durations: Sequence[float], default_seconds: float, *, window: int = 20
) -> float:
    """Trimmed mean of the most recent service durations, default when there are too few (<3).

    ``recent_durations`` is newest first (as the repository returns it); only the first
    ``window`` are used. Negative and non-finite values are ignored. The largest and smallest
    10% (at least one of each) are dropped before averaging.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    values = sorted(float(d) for d in recent_durations[:window] if math.isfinite(d) and d >= 0)
    if len(values) < MIN_SAMPLES:
        return default_seconds
    trim = max(1, len(values) // 10)
    kept = values[trim : len(values) - trim]
    return math.fsum(kept) / len(kept)


# --- the forecast shown to citizens ------------------------------------------------------

PAUSE_GUESS_S = 600.0
"""How long a paused counter is assumed to stay away in all (a clerk's short break)."""
DEFAULT_CV = 0.6
"""Spread (standard deviation ÷ mean) of service times assumed with too few samples."""
RANGE_FLOOR = 0.2
"""Relative half-width every range keeps at least: arrivals of priority citizens, pauses and
no-shows move a wait in ways the queue alone cannot tell."""
RANGE_MIN_S = 60.0
"""Absolute half-width every range keeps at least (a range is shown in whole minutes)."""
_MAX_STEPS = 400


@dataclass(frozen=True, slots=True)
class OpenCounter:
    """A counter that serves the ticket's service and is open (or briefly paused) now."""

    number: int
    services: tuple[tuple[str, int], ...]  # (service code, weight) in configured order
    call_order: str  # "order" | "weighted"
    busy_s: float  # seconds until it is free to call (0 when idle)


@dataclass(frozen=True, slots=True)
class QueueState:
    """What the forecast knows about the queues when a ticket is issued (or looked at)."""

    service: str
    priority: bool  # the ticket has a priority class
    normal_ahead: int  # normal tickets of its service queued before it
    priority_waiting: int  # priority tickets of its service waiting (called ahead by ratio)
    waiting: Mapping[str, float]  # other services' waiting tickets these counters will serve
    service_s: Mapping[str, float]  # mean counter time per ticket of each service
    cv: float  # spread of the ticket's own service times (DEFAULT_CV with too few of them)
    priority_ratio: int  # 1 priority call per this many normal ones; 0 = always first
    priority_share: float  # of the service's tickets, the priority ones (recently)


@dataclass(frozen=True, slots=True)
class WaitForecast:
    """An expected wait with the range shown to citizens (seconds)."""

    seconds: float
    low_s: float
    high_s: float
    calls_before: int  # calls the forecast expects before this ticket's


def spread(recent_durations: Sequence[float], *, window: int = 20) -> float:
    """Coefficient of variation of the recent durations (trimmed like the mean), or the
    default with too few of them."""
    values = sorted(float(d) for d in recent_durations[:window] if math.isfinite(d) and d >= 0)
    if len(values) < MIN_SAMPLES:
        return DEFAULT_CV
    trim = len(values) // 10  # none below 10 samples
    kept = values[trim : len(values) - trim]
    mean = math.fsum(kept) / len(kept)
    if mean <= 0:
        return DEFAULT_CV
    var = math.fsum((v - mean) ** 2 for v in kept) / (len(kept) - 1)  # kept: 3 or more
    return min(2.0, math.sqrt(var) / mean)


def forecast_wait(state: QueueState, counters: Sequence[OpenCounter]) -> WaitForecast | None:
    """When the ticket is likely called, by playing the queues forward; None when no open
    counter serves its service.

    The ticket's line (its service's normal tickets, or its priority tickets for a priority
    one) is played forward by :func:`call_curve` just far enough to reach it; see there for
    the model. The range widens with the spread of service times and never falls below
    ``RANGE_FLOOR`` and ``RANGE_MIN_S``.
    """
    curve = call_curve(state, counters)
    if curve is None:
        return None
    ahead = state.priority_waiting if state.priority else state.normal_ahead
    return curve_forecast(curve, ahead, state)


def curve_forecast(
    curve: CallCurve, ahead: int, state: QueueState, *, elapsed_s: float = 0.0
) -> WaitForecast | None:
    """The forecast of the ticket with ``ahead`` of its line ahead of it, read off a curve
    played ``elapsed_s`` ago (``state`` gives the service's mean time and spread)."""
    point = curve.at(ahead)
    if point is None:
        return None
    return _forecast(max(0.0, point[0] - elapsed_s), point[1], state)


@dataclass(frozen=True, slots=True)
class CallCurve:
    """When the calls of one line would come, as one play of the queues found them: the line
    is a service's normal tickets, or its priority tickets (``QueueState.priority``).

    ``times[k]`` is the seconds from the moment it was played until the line's (k+1)-th call,
    i.e. the call of the ticket with k of the line ahead of it; ``calls[k]`` the calls of any
    line before that one. Past the end (the play stops after ``_MAX_STEPS`` calls, whatever
    the queue), the line goes on at the pace it moved so far: ``end_s`` after ``end_taken``
    calls of the line and ``end_calls`` in all. ``steps`` is what the play cost (one per
    counter turn), for tests that hold it bounded.
    """

    times: tuple[float, ...]
    calls: tuple[int, ...]
    end_s: float
    end_taken: int
    end_calls: int
    pace_s: float
    steps: int
    capped: bool
    """The play stopped at ``_MAX_STEPS``: every ticket past the end is extrapolated."""

    def at(self, ahead: int) -> tuple[float, int] | None:
        """(seconds, calls before) of the ticket with ``ahead`` of its line ahead of it."""
        if ahead < 0:
            raise ValueError(f"ahead must be >= 0, got {ahead}")
        if ahead < len(self.times):
            return self.times[ahead], self.calls[ahead]
        if not self.times:
            return None
        left = ahead - self.end_taken
        return self.end_s + left * self.pace_s, self.end_calls + left


def call_curve(
    state: QueueState, counters: Sequence[OpenCounter], *, phantoms: int = 0
) -> CallCurve | None:
    """Play the queues forward over the open counters serving ``state.service`` and note when
    each call of the ticket's line comes (see :class:`CallCurve`); None when no open counter
    serves the service.

    Each open counter serving the service calls in turn as it becomes free, as the call
    policy would: a priority ticket when one is due by the ratio (every counter is taken to
    be half-way through its ratio), else a normal ticket from the first of its services with
    anyone waiting ("order") or from the one with the most work per counter and weight
    ("weighted": that queue has the oldest head). Each call keeps the counter for the
    service's mean time. Priority citizens still to come are expected at
    ``priority_share``: as many per normal call of the service as they are among its tickets
    (at most what the ratio lets through ahead of normal ones). Other arrivals are not
    guessed.

    The normal line holds ``normal_ahead`` and the ticket (a priority ticket: the normal
    tickets waiting), plus ``phantoms`` tickets behind it, which are played (so that tickets
    issued soon after can read the curve) but do not make their queue look longer to
    "weighted" counters, as tickets not yet issued would not. The priority line has no end:
    its curve stops at ``priority_waiting + 1 + phantoms`` calls.
    """
    if state.normal_ahead < 0 or state.priority_waiting < 0 or phantoms < 0:
        raise ValueError("counts must be >= 0")
    if state.priority_ratio < 0:
        raise ValueError("priority_ratio must be >= 0")
    target = state.service
    serving = [c for c in counters if any(code == target for code, _ in c.services)]
    if not serving:
        return None
    ratio = state.priority_ratio
    prio_line = state.priority
    # Queues by index: 0 is the target's service (its normal tickets); priority tickets are
    # counted apart.
    codes = [target] + [k for k in state.waiting if k != target]
    index = {code: n for n, code in enumerate(codes)}
    hidden = 0 if prio_line else phantoms  # tickets of queue 0 no counter sees yet
    counts = [float(state.normal_ahead + (0 if prio_line else 1 + phantoms))]
    counts += [max(0.0, float(state.waiting[k])) for k in codes[1:]]
    length = state.priority_waiting + 1 + phantoms if prio_line else int(counts[0])
    priority_left = math.inf if prio_line else float(state.priority_waiting)
    expected = 0.0  # priority citizens still to come who are called before the ticket
    # At most what the ratio lets through ahead of normal ones, and never all (read on the
    # normal line only).
    share = min(max(0.0, state.priority_share), 1.0 / (ratio + 1), 0.9)
    per_normal = share / (1.0 - share)
    own_s = state.service_s.get(target, 0.0)
    durations = [state.service_s.get(code, own_s) for code in codes]
    served_by = [0] * len(codes)
    plans: list[tuple[list[tuple[int, int]], bool]] = []
    for c in serving:
        mine = [(index[code], w) for code, w in c.services if code in index]
        for n, _ in mine:
            served_by[n] += 1
        plans.append((mine, c.call_order == "weighted"))
    since = [ratio // 2] * len(serving)
    heap = [(max(0.0, c.busy_s), i) for i, c in enumerate(serving)]
    heapq.heapify(heap)
    times: list[float] = []
    calls_before: list[int] = []
    calls = 0
    steps = 0
    end: tuple[float, int, int, float] | None = None
    capped = False

    def work(queue: tuple[int, int]) -> float:
        """How long the head of a queue has waited, roughly: the more work per counter it
        holds (by weight), the older its head ("weighted" counters; ties to the first)."""
        n, weight = queue
        seen = counts[n] - hidden if n == 0 else counts[n]
        return weight * max(0.0, seen) * durations[n] / served_by[n]

    while len(times) < length:
        at, i = heapq.heappop(heap)
        steps += 1
        if calls >= _MAX_STEPS and times and at > 0:
            # Long queues: the rest at the pace the line has moved so far.
            end = (at, len(times), calls, at / len(times))
            capped = True
            break
        mine, weighted = plans[i]
        # Expected priority citizens are fractions: one is called once half of one is due.
        due_priority = priority_left >= 0.5 or expected >= 0.5
        # A priority call when one is due and the counter has made its ratio of normal calls
        # since its last one (at ratio 0 it always has) or has no one else to call.
        if due_priority and (since[i] >= ratio or not any(counts[n] > 0 for n, _ in mine)):
            if priority_left >= 0.5:
                priority_left -= 1.0
            else:
                expected -= 1.0
            since[i] = 0
            pick = 0
            if prio_line:
                times.append(at)
                calls_before.append(calls)
        else:
            # Never empty: until the line's last call the ticket's own queue has someone on
            # the normal line, and the priority line takes this branch only while the
            # counter has someone else to call; so no counter ever drops out.
            ready = [(n, w) for n, w in mine if counts[n] > 0]
            pick = max(ready, key=work)[0] if weighted else ready[0][0]
            if pick == 0 and not prio_line:
                times.append(at)
                calls_before.append(calls)
                expected += per_normal
            counts[pick] -= 1.0
            since[i] += 1
        calls += 1
        heapq.heappush(heap, (at + durations[pick], i))
    if end is None:
        # The whole line was played: past it, a call per mean time over its counters.
        end = (times[-1], len(times) - 1, calls_before[-1], own_s / len(serving))
    return CallCurve(tuple(times), tuple(calls_before), *end, steps, capped)


def aged_priority_wait(priority_s: float, normal_s: float, max_bypass_s: float) -> float:
    """When a priority ticket is called under the policy's aging rule (rule 5): while normal
    tickets wait longer than ``max_bypass_s``, the oldest of them goes before any younger
    priority ticket, so a priority ticket then waits about as long as a normal one issued with
    it (``normal_s``); otherwise it goes ahead (``priority_s``)."""
    if normal_s > max_bypass_s:
        return max(priority_s, normal_s)
    return priority_s


def _forecast(seconds: float, calls: int, state: QueueState) -> WaitForecast:
    own = state.service_s.get(state.service, 0.0)
    # Summed service times spread like cv/sqrt(n) around their mean; the whole forecast also
    # carries the model's own error (RANGE_FLOOR), and a floor in seconds.
    relative = RANGE_FLOOR + 1.28 * state.cv / math.sqrt(max(1, calls))
    half = max(RANGE_MIN_S, seconds * relative, min(own, seconds) * 0.5)
    return WaitForecast(
        seconds=seconds,
        low_s=max(0.0, seconds - half),
        high_s=seconds + half,
        calls_before=calls,
    )


def typical_seconds(
    recent_durations: Sequence[float], default_seconds: float, *, window: int = 20
) -> float:
    """Mean of the most recent durations without the absurd ones, default when too few.

    Unlike :func:`mean_service_seconds` it keeps the long tail that service times have (a
    trimmed mean of skewed times is biased low, and so is every wait built on it): only
    values beyond four times the median either way (a forgotten "finish", an instant skip)
    are dropped.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    values = sorted(float(d) for d in recent_durations[:window] if math.isfinite(d) and d >= 0)
    if len(values) < MIN_SAMPLES:
        return default_seconds
    median = values[len(values) // 2]
    kept = [v for v in values if median / 4 <= v <= median * 4]  # the median at least
    return math.fsum(kept) / len(kept)
