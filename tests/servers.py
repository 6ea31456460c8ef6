"""Run real ``hall`` server processes for multi-process and crash tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from hall.config.models import HallConfig

READY_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    """One ``hall`` CLI process serving HTTP on a loopback port."""

    args: Sequence[str]
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    log_path: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        env = {**os.environ, **self.env}
        env.pop("PYTEST_CURRENT_TEST", None)
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115, ASYNC230
        self.proc = subprocess.Popen(  # noqa: ASYNC220 - returns at once; we poll readiness
            [sys.executable, "-m", "hall.cli", *self.args, "--port", str(self.port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        await self.wait_ready()

    async def wait_ready(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_TIMEOUT_S
        async with aiohttp.ClientSession() as session:
            while True:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"server exited with {self.proc.returncode}: {self.log_tail()}"
                    )
                try:
                    async with session.get(f"{self.url}/healthz") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                if loop.time() > deadline:
                    raise TimeoutError(f"server not ready: {self.log_tail()}")
                # Polling a starting process: there is no event to wait on across processes.
                await asyncio.sleep(0.05)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    async def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGCONT)  # a test may have SIGSTOPped it
        self.proc.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(asyncio.to_thread(self.proc.wait), 20)
        except TimeoutError:
            self.proc.kill()
            self.proc.wait()

    def log_tail(self) -> str:
        if self.log_path and self.log_path.exists():
            return self.log_path.read_text(errors="replace")[-3000:]
        return "(no log)"


@contextlib.asynccontextmanager
async def config_server(
    database_url: str, config: HallConfig, tmp_path: Path, *, secret: str = "cd" * 32
) -> AsyncIterator[ServerProcess]:
    """``hall serve`` on ``config`` (written to ``tmp_path``), its log beside it; stopped
    afterwards, also when the test stopped the process (SIGSTOP) to cut its clients off."""
    from tests.live.helpers import write_config_toml

    path = write_config_toml(config.model_dump(mode="json", exclude_none=True), tmp_path / "h.toml")
    proc = ServerProcess(
        ["serve", "--database-url", database_url, "--config", str(path)],
        env={"HALL_SECRET_KEY": secret},
        log_path=tmp_path / "server.log",
    )
    await proc.start()
    try:
        yield proc
    finally:
        await proc.stop()
