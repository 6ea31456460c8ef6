"""A bounded peak hour at ten times a large hall, through the real API and websockets.

One ``hall serve`` process on the shipped durable embedded PostgreSQL (fsync on, on disk, in a
fresh ``--data-dir``), one hall with 200 windows, 20 kiosks and 100 screens, and:

- 200 clerks, each a staff account (role clerk, its own window) that logs in with its password
  from its own loopback address, opens its window, then loops call_next → start → finish
  with think times (the citizen walks to the window, is served, the clerk files the case);
- 20 kiosks (device tokens) issuing tickets at random intervals (a Poisson stream);
- 100 display clients (screen device tokens) and 5 dashboards (duty managers' sessions,
  ``channel=dashboard``) holding the live websocket; each must get every event once, in
  order. They run in a child process so that reading ~100,000 frames a second does not
  delay the clerks' and kiosks' timings.

Think times are set so the offered load is ``--rate`` operations per second (default 1,200):
a ticket is four operations (issue, call_next, start, finish), so every clerk serves one
ticket per ``4 × clerks / rate`` seconds and kiosks issue 3 % more tickets than that, on top
of a starting backlog, so the queue does not run dry. The think times start when an answer
arrives, as a person's do, so slow answers lower the load actually offered. A call_next that
finds the queue empty is the expected domain answer (409 queue_empty): counted as an
operation (the server answered it) and apart, not as an error. A clerk whose request failed
reads its window and finishes what is open, so one failure is counted once.

The websocket clients cost the load generator CPU on the same machine (their CPU seconds are
reported): on two cores, the figures are of the server, PostgreSQL and all clients together.

Counted as errors: any other non-2xx answer, any exception (timeout, reset), any event a
websocket did not get (a gap in prev_seq, a websocket closed or behind at the end), and
ERROR lines or tracebacks in the server's log. Measured over ``--duration-s`` after a
``--warmup-s`` that runs the same load uncounted: throughput and p50/p99 per operation,
server CPU and memory (from /proc: ``hall serve`` itself, and PostgreSQL's postmaster with
its backends), websocket deliveries and their delay from the event's commit.

Bounded: ``--duration-s`` at most an hour; every request times out after 10 s; only
loopback. Prints readable lines, then one JSON object of figures as the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import random
import resource
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import asyncpg
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import (
    KeepAliveClient,
    LiveSocket,
    ProcessUsage,
    admin_headers,
    hall_toml,
    percentile,
    process_usage,
    served,
)
from hall.security.passwords import hash_password
from hall.storage import access_repo
from hall.storage.embedded import EmbeddedPostgres

HALL = "bench"
BASE = f"/api/v1/halls/{HALL}"
PASSWORD = "Bench-clerk-2026"
REQUEST_TIMEOUT_S = 10.0
OPERATIONS = ("issue", "call_next", "start", "finish")
OPS_PER_TICKET = len(OPERATIONS)
ISSUE_SURPLUS = 1.03  # kiosks issue a little more than clerks serve: the queue never runs dry
# Where a clerk's cycle time goes: walking to the window, the service, filing the case.
THINK_SHARES = {"walk": 0.25, "serve": 0.5, "file": 0.25}


def source_address(n: int) -> str:
    """Loopback address of terminal ``n`` (1-based): every terminal is its own PC, so the
    per-address login limit (10 at once) applies to each as in a hall."""
    return f"127.0.{1 + (n - 1) // 250}.{(n - 1) % 250 + 1}"


@dataclass
class Stats:
    """Latencies, answers and errors of the measured window."""

    window: tuple[float, float] = (float("inf"), float("inf"))
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    exceptions: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    empty: int = 0  # call_next answered queue_empty (expected)
    completed_in_window: int = 0
    samples: list[str] = field(default_factory=list)  # a few unexpected answers, for the reader

    def counted(self, started: float) -> bool:
        return self.window[0] <= started < self.window[1]

    def error(self, op: str, detail: str) -> None:
        self.errors[op] += 1
        if len(self.samples) < 8:
            self.samples.append(f"{op}: {detail[:300]}")


class Terminal:
    """One clerk terminal or kiosk: a keep-alive connection from its own address."""

    def __init__(self, url: str, token: str, local_host: str, stats: Stats) -> None:
        self.client = KeepAliveClient(url, {"Authorization": f"Bearer {token}"}, local_host)
        self.stats = stats

    async def post(self, op: str, path: str, body: bytes = b"{}") -> tuple[int, bytes] | None:
        """POST and account for it; None when it raised (counted as an exception)."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                status, answer = await self.client.post(path, body)
        except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError) as exc:
            await self.client.close()  # the next request reconnects
            if self.stats.counted(started):
                self.stats.exceptions[op] += 1
                if len(self.stats.samples) < 8:
                    self.stats.samples.append(f"{op}: {type(exc).__name__}: {exc}")
            return None
        done = time.perf_counter()
        if self.stats.counted(started):
            self.stats.latencies[op].append((done - started) * 1000)
            if done < self.stats.window[1]:
                self.stats.completed_in_window += 1
            if status == 409 and op == "call_next" and b'"queue_empty"' in answer:
                self.stats.empty += 1
            elif not 200 <= status < 300:
                self.stats.error(op, f"{status} {answer.decode(errors='replace')}")
        return status, answer


