"""The composition root: create_app(settings) wires storage, services, the web edge and the
feature slices (the only kernel module that imports a feature package)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web

import counters.feature
import display.feature
import evaluator.feature
import kiosk.feature
import manager.feature
from hall.config.loader import load_config
from hall.config.models import HallConfig
from hall.domain.errors import Unavailable
from hall.features import Feature, install, migration_sources
from hall.ports import Clock, SystemClock
from hall.services.config_follow import ConfigFollower
from hall.services.directory import Directory
from hall.services.queue import QueueService
from hall.storage.commit_notices import CommitNotices
from hall.storage.config_store import apply_config, latest_config
from hall.storage.db import connect_pool, migrate
from hall.storage.embedded import EmbeddedPostgres, default_data_dir
from hall.storage.notify import Notifier
from hall.storage.sequencer import Sequencer
from hall.storage.supervisor import Supervisor
from hall.web import api
from hall.web.access import AccessSettings, setup_access
from hall.web.bridge import setup_bridge
from hall.web.live import setup_live
from hall.web.pairing import setup_pairing
from hall.web.problems import (
    last_resort_middleware,
    problem_middleware,
    quiet_bad_http_requests,
)
from hall.web.routes import register
from hall.web.start_page import setup_start_page
from hall.web.state import (
    CLOCK,
    COMMIT_NOTICES,
    DIRECTORY,
    NOTIFIER,
    POOL,
    QUEUE,
    READ_TIMEOUT,
)
from hall.web.validation import edge_middleware

log = logging.getLogger(__name__)

FEATURES: tuple[Feature, ...] = (
    kiosk.feature.FEATURE,
    counters.feature.FEATURE,
    display.feature.FEATURE,
    evaluator.feature.FEATURE,
    manager.feature.FEATURE,
)
"""Every feature slice, in the order its tasks start."""


def feature_migrations() -> list[tuple[str, str]]:
    """(name, sql) of every feature's migrations folder, checked against its number range."""
    return [file for source in migration_sources(FEATURES) for file in source.files()]


async def migrate_all(conn: asyncpg.Connection) -> list[str]:
    """Apply the kernel's and the features' pending migrations (start-up, ``hall db migrate``)."""
    return await migrate(conn, feature_migrations())


@dataclass
class Settings:
    database_url: str | None = None
    data_dir: Path | None = None
    config_path: Path | None = None
    config: HallConfig | None = None
    clock: Clock = field(default_factory=SystemClock)
    pool_size: int = 10
    """Database connections per process. Use cases of one hall serialise on its event
    sequence at commit, so more connections than this mostly add lock waits (bench/core.py:
    10 connections gave 1.7x the throughput of 40)."""
    access: AccessSettings = field(default_factory=AccessSettings)
    read_timeout_s: float = 15.0
    """A request whose headers or body take longer than this to arrive is dropped (slowloris):
    headers through the server's keep-alive timer (``server_options``), bodies by the edge."""


