"""One-off device commands through edge bridges when more than one is connected: a reply
counts only from the connection the command was sent to, and a command whose edge bridge goes
away fails at once."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import pytest

from firmware_bridge.constants import DeviceClass
from firmware_bridge.messages import InfoReply, InfoRequest
from hall.config.models import HallConfig
from hall.domain.errors import Unavailable
from tests.access_helpers import create_device
from tests.bridge.conftest import STRIP, WAIT_S, AppMaker, Client, Rig, hub_of, wired_config


@pytest.fixture
def config(rig: Rig) -> HallConfig:
    """The bridge tests' hall, and a second hall "other" with no buses of its own."""
    wired = wired_config(rig.path)
    other = wired.halls[0].model_copy(update={"id": "other", "name": "另一大厅"})
    return wired.model_copy(update={"halls": [*wired.halls, other]})


class EdgeSession:
    """A scripted edge bridge on the bridge websocket: the test decides what it says."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, token: str) -> None:
        self.ws = ws
        self.token = token

    @classmethod
    async def connect(cls, client: Client, token: str) -> EdgeSession:
        ws = await client.ws_connect("/api/v1/bridge", headers={"Authorization": f"Bearer {token}"})
        session = cls(ws, token)
        await session.hello()
        return session

    async def receive(self, kind: str) -> dict[str, Any]:
        """The next message of type ``kind`` (desired state and the like pass by)."""
        async with asyncio.timeout(WAIT_S):
            while True:
                message: dict[str, Any] = await self.ws.receive_json()
                if message["type"] == kind:
                    return message

    async def hello(self) -> None:
        """Say hello and wait for the welcome: the server has handled all sent before it."""
        await self.ws.send_json({"type": "hello"})
        await self.receive("welcome")

    async def runs(self, bus: str) -> None:
        """Report running ``bus`` (as a bridge's periodic report does)."""
        await self.ws.send_json({"type": "report", "report": {"devices": [], "buses": {bus: {}}}})

    async def reply(self, command_id: int, model: str) -> None:
        """Answer a command with an INFO reply whose model names who answered."""
        info = InfoReply(
            device_class=DeviceClass.STRIP,
            proto=1,
            fw=(1, 0, 0),
            uid=bytes(8),
            boot_id=1,
            model=model,
        )
        await self.ws.send_json({"type": "reply", "id": command_id, "reply": info.encode().hex()})


async def two_edges(client: Client) -> tuple[EdgeSession, EdgeSession]:
    """edge1 runs bus b1; edge2 is another edge PC of the hall (it reports no bus of ours)."""
    sessions = []
    for name in ("edge1", "edge2"):
        _, token = await create_device(client, "bridge", device_id=name)
        sessions.append(await EdgeSession.connect(client, token))
    edge1, edge2 = sessions
    await edge1.runs("b1")
    await edge2.runs("b9")
    await edge1.hello()
    await edge2.hello()
    return edge1, edge2


async def sent_to(*edges: EdgeSession) -> tuple[EdgeSession, dict[str, Any]]:
    """The edge bridge a command was sent to, and the command."""
    waits = {asyncio.create_task(e.receive("command")): e for e in edges}
    done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    first = done.pop()
    return waits[first], first.result()


async def test_a_reply_counts_only_from_the_edge_bridge_the_command_went_to(
    make_app: AppMaker, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_app(mode="remote")
    edges = await two_edges(client)
    hub = hub_of(client)
    caplog.set_level(logging.WARNING, logger="hall.web.bridge")

    command = asyncio.create_task(hub.command("b1", STRIP, InfoRequest()))
    target, sent = await sent_to(*edges)
    assert (sent["bus"], sent["address"]) == ("b1", STRIP)
    [other] = [e for e in edges if e is not target]

    # The hall's other bridge answers it (a bug, or a forged reply): ignored.
    await other.reply(sent["id"], "other")
    await other.hello()  # the server has handled the reply
    # A second connection of the target's own token (it reconnected): ignored too.
    again = await EdgeSession.connect(client, target.token)
    await again.reply(sent["id"], "stale")
    await again.hello()
    assert not command.done()

    await target.reply(sent["id"], "target")
    reply = await asyncio.wait_for(command, WAIT_S)
    assert isinstance(reply, InfoReply) and reply.model == "target"
    ignored = [r.getMessage() for r in caplog.records if "ignored" in r.getMessage()]
    assert len(ignored) == 2, ignored


async def test_another_halls_bridge_neither_gets_nor_answers_the_command(
    make_app: AppMaker,
) -> None:
    client = await make_app(mode="remote")
    _, token = await create_device(client, "bridge", hall="other", device_id="edge-other")
    other = await EdgeSession.connect(client, token)
    await other.runs("b1")  # it claims our bus: not its hall's, so not taken
    await other.hello()
    assert not hub_of(client).reaches("b1")  # our hall has no edge bridge yet
    _, token = await create_device(client, "bridge", device_id="edge1")
    ours = await EdgeSession.connect(client, token)

    command = asyncio.create_task(hub_of(client).command("b1", STRIP, InfoRequest()))
    target, sent = await sent_to(ours, other)
    assert target is ours
    await other.reply(sent["id"], "other hall")
    await other.hello()
    assert not command.done()
    await ours.reply(sent["id"], "ours")
    reply = await asyncio.wait_for(command, WAIT_S)
    assert isinstance(reply, InfoReply) and reply.model == "ours"


async def test_a_command_goes_to_the_edge_bridge_that_runs_the_bus(make_app: AppMaker) -> None:
    client = await make_app(mode="remote")
    edge1, edge2 = await two_edges(client)
    hub = hub_of(client)
    for _ in range(3):
        command = asyncio.create_task(hub.command("b1", STRIP, InfoRequest()))
        target, sent = await sent_to(edge1, edge2)
        assert target is edge1
        await edge1.reply(sent["id"], "edge1")
        reply = await asyncio.wait_for(command, WAIT_S)
        assert isinstance(reply, InfoReply) and reply.model == "edge1"


async def test_a_command_fails_at_once_when_its_edge_bridge_disconnects(
    make_app: AppMaker,
) -> None:
    client = await make_app(mode="remote")
    edge1, edge2 = await two_edges(client)
    hub = hub_of(client)

    # Far longer than the test waits: only the disconnect can end it in time.
    command = asyncio.create_task(hub.command("b1", STRIP, InfoRequest(), timeout_s=60))
    sent = await edge1.receive("command")
    await edge1.ws.close()
    with pytest.raises(Unavailable, match="设备网关 edge1 的连接已断开"):
        await asyncio.wait_for(command, WAIT_S)

    # The other bridge's late answer to it changes nothing; the hub forgot the command.
    await edge2.reply(sent["id"], "edge2")
    await edge2.hello()
    assert not hub._replies

    # The bus's next command goes to a bridge still connected, and its reply counts.
    command = asyncio.create_task(hub.command("b1", STRIP, InfoRequest()))
    sent = await edge2.receive("command")
    await edge2.reply(sent["id"], "edge2")
    reply = await asyncio.wait_for(command, WAIT_S)
    assert isinstance(reply, InfoReply) and reply.model == "edge2"
