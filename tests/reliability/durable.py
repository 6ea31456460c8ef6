"""A durable embedded data dir on disk for crash tests, and a burst of ticket-issuing kiosks.

The data dir is not under pytest's tmp_path: pytest prunes old base temp dirs, which must not
touch a live server. It is never the shared RAM-disk test server: these tests kill PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg

from hall.cli import DEMO_ADMIN_PASSWORD
from hall.storage.embedded import EmbeddedPostgres
from tests.servers import ServerProcess

HALL = "xx-county"
SERVICE = "zx"  # 咨询: no daily quota in the example hall
TICKET = {"service": SERVICE, "purpose": "consult"}
RETRY_PAUSE_S = 0.05  # a kiosk's pause before it retries the same tap (client pacing)


@contextlib.asynccontextmanager
async def durable_data_dir() -> AsyncIterator[Path]:
    """A fresh data dir on disk; whatever server still runs on it is stopped afterwards."""
    data_dir = Path(tempfile.mkdtemp(prefix="hall-rel-")) / "data"
    try:
        yield data_dir
    finally:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(EmbeddedPostgres(data_dir).force_stop)
        shutil.rmtree(data_dir.parent, ignore_errors=True)


def demo_server(data_dir: Path, log_path: Path, port: int | None = None) -> ServerProcess:
    """``hall demo --no-sim`` (the plain example county hall, admin/hall-demo: no emulated
    devices, nobody simulated) on ``data_dir``."""
    args = ["demo", "--no-sim", "--data-dir", str(data_dir)]
    if port is None:
        return ServerProcess(args, log_path=log_path)
    return ServerProcess(args, log_path=log_path, port=port)


async def admin_headers(url: str) -> dict[str, str]:
    async with aiohttp.ClientSession() as session:
        body = {"job_no": "admin", "password": DEMO_ADMIN_PASSWORD}
        async with session.post(f"{url}/api/v1/login", json=body) as resp:
            assert resp.status == 200, await resp.text()
            token = (await resp.json())["token"]
    return {"Authorization": f"Bearer {token}"}


async def database_tickets(data_dir: Path) -> list[asyncpg.Record]:
    """Every ticket in the data dir's database (the server must be running)."""
    conn = await asyncpg.connect(EmbeddedPostgres(data_dir).dsn())
    try:
        rows: list[asyncpg.Record] = await conn.fetch(
            "SELECT seq, display_number, token, idempotency_key FROM tickets"
            " WHERE hall_id = $1 ORDER BY seq",
            HALL,
        )
    finally:
        await conn.close()
    return rows


@dataclass
class Burst:
    """Kiosks issuing tickets, each tap retried with its idempotency key until acknowledged.

    ``urls`` are the servers the kiosks talk to (kiosk k uses ``urls[k % len(urls)]``).
    ``on_count`` is called with the number of acknowledged tickets after each one.
    """

    urls: list[str]
    headers: dict[str, str]
    kiosks: int
    per_kiosk: int
    on_count: Callable[[int], None] = lambda _n: None
    acknowledged: dict[str, tuple[str, str]] = field(default_factory=dict)  # key → (no., token)
    answers: Counter[str] = field(default_factory=Counter)  # status code or "no answer"
    bad_503: list[str] = field(default_factory=list)  # 503s without problem+json/Retry-After
    other: list[str] = field(default_factory=list)  # any answer but 201/503: bodies
    since: float | None = None  # the last crash
    resumed_at: float | None = None  # the first 201 of a tap sent after it
    resumed: asyncio.Event = field(default_factory=asyncio.Event)

    def mark(self) -> None:
        """A crash now: the next acknowledged tap sent after it ends the outage."""
        self.since = time.monotonic()
        self.resumed_at = None
        self.resumed.clear()

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(headers=self.headers, timeout=timeout) as session:
            await asyncio.gather(*(self._kiosk(session, k) for k in range(self.kiosks)))

    async def _kiosk(self, session: aiohttp.ClientSession, k: int) -> None:
        url = f"{self.urls[k % len(self.urls)]}/api/v1/halls/{HALL}/tickets"
        for i in range(self.per_kiosk):
            key = f"kiosk{k}-{i:06d}"
            while key not in self.acknowledged:
                sent = time.monotonic()
                try:
                    async with session.post(
                        url, json=TICKET, headers={"Idempotency-Key": key}
                    ) as resp:
                        self.answers[str(resp.status)] += 1
                        # 200: an idempotent replay, the tap's ticket was committed by a
                        # request whose answer the crash swallowed.
                        if resp.status in (200, 201):
                            data = await resp.json()
                            self.acknowledged[key] = (data["number"], data["token"])
                            if (
                                self.since is not None
                                and sent >= self.since
                                and self.resumed_at is None
                            ):
                                self.resumed_at = time.monotonic()
                                self.resumed.set()
                            self.on_count(len(self.acknowledged))
                            continue
                        text = await resp.text()
                        if resp.status == 503:
                            if (
                                resp.content_type != "application/problem+json"
                                or not resp.headers.get("Retry-After", "").isdigit()
                                or "数据库" not in text
                            ):
                                self.bad_503.append(f"{dict(resp.headers)} {text}")
                        else:
                            self.other.append(f"{key}: {resp.status} {text[:300]}")
                            return  # a wrong answer: this kiosk stops, the test fails
                except (TimeoutError, aiohttp.ClientError):
                    self.answers["no answer"] += 1
                await asyncio.sleep(RETRY_PAUSE_S)

    async def outage_s(self, timeout_s: float = 120.0) -> float:
        """Wait for the first acknowledged tap sent after ``mark()``; seconds since the mark."""
        await asyncio.wait_for(self.resumed.wait(), timeout_s)
        assert self.since is not None and self.resumed_at is not None
        return round(self.resumed_at - self.since, 2)
