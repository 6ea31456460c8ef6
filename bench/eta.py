"""Wait estimates against the waits that followed, over a simulated week.

Starts a throwaway embedded PostgreSQL (by default the test suite's RAM-disk server: this
bench measures how right the estimates are, not how fast the disk is; ``--durable`` for the
shipped one), loads the example county hall (44 windows, 43 staffed), and plays ``--days``
working days of ``--tickets`` tickets each through the real queue service on a simulated
clock (``simulator.headless``): arrivals with a morning peak, service times per service,
no-shows, transfers, priority citizens, appointment check-ins, clerks' pauses, late
openings and early closings.

Every ticket keeps the estimate it was given at issue (migration 0008): ours with its range,
and the naive one (people ahead × mean service time ÷ open counters). Compared with the wait
until its first call: mean absolute error, p90 error, bias, and how often the wait fell in
the range shown. Targets: ours ≤ 60 % of the naive error, and ≤ 25 % of the mean wait.

Prints readable lines, then one JSON object (``naive_mae_s``, ``ours_mae_s``,
``mean_wait_s``, ``ours_p90_s`` …).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import database_label, embedded_database
from hall.app import migrate_all
from hall.cli import EXAMPLE_CONFIG, demo_config
from hall.config.loader import load_config
from hall.storage.config_store import apply_config
from hall.storage.db import connect_pool
from simulator.headless import accuracy, outcomes, simulate
from simulator.plan import Behaviour

HALL = "xx-county"
MONDAY = date(2026, 11, 23)


async def run(dsn: str, args: argparse.Namespace) -> dict[str, object]:
    config = demo_config(load_config(args.config), any_hour=False)
    pool = await connect_pool(dsn, min_size=1, max_size=4)
    try:
        async with pool.acquire() as conn:
            await migrate_all(conn)
            await apply_config(conn, config)
        started = time.monotonic()
        stats = await simulate(
            pool,
            config,
            hall_id=HALL,
            start=args.start,
            days=args.days,
            seed=args.seed,
            behaviour=Behaviour(tickets_per_day=args.tickets),
        )
        elapsed = time.monotonic() - started
        found = await outcomes(pool, HALL)
    finally:
        await pool.close()
    acc = accuracy(found)
    print(
        f"{args.days} day(s) × {args.tickets} tickets, seed {args.seed}, "
        f"{database_label(not args.durable)}: simulated in {elapsed:.0f} s"
    )
    print(
        f"  issued {stats.issued}, called {stats.called}, finished {stats.finished}, "
        f"no-shows {stats.no_shows}, transfers {stats.transfers}, ratings {stats.ratings}, "
        f"pauses {stats.pauses}, refused {stats.refused}, errors {stats.errors}"
    )
    print(f"  {acc.tickets} tickets estimated and called; mean wait {acc.mean_wait_s:.0f} s")
    print(
        f"  naive: MAE {acc.naive_mae_s:.0f} s, p90 {acc.naive_p90_s:.0f} s, "
        f"bias {acc.naive_bias_s:+.0f} s"
    )
    print(
        f"  ours:  MAE {acc.ours_mae_s:.0f} s, p90 {acc.ours_p90_s:.0f} s, "
        f"bias {acc.ours_bias_s:+.0f} s; in range {acc.in_range:.0%} "
        f"(mean width {acc.mean_range_s:.0f} s)"
    )
    by_service: dict[str, list[float]] = defaultdict(list)
    for o in found:
        by_service[o.service].append(abs(o.ours_s - o.actual_s))
    ratio = acc.ours_mae_s / acc.naive_mae_s if acc.naive_mae_s else float("nan")
    share = acc.ours_mae_s / acc.mean_wait_s if acc.mean_wait_s else float("nan")
    print(
        f"  ours / naive MAE {ratio:.0%} (target ≤ 60 %), "
        f"ours MAE / mean wait {share:.0%} (target ≤ 25 %)"
    )
    return {
        "days": args.days,
        "tickets_per_day": args.tickets,
        "seed": args.seed,
        "database": "ram" if not args.durable else "durable",
        "elapsed_s": round(elapsed, 1),
        **acc.as_dict(),
        "ours_over_naive": round(ratio, 3),
        "ours_mae_over_mean_wait": round(share, 3),
        "targets_met": ratio <= 0.60 and share <= 0.25,
        "ours_mae_by_service_s": {
            k: round(sum(v) / len(v), 1) for k, v in sorted(by_service.items())
        },
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--days", type=int, default=5, help="working days (default: a week)")
    p.add_argument("--tickets", type=int, default=1500, help="tickets a day")
    p.add_argument("--seed", default="eta")
    p.add_argument("--start", type=date.fromisoformat, default=MONDAY)
    p.add_argument("--config", type=Path, default=EXAMPLE_CONFIG)
    p.add_argument("--durable", action="store_true", help="the shipped durable database on disk")
    args = p.parse_args()
    with embedded_database(ram=not args.durable) as dsn:
        result = asyncio.run(run(dsn, args))
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
