"""Screenshots of the manager's pages for docs/: the dashboard (1920×1080), a report with
staffing advice, the admin screen with a checked config, the calendar and thresholds screen
and the multi-hall overview; called by scripts/screenshots.py.

Three past days of the 43-window bench hall are generated through the queue service first
(bench/reports.py), then ``hall serve`` runs on that database and a morning's worth of tickets
move through the API so the dashboard has something to show.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path

import aiohttp

from hall.config.models import HallConfig
from scripts._shots import ADMIN_JOB_NO, ADMIN_PASSWORD, sign_in

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


async def manager_shots(out: Path) -> list[Path]:
    from playwright.async_api import async_playwright

    from bench._support import admin_headers, embedded_database, server_process
    from bench.reports import HALL, SERVICES, generate, hall_config, working_days
    from hall.app import migrate_all
    from hall.storage.config_store import apply_config
    from hall.storage.db import connect_pool
    from tests.live.helpers import to_toml

    config = _with_hall_tree(hall_config(43))
    written: list[Path] = []
    days = working_days(date.today() - timedelta(days=1), 3)
    with embedded_database(ram=True) as dsn:
        pool = await connect_pool(dsn, max_size=4)
        try:
            async with pool.acquire() as conn:
                await migrate_all(conn)
                await apply_config(conn, config)
            await generate(pool, config, days, tickets_per_day=1500)
        finally:
            await pool.close()
        text = to_toml(config.model_dump(mode="json", exclude_none=True))
        async with server_process(dsn, text) as url:
            admin = await admin_headers(url, dsn)
            base = f"{url}/api/v1/halls/{HALL}"
            rng = random.Random(5)
            async with aiohttp.ClientSession(headers=admin) as api:

                async def post(path: str, body: dict[str, object]) -> int:
                    async with api.post(f"{base}{path}", json=body) as resp:
                        return resp.status

                codes = [s[0] for s in SERVICES]
                for _ in range(160):
                    await post("/tickets", {"service": rng.choices(codes, [6, 4, 4, 3, 2, 1])[0]})
                for number in range(1, 44):
                    if number in (12, 40):
                        continue  # two windows stay closed
                    await post(f"/counters/{number}/open", {"clerk": f"c{number:03d}"})
                    for _ in range(rng.randint(0, 2)):
                        if await post(f"/counters/{number}/call_next", {}) != 200:
                            break
                        await post(f"/counters/{number}/start", {})
                        await post(f"/counters/{number}/finish", {})
                    if number % 5 == 0:
                        await post(f"/counters/{number}/call_next", {})
                    if number % 7 == 3:
                        await post(f"/counters/{number}/call_next", {})
                        await post(f"/counters/{number}/start", {})
                    if number == 9:
                        await post(f"/counters/{number}/pause", {"reason": "午休"})
                for hall_id, count in (("bench-town-a", 14), ("bench-town-b", 6), ("county-2", 40)):
                    for _ in range(count):
                        url_t = f"{url}/api/v1/halls/{hall_id}/tickets"
                        async with api.post(url_t, json={"service": rng.choice(codes)}) as resp:
                            assert resp.status == 201, await resp.text()
            # Staged device trouble, so the alarm list has something to show: a window strip
            # that stopped answering (as the bridge records it).
            import asyncpg

            conn = await asyncpg.connect(dsn)
            try:
                await conn.execute(
                    """INSERT INTO devices (hall_id, bus, address, device_class, counter_number,
                                            state, state_since)
                       VALUES ($1, 'rs485-1', 12, 'strip', 12, 'offline', now())""",
                    HALL,
                )
            finally:
                await conn.close()
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                try:
                    context = await browser.new_context(
                        viewport={"width": 1920, "height": 1080}, locale="zh-CN"
                    )
                    page = await context.new_page()
                    await page.goto(f"{url}/manage?hall={HALL}")
                    await sign_in(
                        page, ADMIN_JOB_NO, ADMIN_PASSWORD, ready=".status.connected",
                        job_field="#login input[name=job_no]",
                        password_field="#login input[name=password]",
                        submit="#login button", timeout_ms=15_000,
                    )  # fmt: skip
                    await page.wait_for_selector("#chart-open canvas")
                    written.append(out / "manager-dashboard.png")
                    await page.screenshot(path=str(written[-1]))

                    await page.set_viewport_size({"width": 1366, "height": 1100})
                    q = f"hall={HALL}&from={days[0]}&to={days[-1]}&by=service"
                    await page.goto(f"{url}/manage/report.html?{q}")
                    await page.wait_for_selector("#staffing table", timeout=15_000)
                    written.append(out / "manager-report.png")
                    await page.screenshot(path=str(written[-1]), full_page=False)
                    await page.goto(f"{base}/reports?{q.replace(f'hall={HALL}&', '')}&format=html")
                    written.append(out / "manager-report-print.png")
                    await page.screenshot(path=str(written[-1]))

                    await page.set_viewport_size({"width": 1366, "height": 900})
                    await page.goto(f"{url}/manage/admin.html")
                    await page.wait_for_selector("#staff tbody tr")
                    data = config.model_dump(mode="json", exclude_none=True)
                    bench = next(h for h in data["halls"] if h["id"] == HALL)
                    bench["name"] = "基准县政务服务中心（新址）"
                    bench["services"][1]["target_wait_minutes"] = 15
                    bench["services"][2]["prefix"] = "c"
                    await page.fill("#config-text", to_toml(data))
                    await page.click("#check")
                    await page.wait_for_selector(".issues")
                    written.append(out / "manager-admin-invalid.png")
                    await page.screenshot(path=str(written[-1]))
                    bench["services"][2]["prefix"] = "C"
                    await page.fill("#config-text", to_toml(data))
                    await page.click("#check")
                    await page.wait_for_selector(".changes")
                    written.append(out / "manager-admin.png")
                    await page.screenshot(path=str(written[-1]))

                    await page.set_viewport_size({"width": 1366, "height": 1000})
                    await page.goto(f"{url}/manage/settings.html?hall={HALL}")
                    await page.wait_for_selector("#settings-main:not([hidden])")
                    await page.fill("#holidays", "2027-01-01\n2027-02-15\n2027-02-16\n2027-02-17")
                    await page.fill("#workdays", "2027-02-20")
                    await page.fill("input[name=target][data-code=TAX]", "15")
                    await page.fill("input[name=unattended_minutes]", "20")
                    await page.click("#check")
                    await page.wait_for_selector(".changes")
                    written.append(out / "manager-settings.png")
                    await page.screenshot(path=str(written[-1]))

                    await page.goto(f"{url}/manage/overview.html")
                    await page.wait_for_selector("#overview-table tbody tr")
                    written.append(out / "manager-overview.png")
                    await page.screenshot(path=str(written[-1]))
                    await context.close()
                finally:
                    await browser.close()
    return written


def _with_hall_tree(config: HallConfig) -> HallConfig:
    """The bench county hall under a city hall, with two townships under it and a second
    county beside it, so the multi-hall overview has a tree to roll up."""
    data = config.model_dump(mode="json", exclude_none=True)
    county = data["halls"][0]
    small = {**county, "counters": county["counters"][-3:]}  # comprehensive windows only
    county["parent"] = "city"
    data["halls"] = [
        {**small, "id": "city", "name": "示例市政务服务中心", "level": "city"},
        county,
        {**small, "id": "bench-town-a", "name": "甲镇便民服务中心", "level": "township",
         "parent": county["id"]},
        {**small, "id": "bench-town-b", "name": "乙镇便民服务中心", "level": "township",
         "parent": county["id"]},
        {**small, "id": "county-2", "name": "示例乙县政务服务中心", "parent": "city"},
    ]  # fmt: skip
    return HallConfig.model_validate(data)
