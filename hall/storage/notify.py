"""One LISTEN connection per server process, shared by everything that follows NOTIFY channels.

``hall_events`` (every committed use case, then the sequencer once it numbered the events:
hall.storage.sequencer) feeds the sequencer, the live hub and the bridge hub; ``hall_access``
(hall.storage.access_repo) invalidates the session cache. Each of them subscribes here with
three callbacks:

- ``on_notify(payload)`` for every notification on its channel;
- ``on_up()`` once the connection is LISTENing on its channel: at subscription when the
  connection is already up, and after every reconnect. Notifications sent while nobody
  listened are lost, so this is where a subscriber catches up (re-reads from its last seq,
  empties a cache);
- ``on_down()`` when the connection is lost: from then until the next ``on_up`` nothing is
  delivered.

The connection is not taken from the work pool: it is opened with the pool's DSN and connect
retry (hall.storage.db.connect_listener), probed with ``SELECT 1`` every ``check_s`` and
re-opened with capped exponential backoff. Callbacks run on the event loop and must not block;
one that raises is logged and does not affect the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from hall.storage.db import connect_listener

log = logging.getLogger(__name__)

Connect = Callable[[], Awaitable[asyncpg.Connection]]


@dataclass(eq=False)
class Subscription:
    channel: str
    on_notify: Callable[[str], None]
    on_up: Callable[[], None] | None = None
    on_down: Callable[[], None] | None = None


class Notifier:
    """Owns the process's LISTEN connection and dispatches notifications to subscribers."""

    def __init__(
        self,
        connect: Connect | None = None,
        *,
        check_s: float = 5.0,
        backoff_s: tuple[float, float] = (0.1, 5.0),
    ) -> None:
        self._connect = connect
        self.check_s = check_s
        self.backoff_s = backoff_s  # first and largest delay between connection attempts
        self.connects = 0  # successful (re)connects
        self.server_pid: int | None = None  # backend pid of the connection while it is up
        self.up = asyncio.Event()  # set while the connection is up
        self._subs: list[Subscription] = []
        self._conn: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()  # connection set-up versus (un)subscribing
        self._task: asyncio.Task[None] | None = None
        self._retry_now = asyncio.Event()

    # --- lifecycle ------------------------------------------------------------------------

    def start(self, dsn: str | None = None) -> None:
        """Start holding the connection (``dsn`` unless a connect function was given)."""
        if self._connect is None:
            if dsn is None:
                raise ValueError("Notifier.start needs a DSN or a connect function")
            url = dsn

            async def connect() -> asyncpg.Connection:
                return await connect_listener(url)

            self._connect = connect
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="notify-listener")

    async def close(self) -> None:
        """Stop the task and close the connection (the task's ``finally`` closes it)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def retry_now(self) -> None:
        """Cut the current backoff wait short: the database is known to be back."""
        self._retry_now.set()

    # --- subscribers ----------------------------------------------------------------------

    async def subscribe(
        self,
        channel: str,
        on_notify: Callable[[str], None],
        *,
        on_up: Callable[[], None] | None = None,
        on_down: Callable[[], None] | None = None,
    ) -> Subscription:
        """Follow ``channel``; ``on_up`` is called at once if the connection is already up."""
        sub = Subscription(channel, on_notify, on_up, on_down)
        async with self._lock:
            new_channel = channel not in self.channels()
            self._subs.append(sub)
            conn = self._conn
            if conn is None:
                return sub  # told on_up when the connection comes up
            if new_channel:
                try:
                    await conn.add_listener(channel, self._dispatch)
                except Exception as exc:
                    # The connection is failing: drop it; the reconnect tells everyone on_up.
                    log.warning("LISTEN %s failed (%s); reconnecting", channel, exc)
                    conn.terminate()
                    return sub
            _call(sub.on_up, "on_up", channel)
        return sub

    async def unsubscribe(self, sub: Subscription) -> None:
        """Stop calling ``sub``; UNLISTEN its channel when it was the last subscriber."""
        async with self._lock:
            if sub not in self._subs:
                return
            self._subs.remove(sub)
            conn = self._conn
            if conn is not None and sub.channel not in self.channels():
                with contextlib.suppress(Exception):
                    await conn.remove_listener(sub.channel, self._dispatch)

    def channels(self) -> set[str]:
        return {s.channel for s in self._subs}

    def _dispatch(self, _conn: Any, _pid: int, channel: str, payload: str) -> None:
        for sub in list(self._subs):
            if sub.channel == channel:
                try:
                    sub.on_notify(payload)
                except Exception:
                    log.exception("%s subscriber failed on %r", channel, payload)

    # --- the connection -------------------------------------------------------------------

    async def _run(self) -> None:
        first, largest = self.backoff_s
        delay = first
        assert self._connect is not None
        while True:
            lost = asyncio.Event()
            conn: asyncpg.Connection | None = None
            try:
                conn = await self._connect()
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                async with self._lock:
                    for channel in sorted(self.channels()):
                        await conn.add_listener(channel, self._dispatch)
                    self._conn = conn
                    self.server_pid = conn.get_server_pid()
                    self.connects += 1
                    self.up.set()
                    self._retry_now.clear()
                    delay = first
                    for sub in list(self._subs):
                        _call(sub.on_up, "on_up", sub.channel)
                while not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.check_s):
                            await lost.wait()
                    if not lost.is_set():
                        async with asyncio.timeout(self.check_s):
                            await conn.fetchval("SELECT 1")
                log.warning("LISTEN connection lost; reconnecting")
            except Exception as exc:
                log.warning("LISTEN connection failed (%s); retrying in %.1f s", exc, delay)
            finally:
                self._lost()
                if conn is not None:
                    await _close(conn)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._retry_now.wait()
            if self._retry_now.is_set():
                self._retry_now.clear()
                delay = first
            else:
                delay = min(delay * 2, largest)

    def _lost(self) -> None:
        was_up = self._conn is not None
        self._conn = None
        self.server_pid = None
        self.up.clear()
        if was_up:
            for sub in list(self._subs):
                _call(sub.on_down, "on_down", sub.channel)


async def _close(conn: asyncpg.Connection) -> None:
    """Close politely when the connection still works, else (or when interrupted) abort it."""
    if conn.is_closed():
        return
    try:
        async with asyncio.timeout(2.0):
            await conn.close()
    except Exception:
        conn.terminate()
    except BaseException:
        conn.terminate()
        raise


def _call(callback: Callable[[], None] | None, what: str, channel: str) -> None:
    if callback is None:
        return
    try:
        callback()
    except Exception:
        log.exception("%s subscriber failed in %s", channel, what)
