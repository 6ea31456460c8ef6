"""Core throughput: issue → call → start → finish cycles through the HTTP API.

50 counters work at once against one server process on the embedded database; each counter
loop issues a ticket (as a kiosk), calls the next one, starts and finishes it. Bounded by
``--seconds`` and ``--cycles``. Prints readable lines, then one JSON object of figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import (  # noqa: E402
    admin_headers,
    embedded_database,
    hall_toml,
    percentile,
    server_process,
)

OPERATIONS = ("issue", "call_next", "start", "finish")


async def run(counters: int, seconds: float, max_cycles: int) -> dict[str, float]:
    with embedded_database() as dsn:
        async with server_process(dsn, hall_toml(counters)) as url:
            latencies: dict[str, list[float]] = defaultdict(list)
            errors: dict[str, int] = defaultdict(int)
            connector = aiohttp.TCPConnector(limit=counters * 2)
            headers = await admin_headers(url, dsn)
            async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
                base = f"{url}/api/v1/halls/bench"
                for n in range(1, counters + 1):
                    async with session.post(f"{base}/counters/{n}/open", json={}) as resp:
                        assert resp.status == 200, await resp.text()
                loop = asyncio.get_running_loop()
                deadline = loop.time() + seconds
                cycles = 0

                async def timed(op: str, path: str, body: dict[str, str]) -> bool:
                    t0 = time.perf_counter()
                    async with session.post(f"{base}/{path}", json=body) as resp:
                        await resp.read()
                        ok = resp.status in (200, 201)
                    latencies[op].append((time.perf_counter() - t0) * 1000)
                    if not ok:
                        errors[op] += 1
                    return ok

                async def counter_loop(n: int) -> None:
                    nonlocal cycles
                    while loop.time() < deadline and cycles < max_cycles:
                        cycles += 1
                        await timed("issue", "tickets", {"service": "bdc"})
                        if await timed("call_next", f"counters/{n}/call_next", {}):
                            await timed("start", f"counters/{n}/start", {})
                            await timed("finish", f"counters/{n}/finish", {})

                started = time.perf_counter()
                await asyncio.gather(*(counter_loop(n) for n in range(1, counters + 1)))
                elapsed = time.perf_counter() - started

    total = sum(len(v) for v in latencies.values())
    figures: dict[str, float] = {
        "counters": counters,
        "cycles": cycles,
        "duration_s": round(elapsed, 2),
        "operations": total,
        "ops_per_s": round(total / elapsed, 1),
        "errors": sum(errors.values()),
    }
    print(f"{counters} counters, {cycles} cycles, {total} operations in {elapsed:.1f} s")
    print(f"throughput: {total / elapsed:.0f} operations/s ({cycles / elapsed:.0f} tickets/s)")
    for op in OPERATIONS:
        values = latencies[op]
        p50, p99 = percentile(values, 50), percentile(values, 99)
        print(
            f"  {op:<10} n={len(values):<6} p50={p50:6.1f} ms  p99={p99:6.1f} ms  errors={errors[op]}"
        )
        figures[f"{op}_p50_ms"] = round(p50, 2)
        figures[f"{op}_p99_ms"] = round(p99, 2)
    every = [x for v in latencies.values() for x in v]
    figures["p50_ms"] = round(percentile(every, 50), 2)
    figures["p99_ms"] = round(percentile(every, 99), 2)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--counters", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--cycles", type=int, default=20_000)
    args = parser.parse_args()
    figures = asyncio.run(run(args.counters, args.seconds, args.cycles))
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()
