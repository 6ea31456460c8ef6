"""Shared bench plumbing: a throwaway embedded database and a server subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp

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

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        rest = url.removeprefix("http://")
        host, _, port = rest.partition(":")
        self.host, self.port = host, int(port or 80)
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._head = f"Host: {rest}\r\nContent-Type: application/json\r\n{extra}"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes = b"{}") -> tuple[int, bytes]:
        """POST ``body`` to ``path``; (status, response body)."""
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        self._writer.write(
            f"POST {path} HTTP/1.1\r\n{self._head}Content-Length: {len(body)}\r\n\r\n".encode()
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


def hall_toml(counters: int, hall_id: str = "bench", services: int = 2) -> str:
    """A one-hall config with ``counters`` windows, each serving the first ``services`` of
    ``BENCH_SERVICES`` (each its own number group), open at any hour."""
    return halls_toml([(hall_id, counters, services)])


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


@contextlib.asynccontextmanager
async def server_process(
    dsn: str, config_text: str, extra_args: tuple[str, ...] = ()
) -> AsyncIterator[str]:
    """Run ``hall serve`` on a loopback port; yields its base URL."""
    workdir = Path(tempfile.mkdtemp(prefix="hall-bench-cfg-"))
    config = workdir / "hall.toml"
    config.write_text(config_text, encoding="utf-8")
    port = free_port()
    # Popen returns at once; readiness is polled below, so the loop is not held up.
    proc = subprocess.Popen(  # noqa: ASYNC220
        [
            sys.executable,
            "-m",
            "hall.cli",
            "serve",
            "--port",
            str(port),
            "--database-url",
            dsn,
            "--config",
            str(config),
            *extra_args,
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(workdir / "server.log", "wb"),  # noqa: SIM115, ASYNC230
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(600):
                if proc.poll() is not None:
                    raise RuntimeError((workdir / "server.log").read_text()[-2000:])
                try:
                    async with session.get(f"{url}/healthz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
            else:
                raise TimeoutError("server did not start")
        yield url
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
