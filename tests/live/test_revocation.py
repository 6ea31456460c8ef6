"""Revoking a login or a device token closes the websockets it opened, at once."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient

from hall.web.live import CLOSE_REVOKED
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
