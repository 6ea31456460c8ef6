"""The kiosk page's API: its services with reasons, one ticket per tap, the virtual ticket."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from hall.config.models import HallConfig
from tests.access_helpers import device_headers
from tests.kiosk.conftest import kiosk_config

Client = TestClient[web.Request, web.Application]


@pytest.fixture
def config() -> HallConfig:
    """k1 offers BDC (quota 1) and TAX (afternoons only); the printer does not answer."""
    data: dict[str, Any] = kiosk_config("tcp://127.0.0.1:9", quota=1).model_dump(
        mode="json", exclude_none=True
    )
    hall = data["halls"][0]
    hall["issue_outside_hours"] = False
    for svc in hall["services"]:
        if svc["code"] == "TAX":
            svc["hours"] = [{"open": "14:00", "close": "17:00"}]
    return HallConfig.model_validate(data)


async def test_the_kiosk_lists_its_services_with_reasons(client: Client) -> None:
    k1 = await device_headers(client, "kiosk", device_id="k1")
    info = await (await client.get("/api/v1/kiosk", headers=k1)).json()
    assert (info["hall_name"], info["kiosk_name"]) == ("测试县政务服务中心", "一楼取号机")
    services = {s["code"]: s for s in info["services"]}
    assert list(services) == ["BDC", "TAX"]  # only what k1's config lists, in its order
    assert services["BDC"]["available"] is True
    assert services["TAX"]["available"] is False
    assert services["TAX"]["reason"] == "不在办理时间，今天 14:00 开始取号"

    first = await client.post(
        "/api/v1/kiosk/tickets",
        json={"service": "BDC"},
        headers={**k1, "Idempotency-Key": "tap-0001"},
    )
    assert first.status == 201
    info = await (await client.get("/api/v1/kiosk", headers=k1)).json()
    bdc = info["services"][0]
    assert (bdc["available"], bdc["reason"]) == (False, "今日号源已取完，请明天再来")
    assert bdc["waiting"] == 1


async def test_one_ticket_per_tap_and_a_virtual_ticket_when_the_printer_fails(
    client: Client, pool: asyncpg.Pool
) -> None:
    k1 = await device_headers(client, "kiosk", device_id="k1")
    no_key = await client.post("/api/v1/kiosk/tickets", json={"service": "BDC"}, headers=k1)
    assert no_key.status == 422
    tap = {**k1, "Idempotency-Key": "tap-2c9e7a51"}
    first = await client.post("/api/v1/kiosk/tickets", json={"service": "BDC"}, headers=tap)
    assert first.status == 201
    ticket = await first.json()
    assert ticket["ticket"]["number"] == "A001"
    # Nothing listens on port 9: the job is held and the page shows the ticket with its QR.
    assert ticket["print"]["state"] == "held" and not ticket["print"]["printed"]
    assert "咨询台" in ticket["print"]["message"]
    assert ticket["qr_svg"].lstrip().startswith("<?xml") or "<svg" in ticket["qr_svg"]
    assert ticket["page_url"] == f"http://hall.test/t/{ticket['ticket']['token']}"

    info = await (await client.get("/api/v1/kiosk", headers=k1)).json()
    assert info["printer_notice"].startswith("打印机暂时无法出票")

    again = await client.post("/api/v1/kiosk/tickets", json={"service": "BDC"}, headers=tap)
    assert again.status == 200
    assert (await again.json())["ticket"]["number"] == "A001"
    assert await pool.fetchval("SELECT count(*) FROM tickets") == 1

    other = await client.post(
        "/api/v1/kiosk/tickets",
        json={"service": "SOC"},
        headers={**k1, "Idempotency-Key": "tap-3abcd"},
    )
    assert other.status == 403
    odd = await client.post(
        "/api/v1/kiosk/tickets", data=b"\xff\x00", headers={**k1, "Idempotency-Key": "tap-4xyz"}
    )
    assert odd.status == 422


async def test_staff_cannot_use_the_kiosk_api_and_pages_are_served(client: Client) -> None:
    from tests.access_helpers import admin_headers

    admin = await admin_headers(client)
    denied = await client.get("/api/v1/kiosk", headers=admin)
    assert denied.status == 403
    assert "配对" in (await denied.json())["detail"]
    page = await client.get("/kiosk")
    assert page.status == 200 and "kiosk.js" in await page.text()
    assert (await client.get("/kiosk/kiosk.js")).status == 200
    assert (await client.get("/kiosk/..%2Fservice.py")).status == 404
    assert (await client.get("/kiosk/nothing.js")).status == 404
    assert 'href="/kiosk"' in await (await client.get("/")).text()
    assert (await client.get("/t/abcdefghijklmnop")).status == 200
