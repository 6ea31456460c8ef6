"""Open serial lines by URL and keep them open.

One opener for every kind of cable (zigpy's pattern): a tty path (``/dev/ttyUSB0``,
``/dev/ttyACM0``, a pty slave, a ``/dev/serial/by-id`` link), ``socket://host:port`` (serial
servers, ser2net, the emulators' TCP mode), ``rfc2217://host:port`` and pyserial's
``loop://``. :class:`SerialLink` supervises one line: it retries a failed open and reconnects
after an unplug with capped exponential backoff, and never raises into its owner.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
import threading
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import serial
import serial_asyncio_fast

from firmware_bridge.errors import BridgeError

_LOGGER = logging.getLogger(__name__)

_P = TypeVar("_P", bound=asyncio.Protocol)

#: URL schemes the opener accepts; "" is a plain device path.
SCHEMES = frozenset({"", "socket", "rfc2217", "loop"})

# pyserial URL handlers without a selectable fd: they are served by a reader thread.
_THREADED_SCHEMES = frozenset({"rfc2217", "loop"})

# A reader thread blocks at most this long in read(), so close() returns promptly.
_THREAD_POLL_S = 0.05


class LinkDownError(BridgeError, ConnectionError):
    """The line is not connected (yet, or any more); nothing was written."""


class LinkState(enum.Enum):
    """Where a :class:`SerialLink` is in its connect/reconnect cycle."""

    IDLE = "idle"  # created, start() not called
    CONNECTING = "connecting"
    CONNECTED = "connected"
    BACKOFF = "backoff"  # waiting before the next attempt
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class SerialOptions:
    """Line settings passed to pyserial (ignored by ``socket://``)."""

    baudrate: int = 9600
    bytesize: int = serial.EIGHTBITS
    parity: str = serial.PARITY_NONE
    stopbits: float = serial.STOPBITS_ONE
    rtscts: bool = False
    xonxoff: bool = False
    # Lock the tty (TIOCEXCL) so a second process cannot open the same bus by mistake.
    exclusive: bool | None = None

    def as_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "baudrate": self.baudrate,
            "bytesize": self.bytesize,
            "parity": self.parity,
            "stopbits": self.stopbits,
            "rtscts": self.rtscts,
            "xonxoff": self.xonxoff,
        }
        if self.exclusive is not None:
            kwargs["exclusive"] = self.exclusive
        return kwargs


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff with jitter between connection attempts."""

    initial_s: float = 0.1
    factor: float = 2.0
    max_s: float = 10.0
    # Jitter spreads the retries of several bridges that lost the same serial server.
    jitter: float = 0.1
    # A connection that lived at least this long resets the failure count; a port that opens
    # and dies at once (e.g. a flapping USB hub) keeps backing off instead of spinning.
    stable_s: float = 5.0

    def delay(self, failures: int, rand: Callable[[], float] = random.random) -> float:
        """Delay before the next attempt after ``failures`` consecutive failures (≥ 1)."""
        base = min(self.max_s, self.initial_s * self.factor ** max(0, failures - 1))
        return min(self.max_s, base * (1.0 + self.jitter * rand()))


def parse_url(url: str) -> str:
    """Validate a line URL and return its scheme ("" for a device path)."""
    scheme = urllib.parse.urlparse(url).scheme
    if scheme not in SCHEMES:
        raise ValueError(f"unsupported serial URL scheme {scheme!r} in {url!r}")
    if scheme == "socket":
        parsed = urllib.parse.urlparse(url)
        if not parsed.hostname or parsed.port is None:
            raise ValueError(f"socket URL needs host and port: {url!r}")
    return scheme


async def open_serial(
    url: str,
    protocol_factory: Callable[[], _P],
    options: SerialOptions | None = None,
) -> tuple[asyncio.Transport, _P]:
    """Open ``url`` and attach a protocol; raises OSError/SerialException on failure."""
    scheme = parse_url(url)
    opts = options or SerialOptions()
    loop = asyncio.get_running_loop()
    if scheme in _THREADED_SCHEMES:
        port = await loop.run_in_executor(
            None, lambda: serial.serial_for_url(url, timeout=_THREAD_POLL_S, **opts.as_kwargs())
        )
        protocol = protocol_factory()
        return ThreadedSerialTransport(loop, port, protocol), protocol
    made: list[_P] = []

    def factory() -> _P:
        made.append(protocol_factory())
        return made[0]

    transport, _ = await serial_asyncio_fast.create_serial_connection(
        loop, factory, url, **opts.as_kwargs()
    )
    assert isinstance(transport, asyncio.Transport)
    return transport, made[0]


async def open_serial_streams(
    url: str, options: SerialOptions | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """``open_serial`` as a StreamReader/StreamWriter pair (no reconnect)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    protocol = asyncio.StreamReaderProtocol(reader)
    transport, _ = await open_serial(url, lambda: protocol, options)
    return reader, asyncio.StreamWriter(transport, protocol, reader, loop)


