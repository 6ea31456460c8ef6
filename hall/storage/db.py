"""Connection pool and the migration runner."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from importlib import resources
from typing import Any, TypeVar

import asyncpg
import pydantic_core
from asyncpg.pool import PoolConnectionProxy

from hall.domain.errors import Unavailable
from hall.storage.commit_notices import IN_PROCESS, SETTING, CommitNotices

log = logging.getLogger(__name__)
T = TypeVar("T")

# Every way asyncpg or the OS says "the database is not there now". Requests that meet one
# are answered 503 with Retry-After (hall.web.problems), never 500: the server (or the
# embedded server's supervisor, hall.storage.supervisor) restores the connection by itself.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, socket file gone, timed out (TimeoutError is an OSError)
    asyncpg.PostgresConnectionError,  # class 08, incl. ConnectionDoesNotExistError
    asyncpg.CannotConnectNowError,  # 57P03: starting up, recovering after a crash
    asyncpg.AdminShutdownError,  # 57P01: server shutting down, postmaster gone
    asyncpg.CrashShutdownError,  # 57P02: another backend crashed
    asyncpg.TooManyConnectionsError,  # 53300
    asyncpg.InterfaceError,  # "connection is closed", "another operation is in progress"
    asyncpg.InternalClientError,  # protocol state broken by a connection lost mid-call
)
OUTAGE_DETAIL = "数据库暂时无法连接，系统正在自动恢复，请稍后重试"
OUTAGE_RETRY_AFTER_S = 3


def outage() -> Unavailable:
    """The 503 a request gets while the database is unreachable."""
    return Unavailable(OUTAGE_DETAIL, retry_after_s=OUTAGE_RETRY_AFTER_S)


class _ConnectionErrorsOnOneLine(logging.Filter):
    """asyncpg's pool logs each failed reconnect with a traceback; during an outage that is
    hundreds of tracebacks that say one thing. Keep one line each, with the error."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, CONNECTION_ERRORS):
            record.msg = f"{record.getMessage()} ({type(error).__name__}: {error})"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


logging.getLogger("asyncpg.pool").addFilter(_ConnectionErrorsOnOneLine())

# Right after a kill -9 of a server's owner, or while PostgreSQL is still starting, connects are
# refused for a couple of seconds; keep trying for this long before giving up.
CONNECT_RETRY_S = 15.0
_MIGRATION_LOCK = 7_101_001  # pg_advisory_lock key: two servers starting at once migrate in turn


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb is decoded by pydantic's Rust parser, about twice as fast as json.loads (a jsonb
    # array of 20 counters' states in 14 instead of 29 µs; events' details, the live feed)
    # and equal on all jsonb can hold: PostgreSQL refuses lone surrogates in jsonb, the one
    # input where the two differ. json keeps json.loads: it stores its text as given.
    await conn.set_type_codec(
        "jsonb", encoder=json.dumps, decoder=pydantic_core.from_json, schema="pg_catalog"
    )
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _release_as_is(conn: asyncpg.Connection) -> None:
    """Pool reset hook that sends nothing: asyncpg has already rolled back any open transaction
    and dropped listener callbacks before calling it.

    The default hook sends ``SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``
    on every release, one round trip per pooled use (a third of a counter action's). Nothing
    here leaves session state on a pooled connection: settings are ``SET LOCAL``, cursors live
    in transactions, the migration lock is released in ``finally``, and LISTEN runs on a
    connection of its own outside the pool (hall.storage.notify).
    """


