"""Call-next latency with 60 counters and 2,000 waiting tickets, through the HTTP API.

One ``hall serve`` process on a durable embedded PostgreSQL on disk (``--ram``: the test
suite's RAM-disk server instead). Hall ``call``: ``--counters`` windows (default 60), each
serving all 4 bench services, ``call_order = "weighted"`` (so every service is called from).
First enough tickets are issued across the services that at least ``--waiting`` (default
2,000) are still waiting after the last call measured. Then two phases:

``paced`` (the headline, ``call_next_p99_ms``): 60 clerks pressing call-next on an open-loop
schedule. Each counter presses on average once every ``counters / rate`` seconds, so together
they offer ``--rate`` presses a second (default 20/s: each window calls every 3 s, about a
hundred times a busy real hall, where a window calls every few minutes). ``--arrivals
poisson`` (default): each counter's gaps are random (exponential, seeded), as clerks finishing
at random moments, so presses sometimes bunch up; ``even``: one press per period per counter,
the counters evenly staggered.
Between two presses a counter starts and finishes the ticket it called, so it never holds
more than one. A press is timed from its scheduled moment, not from when it was sent: a
counter still busy with its previous ticket when the next press is due counts that delay
too (no coordinated omission). ``--warmup`` seconds at the same pace come first, uncounted.

``saturation`` (context only, labelled ``saturation_*``): every counter runs call_next →
start → finish back to back with no pause, until ``--saturation-calls`` call_next answers
are in. That measures how long requests queue behind each other when 60 clients press as
fast as answers come back, not what a clerk sees.

Afterwards the database is checked: no ticket called twice, none skipped (in each service
the called tickets are exactly the oldest ones: no waiting ticket is older than a called
one), no counter ever holding two tickets (a ticket.called never follows a call or a start
at the same counter without a finish between), none holding two now.

Prints readable lines, then, as the last line, one JSON object (``call_next_p99_ms`` is the
paced figure). Take figures on an idle machine; a smoke run:
``--counters 6 --waiting 50 --rate 6 --seconds 3 --warmup 1 --saturation-calls 60``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from pathlib import Path

import asyncpg
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import (
    BENCH_SERVICES,
    CpuMeter,
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
CYCLE = ("call_next", "start", "finish")


def bench_config(counters: int) -> str:
    """The bench hall: every counter serves the 4 services, weighted across them."""
    text = halls_toml([(HALL, counters, len(BENCH_SERVICES))])
    # Counter tables are the only ones with a `services = [` key.
    return text.replace("\nservices = [", '\ncall_order = "weighted"\nservices = [')


async def post_again(client: KeepAliveClient, path: str) -> tuple[int, bytes]:
    """POST on the keep-alive connection; when the server has closed it meanwhile (its
    keep-alive timeout is the read timeout, a few seconds: a long random gap outlasts it),
    connect again and send once more, as a browser does. The request was not taken."""
    try:
        return await client.post(path, b"{}")
    except (ConnectionError, OSError):
        await client.close()
        return await client.post(path, b"{}")


async def paced(
    clients: list[KeepAliveClient],
    rate: float,
    seconds: float,
    phase: Phase,
    arrivals: str = "poisson",
    seed: int = 12,
) -> int:
    """Each counter presses call_next on its own schedule (open loop), then starts and
    finishes the ticket before its next press; returns the presses that were late.

    ``poisson``: each counter's gaps are exponential with mean ``counters / rate`` (clerks
    finishing at random moments; presses sometimes bunch up); ``even``: one press per period
    per counter, the counters evenly staggered."""
    loop = asyncio.get_running_loop()
    counters = len(clients)
    period = counters / rate
    start = loop.time() + 0.2
    end = start + seconds
    late = 0

    async def counter_loop(n: int, client: KeepAliveClient) -> None:
        nonlocal late
        rng = random.Random(seed * 1000 + n)
        base = f"/api/v1/halls/{HALL}/counters/{n}"
        if arrivals == "even":
            due = start + period * (n - 1) / counters  # staggered evenly over one period
        else:
            due = start + rng.expovariate(1 / period)
        while due < end:
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)  # the schedule: open-loop pacing
                sent = loop.time()
            else:
                late += 1
                sent = due  # busy when due: the wait for the counter counts too
            status, answer = await post_again(client, f"{base}/call_next")
            phase.latencies["call_next"].append((loop.time() - sent) * 1000)
            phase.in_window += 1
            due += period if arrivals == "even" else rng.expovariate(1 / period)
            if status != 200:
                phase_error(phase, "call_next", status, answer)
                continue
            for op in ("start", "finish"):
                status, answer = await timed_post(
                    client, phase, op, f"{base}/{op}", b"{}", float("inf")
                )
                if status != 200:
                    phase_error(phase, op, status, answer)
                    break

    t0 = time.perf_counter()
    with phase:
        await asyncio.gather(*(counter_loop(n, c) for n, c in enumerate(clients, 1)))
    phase.elapsed = phase.window = time.perf_counter() - t0
    return late


async def saturated(clients: list[KeepAliveClient], calls: int, phase: Phase) -> None:
    """Every counter runs call_next → start → finish back to back (closed loop)."""
    left = calls

    async def counter_loop(n: int, client: KeepAliveClient) -> None:
        nonlocal left
        base = f"/api/v1/halls/{HALL}/counters/{n}"
        while left > 0:
            left -= 1
            for op in CYCLE:
                status, answer = await timed_post(
                    client, phase, op, f"{base}/{op}", b"{}", float("inf")
                )
                if status != 200:
                    phase_error(phase, op, status, answer)
                    break

    t0 = time.perf_counter()
    with phase:
        await asyncio.gather(*(counter_loop(n, c) for n, c in enumerate(clients, 1)))
    phase.elapsed = phase.window = time.perf_counter() - t0


async def check(dsn: str, hall: str = HALL) -> dict[str, int]:
    """Integrity in the database after the run."""
    conn = await asyncpg.connect(dsn)
    try:
        twice = await conn.fetchval(
            """SELECT count(*) FROM (SELECT ticket_id FROM events
               WHERE hall_id = $1 AND type = 'ticket.called'
               GROUP BY ticket_id HAVING count(*) > 1) d""",
            hall,
        )
        # Skipped: a ticket still waiting although a later one of its service was called.
        skipped = await conn.fetchval(
            """SELECT count(*) FROM tickets w
               WHERE w.hall_id = $1 AND w.state = 'waiting' AND EXISTS (
                 SELECT 1 FROM tickets c WHERE c.hall_id = w.hall_id
                   AND c.service_code = w.service_code AND c.state <> 'waiting'
                   AND (c.queue_key, c.id) > (w.queue_key, w.id))""",
            hall,
        )
        # Ever two at once: a call at a counter whose previous ticket event was a call or a
        # start (its ticket not yet finished).
        overlapped = await conn.fetchval(
            """SELECT count(*) FROM (
                 SELECT type, lag(type) OVER (PARTITION BY counter_number ORDER BY id) AS prev
                 FROM events WHERE hall_id = $1 AND counter_number IS NOT NULL
                   AND type IN ('ticket.called', 'ticket.started', 'ticket.finished',
                                'ticket.no_show')) e
               WHERE type = 'ticket.called' AND prev IN ('ticket.called', 'ticket.started')""",
            hall,
        )
        holding_two = await conn.fetchval(
            """SELECT count(*) FROM (SELECT counter_number FROM tickets
               WHERE hall_id = $1 AND state IN ('called', 'serving')
               GROUP BY counter_number HAVING count(*) > 1) d""",
            hall,
        )
        calls = await conn.fetchval(
            "SELECT count(*) FROM events WHERE hall_id = $1 AND type = 'ticket.called'", hall
        )
    finally:
        await conn.close()
    print(
        f"integrity ({calls} calls in the database): {twice} tickets called twice,"
        f" {skipped} skipped, {overlapped} calls at a counter already holding a ticket,"
        f" {holding_two} counters holding two now"
    )
    return {
        "calls_in_database": int(calls),
        "tickets_called_twice": int(twice),
        "tickets_skipped": int(skipped),
        "calls_while_holding": int(overlapped),
        "counters_holding_two": int(holding_two),
    }


def _latency_figures(phase: Phase, prefix: str) -> dict[str, object]:
    result = phase.report(CYCLE)
    figures: dict[str, object] = {}
    for op in CYCLE:
        figures[f"{prefix}{op}_p50_ms"] = result[f"{op}_p50_ms"]
        figures[f"{prefix}{op}_p99_ms"] = result[f"{op}_p99_ms"]
    figures[f"{prefix}calls"] = len(phase.latencies["call_next"])
    figures[f"{prefix}errors"] = result["errors"]
    for key in ("server_cpu_ms_per_op", "postgres_cpu_ms_per_op"):
        if key in result:
            figures[f"{prefix}{key}"] = result[key]
    return figures


async def run(args: argparse.Namespace) -> dict[str, object]:
    label = database_label(args.ram)
    print(f"database: embedded PostgreSQL, {label}; one server process")
    figures: dict[str, object] = {"database": label, "counters": args.counters}
    server_args = ("--pool-size", str(args.pool_size))
    paced_calls = round(args.rate * (args.warmup + args.seconds)) + args.counters
    with embedded_database(ram=args.ram) as dsn:
        async with server_process(dsn, bench_config(args.counters), server_args) as url:
            headers = await admin_headers(url, dsn)
            meter = await CpuMeter.connect(url, dsn)
            await open_counters(url, headers, HALL, args.counters)
            services = [code for code, _, _ in BENCH_SERVICES]
            await issue_burst(
                url, headers, HALL, services, clients=DEEP_CLIENTS,
                count=args.waiting + paced_calls + args.saturation_calls + 2 * args.counters,
                phase=Phase("fill"),
            )  # fmt: skip
            before = await waiting_now(dsn, HALL)
            print(f"fill: {before} tickets waiting across {len(services)} services")
            clients = [KeepAliveClient(url, headers) for _ in range(args.counters)]
            try:
                if args.warmup > 0:
                    await paced(
                        clients, args.rate, args.warmup, Phase("warmup"), args.arrivals, seed=1
                    )
                start_waiting = await waiting_now(dsn, HALL)
                phase = Phase(
                    f"paced: {args.counters} counters, {args.rate:g} call_next presses/s in all"
                    f" ({args.arrivals}, each every {args.counters / args.rate:g} s on average),"
                    " start + finish between",
                    meter,
                )
                late = await paced(clients, args.rate, args.seconds, phase, args.arrivals)
                after_paced = await waiting_now(dsn, HALL)
                print(
                    f"paced: {start_waiting} → {after_paced} waiting; {late} presses due while"
                    " their counter was still busy (timed from when they were due)"
                )
                figures.update(_latency_figures(phase, ""))
                figures["rate_presses_per_s"] = args.rate
                figures["arrivals"] = args.arrivals
                figures["late_presses"] = late
                figures["waiting_at_start"] = start_waiting
                if args.saturation_calls > 0:
                    sat = Phase(
                        f"saturation (closed loop, NOT the headline): {args.counters} counters"
                        " call_next → start → finish back to back",
                        meter,
                    )
                    await saturated(clients, args.saturation_calls, sat)
                    figures.update(_latency_figures(sat, "saturation_"))
                    figures["saturation_cycles_per_s"] = round(
                        len(sat.latencies["call_next"]) / sat.elapsed, 1
                    )
            finally:
                for client in clients:
                    await client.close()
            after = await waiting_now(dsn, HALL)
            print(f"after: {after} tickets still waiting (at least {args.waiting} wanted)")
            figures["waiting_min"] = after
            figures.update(await check(dsn))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counters", type=int, default=60, help="counters pressing")
    parser.add_argument("--waiting", type=int, default=2000, help="tickets always waiting")
    parser.add_argument(
        "--rate", type=float, default=20.0, help="call_next presses a second, all counters"
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="paced phase length")
    parser.add_argument(
        "--arrivals",
        choices=("poisson", "even"),
        default="poisson",
        help="paced presses: random (seeded) or evenly staggered",
    )
    parser.add_argument("--warmup", type=float, default=6.0, help="uncounted paced seconds")
    parser.add_argument(
        "--saturation-calls", type=int, default=1200, help="closed-loop call_next (0: skip)"
    )
    parser.add_argument("--pool-size", type=int, default=10, help="server database connections")
    parser.add_argument(
        "--ram", action="store_true", help="RAM disk, fsync off: the test server, not as shipped"
    )
    args = parser.parse_args()
    figures = uvloop.run(run(args))
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()
