"""The TV page in headless Chromium over a staff session: live calls, gap resync, the banner
when the server hangs, and recovery."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from hall.config.models import HallConfig
from tests.access_helpers import admin_bearer_in
from tests.live.credentials import staff_session
from tests.servers import ServerProcess, config_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed"),
]


@pytest.fixture
async def server(
    database_url: str, pool: asyncpg.Pool, config: HallConfig, tmp_path: Path
) -> AsyncIterator[ServerProcess]:
    async with config_server(database_url, config, tmp_path) as proc:
        yield proc


async def test_tv_page_shows_calls_live_and_disconnection_within_ten_seconds(
    server: ServerProcess, pool: asyncpg.Pool
) -> None:
    from playwright.async_api import async_playwright

    now = datetime.now(UTC)
    admin = await admin_bearer_in(pool, "live-admin")
    viewer = await staff_session(pool, now, job_no="live-tv", roles=("clerk",), kind="cookie")
    async with aiohttp.ClientSession(headers=admin) as api:

        async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            async with api.post(f"{server.url}/api/v1/halls/test{path}", json=body) as resp:
                data: dict[str, Any] = await resp.json()
                assert resp.status in (200, 201), data
                return data

        await post("/counters/1/open", {"clerk": "c001"})
        for _ in range(3):
            await post("/tickets", {"service": "BDC"})

        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                context = await browser.new_context()
                await context.add_cookies(
                    [{"name": "hall_session", "value": viewer.token, "url": server.url}]
                )
                page = await context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                await page.goto(f"{server.url}/tv/test")
                await page.wait_for_selector("body[data-status=connected]", timeout=10_000)
                assert await page.get_attribute("#banner", "hidden") is not None
                assert await page.text_content("[data-service=BDC] .n") == "3人"

                await post("/counters/1/call_next", {})
                await page.wait_for_function(
                    "document.querySelector('#current li .num')?.textContent === 'A001'",
                    timeout=5_000,
                )
                assert await page.text_content("[data-service=BDC] .n") == "2人"
                assert await page.text_content("#recent li") == "A0011号窗口"
                assert await page.text_content('.tile[data-counter="1"] .st') == "请 A001"

                # A gap (an event whose prev_seq is not the last applied seq) asks for a snapshot.
                await page.evaluate(
                    "() => { const c = window.hallLive;"
                    " c._handle({type: 'event', seq: c.seq + 2, prev_seq: c.seq + 1,"
                    " patch: {}, event: {}}); }"
                )
                await page.wait_for_function(
                    "window.hallLive.snapshots === 2 && window.hallLive.resyncs === 1",
                    timeout=5_000,
                )

                # The server stops answering (process frozen): pings stop, the page says so.
                assert server.proc is not None
                server.proc.send_signal(signal.SIGSTOP)
                stopped = time.monotonic()
                await page.wait_for_selector("body[data-status=disconnected]", timeout=15_000)
                elapsed = time.monotonic() - stopped
                assert "画面可能不是最新" in (await page.text_content("#banner") or "")
                print(f"browser: banner shown {elapsed:.1f} s after the server froze")
                # Pings come every 5 s and the watchdog waits 7 s after the last message: the
                # page must neither cry wolf early nor take 10 s or more.
                assert 2.0 < elapsed < 10.0, elapsed

                # It comes back by itself and shows the calls made meanwhile.
                server.proc.send_signal(signal.SIGCONT)
                await page.wait_for_selector("body[data-status=connected]", timeout=30_000)
                await post("/counters/1/no_show", {})
                await post("/counters/1/call_next", {})
                await page.wait_for_function(
                    "document.querySelector('#current li .num')?.textContent === 'A002'",
                    timeout=5_000,
                )
                assert errors == []
            finally:
                await browser.close()
