"""The kiosk in headless Chromium: pair it, tap a service, see the ticket; a double tap issues
one ticket; paper out gives a virtual ticket; the ticket page follows a call live."""

from __future__ import annotations

from typing import Any

import aiohttp
import asyncpg

from firmware_bridge.emulators.printer import OK, PAPER_OUT, EscPosPrinter
from tests.access_helpers import admin_bearer_in
from tests.browser import BROWSER_TEST, chromium, watched
from tests.kiosk.conftest import numbers_of
from tests.servers import ServerProcess

pytestmark = BROWSER_TEST


async def test_pair_tap_and_follow_the_ticket(
    page_server: ServerProcess, pool: asyncpg.Pool, page_printer: tuple[EscPosPrinter, int]
) -> None:

    emulator, _ = page_printer
    server = page_server
    admin = await admin_bearer_in(pool, "kiosk-admin")
    async with (
        aiohttp.ClientSession(headers=admin) as api,
        chromium() as browser,
    ):

        async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            async with api.post(f"{server.url}/api/v1/halls/test{path}", json=body) as resp:
                data: dict[str, Any] = await resp.json()
                assert resp.status in (200, 201), data
                return data

        context = await browser.new_context(
            viewport={"width": 1080, "height": 1920}, locale="zh-CN"
        )
        errors: list[str] = []
        page = watched(await context.new_page(), errors)

        # An unpaired browser lands on /pair and shows a code; a manager approves it.
        await page.goto(f"{server.url}/kiosk")
        await page.wait_for_url("**/pair", timeout=10_000)
        await page.wait_for_function(
            "/^\\d{6}$/.test(document.querySelector('#code').textContent)", timeout=10_000
        )
        code = (await page.text_content("#code")) or ""
        assert code not in page.url
        await post(f"/pairings/{code}/approve", {"kind": "kiosk", "device_id": "k1"})
        await page.wait_for_url("**/kiosk", timeout=10_000)
        await page.wait_for_selector(".svc[data-service=BDC]", timeout=10_000)
        names = await page.locator(".svc .name").all_text_contents()
        assert names == ["不动产登记", "税务"]  # only k1's services
        assert not await page.is_visible("#done")  # no empty ticket card on the start screen
        assert "token" not in page.url and "hd1_" not in page.url

        # A double tap issues one ticket, printed on the kiosk's printer.
        await page.dblclick(".svc[data-service=BDC]")
        await page.wait_for_selector("#ticket:not([hidden])", timeout=10_000)
        assert await page.text_content("#t-number") == "A001"
        assert await page.text_content("#t-print") == "请取走您的小票"
        assert await pool.fetchval("SELECT count(*) FROM tickets") == 1
        assert [numbers_of(j) for j in emulator.jobs] == ["A001"]
        token = await pool.fetchval("SELECT token FROM tickets WHERE display_number = 'A001'")

        # Paper out: the next citizen gets the number and QR on screen.
        await page.click("#done")
        emulator.set_condition(PAPER_OUT)
        await page.click(".svc[data-service=TAX]")
        await page.wait_for_selector("#idpad:not([hidden])")
        assert await page.is_disabled("#id-ok")
        await page.keyboard.type("11010519491231002x")  # as a card reader types it
        assert await page.text_content("#id-value") == "•" * 16 + "2X"
        await page.keyboard.press("Enter")
        await page.wait_for_selector("#ticket:not([hidden]) #t-qr svg", timeout=10_000)
        assert await page.text_content("#t-number") == "B001"
        assert "咨询台" in ((await page.text_content("#t-print")) or "")
        emulator.set_condition(OK)

        # The citizen's phone follows A001 and sees the call.
        phone = await browser.new_page(viewport={"width": 390, "height": 844})
        await phone.goto(f"{server.url}/t/{token}")
        await phone.wait_for_function(
            "document.querySelector('#number').textContent === 'A001'", timeout=10_000
        )
        # No window is open yet: it says so, not "0 people ahead".
        assert await phone.text_content("#ahead") == ""
        assert "窗口尚未开放" in ((await phone.text_content("#wait")) or "")
        await post("/counters/1/open", {"clerk": "c001"})
        await post("/counters/1/call_next", {})
        await phone.wait_for_function(
            "document.querySelector('#call').textContent === '请到1号窗口'", timeout=10_000
        )
        assert errors == []
