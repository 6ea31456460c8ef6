"""The process's shared LISTEN connection: dispatch by channel, lost/up around a reconnect."""

from __future__ import annotations

import asyncio

import asyncpg

from hall.storage.db import LISTEN_APPLICATION_NAME
from hall.storage.notify import Notifier


class Recorder:
    """What one subscriber was told, in order."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.changed = asyncio.Event()

    def notify(self, payload: str) -> None:
        self.log.append(f"notify {payload}")
        self.changed.set()

    def up(self) -> None:
        self.log.append("up")
        self.changed.set()

    def down(self) -> None:
        self.log.append("down")
        self.changed.set()

    async def wait_for(self, entries: list[str], seconds: float = 5.0) -> None:
        async with asyncio.timeout(seconds):
            while self.log != entries:
                self.changed.clear()
                await self.changed.wait()


async def listen_backends(pool: asyncpg.Pool) -> list[int]:
    rows = await pool.fetch(
        "SELECT pid FROM pg_stat_activity WHERE application_name = $1", LISTEN_APPLICATION_NAME
    )
    return [int(r["pid"]) for r in rows]


async def only_listener_is(pool: asyncpg.Pool, pid: int | None) -> None:
    """Wait until ``pid`` is the one LISTEN backend (closed ones take a moment to go)."""
    expected = [] if pid is None else [pid]
    async with asyncio.timeout(5):
        while (found := await listen_backends(pool)) != expected:
            assert pid is None or pid in found
            await asyncio.sleep(0.02)


async def test_two_channels_on_one_connection_survive_a_killed_backend(
    notifier: Notifier, pool: asyncpg.Pool
) -> None:
    events, access = Recorder(), Recorder()
    sub_events = await notifier.subscribe(
        "hall_events", events.notify, on_up=events.up, on_down=events.down
    )
    await asyncio.wait_for(notifier.up.wait(), 5)
    await notifier.subscribe("hall_access", access.notify, on_up=access.up, on_down=access.down)
    # Subscribing while the connection is up tells the subscriber at once.
    await events.wait_for(["up"])
    assert access.log == ["up"]
    pid = notifier.server_pid
    assert pid is not None
    await only_listener_is(pool, pid)  # one connection for both channels

    await pool.execute("SELECT pg_notify('hall_events', 'e1')")
    await pool.execute("SELECT pg_notify('hall_access', 'a1')")
    await pool.execute("SELECT pg_notify('elsewhere', 'x')")  # nobody follows it
    await events.wait_for(["up", "notify e1"])
    await access.wait_for(["up", "notify a1"])

    assert await pool.fetchval("SELECT pg_terminate_backend($1)", pid)
    await events.wait_for(["up", "notify e1", "down", "up"])
    await access.wait_for(["up", "notify a1", "down", "up"])
    assert notifier.connects == 2
    new_pid = notifier.server_pid
    assert new_pid not in (None, pid)
    await only_listener_is(pool, new_pid)

    await pool.execute("SELECT pg_notify('hall_access', 'a2')")
    await pool.execute("SELECT pg_notify('hall_events', 'e2')")
    await access.wait_for(["up", "notify a1", "down", "up", "notify a2"])
    await events.wait_for(["up", "notify e1", "down", "up", "notify e2"])

    # The last subscriber of a channel leaving UNLISTENs it; the other channel still works.
    await notifier.unsubscribe(sub_events)
    await pool.execute("SELECT pg_notify('hall_events', 'e3')")
    await pool.execute("SELECT pg_notify('hall_access', 'a3')")
    await access.wait_for(["up", "notify a1", "down", "up", "notify a2", "notify a3"])
    assert events.log == ["up", "notify e1", "down", "up", "notify e2"]


async def test_a_failing_subscriber_does_not_stop_the_others(
    notifier: Notifier, pool: asyncpg.Pool
) -> None:
    good = Recorder()

    def broken(_payload: str) -> None:
        raise RuntimeError("bug")

    await notifier.subscribe("hall_events", broken)
    await notifier.subscribe("hall_events", good.notify, on_up=good.up)
    await good.wait_for(["up"])
    await pool.execute("SELECT pg_notify('hall_events', 'e1')")
    await good.wait_for(["up", "notify e1"])


async def test_close_ends_the_task_and_the_connection(
    database_url: str, pool: asyncpg.Pool
) -> None:
    notifier = Notifier()
    notifier.start(database_url)
    await asyncio.wait_for(notifier.up.wait(), 5)
    await only_listener_is(pool, notifier.server_pid)
    await notifier.close()
    assert not notifier.up.is_set()
    await only_listener_is(pool, None)


async def test_retry_now_cuts_the_backoff_short(database_url: str) -> None:
    """After a restart of the embedded server the supervisor calls retry_now(): the LISTEN
    connection comes back at once instead of after the current backoff step."""
    attempts = asyncio.Event()
    refused = True

    async def connect() -> asyncpg.Connection:
        attempts.set()
        if refused:
            raise ConnectionRefusedError(111, "Connection refused")
        conn: asyncpg.Connection = await asyncpg.connect(database_url)
        return conn

    notifier = Notifier(connect, check_s=0.5, backoff_s=(60.0, 60.0))
    notifier.start()
    try:
        await asyncio.wait_for(attempts.wait(), 5)  # refused: now waiting 60 s
        refused = False
        notifier.retry_now()
        await asyncio.wait_for(notifier.up.wait(), 5)
        assert notifier.connects == 1
    finally:
        await notifier.close()
