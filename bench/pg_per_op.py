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

``--wal`` also reads each phase's WAL with ``pg_waldump`` and prints its records per operation
by kind and relation (heap insert into ``tickets``, a btree entry in ``events_pkey``, a
commit, …), and PostgreSQL's CPU per operation by process: the backends serving the
statements, each background process (walwriter, checkpointer, autovacuum, …), and children
that ended during the phase (autovacuum workers, mostly).
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import asyncpg
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import (
    BENCH_SERVICES,
    _children,
    _cmdline,
    _cpu_of,
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


_RECORD = re.compile(
    r"rmgr: (\S+)\s+len \(rec/tot\):\s*\d+/\s*(\d+).*?desc: (\S+)"
    r"(?:.*?blkref #0: rel \d+/\d+/(\d+))?"
)


async def wal_position(dsn: str) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        lsn: str = await conn.fetchval("SELECT pg_current_wal_lsn()::text")
        return lsn
    finally:
        await conn.close()


async def relation_names(dsn: str) -> dict[str, str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT pg_relation_filenode(oid)::text AS node, relname FROM pg_class"
            " WHERE pg_relation_filenode(oid) IS NOT NULL"
        )
        return {r["node"]: r["relname"] for r in rows}
    finally:
        await conn.close()


def wal_records(data_dir: str, start: str, end: str, names: dict[str, str]) -> Counter[str]:
    """WAL records between two positions by kind and first block's relation (pg_waldump)."""
    from hall.storage.embedded import _bin_dir

    out = subprocess.run(
        [str(_bin_dir() / "pg_waldump"), "-p", str(Path(data_dir) / "pg_wal"), "-s", start,
         "-e", end],
        capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    found: Counter[str] = Counter()
    for line in out.splitlines():
        m = _RECORD.search(line)
        if m is None:
            continue
        rmgr, _, desc, node = m.groups()
        relation = names.get(node, f"rel {node}") if node else ""
        found[f"{rmgr} {desc} {relation}".strip()] += 1
    return found


def print_wal(found: Counter[str], operations: int, top: int) -> None:
    for key, n in found.most_common(top):
        print(f"  {n / operations:6.2f} WAL records/op  {key}")


_BACKGROUND = (
    "autovacuum launcher", "autovacuum worker", "background writer", "checkpointer",
    "walwriter", "logical replication launcher", "io worker", "walsummarizer",
)  # fmt: skip


def process_cpu(postmaster: int) -> Counter[str]:
    """CPU seconds so far of PostgreSQL's processes by kind (from their titles): background
    processes by name, client backends together, and children that have ended."""
    found: Counter[str] = Counter()
    found["ended children"] = _cpu_of(postmaster, children=True) - _cpu_of(postmaster)
    found["postmaster"] = _cpu_of(postmaster)
    for pid in _children(postmaster):
        title = _cmdline(Path(f"/proc/{pid}")).removeprefix("postgres: ").strip()
        kind = next((k for k in _BACKGROUND if title.startswith(k)), "backends")
        # One that ended meanwhile is counted with the ended children next time.
        with contextlib.suppress(OSError, IndexError, ValueError):
            found[kind] += _cpu_of(pid)
    return found


def print_cpu(before: Counter[str], after: Counter[str], operations: int) -> None:
    kinds = sorted(set(before) | set(after), key=lambda k: before[k] - after[k])
    parts = [f"{k} {(after[k] - before[k]) * 1000 / operations:.3f}" for k in kinds]
    print("  PostgreSQL CPU ms/op by process: " + ", ".join(parts))


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
        postmaster = int((Path(data_dir) / "postmaster.pid").read_text().split()[0])
        async with server_process(dsn, config, ("--pool-size", "10")) as url:
            headers = await admin_headers(url, dsn)
            await open_counters(url, headers, HALL, args.clients)
            warm = Phase("warm-up")
            await issue_burst(
                url, headers, HALL, services, clients=args.clients, count=args.tickets, phase=warm
            )
            await statements(dsn, 1, 0)
            names = await relation_names(dsn) if args.wal else {}
            start = await counts(dsn)
            wal_start, cpu_start = await wal_position(dsn), process_cpu(postmaster)
            issuing = Phase("issue")
            await issue_burst(
                url, headers, HALL, services, clients=args.clients, count=args.tickets,
                phase=issuing,
            )  # fmt: skip
            # Read before the next CHECKPOINT, which may recycle the phase's WAL segments.
            wal_end, cpu_end = await wal_position(dsn), process_cpu(postmaster)
            if args.wal:
                by_kind = wal_records(data_dir, wal_start, wal_end, names)
            issued = await counts(dsn)
            report("issue", start, issued, args.tickets)
            if args.wal:
                print_cpu(cpu_start, cpu_end, args.tickets)
                print_wal(by_kind, args.tickets, args.top * 3)
            await statements(dsn, args.tickets, args.top)
            draining = Phase("drain")

            wal_start, cpu_start = await wal_position(dsn), process_cpu(postmaster)
            await drain_cycles(
                url, headers, HALL, counters=args.clients, cycles=args.cycles, phase=draining
            )
            wal_end, cpu_end = await wal_position(dsn), process_cpu(postmaster)
            operations = args.clients * args.cycles * 3
            if args.wal:
                by_kind = wal_records(data_dir, wal_start, wal_end, names)
            report("drain", issued, await counts(dsn), operations)
            if args.wal:
                print_cpu(cpu_start, cpu_end, operations)
                print_wal(by_kind, operations, args.top * 3)
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
    parser.add_argument(
        "--wal", action="store_true", help="WAL records by kind and relation, CPU by process"
    )
    parser.add_argument("--rate", type=float, default=0.03, help="auto_explain's sample rate")
    uvloop.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
