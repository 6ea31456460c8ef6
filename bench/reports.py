"""Reports over 30 days of a 43-window hall: generate the days through the real queue service,
then time every report for the whole period.

    python -m bench.reports                      # 30 days x ~1,500 tickets, durable database
    python -m bench.reports --days 2 --tickets 200 --ram   # a quick smoke run

The days are made by ``QueueService`` itself (issue, call next, start, finish, no-show,
cancel, transfer), each day with an injected clock that jumps from one step to the next;
ratings are written as the pad use case stores them (one row per finished ticket, 85 % rated).
A hall's server rolls each closed day up once (``manager.rollup``); here the last day's clerk
report is first timed from the event log (as today's would be), then all days are rolled up at
once (``roll_up_all_days_s``, a one-off background job, not a report), then every report
for the whole period and staffing advice are timed. Figures of a loaded machine mean little:
take them on an idle one. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import itertools
import json
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as bench/reports.py

from hall.config.models import HallConfig
from hall.domain.errors import QueueEmpty
from hall.ports import FixedClock
from hall.services.directory import Directory
from hall.services.queue import ActionParams, CounterAction, IssueTicket, QueueService

TZ = ZoneInfo("Asia/Shanghai")
HALL = "bench"

# code, name, prefix, share of arrivals, mean service minutes
SERVICES: tuple[tuple[str, str, str, float, float], ...] = (
    ("BDC", "不动产登记", "A", 0.30, 12.0),
    ("TAX", "税务", "B", 0.20, 8.0),
    ("SOC", "社保", "C", 0.20, 6.0),
    ("MED", "医保", "D", 0.15, 5.0),
    ("HJ", "户籍", "E", 0.10, 7.0),
    ("GEN", "综合咨询", "F", 0.05, 4.0),
)
# Arrivals per local hour (weights): a morning peak, a lunch dip, a smaller afternoon peak.
HOURS = {8: 0.5, 9: 1.6, 10: 1.5, 11: 1.0, 12: 0.3, 13: 0.6, 14: 1.2, 15: 1.1, 16: 0.8}


def hall_config(counters: int = 43) -> HallConfig:
    """One hall: services by share, dedicated windows in proportion to their load, and the
    last sixth of the windows comprehensive (every service)."""
    comprehensive = max(1, counters // 7)
    dedicated = counters - comprehensive
    load = [share * minutes for _, _, _, share, minutes in SERVICES]
    per = [max(1, round(dedicated * x / sum(load))) for x in load]
    while sum(per) > dedicated:
        per[per.index(max(per))] -= 1
    while sum(per) < dedicated:
        per[0] += 1
    windows: list[dict[str, Any]] = []
    number = 1
    for (code, *_), n in zip(SERVICES, per, strict=True):
        for _ in range(n):
            windows.append({"number": number, "services": [{"code": code}]})
            number += 1
    while number <= counters:
        windows.append(
            {
                "number": number,
                "kind": "comprehensive",
                "services": [{"code": code} for code, *_ in SERVICES],
            }
        )
        number += 1
    hall = {
        "id": HALL,
        "name": "基准县政务服务中心",
        "issue_outside_hours": True,
        "services": [
            {
                "code": code,
                "name": name,
                "prefix": prefix,
                "default_service_minutes": minutes,
                "target_wait_minutes": 20,
            }
            for code, name, prefix, _, minutes in SERVICES
        ],
        "counters": windows,
    }
    staff = [{"job_no": f"c{n:03d}", "name": f"职员{n:03d}"} for n in range(1, counters + 1)]
    return HallConfig.model_validate({"halls": [hall], "staff": staff})


@dataclass(order=True)
class _Step:
    at: datetime
    order: int
    kind: str = field(compare=False)
    counter: int = field(compare=False, default=0)
    service: str = field(compare=False, default="")


@dataclass
class DayResult:
    day: date
    issued: int = 0
    actions: int = 0


class DaySimulation:
    """One business day of the hall, driven through the queue service with its own clock."""

    def __init__(
        self, pool: asyncpg.Pool, config: HallConfig, day: date, tickets: int, seed: int
    ) -> None:
        self.day = day
        self.rng = random.Random(seed)
        self.clock = FixedClock(datetime.combine(day, datetime.min.time(), TZ).astimezone(UTC))
        self.queue = QueueService(pool, Directory(config), self.clock)
        self.rules = self.queue.directory.hall(HALL)
        self.tickets = tickets
        self.pool = pool
        self.heap: list[_Step] = []
        self.order = itertools.count()
        self.idle: set[int] = set()
        self.finished: list[tuple[int, int, str, datetime]] = []
        self.result = DayResult(day)
        self.serves = {c.number: {s.code for s in c.services} for c in self.rules.hall.counters}
        self.minutes = {code: minutes for code, _, _, _, minutes in SERVICES}

    def local(self, hour: int, minute: float) -> datetime:
        base = datetime.combine(self.day, datetime.min.time(), TZ)
        return (base + timedelta(hours=hour, minutes=minute)).astimezone(UTC)

    def push(self, at: datetime, kind: str, counter: int = 0, service: str = "") -> None:
        heapq.heappush(self.heap, _Step(at, next(self.order), kind, counter, service))

    def plan(self) -> None:
        hours = list(HOURS)
        weights = list(HOURS.values())
        codes = [s[0] for s in SERVICES]
        shares = [s[3] for s in SERVICES]
        for _ in range(self.tickets):
            hour = self.rng.choices(hours, weights)[0]
            minute = self.rng.uniform(30 if hour == 8 else 0, 60)
            service = self.rng.choices(codes, shares)[0]
            self.push(self.local(hour, minute), "arrive", service=service)
        for number in self.serves:
            late = self.rng.random() < 0.05
            self.push(self.local(8, 25 + (self.rng.uniform(5, 25) if late else 0)), "open", number)

    async def act(self, counter: int, action: CounterAction, **params: Any) -> Any:
        self.result.actions += 1
        return await self.queue.act(
            HALL, counter, action, f"c{counter:03d}", ActionParams(**params)
        )

    async def run(self) -> DayResult:
        self.plan()
        while self.heap:
            step = heapq.heappop(self.heap)
            self.clock.set(step.at)
            await self.handle(step)
        self.clock.set(self.local(18, 0))
        for number in sorted(self.serves):
            await self.act(number, CounterAction.CLOSE)
        await self.rate()
        return self.result

    async def handle(self, step: _Step) -> None:
        now = step.at
        if step.kind == "arrive":
            await self.queue.issue(IssueTicket(hall_id=HALL, service_code=step.service))
            self.result.issued += 1
            ready = [c for c in sorted(self.idle) if step.service in self.serves[c]]
            if ready:
                chosen = self.rng.choice(ready)
                self.idle.discard(chosen)
                self.push(now + timedelta(seconds=self.rng.uniform(2, 20)), "call", chosen)
        elif step.kind == "open":
            await self.act(step.counter, CounterAction.OPEN, clerk=f"c{step.counter:03d}")
            self.push(now, "call", step.counter)
        elif step.kind == "call":
            try:
                view = await self.act(step.counter, CounterAction.CALL_NEXT)
            except QueueEmpty:
                self.idle.add(step.counter)
                return
            ticket = view.ticket
            roll = self.rng.random()
            if roll < 0.05:
                self.push(now + timedelta(seconds=90), "no_show", step.counter)
            elif roll < 0.06:
                self.push(now + timedelta(seconds=40), "cancel", step.counter)
            else:
                mean = self.minutes[ticket.service_code] * 60
                length = max(30.0, self.rng.expovariate(1 / mean))
                self.push(now + timedelta(seconds=self.rng.uniform(15, 60)), "start", step.counter)
                kind = "transfer" if self.rng.random() < 0.03 else "finish"
                self.push(now + timedelta(seconds=61 + length), kind, step.counter)
        elif step.kind == "start":
            await self.act(step.counter, CounterAction.START)
        elif step.kind in ("no_show", "cancel"):
            action = CounterAction.NO_SHOW if step.kind == "no_show" else CounterAction.CANCEL
            await self.act(step.counter, action)
            self.push(now + timedelta(seconds=5), "call", step.counter)
        elif step.kind == "finish":
            view = await self.queue.counter(HALL, step.counter)
            assert view.ticket is not None
            await self.act(step.counter, CounterAction.FINISH)
            self.finished.append((view.ticket.id, step.counter, f"c{step.counter:03d}", now))
            self.push(now + timedelta(seconds=5), "call", step.counter)
        elif step.kind == "transfer":
            view = await self.queue.counter(HALL, step.counter)
            assert view.ticket is not None
            others = [s for s, *_ in SERVICES if s != view.ticket.service_code]
            target = self.rng.choice(others)
            await self.act(step.counter, CounterAction.TRANSFER, to_service=target)
            ready = [c for c in sorted(self.idle) if target in self.serves[c]]
            if ready:
                chosen = self.rng.choice(ready)
                self.idle.discard(chosen)
                self.push(now + timedelta(seconds=3), "call", chosen)
            self.push(now + timedelta(seconds=5), "call", step.counter)

    async def rate(self) -> None:
        """85 % of finished tickets rated, mostly satisfied, as the pad stores ratings."""
        rows = []
        for ticket_id, counter, clerk, at in self.finished:
            if self.rng.random() < 0.85:
                level = self.rng.choices([5, 4, 3, 2, 1], [70, 15, 8, 4, 3])[0]
                rows.append((HALL, ticket_id, counter, clerk, level, at + timedelta(seconds=8)))
        async with self.pool.acquire() as conn:
            await conn.executemany(
                """INSERT INTO ratings (hall_id, ticket_id, counter_number, clerk, level,
                                        rated_at, channel)
                   VALUES ($1, $2, $3, $4, $5, $6, 'pad')""",
                rows,
            )


async def generate(
    pool: asyncpg.Pool,
    config: HallConfig,
    days: Sequence[date],
    tickets_per_day: int,
    seed: int = 7,
) -> list[DayResult]:
    """Simulate ``days`` one after the other (the counters are the hall's, not a day's)."""
    results = []
    for index, day in enumerate(days):
        rng = random.Random(seed * 1000 + index)
        count = max(1, round(tickets_per_day * rng.uniform(0.9, 1.1)))
        results.append(await DaySimulation(pool, config, day, count, seed * 1000 + index).run())
    return results


def working_days(last: date, count: int) -> list[date]:
    """``count`` weekdays ending at ``last``."""
    out: list[date] = []
    day = last
    while len(out) < count:
        if day.weekday() < 5:
            out.append(day)
        day -= timedelta(days=1)
    return sorted(out)


async def time_reports(
    pool: asyncpg.Pool, config: HallConfig, first: date, last: date
) -> tuple[dict[str, float], float, int]:
    from manager.periods import period
    from manager.reports import ROLL_AFTER_DAYS, Dimension, build_report, roll_up, staff_names
    from manager.staffing import staffing

    rules = Directory(config).hall(HALL)
    span = period(first, last)
    timings: dict[str, float] = {}
    async with pool.acquire() as conn:
        names = await staff_names(conn)
        # Today's report: the day is not rolled up yet, so it comes from the event log.
        day = period(last, last)
        await build_report(conn, rules, day, Dimension.CLERK, names)
        began = time.perf_counter()
        await build_report(conn, rules, day, Dimension.CLERK, names)
        timings["report_live_day_clerk_s"] = round(time.perf_counter() - began, 3)
        # What the roll-up task does once per closed day (here: all days at once).
        began = time.perf_counter()
        rolled = await roll_up(conn, rules, last + timedelta(days=ROLL_AFTER_DAYS), span.each_day())
        rolled_s = time.perf_counter() - began
        timings_rolled_days = rolled  # days with tickets, all closed: every generated day
        for by in Dimension:
            await build_report(conn, rules, span, by, names)  # warm caches once
            began = time.perf_counter()
            await build_report(conn, rules, span, by, names)
            timings[f"report_{by.value}_s"] = round(time.perf_counter() - began, 3)
        began = time.perf_counter()
        await staffing(conn, rules, span)
        timings["staffing_s"] = round(time.perf_counter() - began, 3)
        began = time.perf_counter()
        await build_report(conn, rules, day, Dimension.COUNTER, names)
        timings["report_one_day_counter_s"] = round(time.perf_counter() - began, 3)
    return timings, rolled_s, timings_rolled_days


async def run(days: int, tickets: int, counters: int, ram: bool) -> dict[str, Any]:
    from bench._support import database_label, embedded_database
    from hall.app import migrate_all
    from hall.storage.config_store import apply_config
    from hall.storage.db import connect_pool

    config = hall_config(counters)
    with embedded_database(ram=ram) as dsn:
        setup = await connect_pool(dsn, min_size=1, max_size=1)
        try:
            async with setup.acquire() as conn:
                await migrate_all(conn)
                await apply_config(conn, config)
                # The generated days are the input, not what is measured: commit them without
                # waiting for each WAL flush (reset before the reports are timed).
                await conn.execute(_DATABASE_SETTING.format("SET synchronous_commit = off"))
        finally:
            await setup.close()
        dates = working_days(date(2026, 11, 27), days)
        pool = await connect_pool(dsn, max_size=4)
        try:
            began = time.perf_counter()
            results = await generate(pool, config, dates, tickets)
            generated_s = time.perf_counter() - began
            await pool.execute(_DATABASE_SETTING.format("RESET synchronous_commit"))
            await pool.execute("VACUUM ANALYZE")
        finally:
            await pool.close()
        pool = await connect_pool(dsn, max_size=4)
        try:
            issued = sum(r.issued for r in results)
            actions = sum(r.actions for r in results)
            events = await pool.fetchval("SELECT count(*) FROM events")
            print(
                f"generated {len(dates)} days: {issued} tickets, {actions} counter actions, "
                f"{events} events in {generated_s:.0f} s"
            )
            timings, rolled_s, rolled_days = await time_reports(pool, config, dates[0], dates[-1])
        finally:
            await pool.close()
    for name, value in timings.items():
        print(f"{name:32s} {value:7.3f} s")
    return {
        "database": database_label(ram),
        "days": len(dates),
        "counters": counters,
        "tickets": issued,
        "events": events,
        "generate_s": round(generated_s, 1),
        "roll_up_all_days_s": round(rolled_s, 2),
        "rolled_days": rolled_days,
        **timings,
        "slowest_report_s": max(timings.values()),
        "target_s": 1.0,
    }


_DATABASE_SETTING = """DO $$ BEGIN
    EXECUTE format('ALTER DATABASE %I {}', current_database());
END $$"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--tickets", type=int, default=1500, help="tickets a day (±10 %%)")
    parser.add_argument("--counters", type=int, default=43)
    parser.add_argument("--ram", action="store_true", help="RAM-disk database (not as shipped)")
    args = parser.parse_args()
    result = asyncio.run(
        run(
            max(1, min(args.days, 366)),
            max(1, args.tickets),
            max(7, min(args.counters, 999)),
            args.ram,
        )
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
