"""Device tokens: created by an admin for configured devices, bound to one hall, revocable."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.access_helpers import admin_headers, bearer

Client = TestClient[web.Request, web.Application]


async def test_a_registered_kiosk_issues_tickets_in_its_own_hall_until_revoked(
    access_client: Client,
) -> None:
    admin = await admin_headers(access_client)
    created = await access_client.post(
        "/api/v1/device-tokens",
        json={"kind": "kiosk", "hall": "test", "device_id": "k1"},
        headers=admin,
    )
    assert created.status == 201
    device = await created.json()
    assert (device["name"], device["hall"]) == ("一号取号机", "test")
    kiosk = bearer(device["token"])

    issued = await access_client.post(
        "/api/v1/halls/test/tickets", json={"service": "BDC"}, headers=kiosk
    )
    assert issued.status == 201
    elsewhere = await access_client.post(
        "/api/v1/halls/north/tickets", json={"service": "BDC"}, headers=kiosk
    )
    assert elsewhere.status == 403
    me = await (await access_client.get("/api/v1/me", headers=kiosk)).json()
    assert (me["kind"], me["actor"]) == ("kiosk", "kiosk:test/k1")

    revoked = await access_client.post(
        f"/api/v1/device-tokens/{device['id']}/revoke", headers=admin
    )
    assert revoked.status == 204
    refused = await access_client.post(
        "/api/v1/halls/test/tickets", json={"service": "BDC"}, headers=kiosk
    )
    assert refused.status == 401


async def test_tokens_only_for_devices_the_hall_config_names(access_client: Client) -> None:
    admin = await admin_headers(access_client)
    for body in (
        {"kind": "kiosk", "hall": "test", "device_id": "k9"},
        {"kind": "display", "hall": "test", "device_id": "k1"},
    ):
        response = await access_client.post("/api/v1/device-tokens", json=body, headers=admin)
        assert response.status == 422, body
    unknown_hall = await access_client.post(
        "/api/v1/device-tokens",
        json={"kind": "bridge", "hall": "atlantis", "device_id": "edge1"},
        headers=admin,
    )
    assert unknown_hall.status == 404


async def test_anonymous_callers_cannot_issue_tickets(access_client: Client) -> None:
    response = await access_client.post("/api/v1/halls/test/tickets", json={"service": "BDC"})
    assert response.status == 401
    assert (await response.json())["title"] == "请先登录"


async def test_a_browser_device_keeps_its_token_in_a_cookie_with_csrf(
    access_client: Client,
) -> None:
    admin = await admin_headers(access_client)
    created = await access_client.post(
        "/api/v1/device-tokens",
        json={"kind": "kiosk", "hall": "test", "device_id": "k1"},
        headers=admin,
    )
    token = (await created.json())["token"]
    response = await access_client.post("/api/v1/device-login", json={"token": token})
    assert response.status == 200
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    csrf = (await response.json())["csrf_token"]

    services = await access_client.get("/api/v1/halls/test/services")  # cookie only
    assert services.status == 200
    ticket = {"service": "BDC"}
    forged = await access_client.post("/api/v1/halls/test/tickets", json=ticket)
    assert forged.status == 403
    assert (await forged.json())["code"] == "csrf_rejected"
    issued = await access_client.post(
        "/api/v1/halls/test/tickets", json=ticket, headers={"X-CSRF-Token": csrf}
    )
    assert issued.status == 201

    refused = await access_client.post("/api/v1/device-login", json={"token": "hd1_nope"})
    assert refused.status == 401
