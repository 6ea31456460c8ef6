"""What PostgreSQL does per operation of the hot paths: WAL, MultiXacts and statements.

Runs the same load as ``bench/cpu_per_op.py`` (``--clients`` kiosks issue ``--tickets``
tickets after as many unmeasured, then ``--clients`` counters each run ``--cycles`` call_next
→ start → finish) on a durable embedded PostgreSQL with pg_stat_statements, and prints per
operation of each phase: WAL records and bytes (``pg_stat_wal``), MultiXacts created (a row
locked by several transactions at once, e.g. by foreign key checks), and the statements'
execution time (wall time, so lock and flush waits included). These counts do not depend
on the machine's load, unlike CPU figures, so they compare versions run one after the other.

``--explain FILE`` also has ``auto_explain`` log a sample of the server's statements with
``ANALYZE, BUFFERS, WAL`` and trigger times, and copies PostgreSQL's log to FILE at the end.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import asyncpg
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import (
    BENCH_SERVICES,
    admin_headers,
    embedded_database,
    halls_toml,
    server_process,
)
from bench.core import Phase, drain_cycles, issue_burst, open_counters

HALL = "probe"
_AUTO_EXPLAIN = {
    "auto_explain.log_min_duration": "0",
    "auto_explain.log_analyze": "on",
    "auto_explain.log_buffers": "on",
    "auto_explain.log_wal": "on",
    "auto_explain.log_triggers": "on",
    "auto_explain.log_nested_statements": "on",
}


async def counts(dsn: str) -> dict[str, float]:
    conn = await asyncpg.connect(dsn)
    try:
        wal = await conn.fetchrow("SELECT wal_records, wal_bytes FROM pg_stat_wal")
        # The next MultiXact id is published at checkpoints only.
        await conn.execute("CHECKPOINT")
        multixact = await conn.fetchval(
            "SELECT next_multixact_id::text::bigint FROM pg_control_checkpoint()"
        )
        return {"wal_records": wal[0], "wal_bytes": float(wal[1]), "multixacts": multixact}
    finally:
        await conn.close()


async def statements(dsn: str, operations: int, top: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            """SELECT calls, total_exec_time,
                      left(regexp_replace(query, '\\s+', ' ', 'g'), 80) AS query
               FROM pg_stat_statements WHERE query NOT LIKE 'CHECKPOINT%'
               ORDER BY total_exec_time DESC LIMIT $1""",
            top,
        )
        for r in rows:
            per_op = r["total_exec_time"] * 1000 / operations
            per_call = r["total_exec_time"] * 1000 / max(r["calls"], 1)
            print(
                f"  {r['calls']:6d} calls {per_op:7.1f} µs/op {per_call:7.1f} µs/call  {r['query']}"
            )
        await conn.execute("SELECT pg_stat_statements_reset()")
    finally:
        await conn.close()


def report(name: str, before: dict[str, float], after: dict[str, float], operations: int) -> None:
    per_op = {k: round((after[k] - before[k]) / operations, 2) for k in before}
    print(
        f"{name}: {per_op['wal_records']} WAL records, {per_op['wal_bytes']:.0f} WAL bytes,"
        f" {per_op['multixacts']} MultiXacts per operation ({operations} operations)"
    )


async def run(args: argparse.Namespace) -> None:
    config = halls_toml([(HALL, args.clients, len(BENCH_SERVICES))])
    services = [code for code, _, _ in BENCH_SERVICES]
    with embedded_database(statement_stats=True) as dsn:
        conn = await asyncpg.connect(dsn)
        data_dir = await conn.fetchval("SHOW data_directory")
        if args.explain:
            await conn.execute("ALTER SYSTEM SET session_preload_libraries = 'auto_explain'")
            for key, value in {**_AUTO_EXPLAIN, "auto_explain.sample_rate": args.rate}.items():
                await conn.execute(f"ALTER SYSTEM SET {key} = '{value}'")
            await conn.execute("SELECT pg_reload_conf()")
        await conn.close()
        async with server_process(dsn, config, ("--pool-size", "10")) as url:
            headers = await admin_headers(url, dsn)
            await open_counters(url, headers, HALL, args.clients)
            warm = Phase("warm-up")
            await issue_burst(
                url, headers, HALL, services, clients=args.clients, count=args.tickets, phase=warm
            )
            await statements(dsn, 1, 0)
            start = await counts(dsn)
            issuing = Phase("issue")
            await issue_burst(
                url, headers, HALL, services, clients=args.clients, count=args.tickets,
                phase=issuing,
            )  # fmt: skip
            issued = await counts(dsn)
            report("issue", start, issued, args.tickets)
            await statements(dsn, args.tickets, args.top)
            draining = Phase("drain")

            await drain_cycles(
                url, headers, HALL, counters=args.clients, cycles=args.cycles, phase=draining
            )
            operations = args.clients * args.cycles * 3
            report("drain", issued, await counts(dsn), operations)
            await statements(dsn, operations, args.top)
        if args.explain:
            shutil.copy(Path(data_dir) / "server.log", args.explain)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=2, help="kiosks, then counters")
    parser.add_argument("--tickets", type=int, default=1000, help="tickets measured")
    parser.add_argument("--cycles", type=int, default=300, help="drain cycles per counter")
    parser.add_argument("--top", type=int, default=8, help="statements listed per phase")
    parser.add_argument("--explain", type=Path, help="copy auto_explain's plans to this file")
    parser.add_argument("--rate", type=float, default=0.03, help="auto_explain's sample rate")
    uvloop.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
