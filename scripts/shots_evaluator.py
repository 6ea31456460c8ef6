"""Screenshots of the evaluator slice's pages for docs/ (called by scripts/screenshots.py).

A throwaway database and ``hall serve`` with one hall: a few visits are served and rated
through the API, then headless Chromium takes the web pad (tablet, 1280×800) asking for 差评
reasons, the phone rating page of a case (390×844) and the managers' rating list.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from bench._support import admin_headers, embedded_database, server_process
from scripts._shots import save_staff, sign_in

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
MANAGER_PASSWORD = "shots-manager-1"

CONFIG = """
[[halls]]
id = "demo"
name = "XX县政务服务中心"
issue_outside_hours = true

[[halls.services]]
code = "bdc"
name = "不动产登记"
prefix = "A"

[[halls.counters]]
number = 1
services = [{ code = "bdc" }]

[[departments]]
code = "zrzy"
name = "县自然资源局"

[[matters]]
code = "11510000MB1234567X4000111111000"
impl_code = "BDC-0001"
name = "不动产首次登记"
department = "zrzy"
kind = "promised"
legal_days = 30
promised_days = 5

[[matters]]
code = "11510000MB1234567X4000111111001"
impl_code = "BDC-0002"
name = "不动产登记资料查询"
department = "zrzy"
kind = "immediate"
legal_days = 1

[[staff]]
job_no = "c001"
name = "王小明"
halls = ["demo"]
"""


async def _manager_and_pad(dsn: str) -> str:
    """A manager account (password login on the page) and the tablet's device token."""
    import asyncpg

    from hall.security import tokens
    from hall.storage import access_repo

    await save_staff(dsn, "m001", MANAGER_PASSWORD, name="李主任", roles=["manager"])
    token = tokens.new_token(tokens.DEVICE_PREFIX)
    conn = await asyncpg.connect(dsn)
    try:
        await access_repo.create_device_token(
            conn,
            kind="pad",  # paired at /pair as the pad of counter 1
            hall_id="demo",
            device_id="1",
            name="1号窗口评价器",
            token_hash=tokens.token_hash(token),
            created_by="scripts/shots_evaluator.py",
            now=datetime.now(UTC),
        )
    finally:
        await conn.close()
    return token


async def evaluator_shots(out: Path) -> list[Path]:
    from playwright.async_api import async_playwright

    written: list[Path] = []
    with embedded_database() as dsn:
        async with server_process(dsn, CONFIG) as url:
            pad_token = await _manager_and_pad(dsn)
            admin = await admin_headers(url, dsn)
            pad = {"Authorization": f"Bearer {pad_token}"}
            base = f"{url}/api/v1/halls/demo"
            async with aiohttp.ClientSession(headers=admin) as api:

                async def post(path: str, body: dict[str, Any] | None = None, **kw: Any) -> Any:
                    async with api.post(f"{base}{path}", json=body or {}, **kw) as resp:
                        assert resp.status in (200, 201), await resp.text()
                        return await resp.json()

                async def pad_session() -> int:
                    async with api.get(f"{base}/evaluator/counters/1/pad", headers=pad) as r:
                        session: int = (await r.json())["session"]
                        return session

                await post("/counters/1/open", {"clerk": "c001"})
                case: dict[str, Any] = {}
                for level, reasons in ((5, []), (4, []), (2, ["slow", "unclear"]), (0, [])):
                    await post("/tickets", {"service": "bdc"})
                    ticket = (await post("/counters/1/call_next"))["ticket"]
                    await post("/counters/1/start")
                    case = await post(
                        "/evaluator/counters/1/cases",
                        {"ticket_id": ticket["id"], "matter": "BDC-0001",
                         "applicant_name": "张三", "applicant_phone": "13812345678"},
                    )  # fmt: skip
                    await post("/counters/1/finish")
                    if level:
                        session = await pad_session()
                        body = {"session": session, "level": level, "reasons": reasons}
                        await post("/evaluator/counters/1/pad/ratings", body, headers=pad)
                await post(f"/cases/{case['id']}/status", {"status": "reviewing"})
                await post(f"/cases/{case['id']}/status", {"status": "completed"})
                # The last visit is waiting for its rating on the tablet.
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                try:
                    tablet = await browser.new_context(
                        viewport={"width": 1280, "height": 800}, locale="zh-CN"
                    )
                    await tablet.add_cookies(
                        [{"name": "hall_device", "value": pad_token, "url": url}]
                    )
                    page = await tablet.new_page()
                    await page.goto(f"{url}/pad/demo")
                    await page.wait_for_selector(".levels button[data-level='2']")
                    await page.click(".levels button[data-level='2']")
                    await page.check("input[value='attitude']")
                    written.append(out / "evaluator-pad.png")
                    await page.screenshot(path=str(written[-1]))

                    phone = await browser.new_page(viewport={"width": 390, "height": 844})
                    await phone.goto(case["rating_url"])
                    await phone.wait_for_selector(".levels button")
                    written.append(out / "evaluator-phone.png")
                    await phone.screenshot(path=str(written[-1]), full_page=True)

                    desk = await browser.new_page(viewport={"width": 1400, "height": 900})
                    await desk.goto(f"{url}/ratings?hall=demo")
                    await sign_in(
                        desk, "m001", MANAGER_PASSWORD, ready="#list tbody tr",
                        job_field="#job", password_field="#pw", submit="form.login button",
                    )  # fmt: skip
                    await desk.select_option("#case-search select", "phone")
                    await desk.fill("#case-search input", "13812345678")
                    await desk.click("#case-search button")
                    await desk.wait_for_selector("#cases tbody tr")
                    written.append(out / "evaluator-ratings.png")
                    await desk.screenshot(path=str(written[-1]), full_page=True)
                finally:
                    await browser.close()
    return written
