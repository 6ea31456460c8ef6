"""Core throughput and latency through the HTTP API, on the database as ``hall serve`` ships it.

One ``hall serve`` process on a durable embedded PostgreSQL on disk (``--ram`` gives the
test suite's RAM-disk server instead, labelled as not what a hall runs). Three scenarios,
each in a hall of its own in the same database, so each also runs on the others' history:

``cycle`` (hall ``bench``, 50 counters): after a ``--warmup`` at the paced rate that is run
but not counted, issue → call_next → start → finish cycles, first paced (the counters
together offer ``--rate`` operations per second), then closed-loop (saturation).

``deep`` (hall ``deep``, 4 services, 20 counters each serving all 4): 20 clients issue as
fast as answers come back for ``--deep-seconds``, building a long queue; then the 20
counters drain it with call_next → start → finish for ``--deep-seconds``. Afterwards the
database is checked: no number issued twice, no ticket called twice, every acknowledged
ticket stored.

``depth`` (hall ``depth``, 1 service, 10 counters): call_next alone, paced, with about 200,
2,000 and 20,000 tickets waiting (each level topped up to N + 100 and measured over 200
calls, so the queue runs from N + 100 down to N - 100).

Each counter drives its own keep-alive connection through a minimal HTTP/1.1 client on
uvloop, so the load generator takes as little as it can of the two cores it shares with the
server and PostgreSQL. Bounded by ``--seconds`` per phase. Prints readable lines, then one
JSON object of figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import asyncpg
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import (
    BENCH_SERVICES,
    CpuMeter,
    KeepAliveClient,
    WaitSampler,
    admin_headers,
    database_label,
    embedded_database,
    halls_toml,
    percentile,
    server_process,
    statement_report,
)

OPERATIONS = ("issue", "call_next", "start", "finish")
OPS_PER_CYCLE = len(OPERATIONS)
DEEP_CLIENTS = 20  # kiosks issuing at once in the deep and depth scenarios
DEEP_COUNTERS = 20
DEPTH_COUNTERS = 10
DEPTH_CALLS = 200  # call_next measured per depth level


class Phase:
    """Latencies and errors of one load phase."""

    def __init__(self, name: str, meter: CpuMeter | None = None) -> None:
        self.name = name
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.elapsed = 0.0
        self.window = 0.0  # the phase's length: no cycle starts after it
        self.in_window = 0  # operations completed within it
        self.meter = meter
        self._cpu_start = (0.0, 0.0)
        self.cpu_s = (0.0, 0.0)  # (server, PostgreSQL) CPU seconds used during the phase
        self._client_start = 0.0
        self.client_cpu_s = 0.0  # this process's CPU seconds (the load generator's share)

    def __enter__(self) -> Phase:
        if self.meter is not None:
            self._cpu_start = self.meter.sample()
        self._client_start = time.process_time()
        return self

    def __exit__(self, *_: object) -> None:
        self.client_cpu_s = time.process_time() - self._client_start
        if self.meter is not None:
            end = self.meter.sample()
            self.cpu_s = (end[0] - self._cpu_start[0], end[1] - self._cpu_start[1])

    @property
    def operations(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    def report(self, operations: tuple[str, ...] = OPERATIONS) -> dict[str, float]:
        # Operations completed inside the window over its length: cycles still running at its
        # end are answered (their latencies count) but do not inflate the rate.
        rate = self.in_window / self.window if self.window else 0.0
        print(
            f"{self.name}: {self.in_window} operations completed in {self.window:.0f} s"
            f" = {rate:.0f}/s ({self.operations} timed, all done after {self.elapsed:.1f} s)"
        )
        figures: dict[str, float] = {
            "ops_per_s": round(rate, 1),
            "errors": sum(self.errors.values()),
        }
        if self.meter is not None and self.operations:
            server_ms = self.cpu_s[0] * 1000 / self.operations
            pg_ms = self.cpu_s[1] * 1000 / self.operations
            client_ms = self.client_cpu_s * 1000 / self.operations
            print(
                f"  CPU per operation: server {server_ms:.2f} ms, PostgreSQL {pg_ms:.2f} ms,"
                f" load generator {client_ms:.2f} ms"
            )
            figures["server_cpu_ms_per_op"] = round(server_ms, 3)
            figures["postgres_cpu_ms_per_op"] = round(pg_ms, 3)
            figures["client_cpu_ms_per_op"] = round(client_ms, 3)
        for op in operations:
            values = self.latencies[op]
            p50, p99 = percentile(values, 50), percentile(values, 99)
            print(
                f"  {op:<10} n={len(values):<6} p50={p50:6.1f} ms  p99={p99:6.1f} ms"
                f"  errors={self.errors[op]}"
            )
            figures[f"{op}_p50_ms"] = round(p50, 2)
            figures[f"{op}_p99_ms"] = round(p99, 2)
        every = [x for v in self.latencies.values() for x in v]
        figures["p50_ms"] = round(percentile(every, 50), 2)
        figures["p99_ms"] = round(percentile(every, 99), 2)
        return figures


async def load(
    url: str,
    headers: dict[str, str],
    counters: int,
    seconds: float,
    rate: float | None,
    phase: Phase,
) -> None:
    """Every counter cycles issue → call_next → start → finish on its own keep-alive
    connection; paced when ``rate`` is set."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    deadline = start + seconds
    # Each counter starts a cycle every `period` seconds, offset so starts spread evenly.
    period = counters * OPS_PER_CYCLE / rate if rate else 0.0
    base = "/api/v1/halls/bench"
    issue_body = json.dumps({"service": "bdc"}).encode()

    async def counter_loop(n: int) -> None:
        client = KeepAliveClient(url, headers)

        async def timed(op: str, path: str, body: bytes = b"{}") -> bool:
            t0 = time.perf_counter()
            status, _ = await client.post(f"{base}/{path}", body)
            phase.latencies[op].append((time.perf_counter() - t0) * 1000)
            if loop.time() <= deadline:
                phase.in_window += 1
            if status not in (200, 201):
                phase.errors[op] += 1
                return False
            return True

        next_start = start + period * (n - 1) / counters
        try:
            while True:
                if period:
                    delay = next_start - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)  # pacing the offered load, not synchronisation
                    next_start += period
                if loop.time() >= deadline:
                    return
                await timed("issue", "tickets", issue_body)
                if await timed("call_next", f"counters/{n}/call_next"):
                    await timed("start", f"counters/{n}/start")
                    await timed("finish", f"counters/{n}/finish")
        finally:
            await client.close()

    phase.window = seconds
    t0 = time.perf_counter()
    await asyncio.gather(*(counter_loop(n) for n in range(1, counters + 1)))
    phase.elapsed = time.perf_counter() - t0


