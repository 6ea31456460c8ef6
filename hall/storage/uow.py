"""Unit of work: one transaction, buffered events, and a commit that writes them.

Buffered events are inserted in the last statement before COMMIT, after the statements that
lock the rows they are about; the sequencer numbers them once committed (migration 0006).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Self, TypeVar

import asyncpg

from hall.domain.tickets import Event
from hall.storage import repo
from hall.storage.access_repo import AuditEntry, audit_values
from hall.storage.commit_notices import note_events
from hall.storage.db import CONNECTION_ERRORS, outage

log = logging.getLogger(__name__)

# Serialization failures and deadlocks are retried this many times with a short pause; both
# are rare at hall scale and always safe to retry because nothing was committed.
MAX_ATTEMPTS = 5
_RETRYABLE = (asyncpg.SerializationError, asyncpg.DeadlockDetectedError)

T = TypeVar("T")


@dataclasses.dataclass
class AuditSlot:
    """The audit row of the current request, for the first unit of work that commits events.

    The web edge fills ``entry`` (its ``status`` is what the response will be if the action
    commits); ``committed`` tells it afterwards whether the row went in with the action.
    """

    entry: AuditEntry | None = None
    committed: bool = False


PENDING_AUDIT: contextvars.ContextVar[AuditSlot | None] = contextvars.ContextVar(
    "pending_audit", default=None
)


async def _connection(pool: asyncpg.Pool) -> asyncpg.Connection:
    """A pooled connection; an unreachable database is Unavailable (503), not a crash."""
    try:
        conn: asyncpg.Connection = await pool.acquire()
    except CONNECTION_ERRORS as exc:
        raise outage() from exc
    return conn


async def _release(pool: asyncpg.Pool, conn: asyncpg.Connection) -> None:
    """Give ``conn`` back; a connection that died meanwhile is asyncpg's to replace."""
    with contextlib.suppress(*CONNECTION_ERRORS):
        await pool.release(conn)


def acquire(pool: asyncpg.Pool) -> _Pooled:
    """A pooled connection for the block, released after it (see ``_connection``).

    A connection lost inside the block is Unavailable (503) too.
    """
    return _Pooled(pool)


class _Pooled:
    """``acquire``'s context manager. A class rather than a generator: every counter action
    and every group-commit batch takes one, and ``contextlib.asynccontextmanager``'s
    generator cost about 6 µs more per use."""

    __slots__ = ("_conn", "_pool")

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._conn: asyncpg.Connection | None = None

    async def __aenter__(self) -> asyncpg.Connection:
        self._conn = await _connection(self._pool)
        return self._conn

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn = self._conn, None
        assert conn is not None
        try:
            if isinstance(exc, CONNECTION_ERRORS):
                raise outage() from exc
        finally:
            await _release(self._pool, conn)


class UnitOfWork:
    """Wraps one connection and transaction; events added are written by ``commit``.

    With ``releasing``, a unit that committed gives its connection back to the pool in a task
    kept in that set, and the block's caller goes on at once: the release is a task hop and
    the pool's reset hook (the commit notices' listeners) ahead of it, which a caller that
    answers a waiting device need not wait for. A unit that did not commit releases as usual.
    """

    def __init__(
        self, pool: asyncpg.Pool, *, releasing: set[asyncio.Task[None]] | None = None
    ) -> None:
        self._pool = pool
        self._releasing = releasing
        self._conn: asyncpg.Connection | None = None
        self._tx: asyncpg.transaction.Transaction | None = None
        self.events: list[tuple[str, Event]] = []
        # Counters whose row lock this transaction holds, as it has them: as its statement
        # that locked one read it (a device event's key, claim_event_locking_counter), or as
        # its last counter action's write left it (repo.read_after_write). A counter action
        # in this transaction decides on that, without reading the counter again.
        self.counters: dict[tuple[str, int], repo.CounterRead] = {}
        self._done = False

    @property
    def conn(self) -> asyncpg.Connection:
        assert self._conn is not None, "unit of work not entered"
        return self._conn

    async def __aenter__(self) -> Self:
        conn = await _connection(self._pool)
        try:
            tx = conn.transaction()
            await tx.start()
        except BaseException as exc:
            # __aexit__ does not run when __aenter__ fails: a BEGIN cancelled (a shutdown) or
            # failed would otherwise keep the connection from the pool, and Pool.close waits
            # for it for ever.
            await _release(self._pool, conn)
            if isinstance(exc, CONNECTION_ERRORS):
                raise outage() from exc
            raise
        self._conn, self._tx = conn, tx
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._conn is not None
        assert self._tx is not None
        if self._done and exc is None and self._releasing is not None:
            task = asyncio.create_task(_release(self._pool, self._conn), name="uow-release")
            self._releasing.add(task)
            task.add_done_callback(self._releasing.discard)
            self._conn = None
            return
        try:
            if not self._done:
                await self._tx.rollback()
        except CONNECTION_ERRORS as lost:
            exc = exc or lost  # nothing to roll back on a dead connection
        finally:
            await _release(self._pool, self._conn)
            self._conn = None
        if isinstance(exc, CONNECTION_ERRORS):
            # The database went away mid-transaction: whatever layer noticed first (a
            # statement, COMMIT, rollback), the caller sees one Unavailable (503). Whether a
            # lost COMMIT took effect is what idempotency keys are for.
            raise outage() from exc

    def add(self, hall_id: str, event: Event) -> None:
        self.events.append((hall_id, event))

    async def commit(self) -> None:
        """Write buffered events and commit; the database numbers and announces them."""
        assert self._tx is not None
        conn = self.conn
        by_hall: dict[str, list[Event]] = {}
        for hall_id, event in self.events:
            by_hall.setdefault(hall_id, []).append(event)
        slot = PENDING_AUDIT.get()
        audit = slot.entry if slot is not None and not slot.committed else None
        written = False
        for hall_id in sorted(by_hall):
            a = repo.SqlArgs()
            query = repo.insert_events(a, hall_id, by_hall[hall_id])
            if audit is not None:  # with the first hall's events only
                query = f"WITH a AS ({repo.insert_audit(a, audit_values(audit))}) {query}"
            note_events(conn, hall_id)
            await conn.execute(query, *a.values)
            written, audit = written or audit is not None, None
        # A failed COMMIT ends the transaction too; rolling back after it would only hide
        # the real error behind asyncpg's "transaction is in error state".
        self._done = True
        await self._tx.commit()
        if slot is not None and written:
            slot.committed = True


async def run_in_transaction(
    pool: asyncpg.Pool,
    work: Callable[[UnitOfWork], Awaitable[T]],
    *,
    releasing: set[asyncio.Task[None]] | None = None,
) -> tuple[T, UnitOfWork]:
    """Run ``work`` in a fresh unit of work and commit it, retrying transient conflicts
    (``releasing``: see :class:`UnitOfWork`)."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            async with UnitOfWork(pool, releasing=releasing) as uow:
                result = await work(uow)
                await uow.commit()
                return result, uow
        except _RETRYABLE:
            if attempt == MAX_ATTEMPTS:
                raise
            log.info("transaction conflict, retrying (attempt %d)", attempt)
            await asyncio.sleep(0.002 * attempt)
    raise AssertionError("unreachable")
