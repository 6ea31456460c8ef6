"""Test helpers for the emulators: a fake clock and a minimal host on a serial line."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from firmware_bridge.codec import Frame, FrameDecoder, FrameFlags
from firmware_bridge.constants import Command
from firmware_bridge.emulators.base import Hb1Device
from firmware_bridge.emulators.bus import Hb1Bus
from firmware_bridge.emulators.line import LineEndpoint
from firmware_bridge.messages import Request
from firmware_bridge.pty import PtyPair
from firmware_bridge.transport import open_serial_streams

TIMEOUT = 5.0
# How long the tests' host waits before it concludes that nobody answers. Real hosts use
# about 60–100 ms at 9600 baud (§7.1); a pty answers in well under a millisecond.
NO_REPLY_S = 0.25


@dataclass
class FakeClock:
    """A monotonic clock that moves only when a test says so."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def request(
    dst: int, cmd: Command | int, payload: bytes = b"", *, seq: int = 1, noack: bool = False
) -> Frame:
    flags = FrameFlags.NOACK if noack else FrameFlags.NONE
    return Frame(flags, dst, 0x00, seq, int(cmd), payload)


def message(dst: int, req: Request, *, seq: int = 1, noack: bool = False) -> Frame:
    return request(dst, req.CMD, req.encode(), seq=seq, noack=noack)


def reply_of(device: Hb1Device, frame: Frame) -> Frame:
    """Hand a request to a device directly and decode its single reply frame."""
    raw = device.handle(frame)
    assert raw is not None, "device did not answer"
    frames = FrameDecoder().feed(raw)
    assert len(frames) == 1
    return frames[0]


def status_of(device: Hb1Device, frame: Frame) -> int:
    return reply_of(device, frame).payload[0]


@dataclass
class HostLine:
    """The host side of a pty or socket: writes requests, decodes whatever comes back."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    decoder: FrameDecoder = field(default_factory=FrameDecoder)
    received: bytearray = field(default_factory=bytearray)

    @classmethod
    async def open(cls, url: str) -> HostLine:
        reader, writer = await open_serial_streams(url)
        return cls(reader, writer)

    def close(self) -> None:
        self.writer.close()

    async def send(self, data: bytes, *, bytewise: bool = False) -> None:
        if bytewise:
            for i in range(len(data)):
                self.writer.write(data[i : i + 1])
                await self.writer.drain()
        else:
            self.writer.write(data)
            await self.writer.drain()

    async def next_frame(self) -> Frame:
        async with asyncio.timeout(TIMEOUT):
            while True:
                chunk = await self.reader.read(1024)
                if not chunk:
                    raise EOFError("line closed")
                self.received += chunk
                frames = self.decoder.feed(chunk)
                if frames:
                    assert len(frames) == 1, frames
                    return frames[0]

    async def read_exactly(self, n: int) -> bytes:
        """Raw bytes, bypassing the decoder (for garbled replies)."""
        async with asyncio.timeout(TIMEOUT):
            data = await self.reader.readexactly(n)
        self.received += data
        return data

    async def transact(self, frame: Frame, *, bytewise: bool = False) -> Frame:
        await self.send(frame.to_bytes(), bytewise=bytewise)
        return await self.next_frame()

    async def expect_silence(self, frame: Frame) -> None:
        """Send a request that must get no answer within the host's reply timeout."""
        await self.send(frame.to_bytes())
        try:
            async with asyncio.timeout(NO_REPLY_S):
                data = await self.reader.read(1024)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected answer {data.hex(' ')}")


@dataclass
class PtyBus:
    """Emulated devices on one pty, as returned by the ``pty_bus`` fixture."""

    bus: Hb1Bus
    endpoint: LineEndpoint
    pair: PtyPair
    host: HostLine
