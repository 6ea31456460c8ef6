"""Fixtures for the live websocket tests: the real app with shortened live timings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from hall.app import Settings, create_app
from hall.config.models import HallConfig
from hall.ports import FixedClock
from hall.web.live import LIVE, LiveHub, LiveSettings
from tests.access_helpers import admin_headers, device_headers
from tests.live.helpers import Subscriber

Client = TestClient[web.Request, web.Application]
DISPLAY_TOKENS: dict[int, dict[str, str]] = {}


@pytest.fixture
def live_settings() -> LiveSettings:
    return LiveSettings(heartbeat_s=0.5, client_timeout_s=5.0, close_timeout_s=1.0)


@pytest.fixture
async def live_client(
    pool: asyncpg.Pool,
    database_url: str,
    config: HallConfig,
    clock: FixedClock,
    live_settings: LiveSettings,
) -> AsyncIterator[Client]:
    """The app with shortened live timings; requests carry an admin's bearer session and
    ``DISPLAY_TOKENS[id(client)]`` holds a display device's headers for subscribers."""
    app = create_app(Settings(database_url=database_url, config=config, clock=clock))
    app[LIVE].settings = live_settings
    client: Client = TestClient(TestServer(app))
    await client.start_server()
    client.session.headers.update(await admin_headers(client, "live-admin"))
    DISPLAY_TOKENS[id(client)] = await device_headers(client, "display", device_id="tv-1")
    try:
        yield client
    finally:
        DISPLAY_TOKENS.pop(id(client), None)
        await client.close()


def hub_of(client: Client) -> LiveHub:
    return client.app[LIVE]


async def subscribe(
    client: Client, channel: str = "display", name: str = "", *, as_staff: bool = False
) -> Subscriber:
    """A subscriber authenticated as the hall's display device (or the client's admin)."""
    url = str(client.make_url(f"/api/v1/halls/test/live?channel={channel}"))
    headers = {} if as_staff else DISPLAY_TOKENS[id(client)]
    return await Subscriber(client.session, url, name=name, headers=headers).connect()


async def issue(client: Client, service: str = "BDC") -> dict[str, Any]:
    resp = await client.post("/api/v1/halls/test/tickets", json={"service": service})
    assert resp.status == 201, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def act(client: Client, counter: int, action: str, **body: Any) -> tuple[int, dict[str, Any]]:
    resp = await client.post(f"/api/v1/halls/test/counters/{counter}/{action}", json=body)
    data: dict[str, Any] = await resp.json()
    return resp.status, data


async def server_snapshot(client: Client) -> dict[str, Any]:
    resp = await client.get("/api/v1/halls/test/snapshot")
    assert resp.status == 200
    data: dict[str, Any] = await resp.json()
    return data
