"""CPU per operation of the hot paths at low concurrency, for A/B comparisons.

On a shared machine throughput and latency move with the neighbours; CPU per operation
moves less, and least when two versions run side by side at the same time (run this from
each checkout at once, each with its own database and server). One ``hall serve`` on a
durable embedded PostgreSQL: ``--clients`` kiosks issue ``--tickets`` tickets (after as many
unmeasured), then ``--clients`` counters each run ``--cycles`` call_next → start → finish.
Prints the server's and PostgreSQL's CPU per operation of each phase, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import (
    BENCH_SERVICES,
    CpuMeter,
    admin_headers,
    embedded_database,
    halls_toml,
    server_process,
)
from bench.core import Phase, drain_cycles, issue_burst, open_counters

HALL = "probe"


async def run(args: argparse.Namespace) -> dict[str, float]:
    config = halls_toml([(HALL, args.clients, len(BENCH_SERVICES))])
    services = [code for code, _, _ in BENCH_SERVICES]
    with embedded_database() as dsn:
        async with server_process(dsn, config, ("--pool-size", "10")) as url:
            headers = await admin_headers(url, dsn)
            meter = await CpuMeter.connect(url, dsn)
            await open_counters(url, headers, HALL, args.clients)
            warm = Phase("warm-up")
            await issue_burst(
                url, headers, HALL, services, clients=args.clients, count=args.tickets, phase=warm
            )
            issuing = Phase("issue", meter)
            with issuing:
                await issue_burst(
                    url, headers, HALL, services, clients=args.clients, count=args.tickets,
                    phase=issuing,
                )  # fmt: skip
            draining = Phase("drain", meter)

            with draining:
                await drain_cycles(
                    url, headers, HALL, counters=args.clients, cycles=args.cycles, phase=draining
                )
    figures: dict[str, float] = {}
    for phase in (issuing, draining):
        server_ms = phase.cpu_s[0] * 1000 / phase.operations
        pg_ms = phase.cpu_s[1] * 1000 / phase.operations
        client_ms = phase.client_cpu_s * 1000 / phase.operations
        print(
            f"{phase.name}: server {server_ms:.3f} ms, PostgreSQL {pg_ms:.3f} ms,"
            f" load generator {client_ms:.3f} ms per operation ({phase.operations} operations)"
        )
        figures[f"{phase.name}_server_cpu_ms_per_op"] = round(server_ms, 3)
        figures[f"{phase.name}_postgres_cpu_ms_per_op"] = round(pg_ms, 3)
        figures[f"{phase.name}_client_cpu_ms_per_op"] = round(client_ms, 3)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=2, help="kiosks, then counters")
    parser.add_argument("--tickets", type=int, default=1500, help="tickets measured")
    parser.add_argument("--cycles", type=int, default=500, help="drain cycles per counter")
    args = parser.parse_args()
    print(json.dumps(uvloop.run(run(args))))


if __name__ == "__main__":
    main()
