"""Display latency: a call through the HTTP API → the window strip and the TV pages.

One hall app (in this process, on a loopback port, fresh embedded database) with its
in-process bridge drives 16 emulated HB/1 devices on one pty bus at 9600 baud (8 window strips
and 8 idle callers, as bench/bridge.py); ``--tvs`` headless Chromium pages (default 20) show
the hall's TV page, paired as the hall's screen. Each sample sends 叫号 (call_next) for a
random window through ``POST /api/v1/halls/{hall}/counters/{n}/call_next`` and times:

* call → strip: until the strip has the SHOW_TEXT's last byte (its arrival on the pty plus
  the frame's own line time at the bus speed, as bench/bridge.py does);
* call → TV: until each page's DOM shows the call (a MutationObserver in the page notes the
  wall-clock time ``data-last-call`` changed; same machine, same clock).

Between samples the window starts and finishes its ticket (not timed). Prints readable lines,
then one JSON object (``call_to_strip_p99_ms``, ``call_to_tv_p99_ms``, …). Targets: strip
p99 ≤ 150 ms, TV p99 ≤ 200 ms. Take figures on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import bridge as bus_bench
from bench._display import CHROMIUM, CHROMIUM_ARGS, display_device_token
from bench._support import admin_headers, embedded_database, free_port, hall_toml, percentile
from firmware_bridge import timing
from firmware_bridge.emulators.bus import Hb1Bus
from firmware_bridge.emulators.display import StripEmulator
from firmware_bridge.emulators.keypad import CallerEmulator
from firmware_bridge.emulators.line import LineEndpoint
from hall.app import Settings, create_app
from hall.config.loader import load_config

HALL = "bench"
BAUD = 9600
STRIPS = CALLERS = 8
WATCH = """() => {
  window.benchSeen = [];
  new MutationObserver(() => window.benchSeen.push([document.body.dataset.lastCall, Date.now()]))
    .observe(document.body, {attributes: true, attributeFilter: ["data-last-call"]});
}"""


def config_text(url: str) -> str:
    lines = [hall_toml(STRIPS, HALL, screens=1), "[[staff]]", 'job_no = "b001"']
    lines += ['name = "压测员"', "", "[[buses]]", 'name = "b1"', f'hall = "{HALL}"']
    lines += [f'url = "{url}"', f"baudrate = {BAUD}"]
    lines += ["options = { poll_interactive_ms = 250, poll_display_ms = 3000 }"]
    for n in range(1, STRIPS + 1):
        lines += ["", "[[devices]]", 'bus = "b1"', f"address = {n}", 'class = "strip"']
        lines += [f"counter = {n}"]
    for n in range(1, CALLERS + 1):
        lines += ["", "[[devices]]", 'bus = "b1"', f"address = {0x40 + n}", 'class = "caller"']
        lines += [f"counter = {n}"]
    return "\n".join(lines) + "\n"


async def run(args: argparse.Namespace, dsn: str) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    bus_bench.set_baud(BAUD)
    strips = [StripEmulator(n) for n in range(1, STRIPS + 1)]
    callers = [CallerEmulator(0x40 + n) for n in range(1, CALLERS + 1)]
    bus = Hb1Bus([*strips, *callers], baud=BAUD)
    reply_delay = timing.frame_time(BAUD, bus_bench.POLL_REQ_PAYLOAD) + timing.turnaround(BAUD)
    endpoint = LineEndpoint(bus, reply_delay_s=reply_delay, line_baud=BAUD)
    pair = await endpoint.attach_pty()
    watch = bus_bench.StripWatch()
    for strip in strips:
        strip.on_log = watch.on_log
    workdir = Path(tempfile.mkdtemp(prefix="hall-bench-display-"))
    (workdir / "hall.toml").write_text(config_text(pair.slave_path), encoding="utf-8")
    app = create_app(Settings(database_url=dsn, config=load_config(workdir / "hall.toml")))
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    url = f"http://127.0.0.1:{port}"
    strip_ms: list[float] = []
    tv_ms: list[float] = []
    missed = 0
    try:
        admin = await admin_headers(url, dsn)
        token = await display_device_token(dsn, HALL, "s001", "bench/display.py")
        async with aiohttp.ClientSession(headers=admin) as api:

            async def post(path: str, body: dict[str, Any] | None = None) -> None:
                async with api.post(f"{url}/api/v1/halls/{HALL}{path}", json=body or {}) as r:
                    assert r.status in (200, 201), await r.text()

            for _ in range(args.samples + 2 * STRIPS):
                await post("/tickets", {"service": "bdc"})
            for n in range(1, STRIPS + 1):
                await post(f"/counters/{n}/open", {"clerk": "b001"})
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    pages = []
                    for _ in range(args.tvs):
                        context = await browser.new_context(
                            viewport={"width": 1920, "height": 1080}
                        )
                        await context.add_cookies(
                            [{"name": "hall_device", "value": token, "url": url}]
                        )
                        page = await context.new_page()
                        await page.goto(f"{url}/tv/{HALL}")
                        await page.wait_for_selector("body[data-status=connected]")
                        await page.evaluate(WATCH)
                        pages.append(page)
                    print(f"{len(bus.devices)} devices on one pty bus at {BAUD} baud; "
                          f"{len(pages)} TV pages in headless Chromium")  # fmt: skip
                    rng = random.Random(1)
                    for i in range(args.samples + 1):  # the first is a warm-up, not counted
                        n = rng.randrange(1, STRIPS + 1)
                        fut = watch.expect(n, bus_bench._is_call)
                        t0 = time.perf_counter()
                        wall0 = time.time() * 1000
                        await post(f"/counters/{n}/call_next")
                        async with asyncio.timeout(10):
                            t1 = await fut
                        seen = await asyncio.gather(
                            *(
                                p.wait_for_function(
                                    f"window.benchSeen.some((s) => s[1] >= {wall0} && "
                                    f"s[0] && s[0].endsWith('@{n}#' + document.body.dataset.seq))",
                                    timeout=10_000,
                                )
                                for p in pages
                            ),
                            return_exceptions=True,
                        )
                        times = await asyncio.gather(
                            *(
                                p.evaluate(
                                    f"Math.min(...window.benchSeen.filter((s) => s[1] >= {wall0})"
                                    ".map((s) => s[1]))"
                                )
                                for p in pages
                            )
                        )
                        if i:
                            strip_ms.append((t1 - t0) * 1000)
                            for ok, at in zip(seen, times, strict=True):
                                if isinstance(ok, BaseException):
                                    missed += 1
                                else:
                                    tv_ms.append(at - wall0)
                        await post(f"/counters/{n}/start")
                        await post(f"/counters/{n}/finish")
                        await asyncio.sleep(rng.uniform(0.05, args.pause_s))
                finally:
                    await browser.close()
    finally:
        await runner.cleanup()
        await endpoint.close()
    figures: dict[str, Any] = {
        "samples": len(strip_ms),
        "tvs": args.tvs,
        "baud": BAUD,
        "devices": len(bus.devices),
        "call_to_strip_p50_ms": round(percentile(strip_ms, 50), 1),
        "call_to_strip_p99_ms": round(percentile(strip_ms, 99), 1),
        "call_to_tv_p50_ms": round(percentile(tv_ms, 50), 1),
        "call_to_tv_p99_ms": round(percentile(tv_ms, 99), 1),
        "tv_updates": len(tv_ms),
        "tv_missed": missed,
    }
    print(
        f"call → strip (last byte at {BAUD} baud): p50 {figures['call_to_strip_p50_ms']} ms, "
        f"p99 {figures['call_to_strip_p99_ms']} ms (target ≤ 150 ms)"
    )
    print(
        f"call → TV DOM ({args.tvs} pages): p50 {figures['call_to_tv_p50_ms']} ms, "
        f"p99 {figures['call_to_tv_p99_ms']} ms (target ≤ 200 ms); missed {missed}"
    )
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--samples", type=int, default=60, help="calls timed")
    parser.add_argument("--tvs", type=int, default=20, help="headless Chromium TV pages")
    parser.add_argument("--pause-s", type=float, default=0.6, help="most pause between calls")
    parser.add_argument("--limit-s", type=float, default=300.0)
    args = parser.parse_args()

    async def bounded(dsn: str) -> dict[str, Any]:
        async with asyncio.timeout(args.limit_s):
            return await run(args, dsn)

    with embedded_database() as dsn:
        figures = asyncio.run(bounded(dsn))
    print(json.dumps(figures, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
