"""A simulated stretch of days, headless and as fast as the database answers, and the
estimates it produced measured against the waits that followed."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import asyncpg

from hall.config.models import HallConfig
from hall.ports import FixedClock
from hall.services.directory import Directory
from hall.services.queue import QueueService
from simulator.drivers import ServiceDriver
from simulator.engine import Engine, InstantPace, Stats
from simulator.plan import Behaviour, plan_day, working_days


@dataclass(frozen=True, slots=True)
class Outcome:
    """One ticket: the estimates it was given at issue and the wait that followed."""

    service: str
    priority: bool
    actual_s: float
    ours_s: float
    low_s: float
    high_s: float
    naive_s: float | None


async def simulate(
    pool: asyncpg.Pool,
    config: HallConfig,
    *,
    hall_id: str,
    start: date,
    days: int,
    seed: str | int,
    behaviour: Behaviour | None = None,
) -> Stats:
    """Play ``days`` working days from ``start`` through the real queue service on ``pool``
    (the hall's config already applied), on a clock of its own."""
    hall = next(h for h in config.halls if h.id == hall_id)
    plans = [plan_day(hall, d, seed, behaviour) for d in working_days(hall, start, days)]
    first = plans[0].citizens[0].arrive if plans and plans[0].citizens else datetime.now()
    clock = FixedClock(first - timedelta(hours=1))
    service = QueueService(pool, Directory(config), clock)
    engine = Engine(hall, ServiceDriver(service, hall_id), InstantPace(clock), behaviour=behaviour)
    stats = await engine.run(plans)
    await service.flush_estimates()
    return stats


async def outcomes(pool: asyncpg.Pool, hall_id: str) -> list[Outcome]:
    """Every ticket that was called once and given an estimate at issue."""
    rows = await pool.fetch(
        """SELECT t.service_code, t.priority_class IS NOT NULL AS priority,
                  extract(epoch FROM t.first_called_at - t.issued_at)::float8 AS actual,
                  e.estimate_s, e.low_s, e.high_s, e.naive_s
           FROM tickets t JOIN ticket_estimates e ON e.ticket_id = t.id
           WHERE t.hall_id = $1 AND t.first_called_at IS NOT NULL ORDER BY t.id""",
        hall_id,
    )
    return [
        Outcome(
            r["service_code"],
            r["priority"],
            r["actual"],
            r["estimate_s"],
            r["low_s"],
            r["high_s"],
            r["naive_s"],
        )
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class Accuracy:
    tickets: int
    mean_wait_s: float
    naive_mae_s: float
    ours_mae_s: float
    naive_p90_s: float
    ours_p90_s: float
    naive_bias_s: float
    ours_bias_s: float
    in_range: float  # share of actual waits inside [low, high]
    mean_range_s: float  # mean width of the range

    def as_dict(self) -> dict[str, float | int]:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in self._items()}

    def _items(self) -> list[tuple[str, float | int]]:
        return [(name, getattr(self, name)) for name in self.__slots__]


def _p90(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)]


def accuracy(found: Sequence[Outcome]) -> Accuracy:
    """Errors of both estimators over the tickets both estimated."""
    both = [o for o in found if o.naive_s is not None]
    if not both:
        raise ValueError("no ticket was estimated and called")
    naive = [abs(o.naive_s - o.actual_s) for o in both if o.naive_s is not None]
    ours = [abs(o.ours_s - o.actual_s) for o in both]
    n = len(both)
    return Accuracy(
        tickets=n,
        mean_wait_s=sum(o.actual_s for o in both) / n,
        naive_mae_s=sum(naive) / n,
        ours_mae_s=sum(ours) / n,
        naive_p90_s=_p90(naive),
        ours_p90_s=_p90(ours),
        naive_bias_s=sum((o.naive_s or 0.0) - o.actual_s for o in both) / n,
        ours_bias_s=sum(o.ours_s - o.actual_s for o in both) / n,
        in_range=sum(1 for o in both if o.low_s <= o.actual_s <= o.high_s) / n,
        mean_range_s=sum(o.high_s - o.low_s for o in both) / n,
    )
