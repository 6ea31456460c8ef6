"""Through the real app: a kiosk issues only its services; its tickets print via NOTIFY."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from firmware_bridge.emulators.line import LineEndpoint
from firmware_bridge.emulators.printer import PAPER_OUT, EscPosPrinter
from hall.config.models import HallConfig
from kiosk.web import PRINT
from tests.access_helpers import admin_headers, device_headers
from tests.conftest import AppFactory
from tests.kiosk.conftest import kiosk_config, numbers_of

Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def printer_port() -> AsyncIterator[tuple[EscPosPrinter, int]]:
    printer = EscPosPrinter(chinese_default=False)
    async with LineEndpoint(printer) as endpoint:
        yield printer, await endpoint.serve_tcp()


@pytest.fixture
def config(printer_port: tuple[EscPosPrinter, int]) -> HallConfig:
    return kiosk_config(f"tcp://127.0.0.1:{printer_port[1]}")


async def printed(client: Client, count: int) -> None:
    """Until ``count`` jobs are printed or held; the print service tells every change."""
    service = client.app[PRINT]
    async with asyncio.timeout(10), service.changed:
        while (
            await service.pool.fetchval(
                "SELECT count(*) FROM kiosk_print_jobs WHERE state IN ('printed', 'held')"
            )
            < count
        ):
            await service.changed.wait()


async def test_a_kiosk_issues_only_the_services_its_config_lists(
    client: Client, pool: asyncpg.Pool
) -> None:
    k1 = await device_headers(client, "kiosk", device_id="k1")  # BDC and TAX
    refused = await client.post("/api/v1/halls/test/tickets", json={"service": "SOC"}, headers=k1)
    assert refused.status == 403
    problem = await refused.json()
    assert problem["code"] == "not_offered_here"
    assert "本机不提供此业务" in problem["detail"]
    unknown = await device_headers(client, "kiosk", device_id="k7")  # not in the config
    assert (
        await client.post("/api/v1/halls/test/tickets", json={"service": "BDC"}, headers=unknown)
    ).status == 403
    assert await pool.fetchval("SELECT count(*) FROM tickets") == 0

    ok = await client.post("/api/v1/halls/test/tickets", json={"service": "TAX"}, headers=k1)
    assert ok.status == 201
    # Staff may issue any service, also naming the kiosk they stand at.
    admin = await admin_headers(client)
    staff = await client.post(
        "/api/v1/halls/test/tickets", json={"service": "SOC", "kiosk": "k1"}, headers=admin
    )
    assert staff.status == 201


async def test_kiosk_tickets_print_and_staff_reprint_over_the_api(
    make_client: AppFactory,
    pool: asyncpg.Pool,
    printer_port: tuple[EscPosPrinter, int],
) -> None:
    printer, _ = printer_port
    client = await make_client()
    k1 = await device_headers(client, "kiosk", device_id="k1")
    for _ in range(2):
        resp = await client.post("/api/v1/halls/test/tickets", json={"service": "BDC"}, headers=k1)
        assert resp.status == 201
    await printed(client, 2)  # woken by the trigger's NOTIFY, nothing else
    assert [numbers_of(j) for j in printer.jobs] == ["A001", "A002"]

    admin = await admin_headers(client)
    printers = await (await client.get("/api/v1/halls/test/printers", headers=admin)).json()
    assert [(p["name"], p["kiosk"], p["state"]) for p in printers] == [("p1", "k1", "ok")]

    resp = await client.post(
        "/api/v1/halls/test/print-jobs", json={"number": "A001"}, headers=admin
    )
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["kind"] == "reprint"
    await printed(client, 3)
    assert [numbers_of(j) for j in printer.jobs] == ["A001", "A002", "A001"]

    printer.set_condition(PAPER_OUT)
    resp = await client.post("/api/v1/halls/test/tickets", json={"service": "BDC"}, headers=k1)
    await printed(client, 4)
    held = await (
        await client.get("/api/v1/halls/test/print-jobs?state=held", headers=admin)
    ).json()
    assert [(j["number"], j["reason"]) for j in held] == [("A003", "paper_out")]
    states = await (await client.get("/api/v1/halls/test/printers", headers=admin)).json()
    assert states[0]["state_label"] == "缺纸"
    cancel = await client.post(
        f"/api/v1/halls/test/print-jobs/{held[0]['id']}/cancel", headers=admin
    )
    assert cancel.status == 200 and (await cancel.json())["state"] == "cancelled"
    again = await client.post(
        f"/api/v1/halls/test/print-jobs/{held[0]['id']}/cancel", headers=admin
    )
    assert again.status == 404
    bad = await client.get("/api/v1/halls/test/print-jobs?state=lost", headers=admin)
    assert bad.status == 422
