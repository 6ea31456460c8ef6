"""Screenshots of the TV call page (display slice) for docs/, in both orientations.

Run alone with ``.venv/bin/python scripts/shots_display.py`` or through
``scripts/screenshots.py`` (its ``display_shots``). Uses the example county hall (44 windows,
14 services) with tickets issued and windows calling, serving and paused; once more in
bilingual mode (``tv-bilingual.png``).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._display import (
    CHROMIUM,
    CHROMIUM_ARGS,
    COUNTY_HALL,
    busy_hall,
    county_toml_bilingual,
    county_toml_without_wiring,
    display_device_token,
)
from bench._support import admin_headers, embedded_database, server_process

# The CJK font has loaded and the page has laid itself out again for it.
SETTLED = "document.fonts.ready.then(() => new Promise((r) => requestAnimationFrame(r)))"
# Scrolling notices held where their text is on the screen (they start off its right edge).
TICKER = """() => { for (const a of document.getElementById("notices").getAnimations()) {
  a.pause(); a.currentTime = a.effect.getComputedTiming().duration * 0.4; } }"""


async def display_shots(out: Path) -> list[Path]:
    written = await _shots(
        out,
        county_toml_without_wiring(),
        (
            ("tv-landscape", {"width": 1920, "height": 1080}),
            ("tv-portrait", {"width": 1080, "height": 1920}),
        ),
    )
    written += await _shots(
        out, county_toml_bilingual(), (("tv-bilingual", {"width": 1920, "height": 1080}),)
    )
    return written


async def _shots(
    out: Path, config: str, sizes: tuple[tuple[str, dict[str, int]], ...]
) -> list[Path]:
    from playwright.async_api import async_playwright

    written: list[Path] = []
    with embedded_database() as dsn:
        async with server_process(dsn, config) as url:
            admin = await admin_headers(url, dsn)
            await busy_hall(url, admin)
            token = await display_device_token(dsn, COUNTY_HALL, "tv1", "scripts/shots_display.py")
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    for name, size in sizes:
                        context = await browser.new_context(viewport=size, locale="zh-CN")
                        await context.add_cookies(
                            [{"name": "hall_device", "value": token, "url": url}]
                        )
                        page = await context.new_page()
                        await page.goto(f"{url}/tv/{COUNTY_HALL}")
                        await page.wait_for_selector("body[data-status=connected]")
                        await page.evaluate(SETTLED)
                        await page.evaluate(TICKER)
                        await page.evaluate(SETTLED)
                        written.append(out / f"{name}.png")
                        await page.screenshot(path=str(written[-1]))
                        await context.close()
                finally:
                    await browser.close()
    return written


def main() -> None:
    out = (
        Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "docs"
    )
    for path in asyncio.run(display_shots(out)):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
