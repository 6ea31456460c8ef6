"""Screenshots of the kiosk's guide, appointment check-in, the admin pairing page, a called
ticket and one transferred to a closed window (imported by scripts/screenshots.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from scripts._shots import ADMIN_JOB_NO, ADMIN_PASSWORD, sign_in

GUIDE_TOML = """
[[departments]]
code = "zrzy"
name = "XX县自然资源局(不动产登记中心)"
phone = "0000-1234567"

[[departments]]
code = "swj"
name = "国家税务总局XX县税务局"

[[departments]]
code = "rsj"
name = "XX县人力资源和社会保障局"

[[matters]]
code = "000173002000"
impl_code = "D000173002000"
name = "不动产首次登记"
department = "zrzy"
kind = "promised"
category = "confirmation"
legal_days = 30
promised_days = 5
online = "partial"
appointment = true
fees = [{ name = "不动产登记费(住宅)", amount = 80 }, { name = "证书工本费", amount = 10 }]
materials = [
  { name = "不动产登记申请书", original = true },
  { name = "申请人身份证明", original = true },
  { name = "不动产权属来源证明材料" },
  { name = "不动产界址、空间界限、面积等材料" },
]
conditions = ["申请人为不动产的权利人，或其合法委托的代理人", "不动产权属来源合法、界址清楚"]
process = ["申请受理", "审核", "登簿", "缮证", "发证"]
legal_basis = "《不动产登记暂行条例》第十四条"
guide = "受理后5个工作日内办结，凭受理回执到统一出件窗口领证。"
routes = [{ hall = "demo", services = ["bdc"] }]

[[matters]]
code = "000173003000"
impl_code = "D000173003000"
name = "不动产转移登记"
department = "zrzy"
kind = "promised"
category = "confirmation"
legal_days = 30
promised_days = 3
materials = [{ name = "不动产权属证书", original = true }, { name = "买卖合同" }]
routes = [{ hall = "demo", services = ["bdc"] }]

[[matters]]
code = "000212010000"
impl_code = "D000212010000"
name = "发票领用"
department = "swj"
kind = "immediate"
category = "other_power"
legal_days = 0
online = "full"
visits = 0
routes = [{ hall = "demo", services = ["tax"] }]

