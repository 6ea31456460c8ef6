"""The dashboard in headless Chromium: a manager logs in, and the page follows tickets as they
are issued, called and finished (websocket feed), charts drawn by the vendored ECharts; an
alarm is acknowledged from the page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from hall.config.models import HallConfig
from tests.access_helpers import PASSWORD, admin_bearer_in
from tests.browser import BROWSER_TEST, chromium_page
from tests.servers import ServerProcess, config_server

pytestmark = BROWSER_TEST


@pytest.fixture
async def server(
    database_url: str, pool: asyncpg.Pool, config: HallConfig, tmp_path: Path
) -> AsyncIterator[ServerProcess]:
    async with config_server(database_url, config, tmp_path, secret="ab" * 32) as proc:
        yield proc


async def test_dashboard_follows_tickets_live(server: ServerProcess, pool: asyncpg.Pool) -> None:
    admin = await admin_bearer_in(pool, "boss")
    async with aiohttp.ClientSession(headers=admin) as api:

        async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            async with api.post(f"{server.url}/api/v1/halls/test{path}", json=body) as resp:
                data: dict[str, Any] = await resp.json()
                assert resp.status in (200, 201), data
                return data

        async with chromium_page(1920, 1080) as (page, errors):
            await page.goto(f"{server.url}/manage")
            await page.wait_for_selector("#login:not([hidden])", timeout=10_000)
            await page.fill("input[name=job_no]", "boss")
            await page.fill("input[name=password]", "wrong-password-1")
            await page.click("#login button")
            await page.wait_for_function(
                "document.querySelector('#login-error').textContent.includes('工号或密码错误')",
                timeout=10_000,
            )
            await page.fill("input[name=password]", PASSWORD)
            await page.click("#login button")
            await page.wait_for_selector("#board:not([hidden])", timeout=10_000)
            await page.wait_for_selector(".status.connected", timeout=10_000)
            bdc = "#services tr[data-service=BDC] .waiting"
            assert await page.text_content(bdc) == "0"
            # ECharts drew its canvases (the vendored module loaded).
            assert await page.locator("#chart-arrivals canvas").count() == 1

            # Tickets move; the page follows without a reload.
            await post("/tickets", {"service": "BDC"})
            await post("/tickets", {"service": "BDC"})
            await page.wait_for_function(f"document.querySelector('{bdc}').textContent === '2'")
            await post("/counters/1/open", {"clerk": "boss"})
            await post("/counters/1/call_next", {})
            tile = "#counters [data-counter='1']"
            await page.wait_for_function(
                f"document.querySelector(\"{tile} .ticket\").textContent === 'A001'"
            )
            assert await page.text_content(bdc) == "1"
            assert "呼叫中" in (await page.text_content(f"{tile} .state") or "")
            await post("/counters/1/start", {})
            await post("/counters/1/finish", {})
            await page.wait_for_function(
                f"document.querySelector(\"{tile} .served\").textContent === '1'"
            )
            served = "#services tr[data-service=BDC] .served"
            assert await page.text_content(served) == "1"

            # An alarm raised by a slice's alarms_<slice> view shows and is acknowledged.
            await pool.execute(
                """CREATE VIEW alarms_testslice AS
                   SELECT 'test'::text AS hall_id, 'probe:1'::text AS key, 'probe'::text AS kind,
                          'critical'::text AS severity, '测试告警：监察规则触发'::text AS message,
                          now() AS since"""
            )
            try:
                await post("/counters/1/call_next", {})  # any event refreshes the page
                item = "#alarms li[data-key='probe:1']"
                await page.wait_for_selector(item, timeout=10_000)
                assert "测试告警" in (await page.text_content(item) or "")
                await page.click(f"{item} button")
                await page.wait_for_selector(f"{item}.acked", timeout=10_000)
                acked = await pool.fetchval("SELECT acked_by FROM manager_alarm_acks")
                assert acked == "boss"
            finally:
                await pool.execute("DROP VIEW alarms_testslice")
            assert errors == []