async def cycle(url: str, headers: dict[str, str], args: argparse.Namespace) -> dict[str, float]:
    """The ``cycle`` scenario: paced, then closed-loop issue → call → start → finish."""
    counters = args.counters
    opener = KeepAliveClient(url, headers)
    for n in range(1, counters + 1):
        status, body = await opener.post(f"/api/v1/halls/bench/counters/{n}/open")
        assert status == 200, body
    await opener.close()
    # New connections, prepared statements and warm caches: the first second of a fresh
    # server is not what a hall sees all day, so it is run but not counted.
    warm = Phase("warm-up")
    await load(url, headers, counters, args.warmup, args.rate, warm)
    paced = Phase(f"cycle, paced at {args.rate:.0f} operations/s offered", args.meter)
    with paced:
        await load(url, headers, counters, args.seconds, args.rate, paced)
    saturated = Phase("cycle, saturation (closed loop)", args.meter)
    with saturated:
        await load(url, headers, counters, args.seconds, None, saturated)
    print(f"cycle: {counters} counters; warm-up (not counted): {warm.operations} operations")
    figures: dict[str, float] = {"counters": counters, "offered_ops_per_s": args.rate}
    # The deep scenario reports issue_* figures of its own: these carry the scenario's name.
    figures.update({f"cycle_{key}": value for key, value in paced.report().items()})
    sat = saturated.report()
    figures["cycle_saturation_ops_per_s"] = sat["ops_per_s"]
    figures["cycle_saturation_p99_ms"] = sat["p99_ms"]
    figures["cycle_saturation_errors"] = sat["errors"]
    return figures


def phase_error(phase: Phase, op: str, status: int, answer: bytes) -> None:
    """Count an unexpected answer; print the first few of each operation."""
    phase.errors[op] += 1
    if phase.errors[op] <= 3:
        print(f"  {op} answered {status}: {answer.decode(errors='replace')[:200]}")


