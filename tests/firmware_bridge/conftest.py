"""Fixtures for the firmware bridge tests (emulators on ptys, fake clocks)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from firmware_bridge.emulators.base import Hb1Device
from firmware_bridge.emulators.bus import start_bus_on_pty
from tests.firmware_bridge.emu_helpers import FakeClock, HostLine, PtyBus


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def pty_bus() -> AsyncIterator[Callable[..., Awaitable[PtyBus]]]:
    """Factory: ``await pty_bus(dev1, dev2, …)`` puts devices on one pty and opens the host end."""
    opened: list[PtyBus] = []

    async def start(*devices: Hb1Device) -> PtyBus:
        hb1_bus, endpoint, pair = await start_bus_on_pty(*devices)
        host = await HostLine.open(pair.slave_path)
        bus = PtyBus(hb1_bus, endpoint, pair, host)
        opened.append(bus)
        return bus

    yield start
    for bus in opened:
        bus.host.close()
        await bus.endpoint.close()