def think(mean_s: float) -> float:
    """A think time around ``mean_s`` (uniform ±50 %)."""
    return mean_s * random.uniform(0.5, 1.5)


async def clerk(n: int, terminal: Terminal, cycle_s: float, stop: asyncio.Event) -> None:
    path = f"{BASE}/counters/{n}"
    walk, serve, file = (cycle_s * THINK_SHARES[k] for k in ("walk", "serve", "file"))
    # Clerks do not all start at the same instant.
    await asyncio.sleep(random.uniform(0, cycle_s))
    while not stop.is_set():
        answer = await terminal.post("call_next", f"{path}/call_next")
        if answer is not None and answer[0] == 200:
            await asyncio.sleep(think(walk))
            ok = await terminal.post("start", f"{path}/start")
            await asyncio.sleep(think(serve))
            if ok is not None and ok[0] == 200:
                ok = await terminal.post("finish", f"{path}/finish")
            answer = ok
        if answer is None or (answer[0] != 200 and b'"queue_empty"' not in answer[1]):
            # Timed out or refused: the request may still have been done. Like a clerk
            # reloading the page, read the window's state and finish what is open, so one
            # error is counted once and not again by every later step.
            await recover(terminal, path)
        await asyncio.sleep(think(file))


async def recover(terminal: Terminal, path: str) -> None:
    with contextlib.suppress(OSError, TimeoutError, ValueError, asyncio.IncompleteReadError):
        async with asyncio.timeout(REQUEST_TIMEOUT_S):
            status, answer = await terminal.client.get(path)
        if status != 200:
            return
        state = json.loads(answer)["state"]
        if state == "calling":
            await terminal.post("start", f"{path}/start")
            state = "serving"
        if state == "serving":
            await terminal.post("finish", f"{path}/finish")


async def kiosk(terminal: Terminal, interval_s: float, stop: asyncio.Event) -> None:
    """Citizens arrive at random (a Poisson stream), whatever the server's pace; a kiosk
    serves one at a time, so it falls behind only when an answer takes longer than the gap."""
    bodies = [json.dumps({"service": s}).encode() for s in ("bdc", "tax")]
    due = time.perf_counter()
    while not stop.is_set():
        due += random.expovariate(1 / interval_s)
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)  # pacing the arrivals, not synchronisation
        if stop.is_set():
            return
        await terminal.post("issue", f"{BASE}/tickets", random.choice(bodies))


# --- setup ------------------------------------------------------------------------------------


async def create_staff(dsn: str, clerks: int, dashboards: int) -> None:
    """Clerk and duty-manager accounts, with a real (production-cost) password hash."""
    password_hash = await asyncio.to_thread(hash_password, PASSWORD)
    conn = await asyncpg.connect(dsn)
    try:
        for n in range(1, clerks + 1):
            await access_repo.save_account(
                conn,
                f"c{n:04d}",
                password_hash=password_hash,
                name=f"窗口{n}",
                roles=["clerk"],
                halls=[HALL],
                counters=[n],
            )
        for n in range(1, dashboards + 1):
            await access_repo.save_account(
                conn,
                f"m{n:03d}",
                password_hash=password_hash,
                name=f"值班长{n}",
                roles=["duty_manager"],
                halls=[HALL],
            )
    finally:
        await conn.close()


