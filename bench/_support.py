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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def embedded_database() -> Iterator[str]:
    """A fresh, non-durable embedded PostgreSQL; yields its DSN."""
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    root = Path(tempfile.mkdtemp(prefix="hall-bench-", dir=base))
    server = EmbeddedPostgres(root, durable=False)
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


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


def hall_toml(counters: int, hall_id: str = "bench") -> str:
    """A one-hall config with ``counters`` windows serving two services, open at any hour."""
    lines = [
        "[[halls]]",
        f'id = "{hall_id}"',
        'name = "压测县政务服务中心"',
        "issue_outside_hours = true",
        "",
        "[[halls.services]]",
        'code = "bdc"',
        'name = "不动产登记"',
        'prefix = "A"',
        "number_width = 4",
        "",
        "[[halls.services]]",
        'code = "tax"',
        'name = "税务"',
        'prefix = "B"',
        "number_width = 4",
    ]
    for n in range(1, counters + 1):
        lines += [
            "",
            "[[halls.counters]]",
            f"number = {n}",
            'services = [{ code = "bdc" }, { code = "tax" }]',
        ]
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
