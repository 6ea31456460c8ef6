"""Every server process follows the loaded configuration without a restart.

``apply_config`` notifies ``CONFIG_CHANNEL`` with the new snapshot's id at commit. The follower
hears it on the process's shared LISTEN connection (hall.storage.notify), reads the latest
snapshot and puts it in force with ``Directory.replace``. After a reconnect (``on_up``) it reads
the latest snapshot again, since a notification sent while the connection was down is lost.
Reloads run one at a time and coalesce: a burst of loads ends with the last one in force.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from hall.services.directory import Directory
from hall.storage.config_store import CONFIG_CHANNEL, latest_snapshot
from hall.storage.notify import Notifier, Subscription

log = logging.getLogger(__name__)


class ConfigFollower:
    def __init__(self, pool: asyncpg.Pool, directory: Directory, notifier: Notifier) -> None:
        self.pool = pool
        self.directory = directory
        self.notifier = notifier
        self.reloads = 0
        self._wanted = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._sub: Subscription | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="config-follower")
        self._sub = await self.notifier.subscribe(
            CONFIG_CHANNEL, lambda _payload: self._wanted.set(), on_up=self._wanted.set
        )

    async def close(self) -> None:
        if self._sub is not None:
            await self.notifier.unsubscribe(self._sub)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await self._wanted.wait()
            self._wanted.clear()
            try:
                await self.reload()
            except Exception:
                # The snapshot was valid when stored; a failure here is the database's. The
                # next notice or reconnect tries again; the running config stays in force.
                log.exception("reloading the configuration failed")

    async def reload(self) -> bool:
        """Put the latest snapshot in force if it is newer; True when it changed."""
        current = self.directory.snapshot_id
        async with self.pool.acquire() as conn:
            latest = await conn.fetchval("SELECT max(id) FROM config_snapshots")
            if latest is None or (current is not None and latest <= current):
                return False  # e.g. this process's own load at start-up
            found = await latest_snapshot(conn)
        if found is None:
            return False
        snapshot_id, config = found
        self.directory.replace(config, snapshot_id)
        self.reloads += 1
        log.info("configuration snapshot %d in force", snapshot_id)
        return True