async def login(url: str, job_no: str, local_host: str) -> str:
    client = KeepAliveClient(url, {}, local_host)
    try:
        body = json.dumps({"job_no": job_no, "password": PASSWORD}).encode()
        status, answer = await client.post("/api/v1/login", body)
    finally:
        await client.close()
    if status != 200:
        raise RuntimeError(f"login of {job_no}: {status} {answer[:300]!r}")
    token: str = json.loads(answer)["token"]
    return token


async def device_tokens(url: str, admin: dict[str, str], kind: str, ids: list[str]) -> list[str]:
    client = KeepAliveClient(url, admin)
    found = []
    try:
        for device_id in ids:
            body = json.dumps({"kind": kind, "hall": HALL, "device_id": device_id}).encode()
            status, answer = await client.post("/api/v1/device-tokens", body)
            if status != 201:
                raise RuntimeError(f"device token {device_id}: {status} {answer[:300]!r}")
            found.append(json.loads(answer)["token"])
    finally:
        await client.close()
    return found


# --- websocket watchers (child process) ------------------------------------------------------


def watch(url: str, tokens: list[tuple[str, str]], pipe: Connection) -> None:
    """Child process: hold the websockets, then report what each received."""
    uvloop.run(_watch(url, tokens, pipe))


async def _watch(url: str, tokens: list[tuple[str, str]], pipe: Connection) -> None:
    sockets: list[LiveSocket] = []
    report: dict[str, Any] = {"connect_errors": 0}
    try:
        await _follow(url, tokens, pipe, sockets, report)
    except Exception as exc:
        report["failed"] = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        for s in sockets:
            s.close()
        pipe.send(report)


async def _follow(
    url: str,
    tokens: list[tuple[str, str]],
    pipe: Connection,
    sockets: list[LiveSocket],
    report: dict[str, Any],
) -> None:
    """Connect every websocket, report ready, wait for the final seq, then count."""
    for n, (channel, token) in enumerate(tokens, start=1):
        path = f"{BASE}/live?channel={channel}"
        try:
            sockets.append(await LiveSocket.connect(url, path, token, source_address(n)))
        except (OSError, ConnectionError) as exc:
            report["connect_errors"] += 1
            report.setdefault("connect_error", str(exc))
    async with asyncio.timeout(60):
        await asyncio.gather(*(s.started.wait() for s in sockets))
    pipe.send({"ready": len(sockets)})
    final = await asyncio.to_thread(pipe.recv)  # the hall's last seq once the load stopped
    waits = [s.wait_for(final).wait() for s in sockets if not s.closed.done()]
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(30):
            await asyncio.gather(*waits)
    lags = [x for s in sockets for x in s.lags_ms]
    closed = [s.closed.result() for s in sockets if s.closed.done()]
    report.update(
        sockets=len(sockets),
        events=sum(s.events for s in sockets),
        expected=sum(final - (s.first_seq or final) for s in sockets),
        behind=sum(max(0, final - s.seq) for s in sockets),
        gaps=sum(s.gaps for s in sockets),
        snapshots=sum(s.snapshots for s in sockets),
        closed=len(closed),
        close_codes=sorted({c for c in closed if c is not None}),
        lag_p50_ms=percentile(lags, 50),
        lag_p99_ms=percentile(lags, 99),
        lag_max_ms=max(lags, default=float("nan")),
        cpu_s=sum(resource.getrusage(resource.RUSAGE_SELF)[:2]),
    )


# --- the run ----------------------------------------------------------------------------------


@dataclass
class Usage:
    """Server and PostgreSQL usage: CPU at the window's ends, memory peaks while it runs."""

    server_pid: int
    postgres_pid: int
    start: tuple[ProcessUsage, ProcessUsage] | None = None
    end: tuple[ProcessUsage, ProcessUsage] | None = None
    server_rss_max: int = 0
    postgres_pss_max: int = 0

    def now(self) -> tuple[ProcessUsage, ProcessUsage]:
        server = process_usage(self.server_pid)
        postgres = process_usage(self.postgres_pid, with_children=True)
        self.server_rss_max = max(self.server_rss_max, server.rss_bytes)
        self.postgres_pss_max = max(self.postgres_pss_max, postgres.pss_bytes)
        return server, postgres

    async def sample(self, every_s: float = 1.0) -> None:
        while True:
            await asyncio.to_thread(self.now)
            await asyncio.sleep(every_s)


def postmaster_pid(data_dir: Path) -> int:
    pid_file = EmbeddedPostgres(data_dir).pgdata / "postmaster.pid"
    return int(pid_file.read_text().split()[0])


