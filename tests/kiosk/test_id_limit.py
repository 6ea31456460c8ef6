"""Per-person daily limit at the kiosk: ID number required, counted by keyed hash only."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from hall.config.models import HallConfig
from tests.access_helpers import device_headers
from tests.kiosk.conftest import kiosk_config

Client = TestClient[web.Request, web.Application]
ALICE = "11010519491231002X"
BOB = "110101199003074477"


@pytest.fixture(autouse=True)
def secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HALL_SECRET_KEY", "ab" * 32)


@pytest.fixture
def config() -> HallConfig:
    data: dict[str, Any] = kiosk_config(None).model_dump(mode="json", exclude_none=True)
    for svc in data["halls"][0]["services"]:
        if svc["code"] == "BDC":
            svc["per_person_daily_limit"] = 1
    return HallConfig.model_validate(data)


async def take(client: Client, headers: dict[str, str], key: str, id_number: str | None) -> Any:
    body: dict[str, Any] = {"service": "BDC"}
    if id_number is not None:
        body["id_number"] = id_number
    return await client.post(
        "/api/v1/kiosk/tickets", json=body, headers={**headers, "Idempotency-Key": key}
    )


async def test_one_ticket_per_person_and_day(client: Client, pool: asyncpg.Pool) -> None:
    k1 = await device_headers(client, "kiosk", device_id="k1")
    info = await (await client.get("/api/v1/kiosk", headers=k1)).json()
    assert [(s["code"], s["needs_id"]) for s in info["services"]] == [
        ("BDC", True),
        ("TAX", False),
    ]
    missing = await take(client, k1, "tap-00000001", None)
    assert (missing.status, (await missing.json())["code"]) == (422, "id_number_required")
    wrong = await take(client, k1, "tap-00000002", "110105194912310021")
    assert wrong.status == 422 and "身份证号码不正确" in (await wrong.json())["detail"]

    first = await take(client, k1, "tap-00000003", ALICE.lower())
    assert first.status == 201
    retry = await take(client, k1, "tap-00000003", ALICE)  # the same tap, sent again
    assert retry.status == 200
    again = await take(client, k1, "tap-00000004", ALICE)
    problem = await again.json()
    assert (again.status, problem["code"]) == (409, "person_daily_limit")
    assert "每人每日限 1 个" in problem["detail"]
    other = await take(client, k1, "tap-00000005", BOB)
    assert other.status == 201

    rows = await pool.fetch("SELECT * FROM kiosk_id_tickets ORDER BY ticket_id")
    assert len(rows) == 2 and rows[0]["id_hash"] != rows[1]["id_hash"]
    stored = []
    for table in ("kiosk_id_tickets", "tickets", "events", "audit_log"):
        stored += [str(dict(r)) for r in await pool.fetch(f"SELECT * FROM {table}")]
    everything = " ".join(stored)
    for number in (ALICE, BOB, ALICE[:14], BOB[6:14]):
        assert number not in everything


async def test_taps_at_two_kiosks_at_once_give_one_ticket(
    client: Client, pool: asyncpg.Pool
) -> None:
    k1 = await device_headers(client, "kiosk", device_id="k1")
    answers = await asyncio.gather(*(take(client, k1, f"tap-race-{i:04d}", BOB) for i in range(6)))
    assert sorted(a.status for a in answers) == [201, 409, 409, 409, 409, 409]
    assert await pool.fetchval("SELECT count(*) FROM tickets") == 1
