"""``hall demo`` as a living hall: devices on ptys through the server's bridge, simulated
citizens and clerks over HTTP; at high speed it issues, calls and rates within 30 s."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web

from hall.cli import build_parser, run_demo
from kiosk.keys import KIOSK_KEY_BASE
from simulator.demo import DEMO_WIRING
from tests.browser import browser_test, chromium, watched
from tests.kiosk.conftest import numbers_of
from tests.waiting import eventually

HALL = "xx-county"
pytestmark = pytest.mark.slow


class Demo:
    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.up = asyncio.Event()
        self.base = ""
        self.app: web.Application | None = None
        self.task: asyncio.Task[int] | None = None
        self.printed = ""
        self.started = datetime.now(UTC)

    def ready(self, base: str, app: web.Application) -> None:
        self.base, self.app = base, app
        self.up.set()


@pytest.fixture
async def demo(
    database_url: str, pool: asyncpg.Pool, capsys: pytest.CaptureFixture[str]
) -> AsyncIterator[Demo]:
    args = build_parser().parse_args(
        ["demo", "--port", "0", "--speed", "900", "--database-url", database_url]
    )
    running = Demo()
    running.task = asyncio.create_task(run_demo(args, stop=running.stop, ready=running.ready))
    await asyncio.wait(
        [running.task, asyncio.create_task(running.up.wait())],
        timeout=60,
        return_when=asyncio.FIRST_COMPLETED,
    )
    assert running.up.is_set(), running.task.exception() if running.task.done() else "no start"
    running.printed = capsys.readouterr().out
    try:
        yield running
    finally:
        running.stop.set()
        assert await asyncio.wait_for(running.task, 30) == 0


async def _snapshot(api: aiohttp.ClientSession, base: str) -> dict[str, Any]:
    async with api.get(f"{base}/api/v1/halls/{HALL}/snapshot") as resp:
        assert resp.status == 200
        data: dict[str, Any] = await resp.json()
        return data


async def test_demo_at_high_speed_issues_calls_and_rates(demo: Demo, pool: asyncpg.Pool) -> None:
    printed = demo.printed
    assert f"大厅演示已启动：{demo.base}/" in printed
    assert f"{demo.base}/demo/pair/display/tv1" in printed
    assert "sim01" in printed and "hall-demo" in printed
    # Every page is printed once (a query string does not make another page).
    pages = [u.split("?")[0] for u in re.findall(r"https?://[^\s）)]+", printed)]
    assert len(pages) == len(set(pages)), sorted(p for p in pages if pages.count(p) > 1)
    assert f"{demo.base}/tv/{HALL}" in pages and f"{demo.base}/kiosk" in pages
    async with aiohttp.ClientSession() as anon:
        body = {"job_no": "admin", "password": "hall-demo"}
        async with anon.post(f"{demo.base}/api/v1/login", json=body) as resp:
            token = (await resp.json())["token"]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    seen: dict[str, bool] = {}
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as api:
        while loop.time() < deadline:
            snap = await _snapshot(api, demo.base)
            serving = [c for c in snap["counters"] if c["state"] in ("calling", "serving")]
            # Only this demo's ratings count (an earlier test's demo shares the database).
            rated = await pool.fetchval(
                "SELECT count(*) FROM ratings WHERE hall_id = $1 AND device_uid IS NOT NULL"
                " AND rated_at >= $2",
                HALL,
                demo.started,
            )
            seen = {
                "issued": sum(snap["waiting"].values()) > 0 or bool(snap["recent_calls"]),
                "called": bool(snap["recent_calls"]) and bool(serving),
                "rated": rated > 0,  # pressed on an emulated pad, through the bridge
            }
            if all(seen.values()):
                break
            await asyncio.sleep(0.5)
    assert seen == {"issued": True, "called": True, "rated": True}
    # The citizen's page of the ticket printed at start answers.
    token_line = next(line for line in printed.splitlines() if "/t/" in line)
    async with (
        aiohttp.ClientSession() as anon,
        anon.get(f"{demo.base}/api/v1/tickets/{token_line.rsplit('/t/', 1)[1].strip()}") as resp,
    ):
        assert resp.status == 200


async def test_a_key_on_kiosk_k2s_board_prints_through_the_bus(
    demo: Demo, pool: asyncpg.Pool
) -> None:
    """k2's printer hangs on its key board (HB/1 tunnel): a key press there issues a ticket
    that the emulated printer prints, sent through the bus."""
    assert demo.app is not None
    wiring = demo.app[DEMO_WIRING]
    board, paper = wiring.kiosks["k2"], wiring.printers["p-k2"]
    assert "p-k2（经取号机 k2 的按键板透传）" in demo.printed
    before = len(paper.jobs)
    await eventually(lambda: board.press_key(KIOSK_KEY_BASE), "k2's board took the key", 30)
    await eventually(lambda: len(paper.jobs) > before, "the ticket printed on k2's paper", 30)

    async def printed_for_k2() -> list[str]:
        rows = await pool.fetch(
            "SELECT t.display_number FROM kiosk_print_jobs j JOIN tickets t ON t.id = j.ticket_id"
            " WHERE j.hall_id = $1 AND j.kiosk = 'k2' AND j.state = 'printed'"
            " AND j.created_at >= $2",
            HALL,
            demo.started,
        )
        return [r["display_number"] for r in rows]

    await eventually(printed_for_k2, "k2's print job marked printed", 30)
    assert [numbers_of(job) for job in paper.jobs[before:]] == await printed_for_k2()


@browser_test
async def test_tv_page_follows_the_demo(demo: Demo) -> None:
    async with chromium() as browser:
        errors: list[str] = []
        page = watched(await browser.new_page(locale="zh-CN"), errors)
        # The demo's shortcut pairs this browser as the TV screen tv1 (the whole hall)
        # and opens its page: the TV's own page, not the pairing page.
        await page.goto(f"{demo.base}/demo/pair/display/tv1")
        await page.wait_for_url(f"**/tv/{HALL}", timeout=15_000)
        assert await page.text_content("#screen-name") == "一楼大厅叫号电视"
        await page.wait_for_function(
            "document.querySelectorAll('#recent li').length >= 2", timeout=30_000
        )
        first = await page.text_content("#recent li")
        await page.wait_for_function(
            "(first) => document.querySelector('#recent li').textContent !== first",
            arg=first,
            timeout=30_000,
        )
        # The web rating pad of window 5 (no HB/1 pad there) pairs the same way.
        pad = watched(await browser.new_page(locale="zh-CN"), errors)
        await pad.goto(f"{demo.base}/demo/pair/pad/5")
        await pad.wait_for_url(f"**/pad/{HALL}?counter=5", timeout=15_000)
        await pad.wait_for_function(
            "document.getElementById('window').textContent.startsWith('5号窗口')",
            timeout=15_000,
        )
        assert errors == []


@browser_test
async def test_dashboard_follows_the_demo(demo: Demo) -> None:
    async with chromium() as browser:
        errors: list[str] = []
        page = watched(await browser.new_page(locale="zh-CN"), errors)
        # The demo's duty manager, as printed at start.
        await page.goto(f"{demo.base}/manage?hall={HALL}")
        await page.wait_for_selector("#login:not([hidden])", timeout=15_000)
        await page.fill("input[name=job_no]", "demo-manager")
        await page.fill("input[name=password]", "hall-demo")
        await page.click("#login button")
        await page.wait_for_selector("#board:not([hidden])", timeout=15_000)
        await page.wait_for_selector(".status.connected", timeout=15_000)
        # Citizens are served at the comprehensive windows: the count goes up live.
        served = "#services tr[data-service=zh] .served"
        first = await page.text_content(served)
        await page.wait_for_function(
            "([sel, first]) => document.querySelector(sel).textContent !== first",
            arg=[served, first],
            timeout=30_000,
        )
        assert errors == []
