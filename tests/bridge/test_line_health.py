"""Unplug, replug with new boot ids, and noise on the line, with the bridge in the server."""

from __future__ import annotations

import asyncio
from typing import Any

from firmware_bridge.constants import KeyCode
from firmware_bridge.health import DeviceHealth
from firmware_bridge.messages import PollRequest, ShowTextRequest
from tests.access_helpers import admin_headers
from tests.bridge.conftest import (
    STRIP,
    AppMaker,
    Client,
    Rig,
    eventually,
    fetch,
    issue,
    master_of,
    open_and_idle,
    open_counter,
)


async def devices_api(client: Client) -> dict[str, Any]:
    resp = await client.get("/api/v1/halls/test/devices", headers=await admin_headers(client))
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def call_first(client: Client, rig: Rig) -> str:
    number = await issue(client)
    await open_counter(client)
    assert rig.caller.press_key(KeyCode.CALL_NEXT)
    await eventually(lambda: rig.strip.text == f"请{number}号到1号窗口", "call on the strip")
    return number


async def test_unplug_alarms_offline_and_replug_resyncs_the_call(
    make_app: AppMaker, rig: Rig
) -> None:
    client = await make_app()
    number = await call_first(client, rig)
    master = master_of(client)
    loop = asyncio.get_running_loop()

    rig.unplug()
    await eventually(
        lambda: master.device(STRIP).health is DeviceHealth.OFFLINE, "strip offline at the master"
    )
    offline_at = loop.time()
    assert master.device(STRIP).failures == 3

    async def alarm_stored() -> bool:
        rows = await fetch(
            client, "SELECT 1 FROM device_alarms WHERE kind = 'offline' AND address = $1", STRIP
        )
        return bool(rows)

    await eventually(alarm_stored, "offline alarm in the database", within=1.0)
    assert loop.time() - offline_at < 1.0

    async def listed_offline() -> bool:
        body = await devices_api(client)
        row = next(d for d in body["devices"] if d["address"] == STRIP)
        alarms = [a for a in body["alarms"] if a["kind"] == "offline" and a["address"] == STRIP]
        return bool(row["state"] == "offline" and row["uid"] == rig.strip.uid.hex() and alarms)

    await eventually(listed_offline, "offline strip and its alarm in the devices API")

    # Power comes back: every device boots with a new boot_id and blank volatile content.
    old_boot = rig.strip.boot_id
    for device in (rig.strip, rig.caller, rig.pad):
        device.reboot()
    assert rig.strip.boot_id != old_boot
    assert rig.strip.text == "1号窗口 欢迎光临"  # the idle text is kept in non-volatile memory
    mark = len(rig.strip.log)
    await rig.replug()

    await eventually(lambda: rig.strip.text == f"请{number}号到1号窗口", "call shown again")
    seen = [e.request for e in rig.strip.log[mark:] if e.request is not None]
    first_show = next(i for i, r in enumerate(seen) if isinstance(r, ShowTextRequest))
    polls_before = sum(isinstance(r, PollRequest) for r in seen[:first_show])
    assert polls_before == 1, [type(r).__name__ for r in seen]

    async def back_online() -> bool:
        body = await devices_api(client)
        row = next(d for d in body["devices"] if d["address"] == STRIP)
        kinds = {a["kind"] for a in body["alarms"] if a["address"] == STRIP}
        return bool(row["state"] == "online" and row["boot_id"] == rig.strip.boot_id) and (
            "online" in kinds
        )

    await eventually(back_online, "registry shows the strip online with its new boot")


async def test_noise_and_corrupt_frames_are_counted_and_survived(
    make_app: AppMaker, rig: Rig
) -> None:
    client = await make_app()
    number = await issue(client)
    await open_and_idle(client, rig)
    master = master_of(client)

    # A reply with a broken CRC, a false SOF with a huge LEN, and plain garbage.
    rig.noise(bytes.fromhex("eb 90 11 00 03 22 10 01 00 00 2d 00"))
    rig.noise(bytes.fromhex("eb 90 10 00 00 00 00 ff 01") + bytes(range(40)))
    rig.strip.switches.corrupt = True
    await eventually(lambda: master.stats.bad_frames >= 3, "bad frames counted")
    rig.strip.switches.corrupt = False

    assert rig.caller.press_key(KeyCode.CALL_NEXT)
    await eventually(lambda: rig.strip.text == f"请{number}号到1号窗口", "call after the noise")

    async def counted() -> bool:
        body = await devices_api(client)
        return bool(body["buses"].get("b1", {}).get("bad_frames", 0) >= 3)

    await eventually(counted, "bad-frame counter in the devices API")


async def test_a_swapped_device_raises_a_uid_alarm(make_app: AppMaker, rig: Rig) -> None:
    client = await make_app()
    master = master_of(client)
    old_uid = rig.strip.uid.hex()

    async def registered() -> bool:
        body = await devices_api(client)
        return any(d["address"] == STRIP and d["uid"] == old_uid for d in body["devices"])

    await eventually(registered, "strip uid in the registry")
    rig.unplug()
    await eventually(lambda: master.device(STRIP).health is DeviceHealth.OFFLINE, "offline")
    rig.strip.uid = bytes.fromhex("4842010000009901")  # another strip mounted at address 1
    rig.strip.reboot()
    await rig.replug()

    async def alarmed() -> bool:
        body = await devices_api(client)
        return any(
            a["kind"] == "uid_changed" and a["detail"] == f"{old_uid} -> 4842010000009901"
            for a in body["alarms"]
        )

    await eventually(alarmed, "uid_changed alarm")
