"""Serial transport: real ptys and local TCP standing in for USB adapters and serial servers."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import serial
from serial import rfc2217

from firmware_bridge.pty import VirtualPort, open_fd_connection, open_pty
from firmware_bridge.transport import (
    Backoff,
    LinkDownError,
    LinkState,
    SerialLink,
    SerialOptions,
    open_serial_streams,
    parse_url,
)

# Fast, deterministic backoff: no jitter so the delay sequence can be checked exactly.
FAST = Backoff(initial_s=0.01, factor=2.0, max_s=0.04, jitter=0.0, stable_s=60.0)
TIMEOUT = 5.0

# Bytes a tty line discipline would mangle (CR, LF, ^C, ^Z, DEL, 0xFF): proves raw mode.
BINARY = bytes([0xEB, 0x90, 0x0D, 0x0A, 0x03, 0x1A, 0x7F, 0xFF, 0x00, 0x11, 0x13])


class Recorder:
    """Collects what a SerialLink delivers, so tests can await data and state changes."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.states: list[LinkState] = []
        self._changed = asyncio.Event()

    def on_data(self, data: bytes) -> None:
        self.data.extend(data)
        self._changed.set()

    def on_state(self, state: LinkState) -> None:
        self.states.append(state)
        self._changed.set()

    async def wait_data(self, n: int) -> bytes:
        async with asyncio.timeout(TIMEOUT):
            while len(self.data) < n:
                self._changed.clear()
                await self._changed.wait()
        out = bytes(self.data[:n])
        del self.data[:n]
        return out

    async def wait_count(self, state: LinkState, count: int) -> None:
        async with asyncio.timeout(TIMEOUT):
            while self.states.count(state) < count:
                self._changed.clear()
                await self._changed.wait()


async def wait_connected(link: SerialLink) -> None:
    async with asyncio.timeout(TIMEOUT):
        await link.wait_connected()


async def read_fd(reader: asyncio.StreamReader, n: int) -> bytes:
    async with asyncio.timeout(TIMEOUT):
        return await reader.readexactly(n)


def test_parse_url_accepts_paths_and_known_schemes() -> None:
    assert parse_url("/dev/ttyUSB0") == ""
    assert parse_url("socket://10.0.0.5:4001") == "socket"
    assert parse_url("rfc2217://10.0.0.5:2217") == "rfc2217"
    with pytest.raises(ValueError, match="scheme"):
        parse_url("http://example.com")
    with pytest.raises(ValueError, match="host and port"):
        parse_url("socket://nohost")


