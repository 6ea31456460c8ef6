"""The bridge on an edge PC: a websocket link to the hall server with a local durable queue.

Every device event and alarm is first written to a SQLite outbox in the data directory (WAL,
synchronous=FULL), then sent in outbox order. The server answers each item with ``ack`` after
its database commit (or ``nack`` on a transient failure); only an ack deletes the item. A lost
ack means the item is sent again after a reconnect; the server recognises the event key and
answers "duplicate", so every event has its effect once.

``deliver`` waits briefly for the server's ack, so that normally an event is in the server's
database before the device is acknowledged. While the server is unreachable it returns once
the event is in the outbox: the devices keep working and keep showing their last content, and
the queue is delivered when the link returns.

When the outbox cannot store an item (the disk is full, an I/O error, or the optional size
cap is reached) the event is not safe at the edge, so ``deliver`` raises and the device is
not acknowledged: it keeps the event and sends it again at a later poll (HB1.md §8.3). While
the link is up, such an event is sent to the server directly instead, and acknowledged to the
device once the server has committed it, so the hall keeps working on a full disk. The
condition is logged at ERROR once, and reported to the server as an ``outbox_full`` alarm of
the bridge (``outbox_ok`` when writes succeed again), shown in the devices API; these alarms,
and device alarms that could not be stored, wait in memory until the server has them.

Messages (JSON text frames), bridge → server: ``hello``, ``event`` {id, event, age_s}, ``alarm``
{id, alarm}, ``report`` {report}; server → bridge: ``welcome``, ``ack`` {id, outcome, beep},
``nack`` {id}, ``desired`` {bus, address, commands}, ``set_address`` {bus, uid, address},
``command`` {id, bus, address, command}: one request outside the desired state, answered by
``reply`` {id, reply (the reply payload in hex) or error}.
Outbox items have positive ids; items sent without the outbox have negative ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import random
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from firmware_bridge.bridge import (
    AlarmReport,
    Bridge,
    EventResult,
    Report,
    UpEvent,
    requests_from_json,
)
from firmware_bridge.errors import BridgeError, OutboxError
from firmware_bridge.messages import Request
from firmware_bridge.transport import Backoff

_LOGGER = logging.getLogger(__name__)

# How long ``deliver`` waits for the server's commit before relying on the local queue alone.
# Below the master's event-callback timeout, so a slow server never stalls a bus.
DELIVER_WAIT_S = 2.0
# Connect attempts back off like serial lines do, capped so a returning server is found soon.
RECONNECT = Backoff(initial_s=0.2, max_s=10.0, stable_s=10.0)
# Alarms kept in memory while the outbox cannot take them; beyond this the oldest are dropped
# (and logged): a bus whose devices flap must not exhaust the edge PC's memory as well.
MAX_MEMORY_ALARMS = 256
# Alarms about the bridge itself rather than one device (bus "" and address 0 on the wire).
OUTBOX_FULL = "outbox_full"
OUTBOX_OK = "outbox_ok"


class DurableQueue:
    """An append-only outbox in SQLite; items survive a crash or power cut once ``put`` returns.

    ``max_bytes`` caps the database file (SQLite's ``max_page_count``), so a long outage cannot
    fill the edge PC's disk; at the cap ``put`` fails as on a full disk.
    """

    def __init__(self, path: Path, max_bytes: int | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT,"
            " kind TEXT NOT NULL, body TEXT NOT NULL)"
        )
        if max_bytes is not None:
            (page_size,) = self._db.execute("PRAGMA page_size").fetchone()
            self._db.execute(f"PRAGMA max_page_count = {max(1, max_bytes // int(page_size))}")

    def put(self, kind: str, body: dict[str, Any]) -> int:
        """Store an item durably and return its id; :class:`OutboxError` if it cannot."""
        with self._lock:
            try:
                cur = self._db.execute(
                    "INSERT INTO outbox (kind, body) VALUES (?, ?)", (kind, json.dumps(body))
                )
            except sqlite3.Error as exc:  # SQLITE_FULL, SQLITE_IOERR, read-only, …
                raise OutboxError(f"{self.path}: {exc}") from exc
            assert cur.lastrowid is not None
            return cur.lastrowid

    def after(self, last_id: int, limit: int = 100) -> list[tuple[int, str, dict[str, Any]]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, kind, body FROM outbox WHERE id > ? ORDER BY id LIMIT ?",
                (last_id, limit),
            ).fetchall()
        return [(int(i), str(k), json.loads(b)) for i, k, b in rows]

    def delete(self, item_id: int) -> None:
        with self._lock:
            try:
                self._db.execute("DELETE FROM outbox WHERE id = ?", (item_id,))
            except sqlite3.Error as exc:  # a delete writes to the WAL too
                raise OutboxError(f"{self.path}: {exc}") from exc

    def can_store(self, size: int = 1024) -> bool:
        """Whether an item of ``size`` bytes would fit now (tried, then rolled back).

        Exact under the size cap; on a full disk SQLite may only fail when it writes the WAL
        at commit, so a later ``put`` can still fail (and the alarm is raised again).
        """
        with self._lock:
            try:
                self._db.execute("BEGIN")
                try:
                    self._db.execute(
                        "INSERT INTO outbox (kind, body) VALUES ('probe', ?)", ("x" * size,)
                    )
                finally:
                    self._db.execute("ROLLBACK")
            except sqlite3.Error:
                return False
            return True

    def __len__(self) -> int:
        with self._lock:
            (n,) = self._db.execute("SELECT count(*) FROM outbox").fetchone()
        return int(n)

    def close(self) -> None:
        with self._lock:
            self._db.close()


@dataclass
class LinkStats:
    connects: int = 0
    disconnects: int = 0
    sent: int = 0
    acked: int = 0
    nacked: int = 0
    duplicates: int = 0
    queued_offline: int = 0
    outbox_failures: int = 0  # items the outbox could not store
    sent_direct: int = 0  # events sent without the outbox (it was failing, the link was up)


class WebSocketLink:
    """:class:`~firmware_bridge.bridge.Upstream` over a websocket to ``hall serve``."""

    def __init__(
        self,
        url: str,
        token: str,
        data_dir: Path,
        *,
        backoff: Backoff = RECONNECT,
        deliver_wait_s: float = DELIVER_WAIT_S,
        outbox_max_bytes: int | None = None,
    ) -> None:
        self.url = url
        self._token = token
        self.queue = DurableQueue(data_dir / "bridge-outbox.sqlite3", outbox_max_bytes)
        self.backoff = backoff
        self.deliver_wait_s = deliver_wait_s
        self.stats = LinkStats()
        self.connected = asyncio.Event()
        self._bridge: Bridge | None = None
        self._ws: ClientConnection | None = None
        self._waiters: dict[int, asyncio.Future[EventResult]] = {}
        self._wake = asyncio.Event()
        self._sent_upto = 0  # highest outbox id sent on the current connection
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.outbox_problem: str | None = None  # why the outbox refuses items, while it does
        self._memory_ids = itertools.count(-1, -1)  # ids of items sent without the outbox
        self._memory_alarms: dict[int, dict[str, Any]] = {}  # sent until the server acks

    def attach(self, bridge: Bridge) -> None:
        """Use ``bridge`` for what comes down and connect it upward through this link."""
        self._bridge = bridge
        bridge.connect(self)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="bridge-ws")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for fut in self._waiters.values():
            if not fut.done():
                fut.cancel()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.queue.close()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _LOGGER.warning("bridge link task failed: %s", task.exception())

    # -- Upstream --------------------------------------------------------------------------

    async def deliver(self, event: UpEvent) -> EventResult:
        try:
            item_id = await asyncio.to_thread(self.queue.put, "event", event.to_json())
        except OutboxError as exc:
            self._outbox_failed(exc)
            return await self._deliver_direct(event, exc)
        self._outbox_works()
        if not self.connected.is_set():
            self.stats.queued_offline += 1
            self._wake.set()
            return EventResult("queued")
        fut: asyncio.Future[EventResult] = asyncio.get_running_loop().create_future()
        self._waiters[item_id] = fut
        self._wake.set()
        try:
            async with asyncio.timeout(self.deliver_wait_s):
                return await asyncio.shield(fut)
        except TimeoutError:
            self.stats.queued_offline += 1
            return EventResult("queued")  # safe in the outbox; sent again after a reconnect
        finally:
            self._waiters.pop(item_id, None)

    async def _deliver_direct(self, event: UpEvent, problem: OutboxError) -> EventResult:
        """The outbox cannot take the event: hand it to the server without it, and return
        only once the server has committed it. Raises when it cannot (link down, no ack in
        time): the device is then not acknowledged and sends the event again later."""
        ws = self._ws
        if ws is None or not self.connected.is_set():
            raise problem
        item_id = next(self._memory_ids)
        fut: asyncio.Future[EventResult] = asyncio.get_running_loop().create_future()
        self._waiters[item_id] = fut
        message = {"type": "event", "id": item_id, "event": event.to_json(), "age_s": 0.0}
        try:
            async with asyncio.timeout(self.deliver_wait_s):
                await ws.send(json.dumps(message))
                result = await asyncio.shield(fut)
        except (TimeoutError, ConnectionClosed) as exc:
            raise problem from exc
        finally:
            self._waiters.pop(item_id, None)
        if result.outcome == "nack":
            raise problem
        self.stats.sent_direct += 1
        return result

    async def alarm(self, alarm: AlarmReport) -> None:
        try:
            await asyncio.to_thread(self.queue.put, "alarm", alarm.to_json())
        except OutboxError as exc:
            self._outbox_failed(exc)
            self._remember_alarm(alarm)
        else:
            self._outbox_works()
        self._wake.set()

    # -- the outbox failing --------------------------------------------------------------------

    def _outbox_failed(self, exc: OutboxError) -> None:
        self.stats.outbox_failures += 1
        if self.outbox_problem is not None:
            return
        self.outbox_problem = str(exc)
        _LOGGER.error(
            "bridge outbox cannot store events (%s): device events are acknowledged only once "
            "the server has them, and not at all while the server is unreachable; free disk "
            "space on this PC",
            exc,
        )
        self._remember_alarm(
            AlarmReport("", 0, OUTBOX_FULL, f"网关本地队列无法写入：{exc}"[:200], None, time.time())
        )

    def _outbox_works(self) -> None:
        if self.outbox_problem is None:
            return
        self.outbox_problem = None
        _LOGGER.warning("bridge outbox %s stores events again", self.queue.path)
        self._remember_alarm(
            AlarmReport("", 0, OUTBOX_OK, "网关本地队列恢复写入", None, time.time())
        )

    def _remember_alarm(self, alarm: AlarmReport) -> None:
        """Keep an alarm in memory until the server acknowledges it."""
        self._memory_alarms[next(self._memory_ids)] = alarm.to_json()
        while len(self._memory_alarms) > MAX_MEMORY_ALARMS:
            dropped = self._memory_alarms.pop(next(iter(self._memory_alarms)))
            _LOGGER.error("alarm dropped, too many waiting in memory: %r", dropped)
        self._wake.set()

    def report(self, report: Report) -> None:
        ws = self._ws
        if ws is None or not self.connected.is_set():
            return
        message = json.dumps({"type": "report", "report": report.to_json()})
        self._spawn(self._send_quietly(ws, message))

    @staticmethod
    async def _send_quietly(ws: ClientConnection, message: str) -> None:
        with contextlib.suppress(ConnectionClosed):
            await ws.send(message)

    # -- connection --------------------------------------------------------------------------

    async def _run(self) -> None:
        failures = 0
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                async with connect(
                    self.url,
                    additional_headers={"Authorization": f"Bearer {self._token}"},
                    open_timeout=5.0,
                    ping_interval=10.0,
                    ping_timeout=10.0,
                    close_timeout=2.0,
                    compression=None,
                ) as ws:
                    self.stats.connects += 1
                    await self._session(ws)
            except asyncio.CancelledError:
                raise
            except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError) as exc:
                _LOGGER.warning("bridge link to %s down: %s", self.url, exc)
            finally:
                if self._ws is not None:
                    self.stats.disconnects += 1
                self._ws = None
                self.connected.clear()
            if loop.time() - started >= self.backoff.stable_s:
                failures = 0
            failures += 1
            await asyncio.sleep(self.backoff.delay(failures, random.random))

    async def _session(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._sent_upto = 0
        await ws.send(json.dumps({"type": "hello"}))
        sender = asyncio.get_running_loop().create_task(self._sender(ws), name="bridge-ws-send")
        self.connected.set()
        try:
            async for raw in ws:
                if isinstance(raw, str):
                    self._on_message(json.loads(raw))
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await sender

    async def _sender(self, ws: ClientConnection) -> None:
        """Send outbox items in order; after a reconnect, everything not acked is resent.
        Alarms held in memory go first, once per connection."""
        sent_alarms: set[int] = set()
        while True:
            self._wake.clear()
            for alarm_id, alarm in list(self._memory_alarms.items()):
                if alarm_id not in sent_alarms:
                    await ws.send(json.dumps({"type": "alarm", "id": alarm_id, "alarm": alarm}))
                    sent_alarms.add(alarm_id)
            items = await asyncio.to_thread(self.queue.after, self._sent_upto)
            for item_id, kind, body in items:
                message: dict[str, Any] = {"type": kind, "id": item_id, kind: body}
                if kind == "event":
                    # How long it waited here, so the server can refuse stale key presses
                    # without comparing the two machines' clocks.
                    message["age_s"] = max(0.0, time.time() - float(body["at"]))
                await ws.send(json.dumps(message))
                self.stats.sent += 1
                self._sent_upto = item_id
            if not items:
                await self._wake.wait()

    async def _command(self, command_id: int, bus: str, address: int, request: Request) -> None:
        """A one-off request from the server: its reply payload (or why not) goes back."""
        assert self._bridge is not None
        answer: dict[str, Any] = {"type": "reply", "id": command_id}
        try:
            reply = await self._bridge.command(bus, address, request)
            answer["reply"] = reply.encode().hex()
        except (BridgeError, KeyError) as exc:
            answer["error"] = str(exc)[:200] or type(exc).__name__
        ws = self._ws
        if ws is not None:
            await self._send_quietly(ws, json.dumps(answer))

    def _on_message(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "ack":
            item_id = int(msg["id"])
            if item_id > 0:
                try:
                    self.queue.delete(item_id)
                except OutboxError as exc:
                    # It stays queued and is sent again after a reconnect; the server knows
                    # it and answers "duplicate".
                    _LOGGER.warning("acknowledged item %d stays in the outbox: %s", item_id, exc)
                if self.outbox_problem is not None and self.queue.can_store():
                    self._outbox_works()  # the delete made room
            else:
                self._memory_alarms.pop(item_id, None)
            self.stats.acked += 1
            outcome = str(msg.get("outcome", ""))
            if outcome == "duplicate":
                self.stats.duplicates += 1
            fut = self._waiters.get(item_id)
            if fut is not None and not fut.done():
                fut.set_result(EventResult(outcome, bool(msg.get("beep", False))))
        elif kind == "nack":
            # Transient server failure: resend from this item on (the server dedups).
            self.stats.nacked += 1
            item_id = int(msg["id"])
            if item_id > 0:
                self._sent_upto = min(self._sent_upto, item_id - 1)
            else:
                fut = self._waiters.get(item_id)
                if fut is not None and not fut.done():
                    fut.set_result(EventResult("nack"))
            self._wake.set()
        elif kind == "desired" and self._bridge is not None:
            commands = requests_from_json(msg["commands"])
            generation = msg.get("generation", 0)
            self._bridge.apply_desired(
                str(msg["bus"]),
                int(msg["address"]),
                commands,
                generation if isinstance(generation, int) else 0,
            )
        elif kind == "set_address" and self._bridge is not None:
            coro = self._bridge.set_address(
                str(msg["bus"]), bytes.fromhex(str(msg["uid"])), int(msg["address"])
            )
            self._spawn(coro)
        elif kind == "command" and self._bridge is not None:
            [request] = requests_from_json([msg["command"]])
            self._spawn(
                self._command(int(msg["id"]), str(msg["bus"]), int(msg["address"]), request)
            )
