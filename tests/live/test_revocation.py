"""Revoking a login or a device token closes the websockets it opened, at once."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient

from hall.web.live import CLOSE_FORBIDDEN, CLOSE_REVOKED
from tests.access_helpers import admin_headers, bearer, create_device, create_staff, open_session
from tests.live.helpers import Subscriber

Client = TestClient[web.Request, web.Application]
LIVE = "/api/v1/halls/test/live?channel=display"


async def test_revoked_session_and_device_token_close_their_sockets(live_client: Client) -> None:
    admin = await admin_headers(live_client, "boss")
    await create_staff(live_client, "c001", counters=(1,))
    session_id, token, _ = await open_session(live_client, "c001")
    device_id, device_token = await create_device(live_client, "display", device_id="tv-9")
    url = str(live_client.make_url(LIVE))
    clerk = await Subscriber(
        live_client.session, url, name="clerk", headers=bearer(token)
    ).connect()
    tv = await Subscriber(
        live_client.session, url, name="tv", headers=bearer(device_token)
    ).connect()

    resp = await live_client.post(f"/api/v1/sessions/{session_id}/revoke", headers=admin)
    assert resp.status == 200, await resp.text()
    assert await clerk.wait_closed(within_s=5) == CLOSE_REVOKED
    assert tv.close_code is None  # other credentials are untouched

    resp = await live_client.post(f"/api/v1/device-tokens/{device_id}/revoke", headers=admin)
    assert resp.status == 204, await resp.text()
    assert await tv.wait_closed(within_s=5) == CLOSE_REVOKED

    # And the revoked credentials cannot open a new socket.
    for headers in (bearer(token), bearer(device_token)):
        reconnect = await live_client.session.get(url, headers=headers)
        assert reconnect.status == 401


async def test_an_account_moved_to_another_hall_loses_its_sockets_at_once(
    live_client: Client,
) -> None:
    await create_staff(live_client, "m001", roles=("manager",), halls=("test",))
    await create_staff(live_client, "c001", counters=(1,))
    _, manager_token, _ = await open_session(live_client, "m001")
    _, clerk_token, _ = await open_session(live_client, "c001")
    manager = await Subscriber(
        live_client.session,
        str(live_client.make_url("/api/v1/halls/test/live?channel=dashboard")),
        name="manager",
        headers=bearer(manager_token),
    ).connect()
    clerk = await Subscriber(
        live_client.session,
        str(live_client.make_url(LIVE)),
        name="clerk",
        headers=bearer(clerk_token),
    ).connect()

    # The manager is given another hall instead (as `hall user add` or a config load does).
    await create_staff(live_client, "m001", roles=("manager",), halls=("township",))

    assert await manager.wait_closed(within_s=5) == CLOSE_FORBIDDEN
    # The clerk's account did not change: the clerk's feed goes on.
    assert clerk.seq is not None
    before = clerk.seq
    resp = await live_client.post("/api/v1/halls/test/tickets", json={"service": "BDC"})
    assert resp.status == 201, await resp.text()
    await clerk.wait_seq(before + 1)
    assert clerk.close_code is None
    # And the manager cannot open the hall's feed again.
    again = await live_client.session.get(manager.url, headers=bearer(manager_token))
    assert again.status == 403