def test_backoff_grows_and_is_capped() -> None:
    b = Backoff(initial_s=0.1, factor=2.0, max_s=1.0, jitter=0.0)
    assert [b.delay(n) for n in range(1, 7)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    jittered = Backoff(initial_s=1.0, max_s=10.0, jitter=0.5)
    assert jittered.delay(1, rand=lambda: 1.0) == 1.5
    assert jittered.delay(10, rand=lambda: 1.0) == 10.0  # jitter never exceeds the cap


async def test_streams_over_pty_exchange_binary_bytes_both_ways() -> None:
    pair = open_pty()
    try:
        host_r, host_w = await open_serial_streams(pair.slave_path, SerialOptions(baudrate=9600))
        dev_r, dev_w = await open_fd_connection(pair.master_fd, close_fd=False)
        host_w.write(BINARY)
        assert await read_fd(dev_r, len(BINARY)) == BINARY
        dev_w.write(BINARY[::-1])
        assert await read_fd(host_r, len(BINARY)) == BINARY[::-1]
        host_w.close()
        dev_w.close()
    finally:
        pair.close()


async def test_link_over_pty_reconnects_after_unplug_and_replug(tmp_path: Path) -> None:
    rec = Recorder()
    port = VirtualPort(str(tmp_path / "ttyUSB-hall"))
    port.plug()
    dev_r, dev_w = await open_fd_connection(port.pair.master_fd, close_fd=False)
    link = SerialLink(port.link_path, rec.on_data, backoff=FAST, on_state=rec.on_state)
    async with link:
        await wait_connected(link)
        link.write(b"\x01\x02POLL")
        assert await read_fd(dev_r, 6) == b"\x01\x02POLL"
        dev_w.write(b"reply")
        assert await rec.wait_data(5) == b"reply"

        # Pull the cable: the host's read sees EOF and the link starts backing off.
        dev_w.close()
        port.unplug()
        await rec.wait_count(LinkState.BACKOFF, 1)
        assert link.last_error is not None
        with pytest.raises(LinkDownError):
            link.write(b"lost")
        # While unplugged every attempt fails and the delay doubles up to the cap.
        await rec.wait_count(LinkState.BACKOFF, 5)
        assert link.stats.failed_attempts >= 4
        assert link.stats.delays[:5] == [0.01, 0.02, 0.04, 0.04, 0.04]
        assert isinstance(link.last_error, serial.SerialException)

        # Plug a new adapter in: the link comes back on its own at the same path.
        port.plug()
        dev_r, dev_w = await open_fd_connection(port.pair.master_fd, close_fd=False)
        await rec.wait_count(LinkState.CONNECTED, 2)
        link.write(b"again")
        assert await read_fd(dev_r, 5) == b"again"
        dev_w.write(b"ok")
        assert await rec.wait_data(2) == b"ok"
        assert link.stats.connects == 2
        dev_w.close()
    assert link.state is LinkState.CLOSED
    port.unplug()


class TcpSerialServer:
    """A serial-server stand-in (ser2net-like) that can be stopped and restarted on one port."""

    def __init__(self) -> None:
        self.port = 0
        self.server: asyncio.Server | None = None
        self.clients: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )

    async def start(self) -> None:
        async def on_client(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await self.clients.put((r, w))

        self.server = await asyncio.start_server(on_client, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def next_client(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        async with asyncio.timeout(TIMEOUT):
            return await self.clients.get()


@pytest.fixture
async def tcp_server() -> AsyncIterator[TcpSerialServer]:
    srv = TcpSerialServer()
    await srv.start()
    yield srv
    with contextlib.suppress(Exception):
        await srv.stop()


async def test_link_over_socket_url_survives_server_restart(tcp_server: TcpSerialServer) -> None:
    rec = Recorder()
    url = f"socket://127.0.0.1:{tcp_server.port}"
    async with SerialLink(url, rec.on_data, backoff=FAST, on_state=rec.on_state) as link:
        r, w = await tcp_server.next_client()
        await wait_connected(link)
        link.write(BINARY)
        assert await read_fd(r, len(BINARY)) == BINARY
        w.write(b"hello")
        assert await rec.wait_data(5) == b"hello"

        # Server goes away: the connection drops and reconnects are refused for a while.
        w.close()
        await tcp_server.stop()
        await rec.wait_count(LinkState.BACKOFF, 3)
        assert isinstance(link.last_error, OSError)

        await tcp_server.start()
        r, w = await tcp_server.next_client()
        await rec.wait_count(LinkState.CONNECTED, 2)
        link.write(b"back")
        assert await read_fd(r, 4) == b"back"
        w.close()


async def test_link_to_missing_port_keeps_retrying_and_closes_cleanly(tmp_path: Path) -> None:
    rec = Recorder()
    link = SerialLink(str(tmp_path / "ttyUSB9"), rec.on_data, backoff=FAST, on_state=rec.on_state)
    link.start()
    await rec.wait_count(LinkState.BACKOFF, 3)
    assert isinstance(link.last_error, serial.SerialException)
    assert link.stats.connects == 0
    await link.close()
    assert link.state is LinkState.CLOSED
    current = asyncio.current_task()
    leftovers = [
        t for t in asyncio.all_tasks() if t is not current and "serial-link" in t.get_name()
    ]
    assert leftovers == []


async def test_loop_url_uses_threaded_transport() -> None:
    rec = Recorder()
    async with SerialLink("loop://", rec.on_data, backoff=FAST) as link:
        await wait_connected(link)
        link.write(BINARY)
        assert await rec.wait_data(len(BINARY)) == BINARY


async def test_pty_master_sees_eof_free_line_while_host_port_closed() -> None:
    """The emulator side must survive the host closing and reopening its port."""
    pair = open_pty()
    try:
        dev_r, dev_w = await open_fd_connection(pair.master_fd, close_fd=False)
        for _ in range(2):
            _host_r, host_w = await open_serial_streams(pair.slave_path)
            host_w.write(b"ping")
            assert await read_fd(dev_r, 4) == b"ping"
            host_w.close()
            await host_w.wait_closed()
        dev_w.write(b"x")
        assert not dev_r.at_eof()
        dev_w.close()
    finally:
        pair.close()


class Rfc2217LoopServer:
    """A minimal RFC 2217 serial server whose serial port is pyserial's loopback."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.listener.settimeout(0.05)
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            with conn:
                self._session(conn)

    def _session(self, conn: socket.socket) -> None:
        port = serial.serial_for_url("loop://", timeout=0)
        manager = rfc2217.PortManager(port, _SocketWriter(conn))
        conn.settimeout(0.02)
        while not self.stop.is_set():
            try:
                data = conn.recv(1024)
                if not data:
                    return
                for chunk in manager.filter(data):
                    port.write(chunk)
            except TimeoutError:
                pass
            pending = port.read(port.in_waiting or 1)
            if pending:
                conn.sendall(b"".join(manager.escape(pending)))

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=2)
        self.listener.close()


class _SocketWriter:
    def __init__(self, conn: socket.socket) -> None:
        self._conn = conn

    def write(self, data: bytes) -> None:
        self._conn.sendall(data)


# pyserial's RFC 2217 client still uses the deprecated Thread.setName()/setDaemon().
@pytest.mark.filterwarnings("ignore:set(Name|Daemon):DeprecationWarning")
async def test_rfc2217_url_round_trip_through_a_serial_server() -> None:
    server = Rfc2217LoopServer()
    rec = Recorder()
    try:
        url = f"rfc2217://127.0.0.1:{server.port}"
        async with SerialLink(url, rec.on_data, backoff=FAST) as link:
            await wait_connected(link)
            link.write(BINARY)
            assert await rec.wait_data(len(BINARY)) == BINARY  # looped back by the server
    finally:
        server.close()
