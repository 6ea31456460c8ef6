"""The printer driver: a byte channel to one ESC/POS printer, DLE EOT status, one job at a time.

Channels by URL (config ``[[printers]] url``): ``tcp://host[:9100]`` or ``socket://host:port``
(network printers, serial servers), ``/dev/usb/lp*`` (the kernel's USB printer class), any
other path or ``COMn`` (serial or USB-CDC, through pyserial). A channel that fails is closed
and opened again at the next job; the driver never retries a job itself (the print service
holds it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from kiosk.escpos import STATUS_QUERIES, PrinterStatus, StatusError, decode_status, status_request

# HB/1 §13 gives a printer 300 ms to answer DLE EOT; a printer that is off, unplugged or
# without a status line stays silent and the job is held, not sent into the void.
STATUS_TIMEOUT_S = 0.3
# Long enough for a ~400-byte ticket at 9600 baud (0.42 s) plus a busy printer's buffer.
WRITE_TIMEOUT_S = 3.0
OPEN_TIMEOUT_S = 2.0
DEFAULT_TCP_PORT = 9100


class Channel:
    """Bytes to and from a printer; ``received`` collects answers until taken."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.arrived = asyncio.Event()
        self.writable = asyncio.Event()
        self.writable.set()
        self.lost = False

    def _data(self, data: bytes) -> None:
        self.received += data
        self.arrived.set()

    async def write(self, data: bytes) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def read_byte(self, wait_s: float) -> int | None:
        """The next byte the printer sends, or None when none comes in ``wait_s``."""
        try:
            async with asyncio.timeout(wait_s):
                while not self.received:
                    if self.lost:
                        raise ConnectionError("printer connection lost")
                    self.arrived.clear()
                    await self.arrived.wait()
        except TimeoutError:
            return None
        byte = self.received[0]
        del self.received[:1]
        return byte


class _Protocol(asyncio.Protocol):
    def __init__(self, channel: _TransportChannel) -> None:
        self.channel = channel

    def data_received(self, data: bytes) -> None:
        self.channel._data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.channel.lost = True
        self.channel.arrived.set()
        self.channel.writable.set()

    def pause_writing(self) -> None:
        self.channel.writable.clear()

    def resume_writing(self) -> None:
        self.channel.writable.set()


class _TransportChannel(Channel):
    """TCP or serial: an asyncio transport."""

    transport: asyncio.Transport | None = None

    async def write(self, data: bytes) -> None:
        if self.transport is None or self.lost or self.transport.is_closing():
            raise ConnectionError("printer connection lost")
        self.transport.write(data)
        # Flow control: a printer that stopped reading makes the transport pause us.
        async with asyncio.timeout(WRITE_TIMEOUT_S):
            await self.writable.wait()
        if self.lost:
            raise ConnectionError("printer connection lost")

    async def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class _LpChannel(Channel):
    """``/dev/usb/lp*``: the usblp driver's character device, read and written in a thread."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self.fd = fd

    async def write(self, data: bytes) -> None:
        view = memoryview(data)
        async with asyncio.timeout(WRITE_TIMEOUT_S):
            while view:
                written = await asyncio.to_thread(os.write, self.fd, view)
                view = view[written:]

    async def read_byte(self, wait_s: float) -> int | None:
        if not self.received:
            data = await asyncio.to_thread(self._read, wait_s)
            self.received += data
        if not self.received:
            return None
        byte = self.received[0]
        del self.received[:1]
        return byte

    def _read(self, timeout: float) -> bytes:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        return os.read(self.fd, 64) if ready else b""

    async def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


async def open_channel(url: str) -> Channel:
    """Open the printer at ``url``; OSError (or a serial error, an OSError too) on failure."""
    parsed = urllib.parse.urlparse(url)
    loop = asyncio.get_running_loop()
    if parsed.scheme in ("tcp", "socket"):
        if not parsed.hostname:
            raise OSError(f"printer url without a host: {url}")
        tcp = _TransportChannel()
        async with asyncio.timeout(OPEN_TIMEOUT_S):
            transport, _ = await loop.create_connection(
                lambda: _Protocol(tcp), parsed.hostname, parsed.port or DEFAULT_TCP_PORT
            )
        tcp.transport = transport
        return tcp
    if parsed.scheme == "usb":
        raise OSError(f"usb:// printers are not supported yet; use /dev/usb/lpN: {url}")
    if url.startswith("/dev/usb/lp"):
        fd = await asyncio.to_thread(os.open, url, os.O_RDWR | os.O_NOCTTY)
        return _LpChannel(fd)
    from firmware_bridge.transport import open_serial

    serial = _TransportChannel()
    async with asyncio.timeout(OPEN_TIMEOUT_S):
        transport, _ = await open_serial(url, lambda: _Protocol(serial))
    serial.transport = transport
    return serial


Opener = Callable[[str], Awaitable[Channel]]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to a job: printed, or why not (status: what the printer said)."""

    printed: bool
    status: PrinterStatus | None
    reason: str | None = None


class PrinterDriver:
    """One printer; callers run one job at a time (the print service's worker does)."""

    def __init__(
        self, url: str, *, opener: Opener = open_channel, status_timeout_s: float = STATUS_TIMEOUT_S
    ) -> None:
        self.url = url
        self.opener = opener
        self.status_timeout_s = status_timeout_s
        self._channel: Channel | None = None

    async def _open(self) -> Channel:
        if self._channel is None or self._channel.lost:
            await self.close()
            self._channel = await self.opener(self.url)
        return self._channel

    async def close(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close()

    async def status(self) -> PrinterStatus | None:
        """DLE EOT 1, 2, 3 and 4; None when the printer cannot be reached or does not answer."""
        try:
            channel = await self._open()
            channel.received.clear()  # a late answer to an earlier query is stale now
            # All queries in one write, then one byte each: a printer answers DLE EOT in order
            # as it reaches each, so this is one round trip instead of one per query (a
            # tunnel's round trip is a poll of the board).
            await channel.write(b"".join(status_request(n) for n in STATUS_QUERIES))
            answers: dict[int, int] = {}
            for n in STATUS_QUERIES:
                byte = await channel.read_byte(self.status_timeout_s)
                if byte is None:
                    return None
                answers[n] = byte
            return decode_status(answers)
        except (OSError, TimeoutError, StatusError):
            await self.close()
            return None

    async def print_job(self, data: bytes, checked: PrinterStatus | None = None) -> Outcome:
        """Check the printer (unless the caller just did: ``checked``), send the job, check
        again: printed only if both checks pass."""
        before = checked if checked is not None else await self.status()
        if before is None:
            return Outcome(False, None, "no_answer")
        if not before.can_print:
            return Outcome(False, before, before.problem)
        try:
            channel = await self._open()
            await channel.write(data)
        except (OSError, TimeoutError):
            await self.close()
            return Outcome(False, before, "no_answer")
        # Paper that ran out during the job, or a cover opened, leaves it unprinted or torn:
        # held and printed again rather than lost.
        after = await self.status()
        if after is None:
            return Outcome(False, before, "no_answer")
        if not after.can_print:
            return Outcome(False, after, after.problem)
        return Outcome(True, after)
