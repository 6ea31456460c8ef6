"""Core throughput and latency: issue → call → start → finish cycles through the HTTP API.

Against one ``hall serve`` process on the embedded database with 50 counters, after a
``--warmup`` of a few seconds at the paced rate that is run but not counted, two phases:

1. paced: the counters together offer ``--rate`` operations per second (default 500, far
   above a county hall's peak of a few hundred tickets an hour); latency per operation;
2. saturation: every counter loops as fast as answers come back; the throughput ceiling.

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

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import (
    KeepAliveClient,
    admin_headers,
    embedded_database,
    hall_toml,
    percentile,
    server_process,
)

OPERATIONS = ("issue", "call_next", "start", "finish")
OPS_PER_CYCLE = len(OPERATIONS)


class Phase:
    """Latencies and errors of one load phase."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.elapsed = 0.0
        self.window = 0.0  # the phase's length: no cycle starts after it
        self.in_window = 0  # operations completed within it

    @property
    def operations(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    def report(self) -> dict[str, float]:
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
        for op in OPERATIONS:
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


async def run(
    counters: int,
    seconds: float,
    rate: float,
    warmup: float,
    server_args: tuple[str, ...] = (),
) -> dict[str, float]:
    with embedded_database() as dsn:
        async with server_process(dsn, hall_toml(counters), server_args) as url:
            headers = await admin_headers(url, dsn)
            opener = KeepAliveClient(url, headers)
            for n in range(1, counters + 1):
                status, body = await opener.post(f"/api/v1/halls/bench/counters/{n}/open")
                assert status == 200, body
            await opener.close()
            # New connections, prepared statements and warm caches: the first second of a
            # fresh server is not what a hall sees all day, so it is run but not counted.
            warm = Phase("warm-up")
            await load(url, headers, counters, warmup, rate, warm)
            paced = Phase(f"paced at {rate:.0f} operations/s offered")
            await load(url, headers, counters, seconds, rate, paced)
            saturated = Phase("saturation (closed loop)")
            await load(url, headers, counters, seconds, None, saturated)

    print(f"{counters} counters, one server process")
    print(f"warm-up (not counted): {warm.operations} operations in {warm.elapsed:.1f} s")
    figures: dict[str, float] = {
        "counters": counters,
        "offered_ops_per_s": rate,
        "warmup_s": warmup,
    }
    figures.update(paced.report())
    sat = saturated.report()
    figures["saturation_ops_per_s"] = sat["ops_per_s"]
    figures["saturation_p99_ms"] = sat["p99_ms"]
    figures["saturation_errors"] = sat["errors"]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--counters", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=15.0, help="per phase")
    parser.add_argument("--rate", type=float, default=500.0, help="offered operations/s")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds run, not counted")
    parser.add_argument("--pool-size", type=int, default=10, help="server database connections")
    args = parser.parse_args()
    server_args = ("--pool-size", str(args.pool_size))
    # The load generator shares the machine with the server: uvloop keeps its share small.
    figures = uvloop.run(run(args.counters, args.seconds, args.rate, args.warmup, server_args))
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()
