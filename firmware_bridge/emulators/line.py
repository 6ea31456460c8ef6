"""Put a byte-level emulator on a line: a pty, a TCP port or a serial URL.

Emulator cores are sans-I/O: ``feed(bytes) -> bytes`` returns what the device transmits in
answer. :class:`LineEndpoint` moves bytes between such a core and any number of attached
lines. One core is fed from one place in arrival order, so the replies of several emulated
devices on one bus can never interleave.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Literal, Protocol, cast

from firmware_bridge.pty import PtyPair, connect_fd, open_pty
from firmware_bridge.transport import Backoff, LinkDownError, SerialLink, SerialOptions

_LOGGER = logging.getLogger(__name__)

Direction = Literal["rx", "tx"]


class ByteDevice(Protocol):
    """What a LineEndpoint drives."""

    @property
    def idle_gap_s(self) -> float | None:
        """Silence after which ``idle()`` is called (HB/1 T_IDLE), or None."""
        ...

    def feed(self, data: bytes) -> bytes:
        """Bytes received from the line; returns bytes to transmit now (may be empty)."""
        ...

    def idle(self) -> bytes:
        """The line has been quiet for ``idle_gap_s``."""
        ...


class _LineProtocol(asyncio.Protocol):
    def __init__(self, endpoint: LineEndpoint) -> None:
        self._endpoint = endpoint
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport: no isinstance check.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        self._endpoint._writers.append(transport.write)

    def data_received(self, data: bytes) -> None:
        self._endpoint.receive(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            with contextlib.suppress(ValueError):
                self._endpoint._writers.remove(self.transport.write)
        if not self.closed.done():
            self.closed.set_result(None)


class LineEndpoint:
    """Connects one :class:`ByteDevice` to lines; replies go to every attached line."""

    def __init__(
        self,
        device: ByteDevice,
        *,
        reply_delay_s: float = 0.0,
        line_baud: int | None = None,
        on_traffic: Callable[[Direction, bytes], None] | None = None,
    ) -> None:
        self.device = device
        # HB/1 §7.1 wants ≥ 1.75 ms turnaround; tests usually keep 0 for speed.
        self.reply_delay_s = reply_delay_s
        # A pty or a socket delivers bytes at once. With ``line_baud`` the endpoint plays the
        # line at that speed (10 bits a byte, 8N1) both ways: received bytes reach the device
        # when their last bit would be in (a request is decided on at its last byte, as a
        # real device does: a key pressed while the request is on the line is in its reply),
        # and each reply is held ``reply_delay_s`` after that and then for its own line time,
        # so the host has it when its last byte would be in.
        self.line_baud = line_baud
        self._last_fire_at = 0.0
        # Line time at which the last byte received so far is in (with ``line_baud``).
        self._rx_line_end = 0.0
        # With ``line_baud``: the line time of the piece being fed to the device, when its last
        # byte is in. A device's decoder should judge silences on this clock (a bus's
        # ``clock=lambda: endpoint.line_now``), not on when this process's timer ran: a late
        # timer is no gap on the line.
        self.line_now = 0.0
        self.on_traffic = on_traffic
        self._writers: list[Callable[[bytes], None]] = []
        self._protocols: list[_LineProtocol] = []
        self._ptys: list[PtyPair] = []
        self._links: list[SerialLink] = []
        self._servers: list[asyncio.Server] = []
        self._idle_handle: asyncio.TimerHandle | None = None
        self._pending: set[asyncio.TimerHandle] = set()

    # -- attaching ---------------------------------------------------------------------------

    async def attach_fd(self, fd: int) -> None:
        """Serve on an open fd (e.g. a pty master that the caller owns and closes)."""
        _, proto = await connect_fd(fd, lambda: _LineProtocol(self), close_fd=False)
        self._protocols.append(proto)

    async def attach_pty(self) -> PtyPair:
        """Create a raw pty, serve on its master and return it; the host opens ``slave_path``."""
        pair = open_pty()
        self._ptys.append(pair)
        await self.attach_fd(pair.master_fd)
        return pair

    async def attach_url(
        self, url: str, options: SerialOptions | None = None, backoff: Backoff | None = None
    ) -> SerialLink:
        """Open a tty or ``socket://`` URL as a client, reconnecting like a real cable."""
        link = SerialLink(url, self.receive, options=options, backoff=backoff, name=f"emu {url}")
        self._links.append(link)
        self._writers.append(self._link_writer(link))
        link.start()
        return link

    async def serve_tcp(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen like a serial server (ser2net, printer port 9100); returns the bound port."""
        server = await asyncio.get_running_loop().create_server(
            lambda: self._tracked_protocol(), host, port
        )
        self._servers.append(server)
        bound: int = server.sockets[0].getsockname()[1]
        return bound

    def _tracked_protocol(self) -> _LineProtocol:
        proto = _LineProtocol(self)
        self._protocols.append(proto)
        return proto

    @staticmethod
    def _link_writer(link: SerialLink) -> Callable[[bytes], None]:
        def write(data: bytes) -> None:
            with contextlib.suppress(LinkDownError):  # a device on a dead line just talks to no one
                link.write(data)

        return write

    # -- data path ---------------------------------------------------------------------------

    def receive(self, data: bytes) -> None:
        """Bytes arrived from any line."""
        if self.on_traffic is not None:
            self.on_traffic("rx", data)
        if self.line_baud is None or not data:
            self._feed(data)
            return
        loop = asyncio.get_running_loop()
        t_char = 10 / self.line_baud
        # The bytes follow each other on the line from the moment they were written (after
        # any bytes still on it); the device has each piece when its last byte is in. Pieces
        # of at most half the device's idle gap: a long chunk is not a silence to its
        # decoder (§5). Strictly increasing times keep the pieces in order.
        gap = self.device.idle_gap_s
        piece = len(data) if gap is None else max(1, int(gap / 2 / t_char))
        start = max(loop.time(), self._rx_line_end)
        for i in range(0, len(data), piece):
            chunk = data[i : i + piece]
            start += len(chunk) * t_char
            self._feed_at(start, chunk)
        self._rx_line_end = start

    def _feed_at(self, when: float, data: bytes) -> None:
        handle: asyncio.TimerHandle | None = None

        def feed() -> None:
            assert handle is not None
            self._pending.discard(handle)
            self.line_now = when
            self._feed(data)

        handle = asyncio.get_running_loop().call_at(when, feed)
        self._pending.add(handle)

    def _feed(self, data: bytes) -> None:
        out = self.device.feed(data)
        self._arm_idle()
        if out:
            # A device answers a turnaround after the request's last byte on the line, however
            # late this process's timer ran: the reply is timed from that byte's line time.
            self._send(out, self.line_now if self.line_baud is not None else None)

    def _arm_idle(self) -> None:
        gap = self.device.idle_gap_s
        if gap is None:
            return
        if self._idle_handle is not None:
            self._idle_handle.cancel()
        self._idle_handle = asyncio.get_running_loop().call_later(gap, self._on_idle)

    def _on_idle(self) -> None:
        self._idle_handle = None
        out = self.device.idle()
        if out:
            self._send(out)

    def _send(self, data: bytes, after: float | None = None) -> None:
        """Reply ``data``: its last byte is in ``reply_delay_s`` and its own line time after
        ``after`` (the line time it answers; now if None)."""
        delay = self.reply_delay_s
        if self.line_baud is not None:
            delay += len(data) * 10 / self.line_baud
        if delay <= 0:
            self._write_now(data)
            return
        loop = asyncio.get_running_loop()
        start = loop.time() if after is None else after
        # Strictly after an earlier reply (timers due at the same instant have no set order):
        # replies stay serialized whatever their lengths.
        fire_at = max(start + delay, self._last_fire_at + 1e-6)
        self._last_fire_at = fire_at
        handle: asyncio.TimerHandle | None = None

        def fire() -> None:
            assert handle is not None
            self._pending.discard(handle)
            self._write_now(data)

        handle = loop.call_at(fire_at, fire)
        self._pending.add(handle)

    def _write_now(self, data: bytes) -> None:
        if self.on_traffic is not None:
            self.on_traffic("tx", data)
        for write in list(self._writers):
            write(data)

    # -- teardown ----------------------------------------------------------------------------

    def unplug(self) -> None:
        """Close every pty this endpoint created: the host sees its port vanish."""
        for proto in list(self._protocols):
            if proto.transport is not None:
                proto.transport.close()
        for pair in self._ptys:
            pair.close()
        self._ptys.clear()

    async def close(self) -> None:
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None
        for handle in self._pending:
            handle.cancel()
        self._pending.clear()
        for server in self._servers:
            server.close()
        for link in self._links:
            await link.close()
        for proto in list(self._protocols):
            if proto.transport is not None:
                proto.transport.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2.0):
                for proto in self._protocols:
                    if proto.transport is not None:
                        await proto.closed
        for server in self._servers:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
                    await server.wait_closed()
        for pair in self._ptys:
            pair.close()
        self._ptys.clear()
        self._servers.clear()
        self._links.clear()
        self._protocols.clear()
        self._writers.clear()

    async def __aenter__(self) -> LineEndpoint:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
