"""Screenshots of the clerk's pages (called by scripts/screenshots.py): the start page, the
login page, the clerk terminal at 1366×768 serving a ticket (an elderly citizen's ticket among
those waiting, listed where the priority ratio puts it), its transfer dialog, and a hall
manager's sign-in lockout dialog."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from scripts._shots import save_staff, sign_in

PASSWORD = "shots-clerk-1"


async def counter_shots(browser: Any, url: str, dsn: str, out: Path) -> list[Path]:
    """Counter 1 of hall "demo" must be open for c001, with tickets waiting."""
    await save_staff(dsn, "c001", PASSWORD, name="王小明", roles=["clerk"], counters=[1])
    # An elderly citizen's ticket: the terminal lists it where the priority ratio puts it.
    async with aiohttp.ClientSession() as session:
        body = {"job_no": "c001", "password": PASSWORD}
        async with session.post(f"{url}/api/v1/login", json=body) as resp:
            resp.raise_for_status()
            token = (await resp.json())["token"]
        async with session.post(
            f"{url}/api/v1/halls/demo/tickets",
            json={"service": "bdc", "priority_class": "elderly"},
            headers={"Authorization": f"Bearer {token}"},
        ) as resp:
            assert resp.status == 201, await resp.text()
    written: list[Path] = []
    context = await browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    page = await context.new_page()
    await page.goto(f"{url}/")
    written.append(out / "start-page.png")
    await page.screenshot(path=str(written[-1]))
    await page.goto(f"{url}/counter?hall=demo")
    await page.wait_for_url("**/login?next=*")
    await page.fill("#job_no", "c001")
    written.append(out / "login.png")
    await page.screenshot(path=str(written[-1]))
    await page.fill("#password", PASSWORD)
    await page.press("#password", "Enter")
    await page.wait_for_selector("#state[data-state=idle]")
    await page.keyboard.press("F1")
    await page.wait_for_selector("#state[data-state=calling]")
    await page.keyboard.press("F4")
    await page.wait_for_selector("#state[data-state=serving]")
    await page.wait_for_selector("#link[data-status=connected]")
    written.append(out / "counter-terminal.png")
    await page.screenshot(path=str(written[-1]))
    await page.keyboard.press("F8")
    await page.wait_for_selector("#dialog:not([hidden]) #d-target")
    written.append(out / "counter-transfer.png")
    await page.screenshot(path=str(written[-1]))
    await context.close()
    written.append(await locks_shot(browser, url, dsn, out))
    return written


async def locks_shot(browser: Any, url: str, dsn: str, out: Path) -> Path:
    """A hall manager's 登录锁定 dialog on the terminal: c001 typed 5 wrong PINs on a caller."""
    from counters.signin import LOCK_AFTER, log_sign_in

    await save_staff(dsn, "m001", PASSWORD, name="陈主任", roles=["manager"])
    conn = await asyncpg.connect(dsn)
    try:
        for _ in range(LOCK_AFTER):
            await log_sign_in(
                conn, hall_id="demo", counter=1, device="device:b1/1", at=datetime.now(UTC),
                kind="login", method="pin", job_no="c001", refusal="wrong_credential",
            )  # fmt: skip
    finally:
        await conn.close()
    context = await browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    page = await context.new_page()
    await page.goto(f"{url}/login?next=/counter%3Fhall%3Ddemo%26counter%3D2")
    await sign_in(page, "m001", PASSWORD, ready="#btn-locks:not([hidden])")
    await page.wait_for_selector("#link[data-status=connected]")
    await page.keyboard.press("Alt+l")
    await page.wait_for_selector('#locks li[data-lock="staff:c001"]')
    path = out / "counter-locks.png"
    await page.screenshot(path=str(path))
    await context.close()
    return path
