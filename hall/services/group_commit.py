"""Group commit: writes that contend for one row share one transaction and one WAL flush.

Issuing a ticket numbers it by updating its number group's counter row, and that row stays
locked until the commit's WAL flush is done (4–8 ms on an ordinary disk). Issued one per
transaction, the tickets of one group therefore follow each other at the disk's flush rate,
whatever the CPU could do. Here the jobs that arrive for a key while a batch of that key is
committing wait for it, then run together, one after the other on one connection, in one
transaction: one lock hand-over and one flush for the batch. A job that arrives when nothing
of its key is in flight runs at once, alone, so an idle hall pays no delay.

Nobody is answered before the commit. If any job of a batch raises, the batch is rolled back
and every job in it is told :class:`BatchAborted`; the caller then does its work alone, the
way it would without group commit, and meets its own error there. A failure of the COMMIT
itself is passed on as it is, never retried: the commit may have happened.

A job that is one statement (:class:`Statement`, an issued ticket without an idempotency
key) need not be run as a coroutine of its own: a batch made only of one such statement runs
as one pipeline, every execution's Bind and Execute and a single Sync sent at once
(asyncpg's ``fetchmany``), which PostgreSQL runs as one implicit transaction committed at the
Sync. That is one round trip for the batch instead of BEGIN, one per ticket and COMMIT: less
work in the server and in PostgreSQL per ticket, and the number group's lock is held for a
shorter time. An error PostgreSQL reports for the pipeline means none of it was committed
(BatchAborted, as above); only a connection lost on the way leaves that unknown. A statement
that may return no row (a quota's refusal) is run in an explicit transaction instead, which
is rolled back unless every execution returned its row.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import asyncpg

from hall.domain.errors import Unavailable
from hall.storage.uow import acquire

T = TypeVar("T")


@dataclass(frozen=True, slots=True, eq=False)
class Statement:
    """A job that is one statement returning at most one row: ``job(conn)`` gives that row
    (or None), and batches of the same statement run as one pipeline (module docstring)."""

    sql: str
    args: Sequence[object]
    before: Callable[[asyncpg.Connection], None]
    """Called with the connection before the statement is sent (commit notices)."""
    one_row: bool
    """True when the statement returns exactly one row whenever it succeeds; a batch of
    such statements is committed by the pipeline itself."""

    async def __call__(self, conn: asyncpg.Connection) -> asyncpg.Record | None:
        self.before(conn)
        row: asyncpg.Record | None = await conn.fetchrow(self.sql, *self.args)
        return row


Job = Callable[[asyncpg.Connection], Awaitable[Any]]

MAX_BATCH = 32
"""Jobs per transaction: enough to cover a flush at peak rates, few enough that the batch's
round trips do not stretch its latency."""


class BatchAborted(Exception):
    """A job of the batch failed before the commit; nothing of the batch was written."""


class _RowMissing(Exception):
    """A pipelined statement returned no row: its transaction must not commit."""


class GroupCommit:
    def __init__(self, pool: asyncpg.Pool, max_batch: int = MAX_BATCH) -> None:
        self.pool = pool
        self.max_batch = max_batch
        self._pending: dict[Hashable, collections.deque[tuple[Job, asyncio.Future[Any]]]] = {}
        self._runners: set[asyncio.Task[None]] = set()
        self.batches = 0
        self.jobs = 0

    async def run(self, key: Hashable, job: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """``job(conn)``'s result once its batch has committed."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        queue = self._pending.get(key)
        if queue is None:
            queue = self._pending[key] = collections.deque()
            runner = asyncio.create_task(self._drain(key, queue), name=f"group-commit {key}")
            self._runners.add(runner)
            runner.add_done_callback(self._runners.discard)
        queue.append((job, future))
        return cast("T", await future)

    async def _drain(
        self, key: Hashable, queue: collections.deque[tuple[Job, asyncio.Future[Any]]]
    ) -> None:
        try:
            while queue:
                size = min(len(queue), self.max_batch)
                await self._batch([queue.popleft() for _ in range(size)])
        finally:
            # No await since the loop's last check: nothing can have been queued meanwhile.
            del self._pending[key]
            for _, future in queue:
                if not future.done():
                    future.cancel()

    async def _batch(self, batch: list[tuple[Job, asyncio.Future[Any]]]) -> None:
        self.batches += 1
        self.jobs += len(batch)
        results: list[Any] = []
        committing = False
        pipeline = _pipeline_of(batch)
        implicit = pipeline is not None and all(s.one_row for s in pipeline)
        try:
            async with acquire(self.pool) as conn:
                if pipeline is not None:
                    for statement in pipeline:
                        statement.before(conn)
                    sql, args = pipeline[0].sql, [s.args for s in pipeline]
                    if implicit:
                        # Committed by the pipeline's Sync: from here on it may be written.
                        committing = True
                        results.extend(await conn.fetchmany(sql, args))
                    else:
                        async with conn.transaction():
                            results.extend(await conn.fetchmany(sql, args))
                            if len(results) != len(batch):
                                raise _RowMissing  # rolled back: each is run alone
                            committing = True
                    if len(results) != len(batch):
                        # Committed, but which row is whose is lost: say so to everyone
                        # rather than guess (a statement said to return one row did not).
                        raise AssertionError("a pipelined statement returned no row")
                elif len(batch) == 1:
                    # Alone: the job's own statement autocommits, as without group commit.
                    committing = True
                    results.append(await batch[0][0](conn))
                else:
                    async with conn.transaction():
                        for job, _ in batch:
                            results.append(await job(conn))
                        # Leaving the block commits: from here on it may have been written.
                        committing = True
        except Exception as exc:
            # Before the commit nothing was written: the callers may do their work again.
            # At the commit (or a lone autocommitted job losing its connection) it may have
            # been written: they hear the error itself.
            ambiguous = committing and (len(batch) > 1 or isinstance(exc, Unavailable))
            if implicit and isinstance(exc, asyncpg.PostgresError):
                # PostgreSQL reports an error only for a pipeline it did not commit (a
                # connection lost on the way is Unavailable, raised by acquire).
                ambiguous = False
            error = exc if ambiguous else BatchAborted()
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        except BaseException:
            for _, future in batch:
                if not future.done():
                    future.cancel()
            raise
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)


def _pipeline_of(batch: list[tuple[Job, asyncio.Future[Any]]]) -> list[Statement] | None:
    """The batch's statements when it can run as one pipeline: two or more, all one SQL."""
    statements = [job for job, _ in batch if isinstance(job, Statement)]
    if len(batch) < 2 or len(statements) < len(batch):
        return None
    if any(s.sql != statements[0].sql for s in statements):
        return None
    return statements
