"""The production bus master driving emulated devices over a real pty, end to end."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable

import pytest

from firmware_bridge.constants import (
    ConfigTag,
    DeviceClass,
    DeviceState,
    DisplayMode,
    EventType,
    KeyCode,
)
from firmware_bridge.emulators.bus import start_bus_on_pty
from firmware_bridge.emulators.display import StripEmulator
from firmware_bridge.emulators.keypad import CallerEmulator
from firmware_bridge.emulators.line import LineEndpoint
from firmware_bridge.emulators.pad import PadEmulator
from firmware_bridge.master import BusMaster, DeviceEvent
from firmware_bridge.messages import (
    ConfigItem,
    KeyEvent,
    PadRateRequest,
    RatingEvent,
    ShowTextRequest,
)
from firmware_bridge.pty import PtyPair
from firmware_bridge.transport import open_serial
from tests.firmware_bridge.emu_helpers import TIMEOUT


class Hall:
    def __init__(self) -> None:
        self.strip = StripEmulator(0x03)
        self.pad = PadEmulator(0x05)
        self.caller = CallerEmulator(0x07)
        self.events: asyncio.Queue[DeviceEvent] = asyncio.Queue()
        self.master = BusMaster(name="t", on_event=self._on_event, rng=random.Random(7))
        self.endpoint: LineEndpoint | None = None
        self.pair: PtyPair | None = None

    async def _on_event(self, event: DeviceEvent) -> None:
        await self.events.put(event)

    async def next_event(self, evt_type: EventType) -> DeviceEvent:
        """The next event of ``evt_type`` (BOOT events of the first polls are skipped)."""
        async with asyncio.timeout(TIMEOUT):
            while True:
                event = await self.events.get()
                if event.event.evt_type == evt_type:
                    return event


@pytest.fixture
async def hall() -> AsyncIterator[Hall]:
    h = Hall()
    # 2 ms turnaround: the earliest a real device may answer (§7.1, ≥ 1.75 ms).
    _, h.endpoint, h.pair = await start_bus_on_pty(h.strip, h.pad, h.caller, reply_delay_s=0.002)
    transport, _ = await open_serial(h.pair.slave_path, lambda: h.master.link)
    h.master.add_device(0x03, DeviceClass.STRIP)
    h.master.add_device(0x05, DeviceClass.PAD)
    h.master.add_device(0x07, DeviceClass.CALLER)
    h.master.start()
    yield h
    await h.master.stop()
    transport.close()
    await h.endpoint.close()


async def test_master_calls_a_ticket_and_receives_key_and_rating(hall: Hall) -> None:
    show = ShowTextRequest(mode=DisplayMode.FLASH, color=1, hold_s=10, text="请A001号到3号窗口")
    async with asyncio.timeout(TIMEOUT):
        await hall.master.request(0x03, show)
    assert hall.strip.text == "请A001号到3号窗口"

    assert hall.caller.press_key(KeyCode.FINISH)
    key = await hall.next_event(EventType.KEY)
    assert (key.addr, key.event) == (0x07, KeyEvent(KeyCode.FINISH))

    async with asyncio.timeout(TIMEOUT):
        await hall.master.request(0x05, PadRateRequest(0xCAFEBABE, timeout_s=30))
    assert hall.pad.rate(5)
    rating = await hall.next_event(EventType.RATING)
    assert rating.event == RatingEvent(0xCAFEBABE, 5, 0, None)
    assert rating.key == (hall.pad.uid, hall.pad.boot_id, rating.evt_seq)


async def test_master_survives_lost_replies_without_duplicating_events(hall: Hall) -> None:
    # The caller's next two replies are lost: the master retries with the same SEQ and the
    # third attempt is answered from the caller's reply cache, not by executing it again.
    hall.caller.switches.drop_next = 2
    for key in (KeyCode.CALL_NEXT, KeyCode.RECALL, KeyCode.NO_SHOW):
        assert hall.caller.press_key(key)
    got = [(await hall.next_event(EventType.KEY)).event for _ in range(3)]
    assert got == [KeyEvent(KeyCode.CALL_NEXT), KeyEvent(KeyCode.RECALL), KeyEvent(KeyCode.NO_SHOW)]
    # A duplicate delivery would arrive before the next key: the next KEY must be new.
    assert hall.caller.press_key(KeyCode.FINISH)
    assert (await hall.next_event(EventType.KEY)).event == KeyEvent(KeyCode.FINISH)
    assert hall.caller.switches.drop_next == 0  # the losses really happened
    assert hall.master.stats.retries >= 2
    assert hall.master.stats.failed_transactions == 0
    assert hall.master.stats.duplicate_events == 0


async def eventually(check: Callable[[], bool]) -> None:
    """Wait until ``check()`` holds, re-checked as the bus runs (a few ms per step)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while True:
        done = check()
        if done:
            return
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.005)


async def test_emulated_devices_get_the_time_and_a_local_config_change_is_read(
    hall: Hall,
) -> None:
    # Every device's first resync ends with SET_TIME: its clock is set (§10.1).
    await eventually(lambda: all(d.time_offset is not None for d in (hall.strip, hall.pad)))
    assert hall.master.device(0x05).config is None
    # The pad's menu changes its brightness: state bit 3 → INFO, then CONFIG read (§8.2).
    hall.pad.change_config_locally(brightness=3)
    await eventually(lambda: hall.master.device(0x05).config is not None)
    config = hall.master.device(0x05).config
    assert config is not None
    assert ConfigItem(ConfigTag.BRIGHTNESS, bytes((3,))) in config
    assert not hall.pad.state_bits() & DeviceState.CONFIG_CHANGED