def server_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``web.run_app``/``AppRunner`` that belong to the app's settings.

    aiohttp closes a connection whose request headers are incomplete when the keep-alive timer
    fires (it runs from the connection's start and from each response); so the keep-alive
    timeout is also the header read timeout.
    """
    return {"keepalive_timeout": settings.read_timeout_s}


EMBEDDED = web.AppKey("embedded", EmbeddedPostgres)
SEQUENCER = web.AppKey("sequencer", Sequencer)
SUPERVISOR = web.AppKey("supervisor", Supervisor)
CONFIG_FOLLOWER = web.AppKey("config_follower", ConfigFollower)


async def resolve_database(settings: Settings) -> tuple[str, EmbeddedPostgres | None]:
    """The DSN to use, starting the embedded server when no URL is configured."""
    if settings.database_url:
        return settings.database_url, None
    server = EmbeddedPostgres(settings.data_dir or default_data_dir())
    dsn = await asyncio.to_thread(server.start)
    return dsn, server


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        middlewares=[last_resort_middleware, problem_middleware], client_max_size=64 * 1024
    )
    quiet_bad_http_requests()
    app[CLOCK] = settings.clock
    app[READ_TIMEOUT] = settings.read_timeout_s
    app[NOTIFIER] = Notifier()
    app[COMMIT_NOTICES] = CommitNotices()
    dsn_of_app: list[str] = []

    async def database(app: web.Application) -> AsyncIterator[None]:
        dsn, server = await resolve_database(settings)
        supervisor: Supervisor | None = None
        dsn_of_app[:] = [dsn]
        if server is not None:
            app[EMBEDDED] = server
        try:
            pool = await connect_pool(
                dsn, max_size=settings.pool_size, commit_notices=app[COMMIT_NOTICES]
            )
        except BaseException:
            if server is not None:
                await asyncio.to_thread(server.stop)
            raise
        try:
            async with pool.acquire() as conn:
                await migrate_all(conn)
                config = settings.config
                if config is None and settings.config_path is not None:
                    config = load_config(settings.config_path)
                if config is not None:
                    await apply_config(conn, config)
                else:
                    config = await latest_config(conn)
                if config is None:
                    raise Unavailable(
                        "没有大厅配置：请先运行 hall config load FILE 或使用 --config"
                    )
            app[POOL] = pool
            snapshot_id = await pool.fetchval("SELECT max(id) FROM config_snapshots")
            app[DIRECTORY] = Directory(config, snapshot_id)
            app[QUEUE] = QueueService(pool, app[DIRECTORY], settings.clock)
            if server is not None:

                async def reconnect() -> None:
                    # Connections to the dead server are useless: replace them all now.
                    await pool.expire_connections()
                    app[NOTIFIER].retry_now()

                supervisor = Supervisor(server, on_restart=reconnect)
                supervisor.start()
                app[SUPERVISOR] = supervisor
            yield
        finally:
            if supervisor is not None:
                await supervisor.close()
            if QUEUE in app:
                with contextlib.suppress(Exception):  # a statistic: never blocks a shutdown
                    await app[QUEUE].flush_estimates()
            await pool.close()
            if server is not None:
                # Gives this process's lease back; the server stops only when no other
                # process uses it (hall.storage.embedded).
                await asyncio.to_thread(server.stop)

    async def notifications(app: web.Application) -> AsyncIterator[None]:
        # One LISTEN connection for the whole process, outside the pool; the session cache,
        # the live hub and the bridge hub subscribe to it in their own (later) steps.
        app[NOTIFIER].start(dsn_of_app[0])
        try:
            yield
        finally:
            await app[NOTIFIER].close()

    async def sequencing(app: web.Application) -> AsyncIterator[None]:
        # Numbers committed events for the live feed (migration 0006); every process runs one.
        sequencer = Sequencer(app[POOL], app[NOTIFIER], lambda: app[DIRECTORY].hall_ids())
        app[SEQUENCER] = sequencer
        app[COMMIT_NOTICES].add(sequencer.poke)
        await sequencer.start()
        try:
            yield
        finally:
            app[COMMIT_NOTICES].remove(sequencer.poke)
            await sequencer.close()

    async def config_following(app: web.Application) -> AsyncIterator[None]:
        # A config loaded anywhere (CLI, admin page, another process) comes into force here.
        follower = ConfigFollower(app[POOL], app[DIRECTORY], app[NOTIFIER])
        app[CONFIG_FOLLOWER] = follower
        await follower.start()
        try:
            yield
        finally:
            await follower.close()

    app.cleanup_ctx.append(database)
    app.cleanup_ctx.append(notifications)
    app.cleanup_ctx.append(sequencing)
    app.cleanup_ctx.append(config_following)
    register(app, api.ROUTES)
    setup_access(app, settings.access)
    # Inside the access middleware, so refused hostile input is audited like any refusal.
    app.middlewares.append(edge_middleware)
    setup_live(app)
    setup_bridge(app)
    setup_pairing(app)
    setup_start_page(app)
    for feature in FEATURES:
        install(app, feature)
    return app
