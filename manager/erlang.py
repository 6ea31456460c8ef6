"""Erlang C (M/M/N): how many counters a queue needs for a target wait.

``a`` is the offered load in Erlangs: arrivals per hour × mean service time in hours. With
``n`` counters (n > a), the probability that a citizen waits at all is Erlang C:

    C(n, a) = n·B / (n − a·(1 − B))   with B = Erlang B(n, a)

where Erlang B comes from the stable recurrence B(0) = 1, B(k) = a·B(k−1) / (k + a·B(k−1)).
The share called within a target wait t (service level) is 1 − C·exp(−(n − a)·t / s), and the
mean wait is C·s / (n − a), with s the mean service time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MAX_COUNTERS = 1000


def erlang_b(n: int, a: float) -> float:
    if n < 0 or a < 0:
        raise ValueError("n and a must not be negative")
    b = 1.0
    for k in range(1, n + 1):
        b = a * b / (k + a * b)
    return b


def erlang_c(n: int, a: float) -> float:
    """Probability of waiting with ``n`` counters and load ``a``; 1.0 when n ≤ a (unstable)."""
    if a <= 0:
        return 0.0
    if n <= a:
        return 1.0
    b = erlang_b(n, a)
    return n * b / (n - a * (1 - b))


def service_level(n: int, a: float, service_s: float, target_s: float) -> float:
    """Share of citizens called within ``target_s``."""
    if a <= 0:
        return 1.0
    if n <= a:
        return 0.0
    return 1.0 - erlang_c(n, a) * math.exp(-(n - a) * target_s / service_s)


def mean_wait_s(n: int, a: float, service_s: float) -> float:
    if a <= 0:
        return 0.0
    if n <= a:
        return math.inf
    return erlang_c(n, a) * service_s / (n - a)


@dataclass(frozen=True, slots=True)
class Advice:
    counters: int
    load_erlangs: float
    service_level: float
    mean_wait_s: float
    wait_probability: float


def counters_needed(
    arrivals_per_hour: float,
    service_s: float,
    target_s: float,
    goal: float = 0.8,
) -> Advice:
    """The fewest counters that call at least ``goal`` of citizens within ``target_s``."""
    if arrivals_per_hour < 0 or service_s <= 0 or target_s < 0 or not 0 < goal < 1:
        raise ValueError("arrivals ≥ 0, service time > 0, target ≥ 0 and 0 < goal < 1")
    a = arrivals_per_hour * service_s / 3600.0
    if a == 0:
        return Advice(0, 0.0, 1.0, 0.0, 0.0)
    n = max(1, math.floor(a) + 1)
    while n <= MAX_COUNTERS:
        level = service_level(n, a, service_s, target_s)
        if level >= goal:
            return Advice(n, a, level, mean_wait_s(n, a, service_s), erlang_c(n, a))
        n += 1
    raise ValueError(f"more than {MAX_COUNTERS} counters needed")
