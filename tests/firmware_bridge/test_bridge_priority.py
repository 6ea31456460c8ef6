"""The bridge sends desired state at one priority per device class: a strip's call before the
keypad display, pad requests and hall screens."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from firmware_bridge.bridge import (
    AlarmReport,
    Bridge,
    BusSpec,
    DeviceSpec,
    EventResult,
    InMemoryLink,
    UpEvent,
)
from firmware_bridge.constants import DeviceClass, DisplayMode, KeyCode
from firmware_bridge.emulators.base import Hb1Device, RequestLog
from firmware_bridge.emulators.bus import start_bus_on_pty
from firmware_bridge.emulators.display import ScreenEmulator, StripEmulator
from firmware_bridge.emulators.keypad import CallerEmulator
from firmware_bridge.health import DeviceHealth
from firmware_bridge.messages import KeypadShowRequest, Row, ShowRowsRequest, ShowTextRequest

STRIP, SCREEN, CALLER = 1, 6, 0x41


async def _accept(event: UpEvent) -> EventResult:
    return EventResult("applied")


@dataclass
class Rig:
    bridge: Bridge
    caller: CallerEmulator
    # What the server does with a device event (the in-process link's deliver).
    deliver: Callable[[UpEvent], Awaitable[EventResult]] = _accept
    # (address, what) of each content command the devices received, in order.
    shown: list[tuple[int, str]] = field(default_factory=list)
    activity: asyncio.Event = field(default_factory=asyncio.Event)

    async def until(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(10):
            while not predicate():
                self.activity.clear()
                await self.activity.wait()


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    strip, screen, caller = StripEmulator(STRIP), ScreenEmulator(SCREEN), CallerEmulator(CALLER)
    _, endpoint, pair = await start_bus_on_pty(strip, screen, caller, reply_delay_s=0.002)

    async def accept(event: UpEvent) -> EventResult:
        return await out.deliver(event)

    async def ignore(alarm: AlarmReport) -> None:
        return None

    bridge = Bridge(
        [BusSpec("b1", pair.slave_path)],
        [
            DeviceSpec("b1", STRIP, DeviceClass.STRIP),
            DeviceSpec("b1", SCREEN, DeviceClass.SCREEN),
            DeviceSpec("b1", CALLER, DeviceClass.CALLER),
        ],
    )
    out = Rig(bridge, caller)

    def on_log(device: Hb1Device, entry: RequestLog) -> None:
        if isinstance(entry.request, ShowTextRequest):
            out.shown.append((device.address, entry.request.text))
        elif isinstance(entry.request, ShowRowsRequest):
            out.shown.append((device.address, f"rows from {entry.request.first_row}"))
        elif isinstance(entry.request, KeypadShowRequest):
            out.shown.append((device.address, f"keypad {entry.request.ticket}"))
        out.activity.set()  # every request, polls included, is a moment to look again

    strip.on_log = screen.on_log = caller.on_log = on_log
    bridge.connect(InMemoryLink(accept, ignore))
    await bridge.start()
    try:
        master = bridge.master("b1")
        # What the server gives every device at start: idle content, sent on first contact.
        bridge.apply_desired("b1", STRIP, [ShowTextRequest(text="1号窗口 欢迎光临")])
        bridge.apply_desired("b1", SCREEN, [ShowRowsRequest(0, (Row(0, "暂无等候"),))])
        bridge.apply_desired("b1", CALLER, [KeypadShowRequest("----", led=1)])
        await out.until(
            lambda: (
                {a for a, _ in out.shown} == {STRIP, SCREEN, CALLER}
                and all(
                    master.device(a).health is DeviceHealth.ONLINE
                    and not master.device(a).resyncing
                    for a in (STRIP, SCREEN, CALLER)
                )
            )
        )
        out.shown.clear()
        yield out
    finally:
        await bridge.stop()
        await endpoint.close()


async def test_a_call_on_a_strip_overtakes_hall_screen_refreshes_queued_before_it(
    rig: Rig,
) -> None:
    bridge, master = rig.bridge, rig.bridge.master("b1")
    superseded = master.stats.superseded
    # Three screen refreshes are decided first, then a call; all in one tick, as a busy
    # hall's commit fans out to every device.
    for first_row in range(3):
        bridge.apply_desired(
            "b1", SCREEN, [ShowRowsRequest(first_row, (Row(1, f"A00{first_row} 2号窗口"),))]
        )
    bridge.apply_desired(
        "b1", STRIP, [ShowTextRequest(mode=DisplayMode.FLASH, text="请A009号到1号窗口")]
    )
    await rig.until(lambda: master.stats.superseded >= superseded + 2 and len(rig.shown) == 2)

    # The call first; of the screen's updates only the latest state goes out: the two
    # it replaced while they waited are dropped unsent, not shown late.
    assert rig.shown == [
        (STRIP, "请A009号到1号窗口"),
        (SCREEN, "rows from 2"),
    ]


async def test_a_call_on_a_strip_goes_before_the_keypad_display_decided_with_it(
    rig: Rig,
) -> None:
    bridge = rig.bridge
    # A call decides the clerk's keypad display and the strip's call in one pass, the keypad
    # first (as the server may list them); the citizen waits for the strip, the clerk
    # pressed the key and sees his display a frame later.
    bridge.apply_desired("b1", CALLER, [KeypadShowRequest("A009", waiting=3, led=2)])
    bridge.apply_desired(
        "b1", STRIP, [ShowTextRequest(mode=DisplayMode.FLASH, text="请A009号到1号窗口")]
    )
    await rig.until(lambda: len(rig.shown) == 2)
    assert rig.shown == [(STRIP, "请A009号到1号窗口"), (CALLER, "keypad A009")]


async def test_a_call_decided_on_a_key_is_on_the_line_before_other_work_its_commit_woke(
    rig: Rig,
) -> None:
    bridge, master = rig.bridge, rig.bridge.master("b1")
    loop = asyncio.get_running_loop()
    sent_at_commit: list[int] = []
    sent_when_other_work_ran: list[int] = []

    def other_work() -> None:
        # What the key's commit woke besides its own render (the hall's desired-state pass,
        # the live feed): CPU work that holds the loop while it runs.

        sent_when_other_work_ran.append(master.link.counters.frames_out)
        time.sleep(0.05)

    async def commit(event: UpEvent) -> EventResult:
        # The key's transaction; meanwhile the POLL exchange that brought the key ends on
        # the line (the master paces a pty as a 9600-baud wire: about 45 ms).
        await asyncio.sleep(0.1)
        loop.call_soon(other_work)  # woken by the commit, before the key's render
        bridge.apply_desired(
            "b1", STRIP, [ShowTextRequest(mode=DisplayMode.FLASH, text="请A010号到1号窗口")]
        )
        sent_at_commit.append(master.link.counters.frames_out)
        return EventResult("applied")

    rig.deliver = commit
    assert rig.caller.press_key(KeyCode.CALL_NEXT)
    await rig.until(lambda: (STRIP, "请A010号到1号窗口") in rig.shown)

    # The strip's call went out on the line as the key's callback returned: the citizen
    # does not wait for the other work the commit woke.
    assert sent_when_other_work_ran and sent_when_other_work_ran[0] > sent_at_commit[0]
