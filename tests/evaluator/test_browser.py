"""The web rating pad and the managers' rating list in headless Chromium."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from hall.config.models import HallConfig
from hall.security.passwords import hash_password
from hall.storage import access_repo
from tests.access_helpers import FAST_SCRYPT, PASSWORD, admin_bearer_in
from tests.browser import BROWSER_TEST, chromium, watched
from tests.evaluator.conftest import evaluator_body
from tests.servers import ServerProcess, config_server

pytestmark = BROWSER_TEST


@pytest.fixture
def config() -> HallConfig:
    return HallConfig.model_validate(evaluator_body())


@pytest.fixture
async def server(
    database_url: str, pool: asyncpg.Pool, config: HallConfig, tmp_path: Path
) -> AsyncIterator[ServerProcess]:
    async with config_server(database_url, config, tmp_path) as proc:
        yield proc


class Hall:
    """The hall's API as an administrator drives it (clerk actions, pairing approvals)."""

    def __init__(self, api: aiohttp.ClientSession, url: str) -> None:
        self.api, self.url = api, url

    async def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        async with self.api.post(f"{self.url}/api/v1/halls/test{path}", json=body or {}) as resp:
            data: dict[str, Any] = await resp.json()
            assert resp.status in (200, 201), data
            return data

    async def visit(self, finish: bool = True) -> dict[str, Any]:
        ticket = await self.post("/tickets", {"service": "BDC"})
        await self.post("/counters/1/call_next")
        await self.post("/counters/1/start")
        if finish:
            await self.post("/counters/1/finish")
        return ticket


async def test_the_web_pad_rates_a_visit_and_the_manager_sees_it_in_the_list(
    server: ServerProcess, pool: asyncpg.Pool
) -> None:
    from playwright.async_api import FilePayload

    admin = await admin_bearer_in(pool, "eval-admin")
    async with pool.acquire() as conn:
        await access_repo.save_account(
            conn, "m001", password_hash=hash_password(PASSWORD, FAST_SCRYPT), name="李主任",
            roles=["manager"], halls=["test"], counters=[],
        )  # fmt: skip
    async with aiohttp.ClientSession(headers=admin) as api, chromium() as browser:
        hall = Hall(api, server.url)
        await hall.post("/counters/1/open", {"clerk": "c001"})
        tablet = await browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
        errors: list[str] = []
        page = watched(await tablet.new_page(), errors)

        # Paired like the kiosk: the tablet shows a code at /pair, a manager approves it
        # as the pad of counter 1, and the tablet opens that counter's pad by itself.
        await page.goto(f"{server.url}/pair")
        await page.wait_for_function(
            "/^\\d{6}$/.test(document.querySelector('#code').textContent)", timeout=10_000
        )
        code = (await page.text_content("#code")) or ""
        async with api.get(f"{server.url}/api/v1/halls/test/pairings") as resp:
            listed = await resp.json()
        pads = [(t["device_id"], t["label"]) for t in listed["targets"] if t["kind"] == "pad"]
        assert pads[:2] == [("1", "网页评价器"), ("2", "网页评价器")]
        await hall.post(f"/pairings/{code}/approve", {"kind": "pad", "device_id": "1"})
        await page.wait_for_url("**/pad/test?counter=1", timeout=10_000)
        await page.wait_for_function(
            "document.querySelector('#clerk').textContent.includes('c001')", timeout=10_000
        )

        await hall.visit(finish=False)
        await page.wait_for_function(
            "document.querySelector('#body').textContent.includes('正在为 A001 办理')",
            timeout=10_000,
        )
        await hall.post("/counters/1/finish")
        await page.wait_for_selector(".levels button[data-level='2']", timeout=10_000)
        assert await page.locator(".levels button").all_text_contents() == [
            "★★★★★非常满意", "★★★★☆满意", "★★★☆☆基本满意", "★★☆☆☆不满意", "★☆☆☆☆非常不满意",
        ]  # fmt: skip
        await page.click(".levels button[data-level='2']")
        await page.click("text=提交评价")  # no reason chosen yet
        assert await page.text_content(".error") == "请至少选择一项不满意的原因"
        await page.check("input[value='slow']")
        await page.check("input[value='unclear']")
        await page.screenshot(path=str(Path(server.log_path or ".").parent / "pad.png"))
        await page.click("text=提交评价")
        await page.wait_for_function(
            "document.querySelector('#body').textContent.includes('感谢您的评价')",
            timeout=10_000,
        )
        row = await pool.fetchrow(
            "SELECT level, reason_codes, channel, counter_number FROM ratings"
        )
        assert row is not None
        assert tuple(row) == (2, ["slow", "unclear"], "web_pad", 1)
        assert await pool.fetchval("SELECT count(*) FROM bad_rating_tasks") == 1

        # The manager logs in on the rating list and filters it.
        desk = await browser.new_context(viewport={"width": 1400, "height": 800}, locale="zh-CN")
        manager = watched(await desk.new_page(), errors)
        await manager.goto(f"{server.url}/ratings?hall=test")
        await manager.fill("#job", "m001")
        await manager.fill("#pw", PASSWORD)
        await manager.click("form.login button")
        await manager.wait_for_selector("#list tbody tr", timeout=10_000)
        cells = await manager.locator("#list tbody tr").first.locator("td").all_text_contents()
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", cells[0])  # hall's local time
        assert cells[1:7] == ["★★☆☆☆ 不满意", "办事效率低、一次性告知不清楚", "1", "c001",
                              "BDC", "A001"]  # fmt: skip
        assert cells[8:] == ["平板", "#1"]
        await manager.select_option("select[name=level]", "5")
        await manager.click("#filters button")
        await manager.wait_for_selector("text=没有符合条件的评价", timeout=10_000)

        # Cases registered upstream for a keypad-only window, imported from a file.
        upload = {"cases": [
            {"case_number": "SC-UP-9", "matter_impl_code": "BDC-001",
             "accepted_on": "2026-11-24", "ticket_number": "A001"},
            {"case_number": "SC-UP-10", "matter_impl_code": "NOPE",
             "accepted_on": "2026-11-24"},
        ]}  # fmt: skip
        payload: FilePayload = {
            "name": "cases.json",
            "mimeType": "application/json",
            "buffer": json.dumps(upload).encode(),
        }
        await manager.set_input_files("#case-import input[type=file]", files=[payload])
        await manager.click("#case-import button.primary")
        await manager.wait_for_selector("#import-result p", timeout=10_000)
        assert await manager.text_content("#import-result p") == (
            "新建 1 件，更新 0 件，无变化 0 件，1 件未导入"
        )
        assert await manager.text_content("#import-result li") == (
            "SC-UP-10：事项 NOPE 不在事项目录中"
        )

        # Revoking the pad's token ends the tablet's session: it says so and rates no more.
        token_id = await pool.fetchval("SELECT id FROM device_tokens WHERE kind = 'pad'")
        async with api.post(
            f"{server.url}/api/v1/halls/test/device-tokens/{token_id}/revoke"
        ) as resp:
            assert resp.status == 204
        await page.wait_for_function(
            "document.querySelector('#body').textContent.includes('配对已被吊销')",
            timeout=10_000,
        )
        assert errors == []


