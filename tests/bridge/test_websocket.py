"""The bridge on an "edge PC": websocket link to the server, cut and restored."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from firmware_bridge.bridge import Bridge, UpEvent
from firmware_bridge.constants import KeyCode
from firmware_bridge.transport import Backoff
from firmware_bridge.wslink import WebSocketLink
from hall.config.models import HallConfig
from hall.web.bridge import bridge_specs
from tests.access_helpers import create_device
from tests.bridge.conftest import (
    AppMaker,
    Client,
    Rig,
    eventually,
    fetch,
    issue,
    open_counter,
    to_the_rating_screen,
)
from tests.servers import free_port


class Proxy:
    """A TCP relay between bridge and server whose cable can be pulled and put back."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers |= {writer, up_writer}
        pipes = [
            asyncio.create_task(self._pipe(reader, up_writer)),
            asyncio.create_task(self._pipe(up_reader, writer)),
        ]
        self._tasks.update(pipes)
        for task in pipes:
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@pytest.fixture
async def edge(
    make_app: AppMaker, config: HallConfig, tmp_path: Path
) -> AsyncIterator[tuple[Client, WebSocketLink, Proxy]]:
    client = await make_app(mode="remote")
    _, token = await create_device(client, "bridge", device_id="edge1")
    assert client.port is not None
    proxy = Proxy(client.port)
    await proxy.start()
    buses, devices = bridge_specs(config)
    bridge = Bridge(buses, devices, backoff=Backoff(initial_s=0.02, max_s=0.1))
    link = WebSocketLink(
        f"ws://127.0.0.1:{proxy.port}/api/v1/bridge",
        token,
        tmp_path / "edge",
        backoff=Backoff(initial_s=0.02, max_s=0.1, stable_s=1.0),
    )
    link.attach(bridge)
    await bridge.start()
    link.start()
    try:
        yield client, link, proxy
    finally:
        await bridge.stop()
        await link.close()
        await proxy.cut()


async def test_rating_during_a_link_cut_is_recorded_once_after_it_returns(
    edge: tuple[Client, WebSocketLink, Proxy], rig: Rig
) -> None:
    client, link, proxy = edge
    await eventually(link.connected.is_set, "bridge connected")
    await to_the_rating_screen(client, rig)
    shown = "1号窗口 欢迎光临"
    await eventually(lambda: rig.strip.text == shown, "the strip idle after the finish")

    await proxy.cut()
    await eventually(lambda: not link.connected.is_set(), "link down")
    rig.pad.switches.drop_next = 2
    assert rig.pad.rate(5)

    # Durable at the edge: the pad is acknowledged, nothing reached the server yet.
    await eventually(lambda: not rig.pad.pending_events, "pad acknowledged from the outbox")
    queued = [body for _, kind, body in link.queue.after(0) if kind == "event"]
    assert [UpEvent.from_json(b).evt_type for b in queued] == [0x41]
    assert await fetch(client, "SELECT 1 FROM ratings") == []
    assert rig.strip.text == shown  # devices keep their last content

    await proxy.start()

    await eventually(
        lambda: fetch(client, "SELECT 1 FROM ratings"), "rating stored after the link returned"
    )
    await eventually(lambda: len(link.queue) == 0, "outbox drained")
    # The ack of an event can be lost after the commit; the same event then comes again.
    again = await link.deliver(UpEvent.from_json(queued[0]))
    assert again.outcome == "duplicate"
    rows = await fetch(client, "SELECT level, counter_number FROM ratings")
    assert [tuple(r) for r in rows] == [(5, 1)]
    keys = await fetch(
        client, "SELECT count(*) AS n FROM device_events_seen WHERE evt_type = $1", 0x41
    )
    assert keys[0]["n"] == 1
    assert link.stats.duplicates == 1


async def test_edge_bridge_needs_a_bridge_token(make_app: AppMaker) -> None:
    client = await make_app(mode="remote")
    resp = await client.get("/api/v1/bridge")
    assert resp.status == 401
    _, display = await create_device(client, "display", device_id="tv1")
    resp = await client.get("/api/v1/bridge", headers={"Authorization": f"Bearer {display}"})
    assert resp.status == 403


async def test_outbox_survives_an_edge_restart(
    make_app: AppMaker, config: HallConfig, rig: Rig, tmp_path: Path
) -> None:
    client = await make_app(mode="remote")
    _, token = await create_device(client, "bridge", device_id="edge1")
    number = await issue(client)
    await open_counter(client)
    buses, devices = bridge_specs(config)
    quick = Backoff(initial_s=0.02, max_s=0.1, stable_s=1.0)
    nowhere = free_port()  # nothing listens there: the server is unreachable at first

    first = Bridge(buses, devices, backoff=quick)
    offline = WebSocketLink(
        f"ws://127.0.0.1:{nowhere}/api/v1/bridge", token, tmp_path, backoff=quick
    )
    offline.attach(first)
    await first.start()
    offline.start()
    await eventually(lambda: first.master("b1").device(2).boot_id is not None, "caller seen")
    assert rig.caller.press_key(KeyCode.CALL_NEXT)
    await eventually(lambda: not rig.caller.pending_events, "caller acknowledged")
    await first.stop()
    await offline.close()  # the edge PC restarts; only the outbox file remains

    second = Bridge(buses, devices, backoff=quick)
    online = WebSocketLink(
        f"ws://127.0.0.1:{client.port}/api/v1/bridge", token, tmp_path, backoff=quick
    )
    online.attach(second)
    await second.start()
    online.start()
    try:
        await eventually(lambda: rig.strip.text == f"请{number}号到1号窗口", "call delivered")
        await eventually(lambda: len(online.queue) == 0, "outbox drained")
        rows = await fetch(client, "SELECT count(*) AS n FROM events WHERE type = 'ticket.called'")
        assert rows[0]["n"] == 1
    finally:
        await second.stop()
        await online.close()


async def test_a_one_off_command_goes_through_the_edge_bridge(
    edge: tuple[Client, WebSocketLink, Proxy], rig: Rig
) -> None:
    from firmware_bridge.messages import InfoReply, InfoRequest
    from hall.web.bridge import BRIDGE

    client, _, _ = edge
    await eventually(lambda: client.app[BRIDGE].sessions, "the edge bridge connected")
    assert client.app[BRIDGE].reaches("b1")
    reply = await client.app[BRIDGE].command("b1", 0x01, InfoRequest())
    assert isinstance(reply, InfoReply) and reply.uid == rig.strip.uid
