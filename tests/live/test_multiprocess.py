"""Two `hall serve` processes on one database, live clients on both."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from hall.config.models import HallConfig
from tests.access_helpers import admin_bearer_in
from tests.live.credentials import display_token
from tests.live.helpers import Subscriber, write_config_toml
from tests.servers import ServerProcess

pytestmark = pytest.mark.slow

TICKETS = 200
SERVICES = ("BDC", "TAX", "SOC", "MED")


async def test_two_processes_every_client_sees_every_event_once_in_order(
    database_url: str, pool: asyncpg.Pool, config: HallConfig, tmp_path: Path
) -> None:
    path = write_config_toml(config.model_dump(mode="json", exclude_none=True), tmp_path / "h.toml")
    servers = [
        ServerProcess(
            ["serve", "--database-url", database_url, "--config", str(path)],
            log_path=tmp_path / f"server{i}.log",
        )
        for i in range(2)
    ]
    await asyncio.gather(*(s.start() for s in servers))
    try:
        now = datetime.now(UTC)
        admin = await admin_bearer_in(pool, "live-admin")
        display = await display_token(pool, now)
        async with aiohttp.ClientSession(headers=admin) as session:
            await _run(session, servers, display.headers)
    finally:
        await asyncio.gather(*(s.stop() for s in servers))


def _more_than(count: int) -> Callable[[Subscriber], bool]:
    return lambda s: len(s.events) > count


async def _run(
    session: aiohttp.ClientSession, servers: list[ServerProcess], display: dict[str, str]
) -> None:
    urls = [s.url for s in servers]
    subs: list[Subscriber] = []
    for i, url in enumerate(urls):
        for channel in ("display", "display", "display", "counter:90", "dashboard"):
            live = f"{url.replace('http', 'ws', 1)}/api/v1/halls/test/live?channel={channel}"
            # The session's default headers are the admin's; dashboards are for staff.
            headers = {} if channel == "dashboard" else display
            subs.append(Subscriber(session, live, name=f"{channel}@{i}", headers=headers))
    await asyncio.gather(*(s.connect() for s in subs))
    start: dict[int, int] = {}
    for s in subs:
        assert s.seq is not None
        start[id(s)] = s.seq
    assert len(set(start.values())) == 1  # nothing happened yet

    rotation = itertools.cycle(urls)

    async def post(path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        async with session.post(f"{next(rotation)}/api/v1/halls/test{path}", json=body) as resp:
            data: dict[str, Any] = await resp.json()
            return resp.status, data

    counters = (1, 2, 3, 4, 90)
    for n in counters:
        status, body = await post(f"/counters/{n}/open", {"clerk": "c001"})
        assert status == 200, body

    issued: list[dict[str, Any]] = []
    issuing_done = asyncio.Event()
    watcher = subs[0]

    async def issuer(k: int) -> None:
        for i in range(k, TICKETS, 8):
            status, body = await post("/tickets", {"service": SERVICES[i % len(SERVICES)]})
            assert status == 201, body
            issued.append(body)

    called: list[str] = []

    async def counter(n: int) -> None:
        while True:
            seen = len(watcher.events)
            status, body = await post(f"/counters/{n}/call_next", {})
            if status == 409 and body.get("code") == "queue_empty":
                if issuing_done.is_set():
                    return
                # Wait for the next event anywhere in the hall (a new ticket, usually).
                await watcher.wait_for(_more_than(seen), within_s=20)
                continue
            assert status == 200, body
            called.append(body["ticket"]["number"])
            status, body = await post(f"/counters/{n}/no_show", {})
            assert status == 200, body

    async def issue_all() -> None:
        await asyncio.gather(*(issuer(k) for k in range(8)))
        issuing_done.set()

    await asyncio.gather(issue_all(), *(counter(n) for n in counters))

    # Numbers: unique, and contiguous per number group (A, B, and C shared by SOC and MED).
    numbers = [t["number"] for t in issued]
    assert len(numbers) == len(set(numbers)) == TICKETS
    by_prefix: dict[str, list[int]] = {}
    for number in numbers:
        m = re.fullmatch(r"([A-Z])(\d+)", number)
        assert m is not None
        by_prefix.setdefault(m[1], []).append(int(m[2]))
    for values in by_prefix.values():
        assert sorted(values) == list(range(1, len(values) + 1))
    assert sorted(called) == sorted(numbers)

    async with session.get(f"{urls[0]}/api/v1/halls/test/snapshot") as resp:
        final = await resp.json()
    last = final["seq"]
    assert last == len(counters) + TICKETS * 3  # opened, then issued, called, no_show each
    await asyncio.gather(*(s.wait_seq(last, within_s=30) for s in subs if "counter" not in s.name))
    # counter:90 gets the events of counter 90 and of the services it serves.
    dashboard = next(s for s in subs if s.name.startswith("dashboard"))
    served = {"SOC", "MED", "TAX"}
    expected = [
        e["seq"]
        for e in dashboard.events
        if e["event"]["counter"] == 90 or e["event"]["details"].get("service_code") in served
    ]
    for s in subs:
        assert s.resyncs_sent == 0, s.name
        assert s.snapshot_seqs == [start[id(s)]], s.name
        if s.name.startswith("counter"):
            await s.wait_for(lambda s: len(s.events) >= len(expected), within_s=30)
            # Each one's prev_seq was the one before it (checked on receipt: no resync).
            assert s.event_seqs() == expected, s.name
            continue
        assert s.event_seqs() == list(range(start[id(s)] + 1, last + 1)), s.name
        assert s.state == final, s.name
        assert sorted(s.numbers_called()) == sorted(numbers), s.name
    for s in subs:
        await s.close()
