"""The sequencer: numbers each hall's committed events right after their commit (migration 0006).

Writers insert events without a seq and take no hall-wide lock, so their commits (each a WAL
flush on the database as shipped) overlap. A server process's own writes poke its sequencer
when their connection is released (hall.storage.commit_notices, migration 0009); any other
writer's commit notifies ``hall_events`` with ``{"hall": id}``, which every server process
hears here. Either way the process runs ``sequence_events(hall)``, which numbers whatever is
committed and unnumbered, then notifies ``{"hall": id, "seq": n}`` for the live hubs of all
processes. Runs of one hall are coalesced: a poke that arrives while a run is under way makes
it run once more, however many arrive. Any process can do the work, so nothing waits for a
particular one: the first run after a (re)connect catches up on everything, and a sweep every
``sweep_s`` numbers what a process that died between its commit and its poke left behind.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import asyncpg

from hall.storage import repo
from hall.storage.db import CONNECTION_ERRORS
from hall.storage.notify import Notifier

log = logging.getLogger(__name__)

EVENTS_CHANNEL = "hall_events"
"""The channel of commit notices (``{"hall": id}``, from writers outside a server pool) and
of sequencer notices (``{"hall": id, "seq": n}``)."""
SPACING_S = 0.01
"""A hall's runs start at least this far apart: a write after a quiet spell is numbered at
once, writes that follow within the spacing wait for the next run together. Without it a busy
hall ran the sequencer about once per write, a round trip and a commit each."""
SWEEP_S = 5.0
"""How often each process looks for committed events nobody numbered (their writer died
between its commit and its poke): the longest such events wait."""


def writer_hall(payload: str) -> str | None:
    """The hall of a writer's commit notice (``{"hall": id}``), None for anything else."""
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(data, dict) or "seq" in data:
        return None
    hall = data.get("hall")
    return hall if isinstance(hall, str) else None


def sequenced(payload: str) -> tuple[str, int] | None:
    """(hall, last seq) of a sequencer's notice (``{"hall": id, "seq": n}``), else None."""
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    hall, seq = data.get("hall"), data.get("seq")
    if isinstance(hall, str) and isinstance(seq, int):
        return hall, seq
    return None


@dataclass(frozen=True, slots=True)
class LogPosition:
    """How far one read of a hall reached in its event log: the hall's last seq, and how many
    committed events were still unnumbered, as the read's snapshot saw them."""

    last_seq: int
    unnumbered: int


class Seen:
    """Which sequencer notices of a hall a reader's latest read already saw.

    A reader that recomputes something from the database after every commit it hears of (the
    bridge hub) hears of a write twice in the writer's own process: from the commit notice,
    and again from the sequencer's ``{"hall", "seq"}`` once it numbered the write's events.
    The second tells it nothing new when its read after the first saw every event the
    sequencer run numbered. The run may have numbered other processes' events too (any
    sequencer numbers all committed events of the hall), so which process sent the notice
    does not say it; what the read saw does.

    A run numbers exactly the hall's events that were committed and unnumbered in its
    snapshot, under the hall's lock, and its notice arrives after its commit, in commit order
    with the notices of the other runs. A read that saw ``last_seq = m`` and ``u`` unnumbered
    events:

    - saw everything a run with ``seq <= m`` numbered (that run had committed);
    - for the first run to commit after it, numbering ``(m, n]``: either that run's snapshot
      came before the read's, and the ``n - m`` events it numbered are among the read's
      ``u``; or it came after, and they include all of the read's ``u`` and more exactly
      when ``n - m > u``. So the read saw them all if and only if ``n - m <= u``, and the
      read's remaining ``u - (n - m)`` stand in the same relation to the next run.

    This holds only if the reader heard every notice sent after its read began: ``read`` with
    a LISTEN connection that was up (and stayed up, ``forget`` on its loss) since before the
    read started. Each notice must be judged in arrival order.
    """

    def __init__(self) -> None:
        self._reads: dict[str, list[int]] = {}  # hall -> [last seq seen, unnumbered left]

    def read(self, hall_id: str, position: LogPosition) -> None:
        """A read of the hall that started after the notices' LISTEN was up saw ``position``."""
        self._reads[hall_id] = [position.last_seq, position.unnumbered]

    def forget(self, hall_id: str | None = None) -> None:
        """Notices may have been lost (the LISTEN connection went down): trust no read."""
        if hall_id is None:
            self._reads.clear()
        else:
            self._reads.pop(hall_id, None)

    def notice(self, hall_id: str, seq: int) -> bool:
        """The sequencer numbered the hall's events up to ``seq``: True if the latest read
        saw every one of them; False if a new read is needed (and the read is forgotten)."""
        read = self._reads.get(hall_id)
        if read is None:
            return False
        last_seq, left = read
        if seq <= last_seq:
            return True
        if seq - last_seq <= left:
            read[0], read[1] = seq, left - (seq - last_seq)
            return True
        del self._reads[hall_id]
        return False


