"""An edge bridge linked to a real server through a relay whose cable the tests pull."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from firmware_bridge.bridge import Bridge
from firmware_bridge.transport import Backoff
from firmware_bridge.wslink import WebSocketLink
from hall.config.models import HallConfig
from hall.web.bridge import bridge_specs
from tests.access_helpers import admin_headers, create_device
from tests.bridge.conftest import AppMaker, Client
from tests.bridge.test_websocket import Proxy

QUICK = Backoff(initial_s=0.02, max_s=0.1, stable_s=1.0)
EDGE_ID = "edge1"


@dataclass
class Edge:
    client: Client
    bridge: Bridge
    link: WebSocketLink
    proxy: Proxy


@contextlib.asynccontextmanager
async def edge_bridge(
    make_app: AppMaker,
    config: HallConfig,
    data_dir: Path,
    *,
    backoff: Backoff = QUICK,
    outbox_max_bytes: int | None = None,
) -> AsyncIterator[Edge]:
    """The server (devices only through remote bridges) and an edge bridge behind a relay."""
    client = await make_app(mode="remote")
    _, token = await create_device(client, "bridge", device_id=EDGE_ID)
    assert client.port is not None
    proxy = Proxy(client.port)
    await proxy.start()
    buses, devices = bridge_specs(config)
    bridge = Bridge(buses, devices, backoff=QUICK)
    link = WebSocketLink(
        f"ws://127.0.0.1:{proxy.port}/api/v1/bridge",
        token,
        data_dir,
        backoff=backoff,
        outbox_max_bytes=outbox_max_bytes,
    )
    link.attach(bridge)
    await bridge.start()
    link.start()
    try:
        yield Edge(client, bridge, link, proxy)
    finally:
        await bridge.stop()
        await link.close()
        await proxy.cut()


async def alarms(client: Client, **match: Any) -> list[dict[str, Any]]:
    """Alarms as the devices API lists them, those matching every ``match`` field."""
    resp = await client.get("/api/v1/halls/test/devices", headers=await admin_headers(client))
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return [a for a in body["alarms"] if all(a[k] == v for k, v in match.items())]
