"""A printer behind a kiosk key board: ESC/POS through HB/1 PASSTHRU (docs/protocol.md §13).

The bytes go down in PASSTHRU_TX(port, chunk) requests, through the kernel's one-off device
command (``BridgeHub.command``); the printer's answers (DLE EOT status bytes) come up as the
board's PASSTHRU_RX events, which the kernel hands to a watcher of the device once stored.
The ESC/POS stream is the same as on a printer's own port, so the one driver
(``kiosk.printer.PrinterDriver``) serves both; only its status timeout is longer, since an
answer waits for the board's next poll. With several server processes, only one that can
reach the board's bus (``DeviceLink.reaches``: it runs the bus, or the hall's edge bridge is
connected to it) takes the printer's lease, since the answers come up there.
"""

from __future__ import annotations

import asyncio
import contextlib
import urllib.parse
from contextlib import AbstractContextManager
from typing import Protocol

from firmware_bridge.messages import Event, PassthruRxEvent, PassthruTxRequest, Reply, Request
from hall.config.models import PrinterTunnel
from hall.domain.errors import HallError
from kiosk.printer import Channel, Opener

SCHEME = "hb1"
CHUNK = 127
"""Bytes per PASSTHRU_TX: ``max_payload − 1`` of the smallest max_payload HB/1 allows (128)."""
ANSWER_MARGIN_S = 0.3
"""A printer's own 300 ms to answer, on top of the board's poll period (see ``status_timeout``)."""


class DeviceLink(Protocol):
    """The kernel's device API this needs (``hall.web.bridge.BridgeHub``)."""

    async def command(self, bus: str, address: int, request: Request) -> Reply: ...

    def reaches(self, bus: str) -> bool: ...

    def watch(self, bus: str, address: int) -> AbstractContextManager[asyncio.Queue[Event]]: ...


def tunnel_url(tunnel: PrinterTunnel) -> str:
    return f"{SCHEME}://{tunnel.bus}/{tunnel.address}/{tunnel.port}"


def parse_url(url: str) -> tuple[str, int, int]:
    """``hb1://BUS/ADDRESS/PORT`` → (bus, address, port); OSError when it is not one."""
    parsed = urllib.parse.urlparse(url)
    parts = parsed.path.strip("/").split("/")
    if parsed.scheme != SCHEME or not parsed.netloc or len(parts) != 2:
        raise OSError(f"not an HB/1 tunnel url: {url}")
    try:
        return parsed.netloc, int(parts[0]), int(parts[1])
    except ValueError:
        raise OSError(f"not an HB/1 tunnel url: {url}") from None


def status_timeout(poll_interval_s: float) -> float:
    """How long to wait for one status byte: the board is polled every ``poll_interval_s``,
    and the answer may just miss a poll."""
    return ANSWER_MARGIN_S + 2 * poll_interval_s


class TunnelChannel(Channel):
    """Bytes to a board's local port and the PASSTHRU_RX bytes of that port back."""

    def __init__(self, link: DeviceLink, bus: str, address: int, port: int) -> None:
        super().__init__()
        self.link = link
        self.bus, self.address, self.port = bus, address, port
        self._watch = link.watch(bus, address)
        events = self._watch.__enter__()
        self._reader = asyncio.create_task(self._read(events), name=f"tunnel {bus}/{address}")

    async def _read(self, events: asyncio.Queue[Event]) -> None:
        while True:
            event = await events.get()
            if isinstance(event, PassthruRxEvent) and event.port == self.port:
                self._data(bytes(event.data))

    async def write(self, data: bytes) -> None:
        if self.lost:
            raise ConnectionError("printer tunnel closed")
        for i in range(0, len(data), CHUNK):
            request = PassthruTxRequest(self.port, data[i : i + CHUNK])
            try:
                await self.link.command(self.bus, self.address, request)
            except HallError as exc:
                # The board is offline, busy past its retries or refused: like a cut cable.
                self.lost = True
                raise ConnectionError(str(exc)) from None

    async def close(self) -> None:
        self.lost = True
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        self._watch.__exit__(None, None, None)


def opener(link: DeviceLink) -> Opener:
    """An ``Opener`` for ``hb1://`` urls through ``link``."""

    async def open_tunnel(url: str) -> Channel:
        bus, address, port = parse_url(url)
        return TunnelChannel(link, bus, address, port)

    return open_tunnel
