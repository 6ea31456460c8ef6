"""The kernel's one-off device commands and event watchers (generic: any device class): a
feature sends one request to one device and gets its reply, through the in-process bridge or
an edge bridge, and reads a device's events once each, after they are stored."""

from __future__ import annotations

import asyncio

import pytest

from firmware_bridge.constants import KeyCode
from firmware_bridge.messages import BootEvent, InfoReply, InfoRequest, KeyEvent
from hall.domain.errors import NotFound, Unavailable
from tests.bridge.conftest import CALLER, STRIP, AppMaker, Rig, fetch, hub_of, open_counter


async def test_a_command_gets_the_devices_reply_and_a_watcher_its_events(
    make_app: AppMaker, rig: Rig
) -> None:
    client = await make_app(mode="inprocess")
    hub = hub_of(client)
    assert hub.reaches("b1") and not hub.reaches("nowhere")
    reply = await hub.command("b1", STRIP, InfoRequest())
    assert isinstance(reply, InfoReply)
    assert reply.uid == rig.strip.uid and reply.model == rig.strip.model

    await open_counter(client)
    with hub.watch("b1", CALLER) as events:
        assert rig.caller.press_key(KeyCode.FINISH)
        event = await asyncio.wait_for(events.get(), 5)
        while isinstance(event, BootEvent):  # the caller's power-on, stored late on a busy machine
            event = await asyncio.wait_for(events.get(), 5)
        assert isinstance(event, KeyEvent) and event.key is KeyCode.FINISH
        # Stored before it is told: its key is in the database.
        rows = await fetch(client, "SELECT evt_type FROM device_events_seen")
        assert int(event.evt_type) in [r["evt_type"] for r in rows]
    assert not hub.service._watchers  # the block ended: nobody watches


async def test_a_command_to_an_unknown_or_silent_device_is_refused(
    make_app: AppMaker, rig: Rig
) -> None:
    client = await make_app(mode="inprocess")
    hub = hub_of(client)
    with pytest.raises(NotFound):
        await hub.command("b1", 0x40, InfoRequest())
    rig.endpoint.unplug()  # the device stops answering
    with pytest.raises(Unavailable):
        await hub.command("b1", STRIP, InfoRequest(), timeout_s=1.0)


async def test_without_a_bridge_a_command_is_unavailable(make_app: AppMaker) -> None:
    client = await make_app(mode="remote")  # no edge bridge connected
    assert not hub_of(client).reaches("b1")
    with pytest.raises(Unavailable, match="设备网关未连接"):
        await hub_of(client).command("b1", STRIP, InfoRequest())