class ThreadedSerialTransport(asyncio.Transport):
    """Transport for pyserial ports without a selectable fd (``rfc2217://``, ``loop://``).

    One thread reads with a short timeout; writes go through a one-thread executor so their
    order is kept and the event loop never blocks on a slow socket.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, port: serial.SerialBase, protocol: asyncio.Protocol
    ) -> None:
        super().__init__(extra={"serial": port})
        self._loop = loop
        self._port = port
        self._protocol = protocol
        self._closing = False
        self._shutdown_task: asyncio.Task[None] | None = None
        self._stop = threading.Event()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="serial-write")
        self._reader = threading.Thread(target=self._read_loop, name="serial-read", daemon=True)
        loop.call_soon(protocol.connection_made, self)
        loop.call_soon(self._reader.start)

    def _read_loop(self) -> None:
        exc: Exception | None = None
        while not self._stop.is_set():
            try:
                data = self._port.read(max(1, self._port.in_waiting))
            except Exception as err:  # any read failure means the line is gone
                exc = err
                break
            if data:
                self._loop.call_soon_threadsafe(self._deliver, data)
        if exc is not None:
            self._loop.call_soon_threadsafe(self._abort, exc)

    def _deliver(self, data: bytes) -> None:
        if not self._closing:
            self._protocol.data_received(data)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing:
            return
        fut = self._loop.run_in_executor(self._writer, self._port.write, bytes(data))
        fut.add_done_callback(self._write_done)

    def _write_done(self, fut: asyncio.Future[Any]) -> None:
        if not fut.cancelled() and (exc := fut.exception()) is not None:
            self._abort(exc if isinstance(exc, Exception) else None)

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
        self._stop.set()
        self._shutdown_task = self._loop.create_task(self._shutdown(exc))

    async def _shutdown(self, exc: Exception | None) -> None:
        await self._loop.run_in_executor(None, self._reader.join)
        self._writer.shutdown(wait=False)
        with contextlib.suppress(Exception):
            await self._loop.run_in_executor(None, self._port.close)
        self._protocol.connection_lost(exc)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        assert isinstance(protocol, asyncio.Protocol)
        self._protocol = protocol


class _LinkProtocol(asyncio.Protocol):
    """Glue between one connection and its SerialLink; lives as long as the connection."""

    def __init__(self, link: SerialLink) -> None:
        self._link = link
        self.lost: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport, so no isinstance check.
        self._link._connection_made(cast(asyncio.Transport, transport))

    def data_received(self, data: bytes) -> None:
        self._link._data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)


@dataclass(slots=True)
class LinkStats:
    """Counters for the manager console and for tests."""

    connects: int = 0
    failed_attempts: int = 0
    disconnects: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    delays: list[float] = field(default_factory=list)  # every backoff delay used, in order


class SerialLink:
    """One supervised serial line: connects, reconnects, and reports its state.

    Received bytes go to ``on_data``; ``on_state`` sees every state change. Neither a failed
    open nor an unplug raises into the owner: the link backs off and tries again until
    :meth:`close`. ``write`` raises :class:`LinkDownError` while the line is down, so a bus
    master fails the transaction at once instead of waiting for a timeout.
    """

    def __init__(
        self,
        url: str,
        on_data: Callable[[bytes], None],
        *,
        options: SerialOptions | None = None,
        backoff: Backoff | None = None,
        on_state: Callable[[LinkState], None] | None = None,
        connect_timeout_s: float = 5.0,
        name: str | None = None,
    ) -> None:
        parse_url(url)
        self.url = url
        self.name = name or url
        self.options = options or SerialOptions()
        self.backoff = backoff or Backoff()
        self.stats = LinkStats()
        self._on_data = on_data
        self._on_state = on_state
        self._connect_timeout_s = connect_timeout_s
        self._state = LinkState.IDLE
        self._last_error: BaseException | None = None
        self._transport: asyncio.Transport | None = None
        self._task: asyncio.Task[None] | None = None
        self._late_opens: set[asyncio.Future[tuple[asyncio.Transport, _LinkProtocol]]] = set()
        self._state_waiters: list[tuple[LinkState, asyncio.Future[None]]] = []

    @property
    def state(self) -> LinkState:
        return self._state

    @property
    def last_error(self) -> BaseException | None:
        """The most recent open failure or disconnect cause (None after a clean close)."""
        return self._last_error

    @property
    def connected(self) -> bool:
        return self._state is LinkState.CONNECTED

    def start(self) -> None:
        """Begin connecting in the background; idempotent."""
        if self._state is LinkState.CLOSED:
            raise RuntimeError("link is closed")
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"serial-link {self.name}"
            )

    async def wait_state(self, state: LinkState) -> None:
        """Return once the link is (or becomes) ``state``; wrap in ``asyncio.timeout``."""
        if self._state is state:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (state, fut)
        self._state_waiters.append(entry)
        try:
            await fut
        finally:
            with contextlib.suppress(ValueError):
                self._state_waiters.remove(entry)

    async def wait_connected(self) -> None:
        await self.wait_state(LinkState.CONNECTED)

    def write(self, data: bytes) -> None:
        """Queue bytes on the line; LinkDownError if it is not connected."""
        transport = self._transport
        if transport is None or transport.is_closing():
            raise LinkDownError(f"{self.name}: not connected ({self._state.value})")
        transport.write(data)
        self.stats.bytes_out += len(data)

    async def close(self) -> None:
        """Stop reconnecting, close the line and wait until it is closed."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._set_state(LinkState.CLOSED)

    async def __aenter__(self) -> SerialLink:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- internals -------------------------------------------------------------------------

    def _set_state(self, state: LinkState) -> None:
        if state is self._state:
            return
        _LOGGER.debug("%s: %s -> %s", self.name, self._state.value, state.value)
        self._state = state
        for wanted, fut in list(self._state_waiters):
            if wanted is state and not fut.done():
                fut.set_result(None)
        if self._on_state is not None:
            try:
                self._on_state(state)
            except Exception:  # the owner's callback must not kill the supervisor
                _LOGGER.exception("%s: on_state callback failed", self.name)

    def _connection_made(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self.stats.connects += 1
        self._set_state(LinkState.CONNECTED)

    def _data_received(self, data: bytes) -> None:
        self.stats.bytes_in += len(data)
        try:
            self._on_data(data)
        except Exception:  # a consumer bug must not tear the line down
            _LOGGER.exception("%s: on_data callback failed", self.name)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        while True:
            self._set_state(LinkState.CONNECTING)
            # The open runs in a thread (pyserial) that a cancel or timeout cannot stop; if it
            # finishes after we gave up, the port it opened must still be closed.
            opening = asyncio.ensure_future(
                open_serial(self.url, lambda: _LinkProtocol(self), self.options)
            )
            try:
                async with asyncio.timeout(self._connect_timeout_s):
                    transport, protocol = await asyncio.shield(opening)
            except BaseException as exc:
                if not opening.done():
                    self._late_opens.add(opening)
                    opening.add_done_callback(self._close_late_open)
                if not isinstance(exc, Exception):
                    raise  # CancelledError and friends
                # Bad path, refused, permission, timeout: all retried.
                failures += 1
                self.stats.failed_attempts += 1
                self._last_error = exc
                _LOGGER.debug("%s: open failed (%s)", self.name, exc)
            else:
                opened_at = loop.time()
                try:
                    exc_lost = await asyncio.shield(protocol.lost)
                except asyncio.CancelledError:
                    await self._close_transport(transport, protocol)
                    raise
                self._transport = None
                self.stats.disconnects += 1
                self._last_error = exc_lost or LinkDownError(f"{self.name}: closed by peer")
                _LOGGER.warning("%s: line lost (%s)", self.name, self._last_error)
                if loop.time() - opened_at >= self.backoff.stable_s:
                    failures = 0
                failures += 1
            delay = self.backoff.delay(failures)
            self.stats.delays.append(delay)
            self._set_state(LinkState.BACKOFF)
            await asyncio.sleep(delay)

    def _close_late_open(
        self, fut: asyncio.Future[tuple[asyncio.Transport, _LinkProtocol]]
    ) -> None:
        self._late_opens.discard(fut)
        if not fut.cancelled() and fut.exception() is None:
            fut.result()[0].close()

    async def _close_transport(self, transport: asyncio.Transport, protocol: _LinkProtocol) -> None:
        self._transport = None
        transport.close()
        # connection_lost comes from a background task (serial) or the loop (socket); wait
        # for it so the port is really released before close() returns.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2.0):
                await protocol.lost
