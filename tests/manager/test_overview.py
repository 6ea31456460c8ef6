"""The multi-hall overview rolls today's figures up the hall tree (township → county → city)
and shows a manager only their halls and those under them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from hall.config.models import HallConfig
from manager.overview import visible_halls
from tests.access_helpers import admin_bearer_in, admin_headers, staff_headers
from tests.browser import browser_test, chromium_page, staff_login
from tests.factories import hall_config
from tests.servers import ServerProcess, config_server

# city ─ county ─┬─ test (township)
#                └─ town2 (township)
# island (no parent)
TREE = [
    ("city", "示例市政务服务中心", "city", None),
    ("county", "示例县政务服务中心", "county", "city"),
    ("test", "甲镇便民服务中心", "township", "county"),
    ("town2", "乙镇便民服务中心", "township", "county"),
    ("island", "另一个县政务服务中心", "county", None),
]


@pytest.fixture
def config() -> HallConfig:
    data = hall_config().model_dump(mode="json")
    template = data["halls"][0]
    halls = []
    for hall_id, name, level, parent in TREE:
        hall = {
            **template, "id": hall_id, "name": name, "level": level, "parent": parent,
            "kiosks": [], "screens": [],
        }  # fmt: skip
        if hall_id == "test":
            hall = {**template, "name": name, "level": level, "parent": parent}
        halls.append(hall)
    data["halls"] = halls
    return HallConfig.model_validate(data)


async def _issue(client: TestClient[Any, Any], headers: dict[str, str], hall: str, n: int) -> None:
    for _ in range(n):
        r = await client.post(f"/api/v1/halls/{hall}/tickets", json={"service": "BDC"},
                              headers=headers)  # fmt: skip
        assert r.status == 201, await r.text()


async def test_figures_roll_up_the_hall_tree(client: TestClient[Any, Any]) -> None:
    headers = await admin_headers(client)
    await _issue(client, headers, "test", 3)
    await _issue(client, headers, "town2", 2)
    await _issue(client, headers, "county", 1)
    await _issue(client, headers, "island", 4)
    base = "/api/v1/halls/test/counters/1"
    assert (await client.post(f"{base}/open", json={"clerk": "c001"}, headers=headers)).ok
    for action in ("call_next", "start", "finish"):
        assert (await client.post(f"{base}/{action}", json={}, headers=headers)).ok

    r = await client.get("/api/v1/overview", headers=headers)
    assert r.status == 200, await r.text()
    nodes = {n["hall"]: n for n in (await r.json())["halls"]}
    order = [n["hall"] for n in (await r.json())["halls"]]
    assert order == ["city", "county", "test", "town2", "island"]  # parents before children
    assert [nodes[h]["depth"] for h in order] == [0, 1, 2, 2, 0]
    assert nodes["test"]["own"]["issued"] == 3 and nodes["test"]["own"]["served"] == 1
    assert nodes["test"]["total"]["waiting"] == 2
    assert nodes["county"]["own"]["issued"] == 1
    assert nodes["county"]["total"]["issued"] == 6 and nodes["county"]["halls"] == 3
    assert nodes["city"]["total"]["issued"] == 6 and nodes["city"]["halls"] == 4
    assert nodes["city"]["total"]["served"] == 1 and nodes["city"]["total"]["waiting"] == 5
    assert nodes["city"]["own"]["issued"] == 0
    assert nodes["island"]["total"]["issued"] == 4 and nodes["island"]["halls"] == 1
    assert nodes["city"]["total"]["longest_wait_s"] is not None


async def test_a_county_manager_sees_the_county_and_its_townships_only(
    client: TestClient[Any, Any],
) -> None:
    admin = await admin_headers(client)
    await _issue(client, admin, "town2", 2)
    await _issue(client, admin, "island", 1)
    headers = await staff_headers(client, "m01", roles=("manager",), halls=("county",))
    r = await client.get("/api/v1/overview", headers=headers)
    assert r.status == 200, await r.text()
    nodes = (await r.json())["halls"]
    assert [(n["hall"], n["depth"]) for n in nodes] == [("county", 0), ("test", 1), ("town2", 1)]
    assert nodes[0]["total"]["issued"] == 2
    clerk = await staff_headers(client, "c09", roles=("clerk",), halls=("test",))
    assert (await client.get("/api/v1/overview", headers=clerk)).status == 403


def test_visible_halls(config: HallConfig) -> None:
    assert visible_halls(config, ()) == [h for h, *_ in TREE]
    assert visible_halls(config, ("county", "island")) == ["county", "test", "town2", "island"]
    assert visible_halls(config, ("town2",)) == ["town2"]


@pytest.fixture
async def server(
    database_url: str, pool: asyncpg.Pool, config: HallConfig, tmp_path: Path
) -> AsyncIterator[ServerProcess]:
    async with config_server(database_url, config, tmp_path) as proc:
        yield proc


@browser_test
async def test_overview_page_shows_the_tree_and_follows_new_tickets(
    server: ServerProcess, pool: asyncpg.Pool
) -> None:
    admin = await admin_bearer_in(pool, "boss")
    async with aiohttp.ClientSession(headers=admin) as api:

        async def issue(hall: str) -> None:
            url = f"{server.url}/api/v1/halls/{hall}/tickets"
            async with api.post(url, json={"service": "BDC"}) as resp:
                assert resp.status == 201, await resp.text()

        await issue("town2")
        async with chromium_page(1366, 900) as (page, errors):
            await page.goto(f"{server.url}/manage/overview.html")
            await staff_login(page, "boss", "#overview-table tbody tr")
            halls = await page.eval_on_selector_all(
                "#overview-table tbody tr", "rows => rows.map(r => r.dataset.hall)"
            )
            assert halls == ["city", "county", "test", "town2", "island"]
            city = "#overview-table tr[data-hall=city] .issued"
            assert await page.text_content(city) == "1"
            await issue("test")  # a township's new ticket reaches the city's total
            await page.wait_for_function(
                f"document.querySelector('{city}').textContent === '2'", timeout=15_000
            )
            assert await page.text_content("#overview-table tr[data-hall=island] .issued") == "0"
            assert errors == []
