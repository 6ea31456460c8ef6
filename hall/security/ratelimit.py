"""Token buckets per client key, in memory (per server process)."""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["BucketSpec", "RateLimiter"]


@dataclass(frozen=True, slots=True)
class BucketSpec:
    capacity: float
    """Burst size: requests a fresh client may make at once."""
    refill_per_s: float
    """Sustained rate."""


class RateLimiter:
    """``take(key, now)`` returns 0 when allowed, else the seconds to wait (Retry-After).

    At most ``max_keys`` buckets are kept; the least recently used goes first, which at worst
    gives a forgotten client a fresh, full bucket.
    """

    def __init__(self, spec: BucketSpec, max_keys: int = 10_000) -> None:
        if spec.capacity < 1 or spec.refill_per_s <= 0:
            raise ValueError("a bucket needs capacity >= 1 and a positive refill rate")
        self.spec = spec
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str, now: float) -> int:
        tokens, last = self._buckets.pop(key, (self.spec.capacity, now))
        elapsed = max(0.0, now - last)  # the wall clock may step back
        tokens = min(self.spec.capacity, tokens + elapsed * self.spec.refill_per_s)
        if tokens >= 1:
            tokens -= 1
            wait = 0
        else:
            wait = max(1, math.ceil((1 - tokens) / self.spec.refill_per_s))
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        return wait
