"""Ticket lookup by number (排队进度查询): the number printed on a ticket shows where it
stands today, without the ticket's token or anything personal; the page follows it."""

from __future__ import annotations

from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.access_helpers import admin_bearer_in, staff_headers
from tests.browser import browser_test, chromium_page
from tests.kiosk.test_standing import Client
from tests.servers import ServerProcess

LOOKUP = "/api/v1/halls/test/lookup"
HALL = "/api/v1/halls/test"


async def test_a_number_shows_its_place_and_then_its_window(client: Client) -> None:
    clerk = await staff_headers(client, "c001", counters=(1,))
    issued = []
    for _ in range(3):
        resp = await client.post(
            "/api/v1/halls/test/tickets", json={"service": "BDC"}, headers=clerk
        )
        issued.append(await resp.json())
    third = issued[2]["number"]
    assert (await client.post(f"{HALL}/counters/1/open", json={}, headers=clerk)).ok

    resp = await client.get(LOOKUP, params={"number": third.lower()})  # typed in lower case
    assert resp.status == 200, await resp.text()
    found = await resp.json()
    assert (found["number"], found["state"], found["people_ahead"]) == (third, "waiting", 2)
    assert "token" not in await resp.text() and issued[2]["token"] not in await resp.text()

    for _ in range(3):
        called = await client.post(
            "/api/v1/halls/test/counters/1/call_next", json={}, headers=clerk
        )
        assert called.status == 200
        if (await called.json())["ticket"]["number"] == third:
            break
        await client.post(f"{HALL}/counters/1/no_show", json={}, headers=clerk)
    found = await (await client.get(LOOKUP, params={"number": third})).json()
    assert (found["state"], found["call_text"]) == ("called", "请到1号窗口")


@pytest.mark.parametrize(
    ("number", "status", "detail"),
    [
        ("Z999", 404, "今日没有号码 Z999"),
        ("", 422, "请输入号票上的号码"),
        ("A023; DROP", 422, "请输入号票上的号码"),
        ("号码", 422, "请输入号票上的号码"),
    ],
)
async def test_a_number_not_issued_today_or_not_a_number_is_a_clear_answer(
    client: Client, number: str, status: int, detail: str
) -> None:
    resp = await client.get(LOOKUP, params={"number": number})
    assert resp.status == status
    assert detail in (await resp.json())["detail"]


async def test_an_unknown_hall_has_no_lookup(client: Client) -> None:
    assert (
        await client.get("/api/v1/halls/nowhere/lookup", params={"number": "A001"})
    ).status == 404
    assert (await client.get("/lookup/nowhere")).status == 404


@browser_test
async def test_the_lookup_page_on_a_phone(page_server: ServerProcess, pool: asyncpg.Pool) -> None:
    admin = await admin_bearer_in(pool, "lookup-admin")
    async with (
        aiohttp.ClientSession(headers=admin) as api,
        chromium_page(390, 844) as (page, errors),
    ):

        async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            async with api.post(f"{page_server.url}/api/v1/halls/test{path}", json=body) as resp:
                data: dict[str, Any] = await resp.json()
                assert resp.status in (200, 201), data
                return data

        first = await post("/tickets", {"service": "BDC"})
        number = first["number"]
        await page.goto(f"{page_server.url}/lookup/test")
        await page.fill("#q", "Z999")
        await page.press("#q", "Enter")
        await page.wait_for_function(
            "document.getElementById('error').textContent.includes('今日没有号码 Z999')"
        )
        await page.fill("#q", number.lower())
        await page.click("button[type=submit]")
        await page.wait_for_selector("#result:not([hidden])")
        assert await page.text_content("#number") == number
        assert await page.text_content("#state") == "等候中"
        assert await page.text_content("#error") == ""
        assert errors == []