def log_errors(log: Path) -> tuple[int, list[str]]:
    """ERROR/CRITICAL lines and tracebacks in the server's log."""
    bad = [
        line
        for line in log.read_text(errors="replace").splitlines()
        if " ERROR " in line or " CRITICAL " in line or line.startswith("Traceback")
    ]
    return len(bad), bad[:5]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    keep = args.data_dir is not None
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="hall-load-"))
    config = hall_toml(args.clerks, HALL, kiosks=args.kiosks, screens=args.displays)
    server_args = ("--data-dir", str(data_dir), "--pool-size", str(args.pool_size))
    try:
        async with served(None, config, server_args) as server:
            return await load(args, server.url, server.pid, server.log, data_dir)
    finally:
        # The server stops the embedded PostgreSQL it started; make sure, then clean up.
        with contextlib.suppress(Exception):
            await asyncio.to_thread(EmbeddedPostgres(data_dir).force_stop)
        if not keep:
            shutil.rmtree(data_dir, ignore_errors=True)


async def load(
    args: argparse.Namespace, url: str, server_pid: int, log: Path, data_dir: Path
) -> dict[str, Any]:
    dsn = EmbeddedPostgres(data_dir).dsn()
    t_setup = time.perf_counter()
    admin = await admin_headers(url, dsn)
    await create_staff(dsn, args.clerks, args.dashboards)
    kiosk_tokens = await device_tokens(
        url, admin, "kiosk", [f"k{n:03d}" for n in range(1, args.kiosks + 1)]
    )
    screen_tokens = await device_tokens(
        url, admin, "display", [f"s{n:03d}" for n in range(1, args.displays + 1)]
    )
    # Every clerk and duty manager logs in with the password, as at the start of a day.
    staff = [(f"c{n:04d}", n) for n in range(1, args.clerks + 1)]
    staff += [(f"m{n:03d}", args.clerks + n) for n in range(1, args.dashboards + 1)]
    sessions = await asyncio.gather(*(login(url, j, source_address(n)) for j, n in staff))
    clerk_tokens, dashboard_tokens = sessions[: args.clerks], sessions[args.clerks :]
    print(
        f"set up {args.clerks} clerks, {args.dashboards} duty managers (logged in with "
        f"passwords), {args.kiosks} kiosk and {args.displays} screen tokens "
        f"in {time.perf_counter() - t_setup:.1f} s"
    )

    stats = Stats()
    first = 10_000  # kiosks' and clerks' source addresses follow the watchers'
    clerks = [
        Terminal(url, token, source_address(first + n), stats)
        for n, token in enumerate(clerk_tokens, start=1)
    ]
    kiosks = [
        Terminal(url, token, source_address(first + args.clerks + n), stats)
        for n, token in enumerate(kiosk_tokens, start=1)
    ]
    for n, terminal in enumerate(clerks, start=1):
        answer = await terminal.post("open", f"{BASE}/counters/{n}/open")
        assert answer is not None and answer[0] == 200, answer
    backlog = args.clerks * 2
    for i in range(backlog):
        body = json.dumps({"service": ("bdc", "tax")[i % 2]}).encode()
        answer = await kiosks[i % len(kiosks)].post("issue", f"{BASE}/tickets", body)
        assert answer is not None and answer[0] == 201, answer

    # Displays and dashboards in a child process, connected before the load starts.
    watchers = [("display", t) for t in screen_tokens] + [
        ("dashboard", t) for t in dashboard_tokens
    ]
    ours, theirs = multiprocessing.get_context("spawn").Pipe()
    child = multiprocessing.get_context("spawn").Process(
        target=watch, args=(url, watchers, theirs), daemon=True
    )
    child.start()
    ready = await asyncio.to_thread(ours.recv)
    if "ready" not in ready:
        raise RuntimeError(f"websocket watchers failed: {ready}")
    print(
        f"{ready['ready']} websockets follow the hall ({args.displays} displays, "
        f"{args.dashboards} dashboards)"
    )

    tickets_per_s = args.rate / OPS_PER_TICKET
    cycle_s = args.clerks / tickets_per_s
    kiosk_interval_s = args.kiosks / (tickets_per_s * ISSUE_SURPLUS)
    usage = Usage(server_pid, postmaster_pid(data_dir))
    sampler = asyncio.create_task(usage.sample())
    stop = asyncio.Event()
    start = time.perf_counter()
    stats.window = (start + args.warmup_s, start + args.warmup_s + args.duration_s)
    tasks = [asyncio.create_task(clerk(n, t, cycle_s, stop)) for n, t in enumerate(clerks, 1)]
    tasks += [asyncio.create_task(kiosk(t, kiosk_interval_s, stop)) for t in kiosks]
    print(
        f"offering {args.rate:.0f} operations/s: a clerk serves a ticket every {cycle_s:.2f} s, "
        f"a kiosk issues one every {kiosk_interval_s:.3f} s on average; warm-up "
        f"{args.warmup_s:.0f} s, then {args.duration_s:.0f} s measured"
    )
    own_cpu_start = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
    await asyncio.sleep(args.warmup_s)
    usage.start = await asyncio.to_thread(usage.now)
    await asyncio.sleep(args.duration_s)
    usage.end = await asyncio.to_thread(usage.now)
    own_cpu = sum(resource.getrusage(resource.RUSAGE_SELF)[:2]) - own_cpu_start
    stop.set()
    await asyncio.gather(*tasks)
    sampler.cancel()
    for terminal in clerks + kiosks:
        await terminal.client.close()

    conn = await asyncpg.connect(dsn)
    try:
        # Events get their seq right after commit (hall.storage.sequencer): wait, bounded,
        # until everything committed is numbered, then that is what every client must reach.
        for _ in range(100):
            pending = await conn.fetchval(
                "SELECT count(*) FROM events WHERE hall_id = $1 AND seq IS NULL", HALL
            )
            if not pending:
                break
            await asyncio.sleep(0.1)
        final_seq = await conn.fetchval("SELECT last_seq FROM halls WHERE id = $1", HALL)
        waiting = await conn.fetchval(
            "SELECT count(*) FROM tickets WHERE hall_id = $1 AND state = 'waiting'", HALL
        )
    finally:
        await conn.close()
    ours.send(final_seq)
    ws = await asyncio.to_thread(ours.recv)
    child.join(timeout=10)
    log_error_count, log_samples = log_errors(log)
    return report(args, stats, usage, ws, own_cpu, log_error_count, log_samples, waiting)