async def timed_post(
    client: KeepAliveClient, phase: Phase, op: str, path: str, body: bytes, deadline: float
) -> tuple[int, bytes]:
    t0 = time.perf_counter()
    status, answer = await client.post(path, body)
    phase.latencies[op].append((time.perf_counter() - t0) * 1000)
    if asyncio.get_running_loop().time() <= deadline:
        phase.in_window += 1
    return status, answer


async def drain_cycles(
    url: str, headers: dict[str, str], hall: str, *, counters: int, cycles: int, phase: Phase
) -> None:
    """Counters 1..``counters`` each run call_next → start → finish ``cycles`` times back to
    back; any answer but 200 stops the run (the queue was filled for exactly this)."""
    forever = asyncio.get_running_loop().time() + 3600.0

    async def counter(n: int) -> None:
        client = KeepAliveClient(url, headers)
        base = f"/api/v1/halls/{hall}/counters/{n}"
        try:
            for _ in range(cycles):
                for op in ("call_next", "start", "finish"):
                    status, answer = await timed_post(
                        client, phase, op, f"{base}/{op}", b"{}", forever
                    )
                    if status != 200:
                        raise RuntimeError(f"{op}: {status} {answer[:200]!r}")
        finally:
            await client.close()

    await asyncio.gather(*(counter(n) for n in range(1, counters + 1)))