class Sequencer:
    """Runs ``sequence_events`` for halls whose writers committed, coalescing runs."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        notifier: Notifier,
        halls: Callable[[], Iterable[str]],
        *,
        backoff_s: tuple[float, float] = (0.05, 2.0),
        sweep_s: float = SWEEP_S,
        spacing_s: float = SPACING_S,
    ) -> None:
        self.pool = pool
        self.notifier = notifier
        self.halls = halls  # every hall of the config: caught up after each (re)connect
        self.backoff_s = backoff_s
        self.sweep_s = sweep_s
        self.spacing_s = spacing_s
        self._sweeper: asyncio.Task[None] | None = None
        self.runs = 0
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self._closed = False

    async def start(self) -> None:
        await self.notifier.subscribe(EVENTS_CHANNEL, self._on_notify, on_up=self._catch_up)
        self._sweeper = asyncio.create_task(self._sweep(), name="seq-sweep")

    async def close(self) -> None:
        self._closed = True
        tasks = list(self._tasks.values())
        if self._sweeper is not None:
            tasks.append(self._sweeper)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def poke(self, hall_id: str) -> None:
        """Number the hall's committed events soon; a run under way runs once more."""
        if self._closed:
            return
        if hall_id in self._tasks:
            self._again.add(hall_id)
            return
        self._tasks[hall_id] = asyncio.create_task(self._run(hall_id), name=f"seq-{hall_id}")

    def _on_notify(self, payload: str) -> None:
        hall = writer_hall(payload)
        if hall is not None:
            self.poke(hall)

    def _catch_up(self) -> None:
        # Commit notices sent while the LISTEN connection was down are lost: look at every hall.
        for hall in self.halls():
            self.poke(hall)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_s)  # a period, not synchronisation
            try:
                async with self.pool.acquire() as conn:
                    halls = await repo.halls_with_unsequenced_events(conn)
            except (*CONNECTION_ERRORS, asyncpg.PostgresError) as exc:
                log.warning("looking for unnumbered events failed (%s)", exc)
                continue
            for hall_id in halls:
                self.poke(hall_id)

    async def _run(self, hall_id: str) -> None:
        loop = asyncio.get_running_loop()
        delay = self.backoff_s[0]
        try:
            while True:
                self._again.discard(hall_id)
                started = loop.time()
                try:
                    async with self.pool.acquire() as conn:
                        await repo.sequence_events(conn, hall_id)
                    self.runs += 1
                    delay = self.backoff_s[0]
                    # Writes that come meanwhile wait for the next run a spacing after this
                    # one began, together, rather than one run per write (each run is a round
                    # trip and a commit of its own).
                    wait = started + self.spacing_s - loop.time()
                    if wait > 0:
                        await asyncio.sleep(wait)  # batching, not synchronisation
                except (*CONNECTION_ERRORS, asyncpg.PostgresError) as exc:
                    # Database trouble: the events wait, committed, until a run gets through.
                    log.warning("sequencing hall %s failed (%s); retrying", hall_id, exc)
                    self._again.add(hall_id)
                    await asyncio.sleep(delay)  # backoff before retrying, not synchronisation
                    delay = min(delay * 2, self.backoff_s[1])
                if hall_id not in self._again:
                    return
        finally:
            self._tasks.pop(hall_id, None)
