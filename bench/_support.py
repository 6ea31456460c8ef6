"""Shared bench plumbing: a throwaway embedded database and a server subprocess."""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import aiohttp
import asyncpg

from hall.cli import install_uvloop
from hall.storage.embedded import EmbeddedPostgres


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


class KeepAliveClient:
    """One keep-alive HTTP/1.1 connection, for load generators.

    The bench client shares the 2 cores with the server and the database; aiohttp's client
    spent about 0.6 ms of CPU an operation there, which is CPU the server under test then
    lacks. This one writes a request and reads one Content-Length response, nothing more.
    """

    def __init__(self, url: str, headers: dict[str, str], local_host: str | None = None) -> None:
        rest = url.removeprefix("http://")
        host, _, port = rest.partition(":")
        self.host, self.port = host, int(port or 80)
        # A source address of its own (127.x.y.z is all loopback): one terminal per address.
        self.local_addr = None if local_host is None else (local_host, 0)
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._head = f"Host: {rest}\r\nContent-Type: application/json\r\n{extra}"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes = b"{}") -> tuple[int, bytes]:
        """POST ``body`` to ``path``; (status, response body)."""
        return await self.request("POST", path, body)

    async def get(self, path: str) -> tuple[int, bytes]:
        return await self.request("GET", path, b"")

    async def request(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(
                self.host, self.port, local_addr=self.local_addr
            )
        assert self._reader is not None
        self._writer.write(
            f"{method} {path} HTTP/1.1\r\n{self._head}Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        status_line = await self._reader.readline()
        if not status_line:
            raise ConnectionError("server closed the connection")
        status = int(status_line.split(b" ", 2)[1])
        length = 0
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
            elif name.strip().lower() == b"transfer-encoding":
                raise ValueError("chunked responses are not supported here")
        return status, await self._reader.readexactly(length)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
            self._writer = None


def add_loop_option(parser: argparse.ArgumentParser) -> None:
    """``--loop``: benches that run the hall app in their own process use the event loop
    ``hall serve`` runs (uvloop, see hall.cli) unless told otherwise."""
    parser.add_argument(
        "--loop",
        choices=("uvloop", "asyncio"),
        default="uvloop",
        help="event loop of this process: uvloop as `hall serve` runs it, or the standard one",
    )


def use_loop(args: argparse.Namespace) -> str:
    """Install the loop ``--loop`` chose (before ``asyncio.run``); the name of the one in use."""
    if args.loop == "uvloop":
        install_uvloop()
    return type(asyncio.new_event_loop()).__module__.split(".")[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def embedded_database(*, ram: bool = False, statement_stats: bool = False) -> Iterator[str]:
    """A fresh embedded PostgreSQL; yields its DSN.

    By default it is the database as ``hall serve`` ships it: durable (fsync on, synchronous
    commit) on disk. ``ram=True`` gives the test suite's server instead (a RAM disk, fsync
    off): faster, but not what a hall runs, so benches label its figures as such.
    """
    base = "/dev/shm" if ram and os.access("/dev/shm", os.W_OK) else None
    root = Path(tempfile.mkdtemp(prefix="hall-bench-", dir=base))
    server = EmbeddedPostgres(root, durable=not ram)
    try:
        dsn = server.start()
        if statement_stats:
            # pg_stat_statements must be preloaded: set it, restart, create the extension.
            _psql(server, "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
            server.force_stop()
            server.start()
            _psql(server, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements", server.database)
        yield dsn
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def _psql(server: EmbeddedPostgres, sql: str, database: str = "postgres") -> None:
    from hall.storage.embedded import _bin_dir

    subprocess.run(
        [str(_bin_dir() / "psql"), "-h", str(server.socket_dir), "-U", "postgres",
         "-d", database, "-qc", sql],
        check=True,
        capture_output=True,
    )  # fmt: skip


async def statement_report(dsn: str, top: int = 15) -> list[str]:
    """The statements PostgreSQL spent most time on (pg_stat_statements), one line each."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            """SELECT calls, total_exec_time, mean_exec_time,
                      regexp_replace(query, '\\s+', ' ', 'g') AS query
               FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT $1""",
            top,
        )
    finally:
        await conn.close()
    return [
        f"{r['total_exec_time']:9.0f} ms {r['calls']:7d} calls {r['mean_exec_time']:7.3f} ms/call"
        f"  {r['query'][:110]}"
        for r in rows
    ]


class WaitSampler:
    """What PostgreSQL's client backends are doing, sampled from pg_stat_activity every
    ``every_s`` while a phase runs: on average how many are running (CPU), waiting for a lock
    or the WAL, or idle waiting for the server to send the next statement (``ClientRead``,
    i.e. the time is spent in the server or its pool, not in the database)."""

    def __init__(self, dsn: str, every_s: float = 0.02) -> None:
        self.dsn = dsn
        self.every_s = every_s
        self.counts: dict[str, int] = {}
        self.samples = 0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> WaitSampler:
        import asyncpg

        conn = await asyncpg.connect(self.dsn)

        async def sample() -> None:
            try:
                while True:
                    rows = await conn.fetch(
                        """SELECT state, wait_event_type, wait_event FROM pg_stat_activity
                           WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
                             AND datname = current_database()"""
                    )
                    self.samples += 1
                    for r in rows:
                        what = r["state"] or "?"
                        if r["wait_event_type"]:
                            what += f" {r['wait_event_type']}:{r['wait_event']}"
                        self.counts[what] = self.counts.get(what, 0) + 1
                    await asyncio.sleep(self.every_s)  # a sampling period, not a wait
            finally:
                await conn.close()

        self._task = asyncio.create_task(sample())
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    def lines(self) -> list[str]:
        """Average backends per state and wait, busiest first."""
        n = max(self.samples, 1)
        ranked = sorted(self.counts.items(), key=lambda kv: -kv[1])
        return [f"{count / n:5.2f} backends  {what}" for what, count in ranked]


def database_label(ram: bool) -> str:
    """How a bench's database is set up, for its readable lines and its JSON."""
    return "ram-disk, fsync off (NOT as shipped)" if ram else "durable, on disk (as shipped)"


async def admin_headers(url: str, dsn: str) -> dict[str, str]:
    """Create an admin account in the bench database and log in as it over HTTP."""
    import asyncpg

    from hall.security.passwords import ScryptParams, hash_password
    from hall.storage import access_repo

    password = "bench-admin-1"
    conn = await asyncpg.connect(dsn)
    try:
        await access_repo.save_account(
            conn,
            "bench-admin",
            # The bench measures queue operations, not password hashing.
            password_hash=hash_password(password, ScryptParams(n=2**4, r=8, p=1)),
            name="压测管理员",
            roles=["admin"],
            halls=[],
            counters=[],
        )
    finally:
        await conn.close()
    async with aiohttp.ClientSession() as session:
        body = {"job_no": "bench-admin", "password": password}
        async with session.post(f"{url}/api/v1/login", json=body) as resp:
            resp.raise_for_status()
            token = (await resp.json())["token"]
    return {"Authorization": f"Bearer {token}"}


BENCH_SERVICES = (
    ("bdc", "不动产登记", "A"),
    ("tax", "税务", "B"),
    ("gjj", "公积金", "C"),
    ("yb", "医保", "D"),
)


async def kiosk_device_token(dsn: str, hall_id: str, device_id: str, created_by: str) -> str:
    """A kiosk device token stored straight into the database (no pairing); the token."""
    from datetime import UTC, datetime

    from hall.security import tokens
    from hall.storage import access_repo
    from hall.storage.db import connect_pool

    token = tokens.new_token(tokens.DEVICE_PREFIX)
    pool = await connect_pool(dsn, min_size=1, max_size=1)
    try:
        await access_repo.create_device_token(
            pool,
            kind="kiosk",
            hall_id=hall_id,
            device_id=device_id,
            name=device_id,
            token_hash=tokens.token_hash(token),
            created_by=created_by,
            now=datetime.now(UTC),
        )
    finally:
        await pool.close()
    return token


def hall_toml(
    counters: int, hall_id: str = "bench", services: int = 2, kiosks: int = 0, screens: int = 0
) -> str:
    """A one-hall config with ``counters`` windows, each serving the first ``services`` of
    ``BENCH_SERVICES`` (each its own number group), open at any hour; with ``kiosks`` kiosks
    (ids k001…) and ``screens`` hall screens (ids s001…)."""
    text = halls_toml([(hall_id, counters, services)])
    # Arrays of the hall's own keys come before its sub-tables (TOML).
    extra = []
    if kiosks:
        entries = (f'{{ id = "k{n:03d}", name = "{n}号取号机" }}' for n in range(1, kiosks + 1))
        extra.append(f"kiosks = [{', '.join(entries)}]\n")
    if screens:
        entries = (f'{{ id = "s{n:03d}", name = "{n}号屏" }}' for n in range(1, screens + 1))
        extra.append(f"screens = [{', '.join(entries)}]\n")
    anchor = "issue_outside_hours = true\n"
    return text.replace(anchor, anchor + "".join(extra), 1)


def halls_toml(halls: list[tuple[str, int, int]]) -> str:
    """Several halls of ``hall_toml``'s shape: (id, counters, services) each."""
    lines: list[str] = []
    for hall_id, counters, services in halls:
        lines += [
            "[[halls]]",
            f'id = "{hall_id}"',
            'name = "压测县政务服务中心"',
            "issue_outside_hours = true",
        ]
        for code, name, prefix in BENCH_SERVICES[:services]:
            lines += [
                "",
                "[[halls.services]]",
                f'code = "{code}"',
                f'name = "{name}"',
                f'prefix = "{prefix}"',
                "number_width = 4",
            ]
        served = ", ".join(f'{{ code = "{c}" }}' for c, _, _ in BENCH_SERVICES[:services])
        for n in range(1, counters + 1):
            lines += ["", "[[halls.counters]]", f"number = {n}", f"services = [{served}]"]
        lines.append("")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Served:
    """A running ``hall serve``: its base URL, process id and log file."""

    url: str
    pid: int
    log: Path


@contextlib.asynccontextmanager
async def served(
    dsn: str | None, config_text: str, extra_args: tuple[str, ...] = ()
) -> AsyncIterator[Served]:
    """Run ``hall serve`` on a loopback port until the block ends.

    Without ``dsn`` the server starts (or finds) its embedded PostgreSQL, as shipped: pass
    ``--data-dir`` in ``extra_args``.
    """
    workdir = Path(tempfile.mkdtemp(prefix="hall-bench-cfg-"))
    config = workdir / "hall.toml"
    config.write_text(config_text, encoding="utf-8")
    log = workdir / "server.log"
    port = free_port()
    database = ["--database-url", dsn] if dsn is not None else []
    # Popen returns at once; readiness is polled below, so the loop is not held up.
    proc = subprocess.Popen(  # noqa: ASYNC220
        [
            sys.executable,
            "-m",
            "hall.cli",
            "serve",
            "--port",
            str(port),
            *database,
            "--config",
            str(config),
            *extra_args,
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(log, "wb"),  # noqa: SIM115, ASYNC230
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(1200):
                if proc.poll() is not None:
                    raise RuntimeError(log.read_text()[-2000:])
                try:
                    async with session.get(f"{url}/healthz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
            else:
                raise TimeoutError("server did not start")
        yield Served(url, proc.pid, log)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        shutil.rmtree(workdir, ignore_errors=True)


def _cpu_of(pid: int, *, children: bool = False) -> float:
    """CPU seconds (user + system) a process has used; with ``children``, also those of its
    children it has waited for."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry.name))
    return found


class CpuMeter:
    """CPU seconds used by the ``hall serve`` processes on a port and by the PostgreSQL
    server behind a DSN (postmaster, its live children, and children that have exited)."""

    def __init__(self, url: str, data_directory: str) -> None:
        port = url.rpartition(":")[2]
        self.server_pids = [
            int(p.name)
            for p in Path("/proc").iterdir()
            if p.name.isdigit() and f"serve --port {port} " in _cmdline(p)
        ]
        self.postmaster = int((Path(data_directory) / "postmaster.pid").read_text().split()[0])

    @classmethod
    async def connect(cls, url: str, dsn: str) -> CpuMeter:
        """The meter of the server at ``url`` and the PostgreSQL server behind ``dsn``."""
        conn = await asyncpg.connect(dsn)
        try:
            return cls(url, await conn.fetchval("SHOW data_directory"))
        finally:
            await conn.close()

    def sample(self) -> tuple[float, float]:
        """(server CPU s, PostgreSQL CPU s) so far."""
        server = sum(_safe_cpu(p) for p in self.server_pids)
        pg = _safe_cpu(self.postmaster, children=True) + sum(
            _safe_cpu(p) for p in _children(self.postmaster)
        )
        return server, pg


def _cmdline(p: Path) -> str:
    try:
        return (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _safe_cpu(pid: int, *, children: bool = False) -> float:
    try:
        return _cpu_of(pid, children=children)
    except (OSError, IndexError, ValueError):
        return 0.0  # the process has gone; what it used is in its parent's children's time


@contextlib.asynccontextmanager
async def server_process(
    dsn: str, config_text: str, extra_args: tuple[str, ...] = ()
) -> AsyncIterator[str]:
    """Run ``hall serve`` on ``dsn`` on a loopback port; yields its base URL."""
    async with served(dsn, config_text, extra_args) as server:
        yield server.url


class LiveSocket(asyncio.Protocol):
    """A minimal client of the live feed (docs/live.md), for load generators.

    A hall's displays each take every event: a hundred of them at a thousand events per
    second is a hundred thousand frames a second for the bench to read, on the cores the
    server needs. So this reads frames straight off the transport and takes ``seq`` and
    ``prev_seq`` from the head of each event (the hub writes them first) without parsing the
    rest; snapshots and pings, a few a second, are parsed as JSON. It checks the feed's
    promise: every event once, in order (``prev_seq`` equal to the seq it holds).
    """

    _EVENT_HEAD = b'{"type":"event","seq":'
    _PREV = b',"prev_seq":'
    _AT = b'"at":'

    def __init__(self, sample_every: int = 16) -> None:
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._buf = bytearray()
        self._upgraded = False
        self.first_seq: int | None = None  # seq of the first snapshot
        self.started = asyncio.Event()  # set by the first snapshot, or when the socket closes
        self.seq = 0  # seq the client holds
        self.events = 0
        self.gaps = 0  # events whose prev_seq was not the seq held: something was lost
        self.snapshots = 0  # snapshots after the first (the server lost track, or a resync)
        self.reached: asyncio.Event = asyncio.Event()
        self.target: int | None = None
        self.lags_ms: list[float] = []  # event time (commit) → arrival, one in sample_every
        self._sample_every = sample_every

    # -- handshake -------------------------------------------------------------------------

    @classmethod
    async def connect(
        cls, url: str, path: str, token: str, local_host: str | None = None
    ) -> LiveSocket:
        host, _, port = url.removeprefix("http://").partition(":")
        loop = asyncio.get_running_loop()
        transport, sock = await loop.create_connection(
            cls, host, int(port), local_addr=None if local_host is None else (local_host, 0)
        )
        sock.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            (
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n"
            ).encode()
        )
        await sock.opened
        return sock

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.started.set()
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed during the handshake"))
        if not self.closed.done():
            self.closed.set_result(None)

    # -- frames ----------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        if not self._upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buf[: buf.find(b"\r\n")])
            if b" 101 " not in status:
                self.opened.set_exception(ConnectionError(status.decode(errors="replace")))
                assert self.transport is not None
                self.transport.close()
                return
            del buf[: end + 4]
            self._upgraded = True
            self.opened.set_result(None)
        pos, size = 0, len(buf)
        while size - pos >= 2:
            opcode, n, head = buf[pos] & 0x0F, buf[pos + 1] & 0x7F, 2
            if n == 126:
                if size - pos < 4:
                    break
                n, head = int.from_bytes(buf[pos + 2 : pos + 4]), 4
            elif n == 127:
                if size - pos < 10:
                    break
                n, head = int.from_bytes(buf[pos + 2 : pos + 10]), 10
            if size - pos < head + n:
                break
            payload = bytes(buf[pos + head : pos + head + n])
            pos += head + n
            self._frame(opcode, payload)
        del buf[:pos]

    def _frame(self, opcode: int, payload: bytes) -> None:
        if opcode == 0x1:
            if payload.startswith(self._EVENT_HEAD):
                self._event(payload)
            else:
                self._message(json.loads(payload))
        elif opcode == 0x8:
            code = int.from_bytes(payload[:2]) if len(payload) >= 2 else None
            if not self.closed.done():
                self.closed.set_result(code)
            self.send(0x8, payload[:2])
            if self.transport is not None:
                self.transport.close()
        elif opcode == 0x9:
            self.send(0xA, payload)

    def _event(self, payload: bytes) -> None:
        start = len(self._EVENT_HEAD)
        comma = payload.index(b",", start)
        seq = int(payload[start:comma])
        after = comma + len(self._PREV)
        prev = int(payload[after : payload.index(b",", after)])
        if prev != self.seq:
            self.gaps += 1
        self.seq = seq
        self.events += 1
        if self.events % self._sample_every == 0:
            at = payload.find(self._AT)
            if at > 0:
                at = payload.index(b'"', at + len(self._AT)) + 1
                stamp = payload[at : payload.index(b'"', at)].decode()
                sent = datetime.fromisoformat(stamp).timestamp()
                self.lags_ms.append((time.time() - sent) * 1000)
        self._check_target()

    def _message(self, data: dict[str, Any]) -> None:
        kind = data.get("type")
        if kind == "snapshot":
            if self.first_seq is None:
                self.first_seq = data["seq"]
                self.started.set()
            else:
                self.snapshots += 1
            self.seq = data["seq"]
            self._check_target()
        elif kind == "ping":
            self.send_json({"type": "pong", "t": data["t"], "seq": self.seq})

    def _check_target(self) -> None:
        if self.target is not None and self.seq >= self.target:
            self.reached.set()

    def wait_for(self, seq: int) -> asyncio.Event:
        """An event set once the client holds ``seq`` or later."""
        self.target = seq
        self._check_target()
        return self.reached

    # -- sending ---------------------------------------------------------------------------

    def send_json(self, message: dict[str, Any]) -> None:
        self.send(0x1, json.dumps(message).encode())

    def send(self, opcode: int, payload: bytes) -> None:
        """One masked frame (RFC 6455 §5.3: every client frame is masked); small ones only."""
        if self.transport is None or self.transport.is_closing():
            return
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        assert len(masked) < 126
        self.transport.write(bytes((0x80 | opcode, 0x80 | len(masked))) + mask + masked)

    def close(self) -> None:
        self.send(0x8, (1000).to_bytes(2))
        if self.transport is not None:
            self.transport.close()


@dataclass
class ProcessUsage:
    """CPU seconds and memory of a process (and, for PostgreSQL, its children), from /proc."""

    cpu_s: float
    rss_bytes: int
    peak_rss_bytes: int
    pss_bytes: int


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def process_usage(pid: int, with_children: bool = False) -> ProcessUsage:
    """CPU so far (user + system) and memory of ``pid``; ``with_children`` adds its live
    children and the CPU of children it has reaped (a postmaster and its backends).

    RSS counts shared pages once per process, so for a process tree ``pss_bytes`` (shared
    pages split between their users) is the honest total.
    """
    pids = [pid, *(_children(pid) if with_children else [])]
    cpu = _safe_cpu(pid, children=with_children) + sum(_safe_cpu(p) for p in pids[1:])
    return ProcessUsage(
        cpu_s=cpu,
        rss_bytes=sum(_status_kb(p, "VmRSS") for p in pids) * 1024,
        peak_rss_bytes=_status_kb(pid, "VmHWM") * 1024,
        pss_bytes=sum(_pss_kb(p) for p in pids) * 1024,
    )
