"""Keeps the embedded PostgreSQL of this process's data dir running.

Each server process on an embedded data dir runs one ``Supervisor``: it checks twice a second
that the postmaster lives (a pid check, no connection) and restarts it when it is gone
(``EmbeddedPostgres.ensure_running``, under the data dir's lock, so of several processes one
restarts it and the others find it running). After a restart it calls ``on_restart`` so the
process drops its dead pooled connections and re-opens its LISTEN connection at once instead
of at the next backoff step. Requests meanwhile get a 503 with Retry-After
(hall.storage.db.CONNECTION_ERRORS, hall.web.problems).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from hall.storage.embedded import EmbeddedPostgres

log = logging.getLogger(__name__)


class Supervisor:
    def __init__(
        self,
        server: EmbeddedPostgres,
        *,
        check_s: float = 0.5,
        on_restart: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.server = server
        self.check_s = check_s
        self.on_restart = on_restart
        self.restarts = 0  # restarts done by this process
        self.outages = 0  # times this process saw the server gone
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="embedded-postgres-supervisor")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        down_since: float | None = None
        while True:
            if self.server.server_pid() is None:
                if down_since is None:
                    down_since = loop.time()
                    self.outages += 1
                    log.error("embedded PostgreSQL in %s is not running", self.server.pgdata)
                try:
                    restarted = await asyncio.to_thread(self.server.ensure_running)
                except Exception:
                    log.exception("restarting embedded PostgreSQL failed; trying again")
                    restarted = False
                if self.server.server_pid() is not None:
                    self.restarts += restarted
                    log.warning(
                        "embedded PostgreSQL is back after %.1f s (%s)",
                        loop.time() - down_since,
                        "restarted here" if restarted else "restarted by another process",
                    )
                    down_since = None
                    if self.on_restart is not None:
                        try:
                            await self.on_restart()
                        except Exception:
                            log.exception("on_restart failed")
                elif self.server.operator_mode() == "stopped":
                    log.debug("embedded PostgreSQL stopped by the operator; not restarting")
            await asyncio.sleep(self.check_s)
