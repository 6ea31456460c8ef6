"""Issue 10, item 6: masked reasons and actors, websocket Origin, hall-limited admins, 4400."""

from __future__ import annotations

import json

import aiohttp
import pytest

from hall.web.access import AccessSettings
from hall.web.state import POOL
from tests.access.conftest import roomy_settings
from tests.access_helpers import admin_headers, staff_headers
from tests.conftest import AppFactory
from tests.hostile.conftest import Client

H = "/api/v1/halls/test"
PHONE = "13812345678"
ID_NUMBER = "11010519491231002X"
LIVE = f"{H}/live?channel=dashboard"


async def test_a_reason_with_personal_numbers_is_masked_everywhere(
    hostile_client: Client,
) -> None:
    admin = await admin_headers(hostile_client)
    ws = await hostile_client.ws_connect(LIVE, headers=admin)
    snapshot = await ws.receive_json()
    assert snapshot["type"] == "snapshot"
    await hostile_client.post(f"{H}/counters/1/open", json={"clerk": "c001"}, headers=admin)
    reason = f"请回电 {PHONE}，身份证 {ID_NUMBER}"
    paused = await hostile_client.post(
        f"{H}/counters/1/pause", json={"reason": reason}, headers=admin
    )
    assert paused.status == 200
    answer = await paused.text()
    feed: list[str] = []
    while len(feed) < 2:  # the open, then the pause
        message = await ws.receive_str(timeout=10)
        if json.loads(message)["type"] == "event":
            feed.append(message)
    await ws.close()
    snap = await (await hostile_client.get(f"{H}/snapshot", headers=admin)).text()
    events = await hostile_client.app[POOL].fetchval(
        "SELECT string_agg(details::text, ' ') FROM events"
    )
    for where, text in (
        ("answer", answer),
        ("feed", feed[1]),
        ("snapshot", snap),
        ("events", events),
    ):
        assert PHONE not in text and ID_NUMBER not in text, where
        assert "138****5678" in text, where
    assert json.loads(answer)["pause_reason"] == "请回电 138****5678，身份证 110105********002X"


async def test_the_audit_actor_is_masked_and_still_found_by_job_number(
    hostile_client: Client,
) -> None:
    clerk = await staff_headers(hostile_client, PHONE, counters=(1,))
    await hostile_client.post(f"{H}/counters/1/open", headers=clerk)
    actors = await hostile_client.app[POOL].fetch("SELECT actor FROM audit_log")
    assert [r["actor"] for r in actors] == ["138****5678"]
    admin = await admin_headers(hostile_client)
    page = await hostile_client.get(f"/api/v1/audit?actor={PHONE}", headers=admin)
    assert [i["actor"] for i in (await page.json())["items"]] == ["138****5678"]


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (None, True),  # the bridge, scripts: no Origin
        ("same", True),
        ("http://evil.example", False),
        ("null", False),
        ("http://kiosk.hall.lan:8080", True),  # configured in allowed_origins
    ],
)
async def test_websocket_handshakes_from_other_origins_are_refused(
    make_client: AppFactory, origin: str | None, allowed: bool
) -> None:
    settings: AccessSettings = roomy_settings(
        allowed_origins=frozenset({"http://kiosk.hall.lan:8080"})
    )
    client = await make_client(access=settings)
    headers = await admin_headers(client)
    if origin == "same":
        origin = f"http://{client.server.host}:{client.server.port}"
    if origin is not None:
        headers["Origin"] = origin
    if allowed:
        ws = await client.ws_connect(LIVE, headers=headers)
        assert (await ws.receive_json())["type"] == "snapshot"
        await ws.close()
    else:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await client.ws_connect(LIVE, headers=headers)
        assert refused.value.status == 403
        # The same request as plain GET shows the problem body.
        answer = await client.get(
            LIVE,
            headers={**headers, "Upgrade": "websocket", "Connection": "Upgrade"},
        )
        assert (await answer.json())["code"] == "origin_rejected"


async def test_an_admin_limited_to_one_hall_acts_only_there(hostile_client: Client) -> None:
    local = await staff_headers(hostile_client, "a-north", roles=("admin",), halls=("north",))
    own = await hostile_client.post(
        "/api/v1/halls/north/counters/1/open", json={"clerk": "c001"}, headers=local
    )
    other = await hostile_client.post(f"{H}/counters/1/open", json={"clerk": "c001"}, headers=local)
    issue = await hostile_client.post(f"{H}/tickets", json={"service": "BDC"}, headers=local)
    snapshot = await hostile_client.get(f"{H}/snapshot", headers=local)
    token = await hostile_client.post(
        "/api/v1/device-tokens",
        json={"kind": "kiosk", "hall": "test", "device_id": "k1"},
        headers=local,
    )
    own_token = await hostile_client.post(
        "/api/v1/device-tokens",
        json={"kind": "kiosk", "hall": "north", "device_id": "k1"},
        headers=local,
    )
    sessions = await hostile_client.get("/api/v1/sessions", headers=local)
    audit = await hostile_client.get("/api/v1/audit", headers=local)
    assert (own.status, own_token.status) == (200, 201)
    assert [r.status for r in (other, issue, snapshot, token, sessions, audit)] == [403] * 6
    # A token of another hall cannot be revoked by this admin either.
    admin = await admin_headers(hostile_client)
    made = await hostile_client.post(
        "/api/v1/device-tokens",
        json={"kind": "kiosk", "hall": "test", "device_id": "k1"},
        headers=admin,
    )
    token_id = (await made.json())["id"]
    revoke = await hostile_client.post(f"/api/v1/device-tokens/{token_id}/revoke", headers=local)
    assert revoke.status == 404
    revoked = await hostile_client.app[POOL].fetchval(
        "SELECT revoked_at FROM device_tokens WHERE id = $1", token_id
    )
    assert revoked is None


@pytest.mark.parametrize("kind", ["text", "binary", "json-array", "deep"])
async def test_a_non_protocol_websocket_message_closes_with_4400(
    hostile_client: Client, kind: str
) -> None:
    admin = await admin_headers(hostile_client)
    ws = await hostile_client.ws_connect(LIVE, headers=admin)
    await ws.receive_json()
    if kind == "binary":
        await ws.send_bytes(b"\x00\x01")
    elif kind == "text":
        await ws.send_str("hello, not json")
    elif kind == "json-array":
        await ws.send_str("[1, 2, 3]")
    else:
        await ws.send_str("[" * 1500 + "]" * 1500)
    closing = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    while (await ws.receive(timeout=10)).type not in closing:
        pass  # the snapshot's pings until the close frame
    assert ws.close_code == 4400