async def issue_burst(
    url: str,
    headers: dict[str, str],
    hall: str,
    services: list[str],
    *,
    clients: int,
    seconds: float | None = None,
    count: int | None = None,
    phase: Phase,
) -> int:
    """``clients`` kiosks issue back to back over ``services`` until ``seconds`` pass or
    ``count`` tickets are issued; returns how many were acknowledged."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    deadline = start + (seconds if seconds is not None else 3600.0)
    issued = 0
    remaining = [count if count is not None else -1]

    async def kiosk(k: int) -> None:
        nonlocal issued
        client = KeepAliveClient(url, headers)
        n = k
        try:
            while loop.time() < deadline and remaining[0] != 0:
                remaining[0] -= 1
                body = json.dumps({"service": services[n % len(services)]}).encode()
                n += 1
                status, answer = await timed_post(
                    client, phase, "issue", f"/api/v1/halls/{hall}/tickets", body, deadline
                )
                if status == 201:
                    issued += 1
                else:
                    phase_error(phase, "issue", status, answer)
        finally:
            await client.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(kiosk(k) for k in range(clients)))
    phase.elapsed = time.perf_counter() - t0
    phase.window = seconds if seconds is not None else phase.elapsed
    if seconds is None:
        phase.in_window = phase.operations
    return issued


async def open_counters(url: str, headers: dict[str, str], hall: str, counters: int) -> None:
    opener = KeepAliveClient(url, headers)
    try:
        for n in range(1, counters + 1):
            status, body = await opener.post(f"/api/v1/halls/{hall}/counters/{n}/open")
            assert status == 200, body
    finally:
        await opener.close()


async def deep(
    url: str, headers: dict[str, str], dsn: str, args: argparse.Namespace
) -> dict[str, float]:
    """The ``deep`` scenario: a burst of issuing builds a long queue, then 20 counters
    drain it; the database is checked afterwards."""
    hall, counters = "deep", DEEP_COUNTERS
    services = [code for code, _, _ in BENCH_SERVICES]
    await open_counters(url, headers, hall, counters)
    issuing = Phase(f"deep: issue, {DEEP_CLIENTS} clients as fast as answers come", args.meter)
    with issuing:
        acknowledged = await issue_burst(
            url, headers, hall, services, clients=DEEP_CLIENTS, seconds=args.deep_seconds,
            phase=issuing,
        )  # fmt: skip
    waiting_before = await waiting_now(dsn, hall)

    draining = Phase(f"deep: drain, {counters} counters call_next → start → finish", args.meter)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + args.deep_seconds

    async def counter_loop(n: int) -> None:
        client = KeepAliveClient(url, headers)
        base = f"/api/v1/halls/{hall}/counters/{n}"
        try:
            while loop.time() < deadline:
                for op in ("call_next", "start", "finish"):
                    status, answer = await timed_post(
                        client, draining, op, f"{base}/{op}", b"{}", deadline
                    )
                    if status != 200:
                        phase_error(draining, op, status, answer)
                        break
        finally:
            await client.close()

    t0 = time.perf_counter()
    with draining:
        if args.waits:
            async with WaitSampler(dsn) as waits:
                await asyncio.gather(*(counter_loop(n) for n in range(1, counters + 1)))
            print("deep: drain, what the database's backends did (pg_stat_activity samples):")
            for line in waits.lines():
                print("  " + line)
        else:
            await asyncio.gather(*(counter_loop(n) for n in range(1, counters + 1)))
    draining.elapsed = time.perf_counter() - t0
    draining.window = args.deep_seconds
    print(f"deep: {acknowledged} tickets acknowledged, {waiting_before} waiting before the drain")
    figures: dict[str, float] = {}
    issue = issuing.report(("issue",))
    figures["issue_ops_per_s"] = issue["ops_per_s"]
    figures["issue_p50_ms"] = issue["issue_p50_ms"]
    figures["issue_p99_ms"] = issue["issue_p99_ms"]
    figures["issue_errors"] = issue["errors"]
    drain = draining.report(("call_next", "start", "finish"))
    figures["drain_requests_per_s"] = drain["ops_per_s"]
    for op in ("call_next", "start", "finish"):
        figures[f"drain_{op}_p50_ms"] = drain[f"{op}_p50_ms"]
        figures[f"drain_{op}_p99_ms"] = drain[f"{op}_p99_ms"]
    figures["drain_errors"] = drain["errors"]
    figures["deep_waiting_before_drain"] = waiting_before
    figures.update(await integrity(dsn, hall, acknowledged))
    return figures


async def depth(
    url: str, headers: dict[str, str], dsn: str, args: argparse.Namespace
) -> dict[str, float]:
    """The ``depth`` scenario: paced call_next alone at growing queue depths."""
    hall, counters, service = "depth", DEPTH_COUNTERS, BENCH_SERVICES[0][0]
    await open_counters(url, headers, hall, counters)
    figures: dict[str, float] = {}
    for level in args.depths:
        missing = level + DEPTH_CALLS // 2 - await waiting_now(dsn, hall)
        if missing > 0:
            filling = Phase("fill")
            await issue_burst(
                url, headers, hall, [service], clients=DEEP_CLIENTS, count=missing, phase=filling
            )
        phase = Phase(f"depth: call_next with ~{level} waiting, paced")
        await paced_calls(url, headers, hall, counters, args.depth_rate, phase)
        result = phase.report(("call_next",))
        figures[f"call_next_p50_ms_{level}_waiting"] = result["call_next_p50_ms"]
        figures[f"call_next_p99_ms_{level}_waiting"] = result["call_next_p99_ms"]
        figures[f"call_next_errors_{level}_waiting"] = result["errors"]
    low, high = min(args.depths), max(args.depths)
    if figures.get(f"call_next_p99_ms_{low}_waiting"):
        ratio = (
            figures[f"call_next_p99_ms_{high}_waiting"] / figures[f"call_next_p99_ms_{low}_waiting"]
        )
        figures["call_next_p99_ratio_deepest_to_shallowest"] = round(ratio, 2)
        print(f"depth: call_next p99 at {high} waiting is {ratio:.2f}× that at {low} waiting")
    return figures


async def paced_calls(
    url: str, headers: dict[str, str], hall: str, counters: int, rate: float, phase: Phase
) -> None:
    """``DEPTH_CALLS`` call_next requests offered at ``rate`` per second by ``counters``
    counters; each called ticket is then marked a no-show (not timed) to free the counter."""
    loop = asyncio.get_running_loop()
    period = counters / rate  # each counter calls once per period
    start = loop.time()
    deadline = start + DEPTH_CALLS / rate + 30.0

    async def counter_loop(n: int) -> None:
        client = KeepAliveClient(url, headers)
        base = f"/api/v1/halls/{hall}/counters/{n}"
        next_start = start + period * (n - 1) / counters
        try:
            for _ in range(DEPTH_CALLS // counters):
                delay = next_start - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)  # pacing the offered load
                next_start += period
                status, answer = await timed_post(
                    client, phase, "call_next", f"{base}/call_next", b"{}", deadline
                )
                if status != 200:
                    phase_error(phase, "call_next", status, answer)
                    continue
                status, answer = await client.post(f"{base}/no_show", b"{}")
                assert status == 200, answer
        finally:
            await client.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(counter_loop(n) for n in range(1, counters + 1)))
    phase.elapsed = phase.window = time.perf_counter() - t0


async def waiting_now(dsn: str, hall: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        value: int = await conn.fetchval(
            "SELECT count(*) FROM tickets WHERE hall_id = $1 AND state = 'waiting'", hall
        )
    finally:
        await conn.close()
    return value


async def integrity(dsn: str, hall: str, acknowledged: int) -> dict[str, float]:
    """Checked in the database after a run: numbers issued twice, tickets called twice,
    acknowledged tickets missing."""
    conn = await asyncpg.connect(dsn)
    try:
        duplicates = await conn.fetchval(
            """SELECT count(*) FROM (SELECT 1 FROM tickets WHERE hall_id = $1
                 GROUP BY business_day, display_number HAVING count(*) > 1) d""",
            hall,
        )
        called_twice = await conn.fetchval(
            """SELECT count(*) FROM (SELECT 1 FROM events WHERE hall_id = $1
                 AND type = 'ticket.called' GROUP BY ticket_id HAVING count(*) > 1) d""",
            hall,
        )
        stored = await conn.fetchval("SELECT count(*) FROM tickets WHERE hall_id = $1", hall)
    finally:
        await conn.close()
    missing = max(0, acknowledged - stored)
    print(
        f"integrity: {duplicates} numbers issued twice, {called_twice} tickets called twice,"
        f" {missing} acknowledged tickets missing ({stored} stored)"
    )
    return {
        "duplicate_numbers": duplicates,
        "tickets_called_twice": called_twice,
        "acknowledged_missing": missing,
    }


async def run(args: argparse.Namespace) -> dict[str, object]:
    server_args = ("--pool-size", str(args.pool_size))
    config = halls_toml(
        [
            ("bench", args.counters, 2),
            ("deep", DEEP_COUNTERS, len(BENCH_SERVICES)),
            ("depth", DEPTH_COUNTERS, 1),
        ]
    )
    label = database_label(args.ram)
    print(f"database: embedded PostgreSQL, {label}; one server process")
    figures: dict[str, object] = {"database": label}
    with embedded_database(ram=args.ram, statement_stats=args.pg_stats) as dsn:
        async with server_process(dsn, config, server_args) as url:
            headers = await admin_headers(url, dsn)
            args.meter = await CpuMeter.connect(url, dsn)
            if "cycle" in args.scenarios:
                figures.update(await cycle(url, headers, args))
            if "deep" in args.scenarios:
                figures.update(await deep(url, headers, dsn, args))
            if "depth" in args.scenarios:
                figures.update(await depth(url, headers, dsn, args))
            if args.pg_stats:
                print("where PostgreSQL spent its time (pg_stat_statements, whole run):")
                for line in await statement_report(dsn):
                    print("  " + line)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--scenarios", nargs="+", default=["cycle", "deep", "depth"],
        choices=["cycle", "deep", "depth"],
    )  # fmt: skip
    parser.add_argument("--counters", type=int, default=50, help="cycle: counters")
    parser.add_argument("--seconds", type=float, default=15.0, help="cycle: seconds per phase")
    parser.add_argument("--rate", type=float, default=500.0, help="cycle: offered operations/s")
    parser.add_argument("--warmup", type=float, default=3.0, help="cycle: seconds not counted")
    parser.add_argument("--deep-seconds", type=float, default=20.0, help="deep: per phase")
    parser.add_argument(
        "--depths", type=int, nargs="+", default=[200, 2000, 20000], help="depth: levels"
    )
    parser.add_argument("--depth-rate", type=float, default=50.0, help="depth: calls/s offered")
    parser.add_argument("--pool-size", type=int, default=10, help="server database connections")
    parser.add_argument(
        "--ram", action="store_true", help="RAM disk, fsync off: the test server, not as shipped"
    )
    parser.add_argument(
        "--pg-stats", action="store_true", help="print pg_stat_statements' top statements"
    )
    parser.add_argument(
        "--waits", action="store_true",
        help="deep: sample what the database's backends wait on during the drain",
    )  # fmt: skip
    args = parser.parse_args()
    # The load generator shares the machine with the server: uvloop keeps its share small.
    figures = uvloop.run(run(args))
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()
