"""Appointment check-in at the kiosk: by code or phone, on time, late, another day, twice,
at the wrong kiosk; the phone and name are stored only hashed and masked."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from hall.config.models import HallConfig
from hall.ports import FixedClock
from tests.access_helpers import admin_headers, device_headers
from tests.kiosk.conftest import kiosk_config

Client = TestClient[web.Request, web.Application]
PHONE = "13812345678"


@pytest.fixture(autouse=True)
def secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HALL_SECRET_KEY", "ab" * 32)


@pytest.fixture
def config() -> HallConfig:
    data: dict[str, Any] = kiosk_config(None).model_dump(mode="json", exclude_none=True)
    for svc in data["halls"][0]["services"]:
        if svc["code"] == "BDC":
            svc["priority_classes"] = ["elderly", "appointment"]
    return HallConfig.model_validate(data)


async def book(
    client: Client, clock: FixedClock, code: str, start_in_min: int, **extra: Any
) -> Any:
    admin = await admin_headers(client, "appt-admin")
    start = clock.now() + timedelta(minutes=start_in_min)
    body = {
        "code": code,
        "service": extra.pop("service", "BDC"),
        "slot_start": start.isoformat(),
        "slot_end": (start + timedelta(minutes=30)).isoformat(),
        **extra,
    }
    resp = await client.post("/api/v1/halls/test/appointments", json=body, headers=admin)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def test_check_in_by_code_and_by_phone(
    client: Client, clock: FixedClock, pool: asyncpg.Pool
) -> None:
    booked = await book(client, clock, "ab12cd", 10, phone=PHONE, name="张三丰")
    assert (booked["code"], booked["phone"], booked["name"]) == ("AB12CD", "138****5678", "张**")
    stored = await pool.fetchrow("SELECT * FROM kiosk_appointments")
    assert PHONE not in str(dict(stored)) and "张三丰" not in str(dict(stored))

    k1 = await device_headers(client, "kiosk", device_id="k1")
    first = await client.post("/api/v1/kiosk/appointments", json={"code": "AB12CD"}, headers=k1)
    assert first.status == 201, await first.text()
    out = await first.json()
    assert out["ticket"]["number"] == "A001"
    assert out["ticket"]["priority_class"] == "appointment"
    assert out["note"] == "签到成功，预约号将优先叫号"
    row = await pool.fetchrow("SELECT appointment_start, kiosk FROM tickets")
    assert row["appointment_start"] == clock.now() + timedelta(minutes=10)
    assert row["kiosk"] == "k1"

    # Checking in again (by code or phone) answers with the same ticket.
    again = await client.post(
        "/api/v1/kiosk/appointments", json={"phone": "138 1234 5678"}, headers=k1
    )
    assert again.status == 200
    assert (await again.json())["ticket"]["number"] == "A001"
    assert (await again.json())["note"] == "您已签到，这是您的号码"
    assert await pool.fetchval("SELECT count(*) FROM tickets") == 1


async def test_late_another_day_unknown_and_elsewhere(
    client: Client, clock: FixedClock, pool: asyncpg.Pool
) -> None:
    await book(client, clock, "LATE01", -60)  # slot ended 30 min ago; 15 min are allowed
    await book(client, clock, "TMRW01", 24 * 60)
    await book(client, clock, "SOC001", 5, service="SOC")
    k1 = await device_headers(client, "kiosk", device_id="k1")  # BDC and TAX only

    late = await client.post("/api/v1/kiosk/appointments", json={"code": "late01"}, headers=k1)
    assert late.status == 201
    out = await late.json()
    assert out["note"] == "已超过预约时段，已为您取普通号排队"
    assert out["ticket"]["priority_class"] is None
    assert await pool.fetchval("SELECT appointment_start FROM tickets") is None

    tomorrow = await client.post("/api/v1/kiosk/appointments", json={"code": "TMRW01"}, headers=k1)
    assert tomorrow.status == 409
    assert "11月25日 10:00" in (await tomorrow.json())["detail"]
    unknown = await client.post("/api/v1/kiosk/appointments", json={"code": "NOPE99"}, headers=k1)
    assert unknown.status == 404
    nobody = await client.post("/api/v1/kiosk/appointments", json={"phone": PHONE}, headers=k1)
    assert nobody.status == 404
    elsewhere = await client.post("/api/v1/kiosk/appointments", json={"code": "SOC001"}, headers=k1)
    assert elsewhere.status == 403 and "其他取号机" in (await elsewhere.json())["detail"]
    for body in ({}, {"code": "A1", "phone": PHONE}, {"phone": "12345"}, {"code": "x" * 40}):
        bad = await client.post("/api/v1/kiosk/appointments", json=body, headers=k1)
        assert bad.status == 422, body
    assert await pool.fetchval("SELECT count(*) FROM tickets") == 1

    # A checked-in booking cannot be changed; an unknown service is refused.
    admin = await admin_headers(client, "appt-admin")
    start = clock.now().isoformat()
    end = (clock.now() + timedelta(minutes=30)).isoformat()
    changed = await client.post(
        "/api/v1/halls/test/appointments",
        json={"code": "LATE01", "service": "BDC", "slot_start": start, "slot_end": end},
        headers=admin,
    )
    assert changed.status == 409
    unknown_service = await client.post(
        "/api/v1/halls/test/appointments",
        json={"code": "X0001", "service": "NOPE", "slot_start": start, "slot_end": end},
        headers=admin,
    )
    assert unknown_service.status == 404
    reversed_slot = await client.post(
        "/api/v1/halls/test/appointments",
        json={"code": "X0002", "service": "BDC", "slot_start": end, "slot_end": start},
        headers=admin,
    )
    assert reversed_slot.status == 422
