"""Helpers shared by bench/display.py, scripts/shots_display.py and the display tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
COUNTY = ROOT / "examples" / "county-hall.toml"
CHROMIUM = "/usr/bin/chromium"
# Kiosk-mode TVs also want --kiosk; announcements play without a click only with the
# autoplay flag; the three throttling flags keep a page's timers and rendering at full speed
# when Chromium thinks it is in the background or covered (docs/display.md).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]


COUNTY_HALL = "xx-county"
_SERVICES = ["zh", "bdc", "tax", "sb", "yb", "gjj", "qykb", "hz", "cg", "zj", "hy", "qj", "zx"]
_PURPOSE = {"qj": "collect", "zx": "consult", "ts": "complain"}


async def busy_hall(url: str, admin: dict[str, str]) -> None:
    """The county hall mid-morning: tickets in most queues, 42 windows open, some calling,
    some serving, one recalled, one paused, two closed."""
    async with aiohttp.ClientSession(headers=admin) as api:

        async def post(path: str, body: dict[str, object]) -> None:
            async with api.post(f"{url}/api/v1/halls/{COUNTY_HALL}{path}", json=body) as resp:
                assert resp.status in (200, 201), await resp.text()

        for i, service in enumerate(_SERVICES * 4):
            if i % 5 != 4 or service in ("zh", "tax", "bdc"):
                await post(
                    "/tickets", {"service": service, "purpose": _PURPOSE.get(service, "apply")}
                )
        for counter in range(1, 45):
            if counter not in (17, 33):
                await post(f"/counters/{counter}/open", {"clerk": "c001"})
        for counter in (1, 2, 3, 9, 15, 21, 26, 5, 31):
            await post(f"/counters/{counter}/call_next", {})
        for counter in (1, 2, 9):
            await post(f"/counters/{counter}/start", {})
        for counter in (4, 6, 10, 16, 22):
            await post(f"/counters/{counter}/call_next", {})
        await post("/counters/6/recall", {})
        await post("/counters/40/pause", {"reason": "休息"})


def county_toml_without_wiring() -> str:
    """The example county hall without its buses, devices and printers (no serial ports),
    issuing at any hour (benchmarks and screenshots run at night too)."""
    text = COUNTY.read_text(encoding="utf-8")
    cut = text.index("\n[[buses]]")
    head = text[:cut].replace("issue_outside_hours = false", "issue_outside_hours = true")
    return head.rstrip() + "\n"


_NAMES_EN = {
    "zh": "General intake",
    "bdc": "Real estate",
    "tax": "Taxation",
    "sb": "Social insurance",
    "yb": "Medical insurance",
    "gjj": "Housing fund",
    "qykb": "Business registration",
    "hz": "Household register",
    "cg": "Urban management",
    "zj": "Construction",
    "hy": "Marriage",
    "qj": "Collection",
    "zx": "Enquiries",
    "ts": "Complaints",
}


def county_toml_bilingual() -> str:
    """The county hall as :func:`county_toml_without_wiring`, its TV pages in Chinese and
    English (``display.bilingual``, English names for the hall and its services)."""
    lines = county_toml_without_wiring().splitlines()
    out: list[str] = []
    section = ""
    for line in lines:
        out.append(line)
        if line.startswith("["):
            section = line
        if section == "[[halls]]" and line.startswith("name = "):
            out.append('name_en = "XX County Government Service Center"')
        elif line == "[halls.display]":
            out.append("bilingual = true")
        elif section == "[[halls.services]]" and line.startswith("code = "):
            code = line.split('"')[1]
            if code in _NAMES_EN:
                out.append(f'name_en = "{_NAMES_EN[code]}"')
    return "\n".join(out) + "\n"


async def display_device_token(dsn: str, hall_id: str, screen: str, created_by: str) -> str:
    """A display device token stored straight into the database (as pairing would); the
    token, to set as the ``hall_device`` cookie."""
    from hall.security import tokens
    from hall.storage import access_repo
    from hall.storage.db import connect_pool

    token = tokens.new_token(tokens.DEVICE_PREFIX)
    pool = await connect_pool(dsn, min_size=1, max_size=1)
    try:
        await access_repo.create_device_token(
            pool,
            kind="display",
            hall_id=hall_id,
            device_id=screen,
            name=screen,
            token_hash=tokens.token_hash(token),
            created_by=created_by,
            now=datetime.now(UTC),
        )
    finally:
        await pool.close()
    return token