async def test_the_finish_form_module_creates_the_case_or_blocks_finishing_in_chinese(
    server: ServerProcess, pool: asyncpg.Pool
) -> None:
    """The counter terminal's side of page hook ``counter.finish``, played by a bare page."""

    admin = await admin_bearer_in(pool, "eval-admin")
    async with pool.acquire() as conn:
        await access_repo.save_account(
            conn, "c001", password_hash=hash_password(PASSWORD, FAST_SCRYPT), name="王小明",
            roles=["clerk"], halls=["test"], counters=[1],
        )  # fmt: skip
    async with aiohttp.ClientSession(headers=admin) as api, chromium() as browser:
        hall = Hall(api, server.url)
        await hall.post("/counters/1/open", {"clerk": "c001"})
        await hall.post("/tickets", {"service": "BDC"})
        active = (await hall.post("/counters/1/call_next"))["ticket"]
        async with api.get(f"{server.url}/api/v1/page-hooks/counter.finish") as resp:
            modules = (await resp.json())["modules"]
        assert modules == ["/evaluator/static/case-form.js"]
        errors: list[str] = []
        page = watched(await browser.new_page(locale="zh-CN"), errors)
        await page.goto(f"{server.url}/evaluator/static/evaluator.css")
        status = await page.evaluate(
            """async (password) => (await fetch('/api/v1/login', {method: 'POST',
                 headers: {'Content-Type': 'application/json'},
                 body: JSON.stringify({job_no: 'c001', password})})).status""",
            PASSWORD,
        )
        assert status == 200
        ctx = {
            "hall": "test",
            "counter": 1,
            "ticket": {"id": active["id"], "number": active["number"],
                       "service_code": "BDC", "service_name": "不动产登记"},
            "clerk": "c001",
        }  # fmt: skip
        mount = """async ([url, ctx]) => {
            const box = document.createElement('div');
            document.body.append(box);
            const m = await import(url);
            window.hook = await m.mount(box, ctx);
            return [...box.querySelectorAll('select option')].map((o) => o.textContent);
        }"""
        options = await page.evaluate(mount, [modules[0], ctx])
        assert options == [
            "不建办件（咨询等）",
            "不动产首次登记（承诺件，5个工作日）",
            "不动产登记资料查询（即办件）",
        ]
        await page.select_option("select[name=matter]", "BDC-001")
        await page.fill("input[name=number]", "SC2026000777")
        await page.fill("input[name=applicant_phone]", "13812345678")
        finish = "window.hook.beforeFinish().then(() => '', (e) => e.message)"
        assert await page.evaluate(finish) == ""
        row = await pool.fetchrow("SELECT number, ticket_id, counter_number, source FROM cases")
        assert row is not None
        assert tuple(row) == ("SC2026000777", active["id"], 1, "upstream")
        # The same number again: the terminal gets the reason and does not finish.
        assert await page.evaluate(finish) == "办件编号 SC2026000777 已被本大厅使用"
        assert await pool.fetchval("SELECT count(*) FROM cases") == 1

        # Found again by the citizen's phone on the list page, masked.
        await page.goto(f"{server.url}/ratings?hall=test")
        await page.select_option("#case-search select", "phone")
        await page.fill("#case-search input", "138 1234 5678")
        await page.click("#case-search button")
        await page.wait_for_selector("#cases tbody tr", timeout=10_000)
        cells = await page.locator("#cases tbody tr td").all_text_contents()
        assert cells[0] == "SC2026000777" and cells[3] == "受理"
        assert "138****5678" in cells and "13812345678" not in " ".join(cells)
        assert errors == []
