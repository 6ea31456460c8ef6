"""A short-lived, per-process cache of session lookups, invalidated across servers by NOTIFY.

Staff terminals send several requests a second; looking their session up in the database on
each one was a round trip per request. The cache only ever *accepts*: a cached session that
looks expired or idle is looked up again, so every refusal comes from the database.

It is trusted only while the process's LISTEN connection (hall.storage.notify) is up, and
emptied whenever that connection is (re)established. Logout and revocation drop the entries
of this process at once and announce the session ids on ``access_repo.ACCESS_CHANNEL``, so other
servers drop theirs when the revoking transaction commits; config reloads and account changes
announce "forget everything". Changes nobody announces (hand-written SQL) are picked up within
``ttl_s``. A lookup that raced an announcement is not cached (the generation counter).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import replace
from datetime import datetime

from aiohttp import web

from hall.storage import access_repo
from hall.storage.access_repo import SessionKind, SessionRow
from hall.storage.notify import Notifier

log = logging.getLogger(__name__)

CacheKey = tuple[bytes, SessionKind]


class SessionCache:
    """Usable sessions by (token hash, kind), each trusted for ``ttl_s`` after its lookup."""

    def __init__(self, ttl_s: float = 5.0, max_entries: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.generation = 0
        """Bumped by every invalidation; a lookup started before one is not cached."""
        self.listening = False
        self.hits = 0
        self._rows: dict[CacheKey, tuple[float, SessionRow]] = {}

    def get(self, key: CacheKey) -> SessionRow | None:
        if not self.listening:
            return None
        found = self._rows.get(key)
        if found is None:
            return None
        if time.monotonic() - found[0] >= self.ttl_s:
            del self._rows[key]
            return None
        self.hits += 1
        return found[1]

    def put(self, key: CacheKey, row: SessionRow, generation: int) -> None:
        """Remember a usable session looked up when the generation was ``generation``."""
        if not self.listening or generation != self.generation:
            return
        if len(self._rows) >= self.max_entries:
            self._rows.clear()
        self._rows[key] = (time.monotonic(), row)

    def touched(self, key: CacheKey, at: datetime) -> None:
        found = self._rows.get(key)
        if found is not None:
            self._rows[key] = (found[0], replace(found[1], last_seen_at=at))

    def drop(self, session_ids: Iterable[int]) -> None:
        ids = set(session_ids)
        self.generation += 1
        for key in [k for k, (_, row) in self._rows.items() if row.id in ids]:
            del self._rows[key]

    def clear(self) -> None:
        self.generation += 1
        self._rows.clear()

    def on_notice(self, payload: str) -> None:
        if payload == access_repo.FLUSH_ALL:
            self.clear()
        elif payload.isdigit():
            self.drop([int(payload)])
        elif payload.startswith(access_repo.DEVICE_PREFIX) and payload[1:].isdigit():
            pass  # device tokens are not cached here; open websockets are closed by the hub
        else:
            log.warning("ignoring malformed %s payload %r", access_repo.ACCESS_CHANNEL, payload)
            self.clear()

    def start_trusting(self) -> None:
        """The LISTEN connection is (again) up: forget what may have been missed, then trust."""
        self.clear()
        self.listening = True

    def stop_trusting(self) -> None:
        """The LISTEN connection is down: announcements may be missed, so trust nothing."""
        self.listening = False
        self.clear()


def cache_lifecycle(
    cache: SessionCache, notifier_of: web.AppKey[Notifier]
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context subscribing the cache to the process's LISTEN connection
    (hall.storage.notify); append it after the notifier's."""

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        notifier = app[notifier_of]
        sub = await notifier.subscribe(
            access_repo.ACCESS_CHANNEL,
            cache.on_notice,
            on_up=cache.start_trusting,
            on_down=cache.stop_trusting,
        )
        try:
            yield
        finally:
            cache.stop_trusting()
            await notifier.unsubscribe(sub)

    return lifecycle
