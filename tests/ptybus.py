"""Emulated HB/1 devices on a real pty bus behind a stable symlink path, as a serial port the
bridge opens by name; the cable can be pulled and put back."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from firmware_bridge.emulators.base import Hb1Device
from firmware_bridge.emulators.bus import Hb1Bus
from firmware_bridge.emulators.line import LineEndpoint
from firmware_bridge.pty import VirtualPort


@dataclass
class PtyBus:
    """The devices' bus, the line end that serves it, and the pty it is plugged into."""

    bus: Hb1Bus
    endpoint: LineEndpoint
    port: VirtualPort

    @property
    def path(self) -> str:
        """The port's name, for the config's bus url."""
        return self.port.link_path

    def noise(self, data: bytes) -> None:
        """Bytes on the line as the host's receiver sees them (EMI, a second talker)."""
        os.write(self.port.pair.master_fd, data)

    def unplug(self) -> None:
        self.endpoint.unplug()
        self.port.unplug()

    async def replug(self) -> None:
        pair = self.port.plug()
        await self.endpoint.attach_fd(pair.master_fd)


@asynccontextmanager
async def pty_bus(devices: Iterable[Hb1Device], path: Path, baud: int) -> AsyncIterator[PtyBus]:
    """``devices`` on one bus at ``baud``, plugged in at ``path`` until the block ends."""
    bus = Hb1Bus(devices, baud=baud)
    endpoint = LineEndpoint(bus)
    port = VirtualPort(str(path))
    pair = port.plug()
    await endpoint.attach_fd(pair.master_fd)
    try:
        yield PtyBus(bus, endpoint, port)
    finally:
        await endpoint.close()
        port.unplug()
