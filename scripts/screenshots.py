"""Screenshots of the citizen's pages for docs/: run ``.venv/bin/python scripts/screenshots.py``.

Starts a throwaway embedded PostgreSQL, an ESC/POS printer emulator and ``hall serve`` with a
small hall, pairs a kiosk (its device cookie is injected), issues a few tickets and takes, in
headless Chromium (/usr/bin/chromium): the kiosk in portrait (1080×1920) and landscape
(1920×1080), a ticket on the kiosk screen, the pairing page and the citizen's ticket page;
then scripts/shots_kiosk.py: the service guide, appointment check-in, the admin pairing page
and a called ticket's page.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import admin_headers, embedded_database, kiosk_device_token, server_process
from firmware_bridge.emulators.line import LineEndpoint
from firmware_bridge.emulators.printer import EscPosPrinter
from scripts.shots_counters import counter_shots
from scripts.shots_display import display_shots
from scripts.shots_evaluator import evaluator_shots
from scripts.shots_kiosk import GUIDE_TOML, kiosk_guide_shots

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


def config_toml(printer_port: int) -> str:
    return (
        f"""
[[halls]]
id = "demo"
name = "XX县政务服务中心"
issue_outside_hours = true

[[halls.kiosks]]
id = "k1"
name = "一楼1号取号机"
priority = true
services = ["bdc", "tax", "soc", "med", "car", "gjj"]

[[halls.screens]]
id = "s1"
name = "一楼大厅电视"

[[halls.services]]
code = "bdc"
category = "不动产"
name = "不动产登记"
prefix = "A"
zone = "二楼综合受理区"
department = "zrzy"
priority_classes = ["elderly", "disabled", "military", "appointment"]

[[halls.services]]
code = "tax"
category = "税务"
name = "税务办理"
prefix = "B"

[[halls.services]]
code = "soc"
category = "社保医保"
name = "社保医保"
prefix = "C"

[[halls.services]]
code = "med"
category = "社保医保"
name = "医疗报销"
prefix = "D"
daily_quota = 1

[[halls.services]]
code = "car"
category = "公安"
name = "车驾管业务"
prefix = "E"

[[halls.services]]
code = "gjj"
category = "社保医保"
name = "公积金"
prefix = "F"

[[halls.counters]]
number = 1
services = [{{ code = "bdc" }}, {{ code = "tax" }}]

[[halls.counters]]
number = 2
services = [{{ code = "soc" }}, {{ code = "med" }}, {{ code = "gjj" }}]

[[halls.counters]]
number = 3
services = [{{ code = "soc" }}]

[halls.counter_rules]
transfer_to_closed = true

[[staff]]
job_no = "c001"
name = "王小明"
halls = ["demo"]

[[staff]]
job_no = "c002"
name = "李芳"
halls = ["demo"]

[[printers]]
name = "p1"
hall = "demo"
kiosk = "k1"
url = "tcp://127.0.0.1:{printer_port}"
"""
        + GUIDE_TOML
    )


async def run(out: Path) -> list[Path]:
    from playwright.async_api import async_playwright

    written: list[Path] = []
    printer = EscPosPrinter(chinese_default=False)
    with embedded_database() as dsn:
        async with LineEndpoint(printer) as endpoint:
            port = await endpoint.serve_tcp()
            async with server_process(dsn, config_toml(port)) as url:
                token = await kiosk_device_token(dsn, "demo", "k1", "scripts/screenshots.py")
                admin = await admin_headers(url, dsn)
                async with aiohttp.ClientSession(headers=admin) as staff:
                    for counter, clerk in ((1, "c001"), (2, "c002")):
                        async with staff.post(
                            f"{url}/api/v1/halls/demo/counters/{counter}/open",
                            json={"clerk": clerk},
                        ) as resp:
                            assert resp.status == 200, await resp.text()
                headers = {"Authorization": f"Bearer {token}"}
                async with aiohttp.ClientSession(headers=headers) as api:
                    for service in ["bdc"] * 7 + ["tax"] * 3 + ["soc"] * 4 + ["med"]:
                        key = {"Idempotency-Key": str(uuid.uuid4())}
                        async with api.post(
                            f"{url}/api/v1/kiosk/tickets", json={"service": service}, headers=key
                        ) as resp:
                            assert resp.status == 201, await resp.text()
                            last = await resp.json()
                async with async_playwright() as pw:
                    browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                    try:
                        for name, size in (
                            ("kiosk-portrait", {"width": 1080, "height": 1920}),
                            ("kiosk-landscape", {"width": 1920, "height": 1080}),
                        ):
                            context = await browser.new_context(
                                viewport=size, locale="zh-CN", timezone_id="Asia/Shanghai"
                            )
                            await context.add_cookies(
                                [{"name": "hall_device", "value": token, "url": url}]
                            )
                            page = await context.new_page()
                            await page.goto(f"{url}/kiosk")
                            await page.wait_for_selector(".svc[data-service=bdc]")
                            written.append(out / f"{name}.png")
                            await page.screenshot(path=str(written[-1]))
                            if name == "kiosk-portrait":
                                await page.click(".svc[data-service=bdc]")
                                await page.wait_for_selector("#prio:not([hidden])")
                                written.append(out / "kiosk-priority.png")
                                await page.screenshot(path=str(written[-1]))
                                await page.click("#prio-options button[data-priority='']")
                                await page.wait_for_selector("#ticket:not([hidden])")
                                written.append(out / "kiosk-ticket.png")
                                await page.screenshot(path=str(written[-1]))
                            await context.close()
                        pair = await browser.new_page(viewport={"width": 1080, "height": 1920})
                        await pair.goto(f"{url}/pair")
                        await pair.wait_for_function(
                            "/^\\d{6}$/.test(document.querySelector('#code').textContent)"
                        )
                        written.append(out / "pair.png")
                        await pair.screenshot(path=str(written[-1]))
                        phone = await browser.new_page(viewport={"width": 390, "height": 844})
                        await phone.goto(f"{url}/t/{last['ticket']['token']}")
                        await phone.wait_for_function(
                            "document.querySelector('#number').textContent !== '…'"
                        )
                        written.append(out / "ticket-page.png")
                        await phone.screenshot(path=str(written[-1]))
                        written += await counter_shots(browser, url, dsn, out)
                        written += await kiosk_guide_shots(browser, url, dsn, token, admin, out)
                    finally:
                        await browser.close()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument(
        "--only",
        choices=("kiosk", "manager", "display", "evaluator"),
        help="one set of pages only (kiosk includes the start page, login and counter terminal)",
    )
    args = parser.parse_args()
    if args.only in (None, "kiosk"):
        for path in asyncio.run(run(args.out)):
            print(f"wrote {path}")
    if args.only in (None, "manager"):
        from scripts.shots_manager import manager_shots

        for path in asyncio.run(manager_shots(args.out)):
            print(f"wrote {path}")
    if args.only in (None, "display"):
        for path in asyncio.run(display_shots(args.out)):
            print(f"wrote {path}")
    if args.only in (None, "evaluator"):
        for path in asyncio.run(evaluator_shots(args.out)):
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
