"""The citizen's ticket page in headless Chromium: it follows the ticket live (position, wait
range, "请到N号窗口"), shows a banner when the connection is lost and recovers by itself."""

from __future__ import annotations

from typing import Any

import aiohttp
import asyncpg
from playwright.async_api import Route

from tests.access_helpers import admin_bearer_in
from tests.browser import BROWSER_TEST, chromium, watched
from tests.servers import ServerProcess

pytestmark = BROWSER_TEST


async def test_the_ticket_page_follows_live_and_survives_a_lost_connection(
    page_server: ServerProcess, pool: asyncpg.Pool
) -> None:

    admin = await admin_bearer_in(pool, "ticket-admin")
    async with aiohttp.ClientSession(headers=admin) as api:

        async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            async with api.post(f"{page_server.url}/api/v1/halls/test{path}", json=body) as r:
                data: dict[str, Any] = await r.json()
                assert r.status in (200, 201), data
                return data

        first = await post("/tickets", {"service": "BDC"})
        mine = await post("/tickets", {"service": "BDC"})
        async with chromium() as browser:
            errors: list[str] = []
            phone = watched(await browser.new_page(viewport={"width": 390, "height": 844}), errors)
            await phone.goto(f"{page_server.url}/t/{mine['token']}")
            await phone.wait_for_function(
                "document.querySelector('#number').textContent === 'A002'", timeout=10_000
            )
            assert await phone.text_content("#ahead") == "您前面还有 1 人"
            assert await phone.text_content("#wait") == "办理此业务的窗口尚未开放，请稍候"

            # A window opens: the wait becomes a range, without reloading the page.
            await post("/counters/1/open", {"clerk": "c001"})
            await phone.wait_for_function(
                "/预计等候约 \\d+ 至 \\d+ 分钟|即将叫到您/.test("
                "document.querySelector('#wait').textContent)",
                timeout=10_000,
            )

            # The connection drops: the banner says so; the ticket moves meanwhile.
            async def cut(route: Route) -> None:
                await route.abort()

            await phone.route("**/follow*", cut)
            await post("/counters/1/call_next", {})  # A001 is called: one ahead less
            await phone.wait_for_selector("#banner:not([hidden])", timeout=15_000)
            assert "连接中断" in ((await phone.text_content("#banner")) or "")
            await post("/counters/1/no_show", {})
            await post("/counters/1/call_next", {})  # now A002 is called
            await phone.unroute("**/follow*", cut)
            await phone.wait_for_function(
                "document.querySelector('#call').textContent === '请到1号窗口'",
                timeout=20_000,
            )
            assert await phone.is_hidden("#banner")
            assert await phone.text_content("#state") == "已叫号"
            assert await phone.text_content("#ahead") == ""
            assert first["number"] == "A001"
            assert errors == []
