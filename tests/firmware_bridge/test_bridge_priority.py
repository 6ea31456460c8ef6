"""The bridge sends desired state at one priority per device class: calls before hall screens."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from firmware_bridge.bridge import (
    AlarmReport,
    Bridge,
    BusSpec,
    DeviceSpec,
    EventResult,
    InMemoryLink,
    UpEvent,
)
from firmware_bridge.constants import DeviceClass, DisplayMode
from firmware_bridge.emulators.base import Hb1Device, RequestLog
from firmware_bridge.emulators.bus import start_bus_on_pty
from firmware_bridge.emulators.display import ScreenEmulator, StripEmulator
from firmware_bridge.health import DeviceHealth
from firmware_bridge.messages import Row, ShowRowsRequest, ShowTextRequest

STRIP, SCREEN = 1, 6


async def test_a_call_on_a_strip_overtakes_hall_screen_refreshes_queued_before_it() -> None:
    strip, screen = StripEmulator(STRIP), ScreenEmulator(SCREEN)
    _, endpoint, pair = await start_bus_on_pty(strip, screen, reply_delay_s=0.002)
    shown: list[tuple[int, str]] = []  # (address, what) of each content command received
    activity = asyncio.Event()

    def on_log(device: Hb1Device, entry: RequestLog) -> None:
        if isinstance(entry.request, ShowTextRequest):
            shown.append((device.address, entry.request.text))
        elif isinstance(entry.request, ShowRowsRequest):
            shown.append((device.address, f"rows from {entry.request.first_row}"))
        activity.set()  # every request, polls included, is a moment to look again

    strip.on_log = screen.on_log = on_log

    async def until(predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(10):
            while not predicate():
                activity.clear()
                await activity.wait()

    async def accept(event: UpEvent) -> EventResult:
        return EventResult("applied")

    async def ignore(alarm: AlarmReport) -> None:
        return None

    bridge = Bridge(
        [BusSpec("b1", pair.slave_path)],
        [DeviceSpec("b1", STRIP, DeviceClass.STRIP), DeviceSpec("b1", SCREEN, DeviceClass.SCREEN)],
    )
    bridge.connect(InMemoryLink(accept, ignore))
    await bridge.start()
    try:
        master = bridge.master("b1")
        # What the server gives every device at start: idle content, sent on first contact.
        bridge.apply_desired("b1", STRIP, [ShowTextRequest(text="1号窗口 欢迎光临")])
        bridge.apply_desired("b1", SCREEN, [ShowRowsRequest(0, (Row(0, "暂无等候"),))])
        await until(
            lambda: (
                {a for a, _ in shown} == {STRIP, SCREEN}
                and all(
                    master.device(a).health is DeviceHealth.ONLINE
                    and not master.device(a).resyncing
                    for a in (STRIP, SCREEN)
                )
            )
        )
        shown.clear()

        # Three screen refreshes are decided first, then a call; all in one tick, as a busy
        # hall's commit fans out to every device.
        for first_row in range(3):
            bridge.apply_desired(
                "b1", SCREEN, [ShowRowsRequest(first_row, (Row(1, f"A00{first_row} 2号窗口"),))]
            )
        bridge.apply_desired(
            "b1", STRIP, [ShowTextRequest(mode=DisplayMode.FLASH, text="请A009号到1号窗口")]
        )
        await until(lambda: master.stats.superseded == 2 and len(shown) == 2)

        # The call first; of the screen's updates only the latest state goes out: the two
        # it replaced while they waited are dropped unsent, not shown late.
        assert shown == [
            (STRIP, "请A009号到1号窗口"),
            (SCREEN, "rows from 2"),
        ]
    finally:
        await bridge.stop()
        await endpoint.close()
