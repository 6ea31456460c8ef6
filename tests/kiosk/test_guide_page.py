"""The kiosk's service guide, groups and priority tickets in headless Chromium.

A citizen finds a matter by pinyin initials on the on-screen letters, reads its materials,
prints the one-time notice slip on the kiosk's printer, takes a ticket from the guide; a kiosk
with several service groups shows the groups first; a priority ticket is chosen on the page.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from playwright.async_api import Page

from firmware_bridge.emulators.printer import OK, PAPER_OUT, EscPosPrinter
from hall.config.models import HallConfig
from tests.access_helpers import admin_bearer_in
from tests.browser import BROWSER_TEST, chromium, watched
from tests.kiosk.conftest import kiosk_config, numbers_of
from tests.servers import ServerProcess

pytestmark = BROWSER_TEST

MATTERS: list[dict[str, Any]] = [
    {
        "code": "000173002000",
        "impl_code": "T000173002000",
        "name": "不动产首次登记",
        "department": "zrzy",
        "kind": "promised",
        "category": "confirmation",
        "legal_days": 30,
        "promised_days": 5,
        "fees": [{"name": "不动产登记费", "amount": 80}],
        "materials": [
            {"name": "不动产登记申请书", "original": True},
            {"name": "申请人身份证明", "original": True},
        ],
        "conditions": ["申请人为不动产的权利人"],
        "process": ["申请受理", "审核", "登簿", "发证"],
        "phone": "0000-1234567",
        "routes": [{"hall": "test", "services": ["BDC"]}],
    },
    {
        "code": "000212010000",
        "impl_code": "T000212010000",
        "name": "发票领用",
        "department": "swj",
        "kind": "immediate",
        "category": "other_power",
        "legal_days": 0,
        "routes": [{"hall": "test", "services": ["TAX"]}],
    },
    {
        "code": "000130001000",
        "impl_code": "T000130001000",
        "name": "城乡居民养老保险参保登记",
        "department": "rsj",
        "kind": "immediate",
        "legal_days": 0,
        "routes": [{"hall": "test", "services": ["SOC"]}],  # not offered at k1
    },
]


@pytest.fixture
def page_config(page_printer: tuple[EscPosPrinter, int]) -> HallConfig:
    data: dict[str, Any] = kiosk_config(f"tcp://127.0.0.1:{page_printer[1]}").model_dump(
        mode="json", exclude_none=True
    )
    hall = data["halls"][0]
    hall["ticket"].pop("page_url")
    hall["kiosks"][0]["priority"] = True
    hall["kiosks"][0]["services"] = ["BDC", "TAX", "MED"]
    for svc in hall["services"]:
        svc["category"] = {"BDC": "不动产", "TAX": "税务"}.get(svc["code"], "社保医保")
    data["departments"] = [
        {"code": "zrzy", "name": "县自然资源局"},
        {"code": "swj", "name": "县税务局"},
        {"code": "rsj", "name": "县人社局"},
    ]
    data["matters"] = MATTERS
    return HallConfig.model_validate(data)


async def paired_kiosk(page: Page, server: ServerProcess, pool: asyncpg.Pool) -> None:
    import aiohttp

    await page.goto(f"{server.url}/kiosk")
    await page.wait_for_url("**/pair", timeout=10_000)
    await page.wait_for_function(
        "/^\\d{6}$/.test(document.querySelector('#code').textContent)", timeout=10_000
    )
    code = (await page.text_content("#code")) or ""
    admin = await admin_bearer_in(pool, "guide-admin")
    async with (
        aiohttp.ClientSession(headers=admin) as api,
        api.post(
            f"{server.url}/api/v1/halls/test/pairings/{code}/approve",
            json={"kind": "kiosk", "device_id": "k1"},
        ) as resp,
    ):
        assert resp.status == 200, await resp.text()
    await page.wait_for_url("**/kiosk", timeout=10_000)


async def test_find_read_and_print_a_guide_then_take_a_ticket(
    page_server: ServerProcess, pool: asyncpg.Pool, page_printer: tuple[EscPosPrinter, int]
) -> None:

    emulator, _ = page_printer
    async with chromium() as browser:
        errors: list[str] = []
        page = watched(await browser.new_page(viewport={"width": 1080, "height": 1920}), errors)
        await paired_kiosk(page, page_server, pool)

        # Three groups: the first group's services show; another group is one tap away.
        await page.wait_for_selector("#cats:not([hidden]) button", timeout=10_000)
        groups = await page.locator("#cats button").all_text_contents()
        assert groups == ["不动产", "税务", "社保医保"]
        assert await page.locator(".svc .name").all_text_contents() == ["不动产登记"]
        await page.click("#cats button[data-category=社保医保]")
        assert await page.locator(".svc .name").all_text_contents() == ["医保"]

        # The guide: the letters B, D, C find 不动产首次登记 (pinyin initials).
        await page.click("#tab-guide")
        await page.wait_for_selector("#g-list .item", timeout=10_000)
        listed = await page.locator("#g-list .item .name").all_text_contents()
        assert listed == ["不动产首次登记", "发票领用"]  # SOC is not offered here
        for key in "bdc":
            await page.click(f"#g-keys button[data-k={key}]")
        await page.wait_for_function(
            "document.querySelectorAll('#g-list .item').length === 1", timeout=10_000
        )
        assert await page.text_content("#g-query") == "bdc"
        await page.click("#g-list .item[data-matter=T000173002000]")
        await page.wait_for_selector("#matter:not([hidden])")
        assert await page.text_content("#m-name") == "不动产首次登记"
        materials = await page.locator("#m-materials li").all_text_contents()
        assert materials == ["不动产登记申请书（原件，1 份）", "申请人身份证明（原件，1 份）"]
        facts = (await page.text_content("#m-facts")) or ""
        assert "承诺时限 5 个工作日" in facts and "不动产登记费 80 元" in facts
        assert await page.locator("#m-process li").count() == 4

        # The notice slip prints on the kiosk's printer.
        await page.click("#m-notice")
        await page.wait_for_function(
            "document.querySelector('#m-print').textContent === '请取走您的告知单'",
            timeout=10_000,
        )
        [slip] = emulator.jobs
        texts = [line.text for line in slip.lines]
        assert "一次性告知单" in texts
        assert any("不动产登记申请书" in t for t in texts)
        assert await pool.fetchval("SELECT count(*) FROM tickets") == 0

        # Paper out: the slip is not held for later; the page says to photograph it.
        emulator.set_condition(PAPER_OUT)
        await page.click("#m-notice")
        await page.wait_for_function(
            "document.querySelector('#m-print').textContent.includes('拍照')", timeout=10_000
        )
        assert await pool.fetchval("SELECT array_agg(state ORDER BY id) FROM kiosk_print_jobs") == [
            "printed",
            "cancelled",
        ]
        emulator.set_condition(OK)

        # From the guide straight to a ticket: BDC allows priority, so the page asks.
        await page.click("#m-take button[data-take=BDC]")
        await page.wait_for_selector("#prio:not([hidden])")
        options = await page.locator("#prio-options button").all_text_contents()
        assert options == ["普通取号", "老年人", "残疾人"]
        await page.click("#prio-options button[data-priority=elderly]")
        await page.wait_for_selector("#ticket:not([hidden])", timeout=10_000)
        assert await page.text_content("#t-number") == "A001"
        row = await pool.fetchrow("SELECT priority_class, kiosk FROM tickets")
        assert (row["priority_class"], row["kiosk"]) == ("elderly", "k1")
        assert [numbers_of(j) for j in emulator.jobs[1:]] == ["A001"]

        # After the ticket: the materials of its service are one tap away.
        await page.click("#t-guide")
        await page.wait_for_function(
            "document.querySelectorAll('#g-list .item').length === 1", timeout=10_000
        )
        assert await page.locator("#g-list .item .name").all_text_contents() == ["不动产首次登记"]
        assert errors == []


async def test_the_server_refuses_what_the_kiosk_does_not_offer(
    page_server: ServerProcess, pool: asyncpg.Pool
) -> None:
    async with chromium() as browser:
        page = await browser.new_page()
        await paired_kiosk(page, page_server, pool)
        result = await page.evaluate(
            """async () => {
              const me = await (await fetch('/api/v1/me')).json();
              const post = async (path, body) => {
                const r = await fetch(path, { method: 'POST', headers: {
                  'Content-Type': 'application/json', 'X-CSRF-Token': me.csrf_token,
                  'Idempotency-Key': crypto.randomUUID() }, body: JSON.stringify(body) });
                return [r.status, (await r.json()).detail];
              };
              return {
                soc: await post('/api/v1/kiosk/notices', { matter: 'T000130001000' }),
                appointment: await post('/api/v1/kiosk/tickets',
                                        { service: 'BDC', priority_class: 'appointment' }),
                wrongClass: await post('/api/v1/kiosk/tickets',
                                       { service: 'TAX', priority_class: 'elderly' }),
                guide: (await fetch('/api/v1/kiosk/guide/T000130001000')).status,
                longQuery: (await fetch('/api/v1/kiosk/guide?q=' + 'a'.repeat(41))).status,
              };
            }"""
        )
        assert result["soc"][0] == 404 and "办事指南中没有" in result["soc"][1]
        assert result["appointment"][0] == 422
        assert result["wrongClass"][0] == 422 and "优先类别" in result["wrongClass"][1]
        assert result["guide"] == 404
        assert result["longQuery"] == 422
        assert await pool.fetchval("SELECT count(*) FROM tickets") == 0
        assert await pool.fetchval("SELECT count(*) FROM kiosk_print_jobs") == 0


async def test_appointment_check_in_on_the_keypad(
    page_server: ServerProcess, pool: asyncpg.Pool
) -> None:
    import aiohttp

    admin = await admin_bearer_in(pool, "appt-admin")
    now = datetime.now(UTC)
    async with (
        aiohttp.ClientSession(headers=admin) as api,
        api.post(
            f"{page_server.url}/api/v1/halls/test/appointments",
            json={
                "code": "204817",
                "service": "BDC",
                "slot_start": (now + timedelta(minutes=5)).isoformat(),
                "slot_end": (now + timedelta(minutes=35)).isoformat(),
                "phone": "13812345678",
            },
        ) as resp,
    ):
        assert resp.status == 201, await resp.text()
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1920, "height": 1080})
        await paired_kiosk(page, page_server, pool)
        await page.click("#appt-open")
        for digit in "999999":
            await page.click(f"#appt-keys button[data-k='{digit}']")
        await page.click("#appt-ok")
        await page.wait_for_function(
            "document.querySelector('#banner').textContent.includes('未找到')", timeout=10_000
        )
        await page.click("#appt-open")
        await page.click("#appt-by-phone")
        assert await page.is_disabled("#appt-ok")
        await page.keyboard.type("13812345678")  # as a scanner or keyboard types it
        assert await page.text_content("#appt-value") == "138****5678"
        await page.keyboard.press("Enter")
        await page.wait_for_selector("#ticket:not([hidden])", timeout=10_000)
        assert await page.text_content("#t-number") == "A001"
        assert await page.text_content("#t-note") == "签到成功，预约号将优先叫号"
        row = await pool.fetchrow("SELECT priority_class, appointment_start FROM tickets")
        assert row["appointment_start"] is not None
