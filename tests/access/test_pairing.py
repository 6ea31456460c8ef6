"""Device pairing: a code on the browser's screen, approved by a manager or the CLI, becomes the
browser's device cookie; no token ever appears in a URL or a response body."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestClient

from hall.cli_devices import pair_device
from hall.ports import FixedClock
from hall.web.access import DEVICE_COOKIE_NAME
from hall.web.state import POOL
from tests.access_helpers import admin_headers, staff_headers

Client = TestClient[web.Request, web.Application]


async def test_pair_a_kiosk_browser_then_revoke_it(access_client: Client) -> None:
    client = access_client
    page = await client.get("/pair")
    assert page.status == 200 and "设备配对" in await page.text()

    started = await client.post("/api/v1/pairing")
    assert started.status == 201
    pairing = await started.json()
    code = pairing["code"]
    assert len(code) == 6 and code.isdigit()
    assert (await (await client.get("/api/v1/pairing")).json())["state"] == "waiting"
    early = await client.post("/api/v1/pairing/claim")
    assert early.status == 404

    clerk = await staff_headers(client, "p-clerk", roles=("clerk",), counters=(1,))
    body = {"kind": "kiosk", "device_id": "k1"}
    url = f"/api/v1/halls/test/pairings/{code}/approve"
    assert (await client.post(url, json=body, headers=clerk)).status == 403
    manager = await staff_headers(client, "p-mgr", roles=("manager",))
    bad = await client.post(url, json={"kind": "kiosk", "device_id": "k9"}, headers=manager)
    assert bad.status == 422  # not a configured kiosk
    approved = await client.post(url, json=body, headers=manager)
    assert approved.status == 200, await approved.text()
    assert (await approved.json())["state"] == "approved"
    assert (await client.post(url, json=body, headers=manager)).status == 404  # used up

    status = await (await client.get("/api/v1/pairing")).json()
    assert (status["state"], status["next"]) == ("approved", "/kiosk")
    claimed = await client.post("/api/v1/pairing/claim")
    assert claimed.status == 200
    text = await claimed.text()
    assert "hd1_" not in text  # the token travels only in the HttpOnly cookie
    cookie = claimed.cookies[DEVICE_COOKIE_NAME]
    assert cookie["httponly"] and cookie["path"] == "/"
    assert (await client.post("/api/v1/pairing/claim")).status == 404  # once

    me = await (await client.get("/api/v1/me")).json()
    assert (me["kind"], me["actor"]) == ("kiosk", "kiosk:test/k1")
    issued = await client.post(
        "/api/v1/halls/test/tickets",
        json={"service": "BDC"},
        headers={"X-CSRF-Token": me["csrf_token"]},
    )
    assert issued.status == 201

    admin = await admin_headers(client, "p-admin")
    devices = await client.app[POOL].fetch(
        "SELECT id FROM device_tokens WHERE created_by LIKE 'pairing:%'"
    )
    [row] = devices
    revoked = await client.post(f"/api/v1/device-tokens/{row['id']}/revoke", headers=admin)
    assert revoked.status == 204, await revoked.text()
    assert (await client.get("/api/v1/me")).status == 401


async def test_an_expired_code_cannot_be_approved_and_the_page_gets_a_new_one(
    access_client: Client, clock: FixedClock
) -> None:
    client = access_client
    code = (await (await client.post("/api/v1/pairing")).json())["code"]
    clock.set(clock.now() + timedelta(minutes=11))
    manager = await staff_headers(client, "p-mgr2", roles=("manager",))
    late = await client.post(
        f"/api/v1/halls/test/pairings/{code}/approve",
        json={"kind": "kiosk", "device_id": "k1"},
        headers=manager,
    )
    assert late.status == 404
    assert (await client.get("/api/v1/pairing")).status == 404  # the page starts again
    assert (await client.post("/api/v1/pairing")).status == 201


async def test_odd_pairing_input_is_a_clear_4xx(access_client: Client) -> None:
    client = access_client
    manager = await staff_headers(client, "p-mgr3", roles=("manager",))
    for code, body in [
        ("12345", {"kind": "kiosk", "device_id": "k1"}),
        ("abcdef", {"kind": "kiosk", "device_id": "k1"}),
        ("123456", {"kind": "bridge", "device_id": "k1"}),
        ("123456", {"kind": "kiosk", "device_id": "../x"}),
        ("123456", {"kind": "kiosk"}),
    ]:
        resp = await client.post(
            f"/api/v1/halls/test/pairings/{code}/approve", json=body, headers=manager
        )
        assert resp.status in (404, 422), (code, body, resp.status)
    client.session.cookie_jar.update_cookies({"hall_pairing": "x" * 30})
    assert (await client.get("/api/v1/pairing")).status == 404
    assert (await client.post("/api/v1/pairing/claim")).status == 404


async def test_hall_device_pair_approves_from_the_command_line(
    access_client: Client, pool: asyncpg.Pool, clock: FixedClock
) -> None:
    client = access_client
    clock.set(datetime.now(UTC))  # the command runs on the wall clock
    code = (await (await client.post("/api/v1/pairing")).json())["code"]
    ambiguous = argparse.Namespace(code=code, kind="kiosk", device_id="k1", hall=None)
    args = argparse.Namespace(code=code, kind="kiosk", device_id="k1", hall="test")
    async with pool.acquire() as conn:
        assert await pair_device(conn, ambiguous) == 1  # both halls have a kiosk k1
        assert await pair_device(conn, args) == 0
        assert await pair_device(conn, args) == 1  # not twice
        wrong = argparse.Namespace(code=code, kind="kiosk", device_id="nope", hall="test")
        assert await pair_device(conn, wrong) == 1
    assert (await (await client.get("/api/v1/pairing")).json())["state"] == "approved"
    assert (await client.post("/api/v1/pairing/claim")).status == 200


async def test_the_admin_api_lists_codes_targets_and_devices_of_its_own_hall_only(
    access_client: Client,
) -> None:
    client = access_client
    code = (await (await client.post("/api/v1/pairing")).json())["code"]
    manager = await staff_headers(client, "p-mgr4", roles=("manager",))
    listed = await (await client.get("/api/v1/halls/test/pairings", headers=manager)).json()
    assert [p["code"] for p in listed["pending"]] == [code]
    targets = {(t["kind"], t["device_id"]) for t in listed["targets"]}
    assert ("kiosk", "k1") in targets
    assert listed["paired"] == []

    url = f"/api/v1/halls/test/pairings/{code}/approve"
    ok = await client.post(url, json={"kind": "kiosk", "device_id": "k1"}, headers=manager)
    assert ok.status == 200
    assert (await client.post("/api/v1/pairing/claim")).status == 200
    listed = await (await client.get("/api/v1/halls/test/pairings", headers=manager)).json()
    assert listed["pending"] == []
    [device] = listed["paired"]
    assert (device["kind"], device["device_id"]) == ("kiosk", "k1")
    assert [t["paired"] for t in listed["targets"] if t["device_id"] == "k1"] == [1]
    assert "token" not in str(device)

    # A manager of another hall can neither see nor revoke it; this hall's manager can.
    other = await staff_headers(client, "p-mgr5", roles=("manager",), halls=("north",))
    revoke = f"/api/v1/halls/test/device-tokens/{device['id']}/revoke"
    assert (await client.post(revoke, headers=other)).status == 403
    north = f"/api/v1/halls/north/device-tokens/{device['id']}/revoke"
    assert (await client.post(north, headers=other)).status in (404, 422)
    assert (await client.get("/api/v1/me")).status == 200
    assert (await client.post(revoke, headers=manager)).status == 204
    assert (await client.get("/api/v1/me")).status == 401  # the paired page is out
    assert (await client.post(revoke, headers=manager)).status == 204  # idempotent
