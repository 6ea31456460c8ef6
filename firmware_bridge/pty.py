"""Pseudo-terminal pairs and an asyncio transport on the master side.

A pty stands in for a serial cable in tests and in ``hall emulate``: the host opens the
slave path like ``/dev/ttyUSB0`` and an emulator sits on the master fd. Closing the master
is what an unplugged USB adapter looks like to the host (its reads return EOF/EIO).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

_P = TypeVar("_P", bound=asyncio.BaseProtocol)

# Enough for any HB/1 frame (523 bytes) and a typical ESC/POS burst in one read.
_READ_SIZE = 4096


@dataclass(frozen=True, slots=True)
class PtyPair:
    """Both ends of a raw-mode pseudo-terminal.

    The slave fd stays open for the life of the pair: on Linux the master reads EIO while no
    slave fd is open, which would look like an unplug every time the host closes its port.
    """

    master_fd: int
    slave_fd: int
    slave_path: str

    def close(self) -> None:
        """Close both ends; the host sees its port vanish (EOF/EIO on read)."""
        for fd in (self.master_fd, self.slave_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


def open_pty() -> PtyPair:
    """Create a pty in raw mode (no echo, no line discipline, 8 bit clean)."""
    master_fd, slave_fd = os.openpty()
    # Raw on the slave side: the line discipline would otherwise translate CR/LF, echo bytes
    # back and swallow 0x03/0x1A, corrupting binary frames.
    tty.setraw(slave_fd)
    os.set_blocking(master_fd, False)
    return PtyPair(master_fd=master_fd, slave_fd=slave_fd, slave_path=os.ttyname(slave_fd))


class FdTransport(asyncio.Transport):
    """A bidirectional transport over one non-blocking fd (a pty master).

    Closing the transport closes the fd unless ``close_fd=False``.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        fd: int,
        protocol: asyncio.Protocol,
        *,
        close_fd: bool = True,
    ) -> None:
        super().__init__(extra={"fd": fd})
        self._loop = loop
        self._fd = fd
        self._protocol = protocol
        self._close_fd = close_fd
        self._buffer = bytearray()
        self._closing = False
        self._reading = False
        self._writing = False
        os.set_blocking(fd, False)
        loop.call_soon(protocol.connection_made, self)
        loop.call_soon(self._start_reading)

    def _start_reading(self) -> None:
        if not self._closing and not self._reading:
            self._loop.add_reader(self._fd, self._read_ready)
            self._reading = True

    def _read_ready(self) -> None:
        try:
            data = os.read(self._fd, _READ_SIZE)
        except BlockingIOError:
            return
        except OSError as exc:
            self._abort(exc)
            return
        if not data:
            self._abort(None)
            return
        self._protocol.data_received(data)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or not data:
            return
        if self._buffer:
            self._buffer.extend(data)
            return
        try:
            n = os.write(self._fd, data)
        except BlockingIOError:
            n = 0
        except OSError as exc:
            self._abort(exc)
            return
        if n < len(data):
            self._buffer.extend(memoryview(data)[n:])
            self._loop.add_writer(self._fd, self._write_ready)
            self._writing = True

    def _write_ready(self) -> None:
        try:
            n = os.write(self._fd, self._buffer)
        except BlockingIOError:
            return
        except OSError as exc:
            self._abort(exc)
            return
        del self._buffer[:n]
        if not self._buffer:
            self._loop.remove_writer(self._fd)
            self._writing = False

    def get_write_buffer_size(self) -> int:
        return len(self._buffer)

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        self._abort(None)

    def abort(self) -> None:
        self._abort(None)

    def _abort(self, exc: Exception | None) -> None:
        if self._closing:
            return
        self._closing = True
        if self._reading:
            self._loop.remove_reader(self._fd)
            self._reading = False
        if self._writing:
            self._loop.remove_writer(self._fd)
            self._writing = False
        self._buffer.clear()
        if self._close_fd:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._loop.call_soon(self._protocol.connection_lost, exc)

    def is_reading(self) -> bool:
        return self._reading

    def pause_reading(self) -> None:
        if self._reading:
            self._loop.remove_reader(self._fd)
            self._reading = False

    def resume_reading(self) -> None:
        self._start_reading()

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        assert isinstance(protocol, asyncio.Protocol)
        self._protocol = protocol


async def connect_fd(
    fd: int, protocol_factory: Callable[[], _P], *, close_fd: bool = True
) -> tuple[FdTransport, _P]:
    """Attach a protocol to a fd, like ``loop.create_connection`` does for sockets."""
    loop = asyncio.get_running_loop()
    protocol = protocol_factory()
    assert isinstance(protocol, asyncio.Protocol)
    return FdTransport(loop, fd, protocol, close_fd=close_fd), protocol


async def open_fd_connection(
    fd: int, *, close_fd: bool = True
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A StreamReader/StreamWriter pair over a fd (e.g. the master side of a pty)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    protocol = asyncio.StreamReaderProtocol(reader)
    transport, _ = await connect_fd(fd, lambda: protocol, close_fd=close_fd)
    return reader, asyncio.StreamWriter(transport, protocol, reader, loop)


class VirtualPort:
    """A pty whose slave path can be re-pointed, to simulate unplug and replug.

    ``path`` is a symlink (like ``/dev/serial/by-id/…``) to the current slave. ``unplug()``
    closes the pty; ``replug()`` creates a new one behind the same path.
    """

    def __init__(self, link_path: str) -> None:
        self.link_path = link_path
        self._pair: PtyPair | None = None

    @property
    def pair(self) -> PtyPair:
        if self._pair is None:
            raise RuntimeError("port is unplugged")
        return self._pair

    def plug(self) -> PtyPair:
        """Create a new pty and point the link at its slave."""
        if self._pair is not None:
            raise RuntimeError("port is already plugged")
        pair = open_pty()
        tmp = f"{self.link_path}.tmp"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        os.symlink(pair.slave_path, tmp)
        os.replace(tmp, self.link_path)  # atomic: the host never sees a half-made link
        self._pair = pair
        return pair

    def unplug(self) -> None:
        """Close the pty and remove the link, as when a USB adapter is pulled."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.link_path)
        if self._pair is not None:
            self._pair.close()
            self._pair = None

    def __enter__(self) -> VirtualPort:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.unplug()
