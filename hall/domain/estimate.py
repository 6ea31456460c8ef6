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
    "OpenCounter",
    "QueueState",
    "WaitForecast",
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
    cv: float = DEFAULT_CV  # spread of the ticket's own service times
    priority_ratio: int = 3  # 1 priority call per this many normal ones; 0 = always first
    priority_share: float = 0.0  # of the service's tickets, the priority ones (recently)


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
    trim = max(1, len(values) // 10) if len(values) >= 10 else 0
    kept = values[trim : len(values) - trim] if trim else values
    mean = math.fsum(kept) / len(kept)
    if mean <= 0:
        return DEFAULT_CV
    var = math.fsum((v - mean) ** 2 for v in kept) / max(1, len(kept) - 1)
    return min(2.0, math.sqrt(var) / mean)


def forecast_wait(state: QueueState, counters: Sequence[OpenCounter]) -> WaitForecast | None:
    """When the ticket is likely called, by playing the queues forward; None when no open
    counter serves its service.

    Each open counter serving the ticket's service calls in turn as it becomes free, as the
    call policy would: a priority ticket of the service when one is due by the ratio (every
    counter is taken to be half-way through its ratio), else a normal ticket from the first
    of its services with anyone waiting ("order") or from the one with the most work per
    counter and weight ("weighted": that queue has the oldest head). Each call keeps the
    counter for the service's mean time. Priority citizens still to come are expected at
    ``priority_share``; other arrivals are not guessed. Past ``_MAX_STEPS`` calls the rest of
    the target's line is extrapolated at the pace it moved so far (the cost stays bounded
    whatever the queue). The range widens
    with the spread of service times and never falls below ``RANGE_FLOOR`` and
    ``RANGE_MIN_S``.
    """
    if state.normal_ahead < 0 or state.priority_waiting < 0:
        raise ValueError("counts must be >= 0")
    if state.priority_ratio < 0:
        raise ValueError("priority_ratio must be >= 0")
    target = state.service
    serving = [c for c in counters if any(code == target for code, _ in c.services)]
    if not serving:
        return None
    ratio = state.priority_ratio
    # Queues by index: 0 is the target's service. Its count holds the normals ahead plus the
    # target itself when it is a normal ticket; priority tickets are counted apart.
    codes = [target] + [k for k in state.waiting if k != target]
    index = {code: n for n, code in enumerate(codes)}
    counts = [float(state.normal_ahead + (0 if state.priority else 1))]
    counts += [max(0.0, float(state.waiting[k])) for k in codes[1:]]
    priority_left = float(state.priority_waiting + (1 if state.priority else 0))
    if not state.priority and state.priority_share > 0:
        # Priority citizens who come while it waits are called before it too: as many per
        # normal call as they are among the service's tickets (at most what the ratio lets
        # through ahead of normal ones).
        cap = 1.0 if ratio == 0 else 1.0 / (ratio + 1)
        share = min(state.priority_share, cap, 0.9)
        priority_left += state.normal_ahead * share / (1.0 - share)
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
    calls = 0.0
    taken = 0.0  # tickets of the target's own line (normal, or priority for a priority one)
    while heap:
        at, i = heapq.heappop(heap)
        if calls >= _MAX_STEPS and taken > 0 and at > 0:
            # Long queues: the rest at the pace the target's line has moved so far.
            # Calls of the line still before the target's own.
            left = max(0.0, (priority_left if state.priority else counts[0]) - 1.0)
            return _forecast(at + left * at / taken, round(calls + left), state)
        mine, weighted = plans[i]
        if priority_left > 0 and (
            ratio == 0 or since[i] >= ratio or not any(counts[n] > 0 for n, _ in mine)
        ):
            if state.priority and priority_left <= 1.0:
                return _forecast(at, round(calls), state)
            priority_left -= 1.0
            since[i] = 0
            pick = 0
            taken += 1.0 if state.priority else 0.0
        else:
            pick = -1
            best = -1.0
            for n, w in mine:
                if counts[n] <= 0:
                    continue
                if not weighted:
                    pick = n
                    break
                # How long the head of a queue has waited, roughly: the more work per
                # counter it holds, the older its head.
                score = w * counts[n] * durations[n] / served_by[n]
                if score > best:
                    pick, best = n, score
            if pick < 0:
                continue  # nothing more for this counter before the target: it drops out
            if pick == 0 and not state.priority and counts[0] <= 1.0:
                return _forecast(at, round(calls), state)
            counts[pick] -= 1.0
            since[i] += 1
            if pick == 0 and not state.priority:
                taken += 1.0
        calls += 1.0
        heapq.heappush(heap, (at + durations[pick], i))
    # Only reachable for a priority ticket when no counter would ever take priority: cannot
    # happen (a counter serving the service takes a priority ticket when nothing else waits).
    return None


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
    kept = [v for v in values if median / 4 <= v <= median * 4] or values
    return math.fsum(kept) / len(kept)