[[matters]]
code = "000130042000"
impl_code = "D000130042000"
name = "社会保障卡申领"
department = "rsj"
kind = "promised"
category = "public_service"
legal_days = 20
promised_days = 10
materials = [{ name = "居民身份证", original = true }, { name = "近期免冠照片" }]
routes = [{ hall = "demo", services = ["soc"] }]
"""


async def kiosk_guide_shots(
    browser: Any, url: str, dsn: str, kiosk_token: str, admin: dict[str, str], out: Path
) -> list[Path]:
    """The guide list and a matter (portrait), appointment check-in (landscape), the admin
    pairing page with a code waiting, and the ticket page of a called ticket."""
    written: list[Path] = []

    async def shot(page: Any, name: str) -> None:
        written.append(out / f"{name}.png")
        await page.screenshot(path=str(written[-1]))

    context = await browser.new_context(
        viewport={"width": 1080, "height": 1920}, locale="zh-CN", timezone_id="Asia/Shanghai"
    )
    await context.add_cookies([{"name": "hall_device", "value": kiosk_token, "url": url}])
    kiosk = await context.new_page()
    await kiosk.goto(f"{url}/kiosk")
    await kiosk.wait_for_selector(".svc")
    await kiosk.click("#tab-guide")
    await kiosk.wait_for_selector("#g-list .item")
    for key in "bdc":
        await kiosk.click(f"#g-keys button[data-k={key}]")
    await kiosk.wait_for_function("document.querySelectorAll('#g-list .item').length === 2")
    await shot(kiosk, "kiosk-guide")
    await kiosk.click("#g-list .item[data-matter=D000173002000]")
    await kiosk.wait_for_selector("#matter:not([hidden])")
    await kiosk.click("#m-notice")
    await kiosk.wait_for_function("document.querySelector('#m-print').textContent.includes('取走')")
    await shot(kiosk, "kiosk-matter")
    await context.close()

    async with aiohttp.ClientSession(headers=admin) as staff:
        start = datetime.now(UTC) + timedelta(minutes=10)
        async with staff.post(
            f"{url}/api/v1/halls/demo/appointments",
            json={
                "code": "520136",
                "service": "bdc",
                "slot_start": start.isoformat(),
                "slot_end": (start + timedelta(minutes=30)).isoformat(),
                "phone": "13812345678",
            },
        ) as resp:
            assert resp.status == 201, await resp.text()
    context = await browser.new_context(
        viewport={"width": 1920, "height": 1080}, locale="zh-CN", timezone_id="Asia/Shanghai"
    )
    await context.add_cookies([{"name": "hall_device", "value": kiosk_token, "url": url}])
    kiosk = await context.new_page()
    await kiosk.goto(f"{url}/kiosk")
    await kiosk.wait_for_selector(".svc")
    await kiosk.click("#appt-open")
    for digit in "5201":
        await kiosk.click(f"#appt-keys button[data-k='{digit}']")
    await shot(kiosk, "kiosk-appointment")
    for digit in "36":
        await kiosk.click(f"#appt-keys button[data-k='{digit}']")
    await kiosk.click("#appt-ok")
    await kiosk.wait_for_selector("#ticket:not([hidden])")
    await shot(kiosk, "kiosk-appointment-ticket")
    await context.close()

    # The admin page: a TV at /pair shows its code; the manager sees it waiting.
    tv = await browser.new_page(viewport={"width": 1280, "height": 720})
    await tv.goto(f"{url}/pair")
    await tv.wait_for_function("/^\\d{6}$/.test(document.querySelector('#code').textContent)")
    admin_page = await browser.new_page(
        viewport={"width": 1280, "height": 800}, locale="zh-CN", timezone_id="Asia/Shanghai"
    )
    await admin_page.goto(f"{url}/admin/devices")
    await sign_in(
        admin_page, ADMIN_JOB_NO, ADMIN_PASSWORD, ready="#pending tr",
        job_field="#job-no", submit="#login button",
    )  # fmt: skip
    await admin_page.wait_for_selector("#paired tr")
    await shot(admin_page, "admin-devices")

    # A citizen's phone while the ticket is called.
    async with aiohttp.ClientSession(headers=admin) as staff:
        # Counter 2, whatever the other screenshots left it doing, calls its next ticket.
        base = f"{url}/api/v1/halls/demo/counters/2"
        for action in ("open", "resume", "no_show", "finish"):
            async with staff.post(f"{base}/{action}", json={}) as resp:
                pass  # refusals (already open, nothing to finish) are fine here
        async with staff.post(f"{base}/call_next", json={}) as resp:
            assert resp.status == 200, await resp.text()
    conn = await asyncpg.connect(dsn)
    try:  # the token is the citizen's (from the ticket's QR); no staff API shows it
        token = await conn.fetchval("SELECT token FROM tickets WHERE state = 'called' LIMIT 1")
    finally:
        await conn.close()
    phone = await browser.new_page(viewport={"width": 390, "height": 844})
    await phone.goto(f"{url}/t/{token}")
    await phone.wait_for_function("document.querySelector('#call').textContent.length > 0")
    await shot(phone, "ticket-page-called")

    # Window 2 transfers it to window 3, which is closed: the page says so, not "0 ahead".
    async with (
        aiohttp.ClientSession(headers=admin) as staff,
        staff.post(f"{base}/transfer", json={"to_counter": 3}) as resp,
    ):
        assert resp.status == 200, await resp.text()
    await phone.wait_for_function(
        "document.querySelector('#wait').textContent.includes('3号窗口尚未开放')"
    )
    await shot(phone, "ticket-page-closed-window")

    # Someone without the QR code types the number printed on the ticket.
    conn = await asyncpg.connect(dsn)
    try:
        number = await conn.fetchval(
            "SELECT display_number FROM tickets WHERE state = 'waiting' ORDER BY id LIMIT 1"
        )
    finally:
        await conn.close()
    lookup = await browser.new_page(viewport={"width": 390, "height": 844}, locale="zh-CN")
    await lookup.goto(f"{url}/lookup/demo")
    await lookup.fill("#q", number)
    await lookup.press("#q", "Enter")
    await lookup.wait_for_selector("#result:not([hidden])")
    await shot(lookup, "ticket-lookup")
    return written
