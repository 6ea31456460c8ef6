"""Several emulated HB/1 devices sharing one serial line (an RS-485 multi-drop bus).

One decoder reads the line and every device sees every frame, as on a real bus; each device's
own filter decides whether the frame is for it. Replies come out in request order because the
bus is fed from one place. Two devices answering the same request (a duplicate address) collide:
their bytes are overlaid and the host sees CRC errors, which is how a real bus behaves (§6).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

from firmware_bridge.attention import read_mark
from firmware_bridge.codec import BROADCAST_ADDR, Frame, FrameDecoder
from firmware_bridge.constants import Command
from firmware_bridge.emulators.base import Hb1Device
from firmware_bridge.emulators.line import LineEndpoint
from firmware_bridge.pty import PtyPair
from firmware_bridge.timing import t_idle


class Hb1Bus:
    """A :class:`~firmware_bridge.emulators.line.ByteDevice` holding many HB/1 devices."""

    def __init__(
        self,
        devices: Iterable[Hb1Device] = (),
        *,
        baud: int = 9600,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.devices: list[Hb1Device] = list(devices)
        self.baud = baud
        self.decoder = FrameDecoder(idle_gap=t_idle(baud))
        self._clock = clock
        self.collisions = 0

    @property
    def idle_gap_s(self) -> float | None:
        return self.decoder.idle_gap

    def add(self, device: Hb1Device) -> Hb1Device:
        self.devices.append(device)
        return device

    def __iter__(self) -> Iterator[Hb1Device]:
        return iter(self.devices)

    def at(self, address: int) -> Hb1Device:
        """The (first) device currently at ``address``."""
        for device in self.devices:
            if device.address == address:
                return device
        raise KeyError(f"no device at 0x{address:02X}")

    def feed(self, data: bytes) -> bytes:
        return self._dispatch(self.decoder.feed(data, self._clock()))

    def idle(self) -> bytes:
        return self._dispatch(self.decoder.idle())

    def _dispatch(self, frames: list[Frame]) -> bytes:
        out = bytearray()
        for frame in frames:
            replies = [r for dev in self.devices if (r := dev.handle(frame)) is not None]
            if frame.cmd == Command.ATTN and frame.dst == BROADCAST_ADDR:
                out += self._slots(replies)
                continue
            if len(replies) == 1:
                out += replies[0]
            elif replies:
                self.collisions += 1
                out += _collide(replies)
        return bytes(out)

    def _slots(self, marks: list[bytes]) -> bytes:
        """Attention marks (docs/protocol.md §17) in slot order; two in one slot collide."""
        by_slot: dict[int, list[bytes]] = {}
        for m in marks:
            parsed = read_mark(m[0]) if m else None
            by_slot.setdefault(parsed[0] if parsed else -1, []).append(m)
        out = bytearray()
        for slot in sorted(by_slot):
            group = by_slot[slot]
            if len(group) > 1:
                self.collisions += 1
            out += _collide(group)
        return bytes(out)


def _collide(replies: list[bytes]) -> bytes:
    """What the host receives when several transmitters drive the line at once."""
    size = max(len(r) for r in replies)
    mixed = bytearray(size)
    for reply in replies:
        for i, b in enumerate(reply):
            mixed[i] |= b  # RS-485 receivers read the dominant level; OR is a fair model
    return bytes(mixed)


async def start_bus_on_pty(
    *devices: Hb1Device, baud: int = 9600, reply_delay_s: float = 0.0
) -> tuple[Hb1Bus, LineEndpoint, PtyPair]:
    """Put ``devices`` on one new pty; the host opens ``pair.slave_path``.

    Close with ``await endpoint.close()``.
    """
    bus = Hb1Bus(devices, baud=baud)
    endpoint = LineEndpoint(bus, reply_delay_s=reply_delay_s)
    pair = await endpoint.attach_pty()
    return bus, endpoint, pair
