"""Live hall state over websockets: one hub per server process.

Once the sequencer (hall.storage.sequencer) has numbered a hall's newly committed events it
notifies ``hall_events`` with the hall's new last seq. The hub follows the channel on the
process's shared LISTEN connection (hall.storage.notify); such a notification wakes the
hall's pump, which reads the new events from the log in seq order, folds them into
the in-memory ``ScreenState`` and writes one pre-encoded websocket frame per event
into each subscriber's transport buffer, which is that client's send queue. The pump never
awaits a client: a client whose unsent bytes pass a bound is dropped, and resyncs by
reconnecting. Because every process reads the same log in seq order, clients
on any process see every event once, in order. The protocol is described in docs/live.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import struct
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiohttp import WSMsgType, web

from hall.domain.errors import Forbidden, InvalidInput, Unavailable
from hall.domain.tickets import Event, EventType
from hall.storage import access_repo, repo
from hall.storage.notify import Subscription
from hall.storage.sequencer import EVENTS_CHANNEL, sequenced
from hall.web.access import allowed, principal_of, session_principal
from hall.web.live_state import FoldError, ScreenState, full_event, public_event
from hall.web.routes import Access, Route, register
from hall.web.state import DIRECTORY, NOTIFIER, POOL, QUEUE
from hall.web.validation import load_json

log = logging.getLogger(__name__)

# Close codes (4000-4999 are private to applications; see docs/live.md).
CLOSE_GOING_AWAY = 1001  # server shutting down: reconnect to another instance or later
CLOSE_PROTOCOL = 4400  # the client sent something that is not a protocol message
CLOSE_HEARTBEAT = 4408  # nothing heard from the client for ``client_timeout_s``
CLOSE_TOO_SLOW = 4429  # the client fell behind; its send buffer overflowed
CLOSE_RESYNC = 4409  # the server lost track of the hall; reconnect for a fresh snapshot
CLOSE_REVOKED = 4401  # the session or device token behind the socket was revoked or ended
CLOSE_FORBIDDEN = 4403  # the account's roles or halls changed and no longer allow this feed

CHANNELS = ("display", "dashboard")  # plus "counter:N"
LIVE_ACCESS = Access.DISPLAY  # the live route's rule, checked at open and on account changes
EVENTS_BATCH = 500  # events read per query while catching up
MAX_CLIENT_MESSAGE = 4096  # pongs and resync requests are tiny
# Events for the manager dashboard only: supervision alarms name clerks and carry their reasons.
STAFF_ONLY_EVENTS = frozenset({EventType.SUPERVISION_ALARM, EventType.SUPERVISION_CLEARED})


@dataclass
class LiveSettings:
    """Timing and bounds; tests shrink them through ``app[LIVE].settings``."""

    heartbeat_s: float = 5.0  # server ping interval; clients treat 10 s of silence as down
    client_timeout_s: float = 15.0  # a client that sends nothing this long is dropped
    # Unsent bytes a client's transport may hold (beyond the kernel buffer) before the client
    # counts as too slow: several hundred events, far more than a burst of calls produces.
    max_buffered_bytes: int = 256 * 1024
    close_timeout_s: float = 2.0  # a close handshake longer than this aborts the socket
    # Kernel send buffer per websocket; small so a stalled reader is noticed soon instead
    # of parking megabytes in the kernel.
    socket_sndbuf: int = 32 * 1024
    listen_backoff_s: tuple[float, float] = (0.1, 5.0)  # first and largest pump retry delay


@dataclass
class LiveStats:
    connected: int = 0
    dropped_slow: int = 0
    dropped_heartbeat: int = 0
    resyncs: int = 0
    listener_connects: int = 0
    resets: int = 0


@dataclass(eq=False)
class Client:
    """One websocket subscriber."""

    hall: str
    channel: str
    ws: web.WebSocketResponse
    transport: asyncio.Transport | None
    counter: int | None = None
    services: frozenset[str] = frozenset()
    last_seq: int = 0  # seq of the last snapshot or event sent to this client
    last_heard: float = field(default_factory=time.monotonic)
    dropped: bool = False
    session_id: int | None = None  # the staff session or device token it was opened with
    device_token_id: int | None = None

    def wants(self, event: Event) -> bool:
        if event.type in STAFF_ONLY_EVENTS:
            return self.channel == "dashboard"
        if self.counter is None:
            return True
        return (
            event.counter_number == self.counter
            or event.details.get("to_counter") == self.counter
            or event.details.get("service_code") in self.services
            or event.details.get("to_service") in self.services
        )


class _Hall:
    """A hall the hub follows: its screen state, subscribers and pump."""

    def __init__(self, state: ScreenState) -> None:
        self.state = state
        self.clients: set[Client] = set()
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self._snapshot_cache: tuple[int, str] | None = None

    def snapshot_body(self) -> str:
        """The state as JSON, encoded once per seq however many clients ask."""
        if self._snapshot_cache is None or self._snapshot_cache[0] != self.state.seq:
            self._snapshot_cache = (self.state.seq, json.dumps(self.state.data, ensure_ascii=False))
        return self._snapshot_cache[1]


class LiveHub:
    """Per-process fan-out of hall events to websocket clients."""

    def __init__(self, app: web.Application, settings: LiveSettings | None = None) -> None:
        self.app = app
        self.settings = settings or LiveSettings()
        self.stats = LiveStats()
        self._halls: dict[str, _Hall] = {}
        self._hall_locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._subscription: Subscription | None = None
        self._access_subscription: Subscription | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._recheck: asyncio.Task[None] | None = None
        self._recheck_again = False
        self.closing = False  # shutting down: no new subscribers
        self.listening = asyncio.Event()  # set while the LISTEN connection is up
        self.listener_pid: int | None = None  # server pid of the LISTEN connection

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        self._subscription = await self.app[NOTIFIER].subscribe(
            EVENTS_CHANNEL, self._on_notify, on_up=self._connected, on_down=self._disconnected
        )
        self._access_subscription = await self.app[NOTIFIER].subscribe(
            access_repo.ACCESS_CHANNEL, self._on_access_notice
        )
        self._ticker = asyncio.create_task(self._tick(), name="live-heartbeat")

    async def close_clients(self) -> None:
        """Close every websocket with 1001 so browsers reconnect elsewhere."""
        self.closing = True
        clients = [c for h in self._halls.values() for c in h.clients]
        await asyncio.gather(
            *(self._close(c, CLOSE_GOING_AWAY, "服务器正在重启") for c in clients),
            return_exceptions=True,
        )

    async def stop(self) -> None:
        self.closing = True
        if self._access_subscription is not None:
            await self.app[NOTIFIER].unsubscribe(self._access_subscription)
            self._access_subscription = None
        if self._subscription is not None:
            await self.app[NOTIFIER].unsubscribe(self._subscription)
            self._subscription = None
            self._disconnected()
        tasks = [t for t in (self._ticker, self._recheck) if t is not None]
        tasks += [h.task for h in self._halls.values() if h.task is not None]
        tasks += list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, coro: Any, name: str) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- halls ----------------------------------------------------------------------------

    async def _hall(self, hall_id: str) -> _Hall:
        """The followed hall, reading its first snapshot on first use."""
        hall = self._halls.get(hall_id)
        if hall is not None:
            return hall
        lock = self._hall_locks.setdefault(hall_id, asyncio.Lock())
        async with lock:
            hall = self._halls.get(hall_id)
            if hall is None:
                state = ScreenState(await self.app[QUEUE].snapshot(hall_id))
                hall = _Hall(state)
                hall.task = asyncio.create_task(self._pump(hall), name=f"live-pump-{hall_id}")
                self._halls[hall_id] = hall
                hall.wake.set()  # catch anything committed while the snapshot was read
        return hall

    def _notified(self, hall_id: str, seq: int) -> None:
        hall = self._halls.get(hall_id)
        if hall is None:
            return  # nobody follows it; the first subscriber reads a snapshot
        if seq > hall.state.seq:
            hall.wake.set()

    async def _pump(self, hall: _Hall) -> None:
        """Read new events in seq order and fan them out; retry on database trouble."""
        delay = self.settings.listen_backoff_s[0]
        stale = False
        while True:
            await hall.wake.wait()
            hall.wake.clear()
            try:
                if stale:
                    await self._reset(hall)
                    stale = False
                while True:
                    async with self.app[POOL].acquire() as conn:
                        rows = await repo.events_after(
                            conn, hall.state.hall_id, hall.state.seq, EVENTS_BATCH
                        )
                    for seq, event in rows:
                        self._fan_out(hall, seq, event)
                    if len(rows) < EVENTS_BATCH:
                        break
                delay = self.settings.listen_backoff_s[0]
            except FoldError as exc:
                log.warning("live state of hall %s out of step (%s)", hall.state.hall_id, exc)
                stale = True
                hall.wake.set()
            except Exception:
                # Database down or a bug: keep the pump alive and try again; it resumes from
                # the last folded seq, so nothing is skipped.
                log.exception(
                    "live pump of hall %s failed; retrying in %.1f s", hall.state.hall_id, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.listen_backoff_s[1])
                hall.wake.set()

    async def _reset(self, hall: _Hall) -> None:
        """Replace the hall's state by a fresh snapshot and send it to every subscriber."""
        hall.state = ScreenState(await self.app[QUEUE].snapshot(hall.state.hall_id))
        self.stats.resets += 1
        for client in list(hall.clients):
            self._send_snapshot(hall, client)

    def _fan_out(self, hall: _Hall, seq: int, event: Event) -> None:
        if seq <= hall.state.seq:
            return  # already folded (a batch overlapped a reset)
        patch = hall.state.apply(seq, event)
        tails: dict[bool, str] = {}
        # Clients that are up to date share one frame per (channel kind, prev_seq).
        frames: dict[tuple[bool, int], bytes] = {}
        for client in list(hall.clients):
            if client.dropped or not client.wants(event):
                continue
            full = client.channel == "dashboard"
            key = (full, client.last_seq)
            frame = frames.get(key)
            if frame is None:
                if full not in tails:
                    body = {
                        "event": full_event(event) if full else public_event(event),
                        "patch": patch,
                    }
                    tails[full] = json.dumps(body, ensure_ascii=False, default=str)[1:]
                text = f'{{"type":"event","seq":{seq},"prev_seq":{client.last_seq},{tails[full]}'
                frame = frames[key] = text_frame(text)
            if self._write(client, frame):
                client.last_seq = seq

    def _write(self, client: Client, frame: bytes) -> bool:
        """Append a frame to the client's transport buffer; drop the client past the bound."""
        transport = client.transport
        if client.dropped or transport is None or transport.is_closing():
            return False
        transport.write(frame)
        if transport.get_write_buffer_size() > self.settings.max_buffered_bytes:
            self.drop(client, CLOSE_TOO_SLOW, "客户端接收过慢，请重新连接")
            return False
        return True

    def _send_snapshot(self, hall: _Hall, client: Client) -> None:
        seq = hall.state.seq
        message = (
            f'{{"type":"snapshot","seq":{seq},"channel":{json.dumps(client.channel)},'
            f'"heartbeat_s":{self.settings.heartbeat_s},"state":{hall.snapshot_body()}}}'
        )
        if self._write(client, text_frame(message)):
            client.last_seq = seq

    # --- clients --------------------------------------------------------------------------

    async def subscribe(
        self, request: web.Request, hall_id: str, channel: str, ws: web.WebSocketResponse
    ) -> Client:
        hall = await self._hall(hall_id)
        principal = principal_of(request)
        client = Client(
            hall=hall_id,
            channel=channel,
            ws=ws,
            transport=request.transport,
            session_id=principal.session_id,
            device_token_id=principal.device_token_id,
        )
        if channel.startswith("counter:"):
            client.counter = int(channel.split(":", 1)[1])
            rules = self.app[DIRECTORY].hall(hall_id)
            client.services = frozenset(s.code for s in rules.counter(client.counter).services)
        # Snapshot and registration happen with no await between them, so the client's
        # deltas start exactly after the snapshot's seq.
        self._send_snapshot(hall, client)
        hall.clients.add(client)
        self.stats.connected += 1
        return client

    def _on_access_notice(self, payload: str) -> None:
        """A session or device token was revoked (logout included): close its sockets now,
        since a websocket is authorised only when it opens."""
        if payload.isdigit():
            session, device = int(payload), None
        elif payload.startswith(access_repo.DEVICE_PREFIX) and payload[1:].isdigit():
            session, device = None, int(payload[1:])
        elif payload == access_repo.FLUSH_ALL:
            self._recheck_staff_sockets()
            return
        else:
            return
        for hall in self._halls.values():
            for client in list(hall.clients):
                if (session is not None and client.session_id == session) or (
                    device is not None and client.device_token_id == device
                ):
                    self.drop(client, CLOSE_REVOKED, "登录已失效，请重新登录")

    def _recheck_staff_sockets(self) -> None:
        """Accounts changed (roles, halls, disabled): check every staff socket again, once
        however many notices arrive while a check runs, plus once after it."""
        if self._recheck is not None and not self._recheck.done():
            self._recheck_again = True
            return
        self._recheck = asyncio.create_task(self._run_recheck(), name="live-staff-recheck")

    async def _run_recheck(self) -> None:
        while True:
            self._recheck_again = False
            try:
                await self._recheck_once()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                # The next change notice checks again; the sockets were authorised at open.
                log.exception("could not re-check live sockets after an account change")
            if not self._recheck_again:
                return

    async def _recheck_once(self) -> None:
        clients = [c for h in self._halls.values() for c in h.clients if c.session_id is not None]
        if not clients:
            return
        ids = {c.session_id for c in clients if c.session_id is not None}
        rows = await access_repo.sessions_by_id(self.app[POOL], ids)
        for client in clients:
            row = rows.get(client.session_id) if client.session_id is not None else None
            if row is None or row.revoked_at is not None or not row.staff.enabled:
                self.drop(client, CLOSE_REVOKED, "登录已失效，请重新登录")
            elif not allowed(LIVE_ACCESS, session_principal(row, row.kind), client.hall, None):
                self.drop(client, CLOSE_FORBIDDEN, "账号权限已变更，无权查看本大厅")

    def unsubscribe(self, client: Client) -> None:
        hall = self._halls.get(client.hall)
        if hall is not None and client in hall.clients:
            hall.clients.discard(client)
            self.stats.connected -= 1

    def resync(self, client: Client) -> None:
        hall = self._halls.get(client.hall)
        if hall is not None and not client.dropped:
            self.stats.resyncs += 1
            self._send_snapshot(hall, client)

    def drop(self, client: Client, code: int, reason: str) -> None:
        """Stop feeding a client and close it in the background; never blocks the caller."""
        if client.dropped:
            return
        client.dropped = True
        if code == CLOSE_TOO_SLOW:
            self.stats.dropped_slow += 1
        elif code == CLOSE_HEARTBEAT:
            self.stats.dropped_heartbeat += 1
        log.info("dropping live client of hall %s (%d %s)", client.hall, code, reason)
        self.unsubscribe(client)
        self._spawn(self._close(client, code, reason), f"live-close-{client.hall}")

    async def close_now(self, client: Client, code: int, reason: str) -> None:
        """Close a client from its own handler, waiting for the close frame to go out.

        (``drop`` closes in the background; a handler that returned first would let aiohttp
        close the socket with 1000 instead of ``code``.)"""
        if not client.dropped:
            client.dropped = True
            self.unsubscribe(client)
        await self._close(client, code, reason)

    async def _close(self, client: Client, code: int, reason: str) -> None:
        client.dropped = True
        transport = client.transport
        try:
            async with asyncio.timeout(self.settings.close_timeout_s):
                await client.ws.close(code=code, message=reason.encode())
        except (TimeoutError, ConnectionError):
            # A client that does not read cannot take a close frame either.
            if transport is not None:
                transport.abort()

    async def _tick(self) -> None:
        """Ping every client and drop those that have gone quiet."""
        while True:
            await asyncio.sleep(self.settings.heartbeat_s)
            now = time.monotonic()
            stamp = int(time.time() * 1000)
            for hall in list(self._halls.values()):
                for client in list(hall.clients):
                    if now - client.last_heard > self.settings.client_timeout_s:
                        self.drop(client, CLOSE_HEARTBEAT, "心跳超时")
                    else:
                        ping = f'{{"type":"ping","seq":{client.last_seq},"t":{stamp}}}'
                        self._write(client, text_frame(ping))

    # --- the LISTEN connection ------------------------------------------------------------

    def _connected(self) -> None:
        """The process's LISTEN connection is (again) up: catch every followed hall up."""
        self.listener_pid = self.app[NOTIFIER].server_pid
        self.stats.listener_connects += 1
        self.listening.set()
        for hall in self._halls.values():
            hall.wake.set()  # events committed while we were not listening

    def _disconnected(self) -> None:
        self.listening.clear()
        self.listener_pid = None

    def _on_notify(self, payload: str) -> None:
        # Only the sequencer's notices carry a seq; a writer's commit notice comes before its
        # events are numbered, and the sequencer's notice follows it.
        notice = sequenced(payload)
        if notice is not None:
            self._notified(*notice)


