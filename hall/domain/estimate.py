"""Queue position and wait estimates shown on tickets, kiosks and screens (standard library only).

The estimate is deliberately simple and monotone: ``wait = people ahead × mean service time ÷
counters serving the queue``. The mean comes from the latest finished services of the queue,
trimmed so that one forgotten "finish" press or one instant skip does not swing it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["MIN_SAMPLES", "estimate_wait", "mean_service_seconds"]

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
