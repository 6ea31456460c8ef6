"""Call-next latency with many counters on a deep queue, through the HTTP API.

One ``hall serve`` process on a durable embedded PostgreSQL on disk (``--ram``: the test
suite's RAM-disk server instead). Hall ``call``: ``--counters`` windows (default 60), each
serving all 4 bench services. First ``--waiting`` tickets (default 2,000) plus the calls to
be measured are issued across the services, so the queue never falls below ``--waiting``
while measuring. Then every counter, on its own keep-alive connection, runs call_next →
start → finish back to back (all counters at once: the shared-queue race of a busy morning)
until ``--calls`` call_next answers are in. call_next latency is what is reported; start
and finish are printed for context. Afterwards the database is checked: no ticket called
twice, no counter with two active tickets.

Prints readable lines, then, as the last line, one JSON object (``call_next_p99_ms`` …).
Take figures on an idle machine; a smoke run: ``--counters 6 --waiting 50 --calls 60``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import asyncpg
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import (
    BENCH_SERVICES,
    KeepAliveClient,
    admin_headers,
    database_label,
    embedded_database,
    halls_toml,
    server_process,
)
from bench.core import (
    DEEP_CLIENTS,
    Phase,
    issue_burst,
    open_counters,
    phase_error,
    timed_post,
    waiting_now,
)

HALL = "call"


async def measure(
    url: str, headers: dict[str, str], counters: int, calls: int, phase: Phase
) -> None:
    loop = asyncio.get_running_loop()
    left = calls
    deadline = loop.time() + 3600  # bounded by the number of calls, not by time

    async def counter_loop(n: int) -> None:
        nonlocal left
        client = KeepAliveClient(url, headers)
        base = f"/api/v1/halls/{HALL}/counters/{n}"
        try:
            while left > 0:
                left -= 1
                for op in ("call_next", "start", "finish"):
                    status, answer = await timed_post(
                        client, phase, op, f"{base}/{op}", b"{}", deadline
                    )
                    if status != 200:
                        phase_error(phase, op, status, answer)
                        break
        finally:
            await client.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(counter_loop(n) for n in range(1, counters + 1)))
    phase.elapsed = phase.window = time.perf_counter() - t0


async def check(dsn: str) -> dict[str, float]:
    conn = await asyncpg.connect(dsn)
    try:
        twice = await conn.fetchval(
            """SELECT count(*) FROM (SELECT ticket_id FROM events
               WHERE hall_id = $1 AND type = 'ticket.called'
               GROUP BY ticket_id HAVING count(*) > 1) d""",
            HALL,
        )
        doubled = await conn.fetchval(
            """SELECT count(*) FROM (SELECT counter_number FROM tickets
               WHERE hall_id = $1 AND state IN ('called', 'serving')
               GROUP BY counter_number HAVING count(*) > 1) d""",
            HALL,
        )
    finally:
        await conn.close()
    print(f"integrity: {twice} tickets called twice, {doubled} counters holding two tickets")
    return {"tickets_called_twice": twice, "counters_holding_two": doubled}


async def run(args: argparse.Namespace) -> dict[str, object]:
    config = halls_toml([(HALL, args.counters, len(BENCH_SERVICES))])
    label = database_label(args.ram)
    print(f"database: embedded PostgreSQL, {label}; one server process")
    figures: dict[str, object] = {"database": label, "counters": args.counters}
    server_args = ("--pool-size", str(args.pool_size))
    with embedded_database(ram=args.ram) as dsn:
        async with server_process(dsn, config, server_args) as url:
            headers = await admin_headers(url, dsn)
            await open_counters(url, headers, HALL, args.counters)
            services = [code for code, _, _ in BENCH_SERVICES]
            filling = Phase("fill")
            await issue_burst(
                url, headers, HALL, services, clients=DEEP_CLIENTS,
                count=args.waiting + args.calls + args.counters, phase=filling,
            )  # fmt: skip
            before = await waiting_now(dsn, HALL)
            print(f"fill: {before} tickets waiting across {len(services)} services")
            phase = Phase(
                f"call: {args.counters} counters call_next → start → finish, {args.calls} calls"
            )
            await measure(url, headers, args.counters, args.calls, phase)
            after = await waiting_now(dsn, HALL)
            print(f"after: {after} tickets still waiting (never below {args.waiting})")
            result = phase.report(("call_next", "start", "finish"))
            figures["waiting_before"] = before
            figures["waiting_after"] = after
            figures["calls"] = len(phase.latencies["call_next"])
            for op in ("call_next", "start", "finish"):
                figures[f"{op}_p50_ms"] = result[f"{op}_p50_ms"]
                figures[f"{op}_p99_ms"] = result[f"{op}_p99_ms"]
            figures["errors"] = result["errors"]
            figures.update(await check(dsn))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counters", type=int, default=60, help="counters calling at once")
    parser.add_argument("--waiting", type=int, default=2000, help="tickets always waiting")
    parser.add_argument("--calls", type=int, default=3000, help="call_next answers measured")
    parser.add_argument("--pool-size", type=int, default=10, help="server database connections")
    parser.add_argument(
        "--ram", action="store_true", help="RAM disk, fsync off: the test server, not as shipped"
    )
    args = parser.parse_args()
    figures = uvloop.run(run(args))
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()
