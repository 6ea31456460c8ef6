"""Host side of an HB/1 line: bytes in, frames out, and the reverse. Nothing else.

``FrameLink`` is an ``asyncio.Protocol``; it can also be driven by any byte source (for example
``transport.SerialLink(url, on_data=link.data_received)`` with ``link.attach(serial.write)``).
It applies the decoder with the §5 idle rule, drops our own echo and every frame a host must
ignore (§5), logs hex at DEBUG and hands each remaining frame to one callback. It knows no
commands and never retries.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from firmware_bridge.codec import HOST_ADDR, Frame, FrameDecoder
from firmware_bridge.errors import BusClosedError
from firmware_bridge.timing import t_char, t_idle

_LOGGER = logging.getLogger(__name__)


@dataclass(slots=True)
class LinkCounters:
    """What crossed the link since it was created."""

    bytes_in: int = 0
    bytes_out: int = 0
    frames_in: int = 0
    frames_out: int = 0
    echoes: int = 0  # our own transmissions coming back (RS-485 adapters echo)
    ignored: int = 0  # frames a host must ignore: requests of another master, bad addresses


class FrameLink(asyncio.Protocol):
    """Frames over one byte stream, for the host (address 0x00)."""

    def __init__(
        self,
        on_frame: Callable[[Frame], None],
        *,
        baud: int = 9600,
        name: str = "hb1",
        on_connection_lost: Callable[[Exception | None], None] | None = None,
    ) -> None:
        self.name = name
        self.counters = LinkCounters()
        self._on_frame = on_frame
        self._on_connection_lost = on_connection_lost
        self._write: Callable[[bytes], object] | None = None
        self._transport: asyncio.Transport | None = None
        self._idle_handle: asyncio.TimerHandle | None = None
        self._last_rx: float | None = None
        self._tx_end = 0.0
        # Raw bytes for an attention round (docs/protocol.md §17): its marks are no frames.
        self.raw_sink: Callable[[bytes], None] | None = None
        self.baud = baud
        self.decoder = FrameDecoder(idle_gap=t_idle(baud))

    @property
    def baud(self) -> int:
        """Line speed; sets the idle gap and the transmission-time estimate."""
        return self._baud

    @baud.setter
    def baud(self, value: int) -> None:
        self._baud = value
        self._t_char = t_char(value)
        self._t_idle = t_idle(value)
        if hasattr(self, "decoder"):
            self.decoder.idle_gap = self._t_idle

    @property
    def connected(self) -> bool:
        """A writer is attached."""
        return self._write is not None

    def attach(self, write: Callable[[bytes], object]) -> None:
        """Use ``write`` to transmit (when not used as an asyncio protocol)."""
        self._write = write

    def detach(self) -> None:
        """Forget the writer and any partial frame."""
        self._write = None
        self._transport = None
        self._cancel_idle()
        self.decoder.reset()

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport: no isinstance check.
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        self._write = transport.write

    def connection_lost(self, exc: Exception | None) -> None:
        self.detach()
        if self._on_connection_lost is not None:
            self._on_connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        self.counters.bytes_in += len(data)
        if _LOGGER.isEnabledFor(logging.DEBUG):
            _LOGGER.debug("%s rx %s", self.name, data.hex(" "))
        self._last_rx = now
        if self.raw_sink is not None:
            self.raw_sink(bytes(data))
        self._deliver(self.decoder.feed(data, now=now))
        self._cancel_idle()
        if self.decoder.buffered:
            self._idle_handle = loop.call_at(now + self._t_idle, self._idle_expired)

    # -- sending -------------------------------------------------------------------------------

    def send(self, frame: Frame) -> float:
        """Write one frame; returns the loop time its last byte leaves the line (estimated)."""
        write = self._write
        if write is None:
            raise BusClosedError(f"{self.name}: link not connected")
        wire = frame.to_bytes()
        if _LOGGER.isEnabledFor(logging.DEBUG):
            _LOGGER.debug("%s tx %s", self.name, wire.hex(" "))
        write(wire)
        self.counters.bytes_out += len(wire)
        self.counters.frames_out += 1
        now = asyncio.get_running_loop().time()
        # The OS may still be sending an earlier frame; bytes leave one t_char apart after it.
        self._tx_end = max(now, self._tx_end) + len(wire) * self._t_char
        return self._tx_end

    @property
    def last_rx_at(self) -> float | None:
        """Loop time at which the link last read bytes off the line (None: never)."""
        return self._last_rx

    def receiving(self) -> bool:
        """A partial frame is arriving with gaps below T_IDLE (§7.1: keep receiving)."""
        if not self.decoder.buffered or self._last_rx is None:
            return False
        return asyncio.get_running_loop().time() - self._last_rx < self._t_idle

    # -- internals -----------------------------------------------------------------------------

    def _idle_expired(self) -> None:
        self._idle_handle = None
        self._deliver(self.decoder.idle())

    def _cancel_idle(self) -> None:
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None

    def _deliver(self, frames: list[Frame]) -> None:
        for frame in frames:
            self.counters.frames_in += 1
            if frame.src == HOST_ADDR and not frame.is_reply:
                self.counters.echoes += 1
                continue
            # §5: a host ignores requests, frames from address 0 and frames not addressed to it.
            if not frame.is_reply or frame.src == HOST_ADDR or frame.dst != HOST_ADDR:
                self.counters.ignored += 1
                _LOGGER.debug("%s ignored frame %s", self.name, frame.hex())
                continue
            try:
                self._on_frame(frame)
            except Exception:  # a consumer bug must not stop the receive path
                _LOGGER.exception("%s: frame callback failed", self.name)