LIVE = web.AppKey("live", LiveHub)


def parse_channel(request: web.Request, hall_id: str) -> str:
    channel = request.query.get("channel", "display")
    if channel in CHANNELS:
        return channel
    prefix, _, number = channel.partition(":")
    if prefix == "counter" and number.isascii() and number.isdigit() and len(number) <= 6:
        request.app[DIRECTORY].hall(hall_id).counter(int(number))  # NotFound if unknown
        return f"counter:{int(number)}"
    raise InvalidInput("channel 只能是 display、dashboard 或 counter:窗口号", parameter="channel")


async def live_socket(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/halls/{hall}/live?channel=…: snapshot, then deltas; see docs/live.md."""
    hub = request.app[LIVE]
    hall_id = request.match_info["hall"]
    request.app[DIRECTORY].hall(hall_id)  # 404 before the upgrade
    if hub.closing:
        raise Unavailable("服务器正在重启，请稍后重新连接")
    channel = parse_channel(request, hall_id)
    if channel == "dashboard" and principal_of(request).kind != "staff":
        # Dashboard events name clerks and carry free-text reasons: staff only.
        raise Forbidden("dashboard 频道仅限工作人员使用")
    ws = web.WebSocketResponse(
        max_msg_size=MAX_CLIENT_MESSAGE,
        timeout=hub.settings.close_timeout_s,
        compress=False,
    )
    await ws.prepare(request)
    _bound_send_buffer(request, hub.settings.socket_sndbuf)
    client = await hub.subscribe(request, hall_id, channel, ws)
    try:
        async for msg in ws:
            client.last_heard = time.monotonic()
            if msg.type is WSMsgType.ERROR:
                break  # aiohttp already closes it (1009 for a message over the size limit)
            if msg.type is not WSMsgType.TEXT:
                await hub.close_now(client, CLOSE_PROTOCOL, "只接受 JSON 文本消息")
                break
            kind = _message_type(msg.data)
            if kind == "resync":
                hub.resync(client)
            elif kind is None:
                await hub.close_now(client, CLOSE_PROTOCOL, "消息格式错误")
                break
            # "pong" and unknown types only count as signs of life.
    finally:
        hub.unsubscribe(client)
    return ws


def text_frame(text: str) -> bytes:
    """One unmasked, unfragmented websocket text frame (RFC 6455 §5.2), as a server sends.

    The hub writes frames straight into the transport, synchronously, so one event reaches
    hundreds of clients without a task switch per client; aiohttp's own writes (close frames,
    pong replies) are whole frames too, so they never interleave inside ours.
    """
    payload = text.encode()
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x81, n)
    elif n < 1 << 16:
        header = struct.pack("!BBH", 0x81, 126, n)
    else:
        header = struct.pack("!BBQ", 0x81, 127, n)
    return header + payload


def _message_type(data: str) -> str | None:
    try:
        value = load_json(data)
    except InvalidInput:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        return None
    kind: str = value["type"]
    return kind


def _bound_send_buffer(request: web.Request, size: int) -> None:
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)


def setup_live(app: web.Application, settings: LiveSettings | None = None) -> None:
    """Add the live websocket route and the hub's lifecycle to the app."""
    hub = LiveHub(app, settings)
    app[LIVE] = hub

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await hub.start()
        try:
            yield
        finally:
            await hub.stop()

    async def on_shutdown(app: web.Application) -> None:
        await hub.close_clients()

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(on_shutdown)
    register(
        app,
        [
            Route(
                "GET",
                "/api/v1/halls/{hall}/live",
                live_socket,
                "live",
                "实时推送（WebSocket）：快照、增量事件与心跳",
                LIVE_ACCESS,
                tags=("halls",),
            )
        ],
    )
    from hall.web.live_pages import setup_pages

    setup_pages(app)