def report(
    args: argparse.Namespace,
    stats: Stats,
    usage: Usage,
    ws: dict[str, Any],
    own_cpu: float,
    log_error_count: int,
    log_samples: list[str],
    waiting: int,
) -> dict[str, Any]:
    duration = args.duration_s
    ops_per_s = stats.completed_in_window / duration
    figures: dict[str, Any] = {
        "clerks": args.clerks,
        "kiosks": args.kiosks,
        "displays": args.displays,
        "dashboards": args.dashboards,
        "duration_s": duration,
        "offered_ops_per_s": args.rate,
        "ops_per_s": round(ops_per_s, 1),
    }
    print(f"{stats.completed_in_window} operations in {duration:.0f} s = {ops_per_s:.0f}/s")
    every: list[float] = []
    for op in OPERATIONS:
        values = stats.latencies[op]
        every += values
        p50, p99 = percentile(values, 50), percentile(values, 99)
        bad = stats.errors[op] + stats.exceptions[op]
        print(
            f"  {op:<10} n={len(values):<7} p50={p50:6.1f} ms  p99={p99:6.1f} ms  "
            f"max={max(values, default=float('nan')):7.1f} ms  errors={bad}"
        )
        figures[f"{op}_n"] = len(values)
        figures[f"{op}_p50_ms"] = round(p50, 2)
        figures[f"{op}_p99_ms"] = round(p99, 2)
        figures[f"{op}_errors"] = bad
    figures["p50_ms"] = round(percentile(every, 50), 2)
    figures["p99_ms"] = round(percentile(every, 99), 2)
    figures["call_next_empty"] = stats.empty
    figures["waiting_at_end"] = waiting
    print(f"  call_next found the queue empty {stats.empty} times; {waiting} waiting at the end")

    missing = ws.get("expected", 0) - ws.get("events", 0)
    ws_errors = (
        max(0, missing) + ws.get("gaps", 0) + ws.get("snapshots", 0) + ws.get("closed", 0)
    ) + ws.get("connect_errors", 0)
    figures.update(
        ws_sockets=ws.get("sockets", 0),
        ws_deliveries=ws.get("events", 0),
        ws_missing=max(0, missing),
        ws_gaps=ws.get("gaps", 0),
        ws_resnapshots=ws.get("snapshots", 0),
        ws_closed=ws.get("closed", 0),
        ws_lag_p50_ms=round(ws.get("lag_p50_ms", float("nan")), 2),
        ws_lag_p99_ms=round(ws.get("lag_p99_ms", float("nan")), 2),
        ws_lag_max_ms=round(ws.get("lag_max_ms", float("nan")), 2),
    )
    print(
        f"websockets: {ws.get('sockets', 0)} held, {ws.get('events', 0)} deliveries of "
        f"{ws.get('expected', 0)} expected; missing {max(0, missing)}, gaps {ws.get('gaps', 0)}, "
        f"unasked snapshots {ws.get('snapshots', 0)}, closed {ws.get('closed', 0)} "
        f"{ws.get('close_codes', [])}; commit → arrival p50 {figures['ws_lag_p50_ms']} ms, "
        f"p99 {figures['ws_lag_p99_ms']} ms"
    )

    http_errors = sum(stats.errors.values())
    exceptions = sum(stats.exceptions.values())
    errors = http_errors + exceptions + ws_errors + log_error_count
    figures.update(
        errors=errors,
        http_errors=http_errors,
        exceptions=exceptions,
        ws_errors=ws_errors,
        server_log_errors=log_error_count,
    )
    print(
        f"errors: {errors} (HTTP {http_errors}, exceptions {exceptions}, websocket {ws_errors}, "
        f"server log {log_error_count})"
    )
    for line in stats.samples + log_samples:
        print(f"  e.g. {line}")

    assert usage.start is not None and usage.end is not None
    server_cpu = usage.end[0].cpu_s - usage.start[0].cpu_s
    postgres_cpu = usage.end[1].cpu_s - usage.start[1].cpu_s
    figures.update(
        server_cpu_s=round(server_cpu, 1),
        server_cpu_share=round(server_cpu / duration, 3),
        server_rss_bytes=usage.server_rss_max,
        server_peak_rss_bytes=usage.end[0].peak_rss_bytes,
        postgres_cpu_s=round(postgres_cpu, 1),
        postgres_cpu_share=round(postgres_cpu / duration, 3),
        postgres_pss_bytes=usage.postgres_pss_max,
        client_cpu_s=round(own_cpu, 1),
        watchers_cpu_s=round(ws.get("cpu_s", 0.0), 1),
    )
    mib = 1 << 20
    print(
        f"server: {server_cpu:.1f} CPU s ({server_cpu / duration:.0%} of a core), "
        f"RSS max {usage.server_rss_max / mib:.0f} MiB; PostgreSQL: {postgres_cpu:.1f} CPU s "
        f"({postgres_cpu / duration:.0%}), PSS max {usage.postgres_pss_max / mib:.0f} MiB; "
        f"load generator {own_cpu:.1f} s, websocket watchers {ws.get('cpu_s', 0.0):.1f} s "
        "(whole run)"
    )
    met = ops_per_s >= 1000 and figures["p99_ms"] < 50 and errors == 0
    print(f"target ≥ 1,000 operations/s, p99 < 50 ms, zero errors: {'met' if met else 'MISSED'}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-s", type=float, default=600.0, help="measured seconds")
    parser.add_argument("--warmup-s", type=float, default=10.0, help="seconds run, not counted")
    parser.add_argument("--rate", type=float, default=1200.0, help="offered operations/s")
    parser.add_argument("--clerks", type=int, default=200)
    parser.add_argument("--kiosks", type=int, default=20)
    parser.add_argument("--displays", type=int, default=100)
    parser.add_argument("--dashboards", type=int, default=5)
    parser.add_argument("--pool-size", type=int, default=10, help="server database connections")
    parser.add_argument(
        "--data-dir", help="embedded PostgreSQL data dir, kept afterwards (default: a fresh one)"
    )
    args = parser.parse_args()
    if not 0 < args.duration_s <= 3600 or not 0 <= args.warmup_s <= 600:
        parser.error("--duration-s must be in (0, 3600] and --warmup-s in [0, 600]")
    if not (0 < args.clerks <= 1000 and 0 < args.kiosks <= 100 and args.rate > 0):
        parser.error("need 1..1000 clerks, 1..100 kiosks and a positive rate")
    if args.displays > 500 or args.dashboards > 50:
        parser.error("at most 500 displays and 50 dashboards")
    # The load generator shares the machine with the server: uvloop keeps its share small.
    figures = uvloop.run(run(args))
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()
