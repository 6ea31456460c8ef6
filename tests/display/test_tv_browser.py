"""The TV call page in headless Chromium: the county hall fits one screen in both
orientations, screen filters, pairing through /pair, live calls, recall flash and voice,
and a cut link: banner with its reason within 10 s, then the same page as a fresh one."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from bench._display import (
    CHROMIUM,
    CHROMIUM_ARGS,
    COUNTY_HALL,
    busy_hall,
    county_toml_bilingual,
    county_toml_without_wiring,
)
from hall.config.loader import load_config
from hall.config.models import HallConfig
from hall.security import tokens
from hall.storage import access_repo
from tests.access_helpers import admin_bearer_in
from tests.browser import chromium
from tests.display.proxy import Proxy
from tests.factories import hall_config
from tests.live.helpers import write_config_toml
from tests.servers import ServerProcess

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed"),
]
SETTLED = "document.fonts.ready.then(() => new Promise((r) => requestAnimationFrame(r)))"
SIZES = {"landscape": (1920, 1080), "portrait": (1080, 1920)}


async def device_cookie(pool: asyncpg.Pool, hall: str, screen: str) -> str:
    """A display device token as pairing creates it (pairing itself is tested below)."""
    from datetime import UTC, datetime

    token = tokens.new_token(tokens.DEVICE_PREFIX)
    await access_repo.create_device_token(
        pool,
        kind="display",
        hall_id=hall,
        device_id=screen,
        name=screen,
        token_hash=tokens.token_hash(token),
        created_by="test",
        now=datetime.now(UTC),
    )
    return token


async def serve(database_url: str, config_path: Path, log: Path) -> ServerProcess:
    proc = ServerProcess(
        ["serve", "--database-url", database_url, "--config", str(config_path)], log_path=log
    )
    await proc.start()
    return proc


# --- the county hall on one TV -----------------------------------------------------------


@pytest.fixture
def config(request: pytest.FixtureRequest, tmp_path: Path) -> HallConfig:
    if "county" in request.node.name:
        path = tmp_path / "county.toml"
        bilingual = "bilingual" in request.node.name
        text = county_toml_bilingual() if bilingual else county_toml_without_wiring()
        path.write_text(text, encoding="utf-8")
        return load_config(path)
    return hall_config(
        extra_hall={
            "screens": [{"id": "tv", "name": "大厅电视", "rows": 4}],
            "display": {
                "notices": ["请留意叫号"],
                "voice": {"repeat": 1, "pause_ms": 200},
            },
        }
    )


@pytest.fixture
async def server(
    database_url: str, pool: asyncpg.Pool, config: HallConfig, tmp_path: Path
) -> AsyncIterator[ServerProcess]:
    path = write_config_toml(config.model_dump(mode="json", exclude_none=True), tmp_path / "h.toml")
    proc = await serve(database_url, path, tmp_path / "server.log")
    try:
        yield proc
    finally:
        await proc.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    # The TV flags (no background throttling), as a hall's kiosk-mode TV runs.
    async with chromium(CHROMIUM_ARGS) as b:
        yield b


async def tv_page(browser: Any, url: str, token: str, path: str, size: tuple[int, int]) -> Any:
    context = await browser.new_context(
        viewport={"width": size[0], "height": size[1]}, locale="zh-CN"
    )
    await context.add_cookies([{"name": "hall_device", "value": token, "url": url}])
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    await page.goto(f"{url}{path}")
    await page.wait_for_selector("body[data-status=connected]", timeout=15_000)
    await page.evaluate(SETTLED)
    return page


# Every box inside the viewport and its text not clipped (its content fits its box).
BOXES = """(sel) => [...document.querySelectorAll(sel)].map((e) => {
  const r = e.getBoundingClientRect();
  return {key: e.dataset.counter || e.dataset.service, left: r.left, top: r.top,
          right: r.right, bottom: r.bottom, w: r.width, h: r.height,
          clipped: e.scrollWidth > e.clientWidth + 1 || e.scrollHeight > e.clientHeight + 1,
          text: e.innerText};
})"""


def outside(boxes: list[dict[str, Any]], size: tuple[int, int]) -> list[dict[str, Any]]:
    return [
        b
        for b in boxes
        if b["w"] < 20
        or b["h"] < 20
        or b["left"] < 0
        or b["top"] < 0
        or b["right"] > size[0] + 0.5
        or b["bottom"] > size[1] + 0.5
        or b["clipped"]
    ]


async def test_county_hall_44_windows_and_every_queue_fit_one_tv(
    server: ServerProcess, pool: asyncpg.Pool, browser: Any
) -> None:
    await busy_hall(server.url, await admin_bearer_in(pool, "tv-admin"))
    token = await device_cookie(pool, COUNTY_HALL, "tv1")
    config = load_config_from(server)
    services = {s.code for s in config.halls[0].services}
    for name, size in SIZES.items():
        page = await tv_page(browser, server.url, token, f"/tv/{COUNTY_HALL}", size)
        tiles = await page.evaluate(BOXES, "#windows .tile")
        waits = await page.evaluate(BOXES, "#waiting .wait")
        assert sorted(int(t["key"]) for t in tiles) == list(range(1, 45)), name
        assert {w["key"] for w in waits} == services, name
        assert outside(tiles, size) == [], name
        assert outside(waits, size) == [], name
        # Every waiting count is shown as a number of people.
        assert all(w["text"].rstrip().endswith("人") for w in waits)
        # The current calls are large and inside the screen too.
        current = await page.evaluate(BOXES, "#current li")
        assert current and outside(current, size) == [], name
        # The hall's three notices are wider than the screen: they scroll.
        assert await page.evaluate("document.getElementById('notices').className") == "scroll"
        assert page.errors == []
        await page.context.close()


async def test_bilingual_county_tv_adds_english_and_still_fits(
    server: ServerProcess, pool: asyncpg.Pool, browser: Any
) -> None:
    await busy_hall(server.url, await admin_bearer_in(pool, "tv-admin"))
    token = await device_cookie(pool, COUNTY_HALL, "tv1")
    for name, size in SIZES.items():
        page = await tv_page(browser, server.url, token, f"/tv/{COUNTY_HALL}", size)
        headings = await page.eval_on_selector_all("h2", "(es) => es.map((e) => e.innerText)")
        assert any("正在叫号" in h and "Now calling" in h for h in headings), headings
        assert "XX County Government Service Center" in (await page.inner_text("h1"))
        waits = await page.evaluate(BOXES, "#waiting .wait")
        by_code = {w["key"]: w["text"] for w in waits}
        assert "不动产登记" in by_code["bdc"] and "Real estate" in by_code["bdc"]
        current = await page.evaluate(BOXES, "#current li")
        assert current and all("Please go to Window" in c["text"] for c in current), current
        paused = await page.inner_text('#windows .tile[data-counter="40"]')
        assert "暂停服务" in paused and "Paused" in paused
        tiles = await page.evaluate(BOXES, "#windows .tile")
        assert len(tiles) == 44
        assert outside(tiles, size) == [], name
        assert outside(waits, size) == [], name
        assert outside(current, size) == [], name
        assert page.errors == []
        await page.context.close()


def load_config_from(server: ServerProcess) -> HallConfig:
    config_arg = server.args[server.args.index("--config") + 1]
    return load_config(config_arg)


async def test_county_screen_filters_and_rows_are_honoured(
    server: ServerProcess, pool: asyncpg.Pool, browser: Any
) -> None:
    await busy_hall(server.url, await admin_bearer_in(pool, "tv-admin"))
    token = await device_cookie(pool, COUNTY_HALL, "tv2")
    page = await tv_page(browser, server.url, token, f"/tv/{COUNTY_HALL}", SIZES["landscape"])
    tiles = await page.evaluate(BOXES, "#windows .tile")
    waits = await page.evaluate(BOXES, "#waiting .wait")
    assert sorted(int(t["key"]) for t in tiles) == list(range(9, 21))
    assert sorted(w["key"] for w in waits) == ["bdc", "qj", "tax"]
    recent = await page.eval_on_selector_all(
        "#recent li:not([hidden]) .to", "(es) => es.map((e) => parseInt(e.textContent))"
    )
    assert recent and len(recent) <= 6
    assert all(9 <= n <= 20 for n in recent), recent
    current = await page.eval_on_selector_all(
        "#current li", "(es) => es.map((e) => e.dataset.counter)"
    )
    assert current and all(9 <= int(n) <= 20 for n in current)
    assert await page.text_content("#screen-name") == "二楼叫号电视"


# --- pairing, live calls, recall, voice -----------------------------------------------------


async def test_unpaired_tv_shows_the_pairing_code_and_works_once_approved(
    server: ServerProcess, pool: asyncpg.Pool, browser: Any
) -> None:
    admin = await admin_bearer_in(pool, "tv-admin")
    context = await browser.new_context(viewport={"width": 1920, "height": 1080})
    page = await context.new_page()
    await page.goto(f"{server.url}/tv/test")
    assert page.url.endswith("/pair")
    await page.wait_for_function("/^\\d{6}$/.test(document.querySelector('#code').textContent)")
    code = (await page.text_content("#code") or "").strip()
    async with (
        aiohttp.ClientSession(headers=admin) as api,
        api.post(
            f"{server.url}/api/v1/halls/test/pairings/{code}/approve",
            json={"kind": "tv", "device_id": "tv"},  # "tv" is another name for "display"
        ) as resp,
    ):
        assert resp.status == 200, await resp.text()
    await page.wait_for_url(f"{server.url}/tv/test", timeout=15_000)
    await page.wait_for_selector("body[data-status=connected]", timeout=15_000)
    assert await page.text_content("#screen-name") == "大厅电视"
    assert "?token=" not in page.url and "token" not in page.url


async def test_a_call_shows_at_once_and_a_recall_flashes_and_is_announced_again(
    server: ServerProcess, pool: asyncpg.Pool, browser: Any
) -> None:
    admin = await admin_bearer_in(pool, "tv-admin")
    token = await device_cookie(pool, "test", "tv")
    async with aiohttp.ClientSession(headers=admin) as api:

        async def post(path: str, body: dict[str, Any] | None = None) -> None:
            async with api.post(f"{server.url}/api/v1/halls/test{path}", json=body or {}) as r:
                assert r.status in (200, 201), await r.text()

        await post("/counters/1/open", {"clerk": "c001"})
        await post("/tickets", {"service": "BDC"})
        page = await tv_page(browser, server.url, token, "/tv/test", SIZES["landscape"])
        # A notice that fits the screen stands still (nothing moves between calls).
        notices = "document.getElementById('notices')"
        assert await page.evaluate(f"{notices}.className") == ""
        assert await page.evaluate(f"{notices}.getAnimations().length") == 0
        await page.wait_for_function("window.tvVoice && window.tvVoice.source.readyState === 1")
        await post("/counters/1/call_next")
        await page.wait_for_function("window.tvLog.length === 1", timeout=5_000)
        assert await page.text_content("#current li .num") == "A001"
        assert "1号窗口" in (await page.text_content("#current li .to") or "")
        tile = "document.querySelector('#windows .tile[data-counter=\"1\"]')"
        assert await page.evaluate(f"{tile}.className") == "tile calling"
        assert await page.evaluate(f"{tile}.getAnimations().length") == 1  # it flashes
        # The flash shows: the entry's and the tile's colours are inverted, then plain again.
        for target in ("document.querySelector('#current li')", tile):
            await page.wait_for_function(
                f"getComputedStyle({target}).filter.startsWith('invert(1)')", timeout=3_000
            )
        # The flash ends; a recall starts it again and is announced again.
        await page.wait_for_function(
            "document.querySelector('#current li').getAnimations().length === 0", timeout=10_000
        )
        await post("/counters/1/recall")
        await page.wait_for_function("window.tvLog.length === 2", timeout=5_000)
        log = await page.evaluate("window.tvLog.map((e) => [e.type, e.number, e.counter])")
        assert log == [["ticket.called", "A001", 1], ["ticket.recalled", "A001", 1]]
        assert (
            await page.evaluate("document.querySelector('#current li').getAnimations().length") > 0
        )
        assert await page.evaluate(f"{tile}.getAnimations().length") == 1  # restarted, not two
        assert await page.text_content("#recent li .recall") == "重呼"
        await page.wait_for_function("window.tvVoice.log.length === 2", timeout=30_000)
        voice = await page.evaluate("window.tvVoice.log")
        assert [(v["number"], v["counter"], v["recall"]) for v in voice] == [
            ("A001", 1, False),
            ("A001", 1, True),
        ]
        assert voice[1]["start"] >= voice[0]["end"]  # never over each other
        assert page.errors == []


async def test_cut_link_banner_within_10_s_then_equal_to_a_fresh_page(
    server: ServerProcess, pool: asyncpg.Pool, browser: Any
) -> None:
    admin = await admin_bearer_in(pool, "tv-admin")
    token = await device_cookie(pool, "test", "tv")
    proxy = Proxy(server.port)
    await proxy.start()
    try:
        async with aiohttp.ClientSession(headers=admin) as api:

            async def post(path: str, body: dict[str, Any] | None = None) -> None:
                async with api.post(f"{server.url}/api/v1/halls/test{path}", json=body or {}) as r:
                    assert r.status in (200, 201), await r.text()

            for n in (1, 2):
                await post(f"/counters/{n}/open", {"clerk": "c001"})
            for _ in range(5):
                await post("/tickets", {"service": "BDC"})
            page = await tv_page(browser, proxy.url, token, "/tv/test", SIZES["landscape"])
            await post("/counters/1/call_next")
            await page.wait_for_function("window.tvLog.length === 1", timeout=5_000)

            proxy.blackhole()  # the network path dies silently: no close, no reset
            cut = time.monotonic()
            await page.wait_for_selector("#banner:not([hidden])", timeout=12_000)
            await page.wait_for_selector("body[data-reason=unreachable]", timeout=12_000)
            elapsed = time.monotonic() - cut
            print(f"banner with its reason {elapsed:.1f} s after the link died")
            assert elapsed < 10.0
            assert "无法连接服务器" in (await page.text_content("#banner") or "")
            assert await page.evaluate("document.body.classList.contains('stale')")

            # The hall goes on meanwhile.
            await post("/counters/2/call_next")
            await post("/counters/1/start")
            await post("/tickets", {"service": "TAX"})
            await post("/counters/2/recall")

            proxy.restore()
            await page.wait_for_selector("body[data-status=connected]", timeout=20_000)
            await page.wait_for_selector("#banner", state="hidden")
            fresh = await tv_page(browser, server.url, token, "/tv/test", SIZES["landscape"])
            assert await fresh.get_attribute("body", "data-seq") == await page.get_attribute(
                "body", "data-seq"
            )
            for part in ("#current", "#recent", "#windows", "#waiting"):
                assert await page.inner_text(part) == await fresh.inner_text(part), part
            assert "A002" in await page.inner_text("#current")
            assert page.errors == []
    finally:
        await proxy.close()


async def test_a_revoked_tv_is_told_it_is_not_paired(
    server: ServerProcess, pool: asyncpg.Pool, browser: Any
) -> None:
    admin = await admin_bearer_in(pool, "tv-admin")
    token = await device_cookie(pool, "test", "tv")
    page = await tv_page(browser, server.url, token, "/tv/test", SIZES["landscape"])
    device_id = await pool.fetchval("SELECT id FROM device_tokens WHERE device_id = 'tv'")
    revoke = f"{server.url}/api/v1/device-tokens/{device_id}/revoke"
    async with aiohttp.ClientSession(headers=admin) as api, api.post(revoke) as r:
        assert r.status == 204, await r.text()
    await page.wait_for_selector("body[data-reason=unpaired]", timeout=10_000)
    assert "未配对" in (await page.text_content("#banner") or "")
    await page.wait_for_url(f"{server.url}/pair", timeout=15_000)
    await page.wait_for_function("/^\\d{6}$/.test(document.querySelector('#code').textContent)")