class HallPool(asyncpg.Pool):  # type: ignore[misc]  # asyncpg is untyped
    """asyncpg's pool, with the release of an idle, healthy connection done in place.

    ``asyncpg.Pool.release`` runs every release in a task of its own (``asyncio.shield``, so
    that a cancelled caller cannot leave a connection half-released) under a timeout: a task,
    a timeout context and two more turns of the event loop per pooled use, which made
    acquiring and releasing cost about 20 µs of CPU (a drain request's ``act`` acquires once,
    so about 3 % of it). This pool's reset hooks (below) never wait for anything, so a
    connection that needs no ROLLBACK is released without a pause: nothing can cancel it
    half-way, and no task is needed. Every other case (a transaction still open, a closed,
    expired or worn-out connection, a cancellation under way) goes through asyncpg's own
    release, which rolls back, closes or replaces the connection as before.
    """

    async def release(
        self,
        connection: asyncpg.Connection,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (asyncpg's signature)
    ) -> None:
        holder = connection._holder if type(connection) is PoolConnectionProxy else None
        con = None if holder is None else connection._con
        if (
            holder is None
            or con is None
            or timeout is not None
            or holder._pool is not self
            or holder._in_use is None
            or not self._initialized
            or self._closed
            or self._reset is None
            or con.is_closed()
            or con.is_in_transaction()
            or con._top_xact is not None
            or con._protocol._is_cancelling()
            or holder._generation != self._generation
            or con._protocol.queries_count >= holder._max_queries
        ):
            await super().release(connection, timeout=timeout)
            return
        # What asyncpg's release does on this path, in its order, without the task.
        con._on_release()
        holder._timeout = None
        try:
            con._listeners.clear()
            con._log_listeners.clear()
            await self._reset(con)  # ours: returns without suspending
        except BaseException:
            con.terminate()  # as asyncpg does when a reset fails; the pool replaces it
            raise
        holder._release()
        holder._setup_inactive_callback()


async def _retrying(what: str, connect: Callable[[], Awaitable[T]]) -> T:
    """``connect()``, retrying refused connections for up to ``CONNECT_RETRY_S``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CONNECT_RETRY_S
    delay = 0.05
    while True:
        try:
            return await connect()
        except (OSError, asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError) as exc:
            if loop.time() + delay > deadline:
                raise
            log.info("database not reachable yet for %s (%s); retrying", what, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)


async def connect_pool(
    dsn: str,
    *,
    min_size: int = 2,
    max_size: int = 20,
    commit_notices: CommitNotices | None = None,
) -> asyncpg.Pool:
    """Open a pool, retrying refused connections for up to ``CONNECT_RETRY_S``.

    With ``commit_notices`` (a server process, whose sequencer listens to it) the pool's
    writes tell the sequencer in process instead of NOTIFYing at commit
    (hall.storage.commit_notices).
    """
    # Our statements are prepared once per connection and their parameters never change the
    # best plan (partial indexes are matched by literals in the SQL), so planning each
    # execution anew is wasted work: bench/core.py measured 25-40 % less PostgreSQL CPU per
    # operation with generic plans.
    settings = {"plan_cache_mode": "force_generic_plan"}
    init, reset = _init_connection, _release_as_is
    if commit_notices is not None:
        settings[SETTING] = IN_PROCESS
        notices = commit_notices

        async def init_following(conn: asyncpg.Connection) -> None:
            await _init_connection(conn)
            notices.connected(conn)

        async def release_telling(conn: asyncpg.Connection) -> None:
            notices.released(conn)

        init, reset = init_following, release_telling

    async def create() -> asyncpg.Pool:
        # asyncpg.create_pool's defaults, with the pool class above.
        pool = HallPool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            max_queries=50000,
            max_inactive_connection_lifetime=300.0,
            loop=None,
            connection_class=asyncpg.Connection,
            record_class=asyncpg.Record,
            init=init,
            reset=reset,
            server_settings=settings,
        )
        await pool  # a failed start-up closes what it opened (asyncpg)
        return pool

    return await _retrying("the pool", create)


LISTEN_APPLICATION_NAME = "hall-listen"


async def connect_listener(dsn: str) -> asyncpg.Connection:
    """One connection outside the pool for LISTEN (hall.storage.notify), with the pool's retry.

    It is named ``hall-listen`` in ``pg_stat_activity``.
    """

    async def connect() -> asyncpg.Connection:
        conn: asyncpg.Connection = await asyncpg.connect(
            dsn, server_settings={"application_name": LISTEN_APPLICATION_NAME}
        )
        return conn

    return await _retrying("the LISTEN connection", connect)


def migration_files() -> list[tuple[str, str]]:
    """(name, sql) of every shipped migration, in order."""
    folder = resources.files("hall.storage") / "migrations"
    files = sorted(
        (entry.name, entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    )
    return files


def _all_migrations(extra: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The kernel's migrations and ``extra`` ones (feature folders), in file-name order."""
    files = migration_files() + list(extra)
    names = [name for name, _ in files]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise ValueError(f"migration file names used twice: {', '.join(clash)}")
    return sorted(files)


async def migrate(conn: asyncpg.Connection, extra: Iterable[tuple[str, str]] = ()) -> list[str]:
    """Apply pending migrations in order, each in its own transaction; return their names.

    ``extra`` are the (name, sql) files of the feature slices' folders (hall.app passes them);
    number ranges keep their names apart and in a sensible order.
    """
    files = _all_migrations(extra)
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   name text PRIMARY KEY,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
        for name, sql in files:
            if name in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
            log.info("applied migration %s", name)
            applied_now.append(name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
    return applied_now


async def database_ok(pool: asyncpg.Pool) -> dict[str, Any]:
    """Health probe for /healthz."""
    try:
        async with asyncio.timeout(2):
            version = await pool.fetchval("SHOW server_version")
    except (*CONNECTION_ERRORS, asyncpg.PostgresError) as exc:
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "server_version": version}
