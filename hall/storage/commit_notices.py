"""Commit notices for the sequencer without NOTIFY in the writers' transactions (migration 0009).

A transaction that NOTIFYs takes one database-wide lock at commit and holds it until its
commit record is flushed (PostgreSQL serializes notifying commits so that notifications are
queued in commit order). When every write notified ``hall_events``, every write of every hall
therefore committed one WAL flush after the other: sampling ``pg_stat_activity`` during the
deep-queue drain of ``bench/core.py`` found about two of the server's connections waiting on
that lock (``Lock:object``) at any moment and the machine a third idle.

So a server process tells its own sequencer instead. Its pooled connections carry the
session setting ``hall.commit_notice = in_process``, which makes the events trigger skip the
NOTIFY; the statements that insert events note the hall on the connection
(:func:`note_events`), and when the connection goes back to the pool, after its commit or
rollback, :class:`CommitNotices` hands each noted hall to its listeners (the sequencer's
``poke``, the bridge hub's recomputing of device state). A rolled-back write costs one
sequencer run that finds nothing. The sequencer's own run still notifies ``{"hall", "seq"}``,
which is how the other processes hear of the events. Writers outside a server pool (the CLI,
scripts, tests' own connections) keep the trigger's NOTIFY. A process that dies between its
commit and its release leaves events unnumbered until the next write of the hall or the
sequencers' sweep (``hall.storage.sequencer``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

import asyncpg

log = logging.getLogger(__name__)

SETTING = "hall.commit_notice"
IN_PROCESS = "in_process"

# Halls each pooled connection (by backend pid) wrote events for since it was acquired. Only
# connections of a pool with CommitNotices are registered: for any other connection the
# trigger notifies, and note_events leaves nothing behind.
_written: dict[int, set[str]] = {}


def note_events(conn: asyncpg.Connection, hall_id: str) -> None:
    """``conn`` inserted events of ``hall_id``: tell the sequencer when it is released."""
    halls = _written.get(conn.get_server_pid())
    if halls is not None:
        halls.add(hall_id)


def will_tell(conn: asyncpg.Connection, hall_id: str) -> bool:
    """Whether the listeners will hear of ``hall_id`` when ``conn`` is released (its
    statements noted events of that hall), so a writer need not tell them itself."""
    halls = _written.get(conn.get_server_pid())
    return halls is not None and hall_id in halls


class CommitNotices:
    """The pool hooks that carry noted halls from a released connection to a listener."""

    def __init__(self) -> None:
        self._listeners: list[Callable[[str], None]] = []

    def add(self, listener: Callable[[str], None]) -> None:
        """Tell ``listener`` each hall whose events a released connection committed. With no
        listener the halls are dropped (the sequencer catches up on every hall when it
        starts, the bridge hub recomputes every hall's devices)."""
        self._listeners.append(listener)

    def remove(self, listener: Callable[[str], None]) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    def connected(self, conn: asyncpg.Connection) -> None:
        """Pool ``init`` hook: follow this connection's writes."""
        pid = conn.get_server_pid()
        mine: set[str] = set()
        _written[pid] = mine

        def closed(_: object) -> None:
            # The pool closes a connection instead of resetting it now and then (its query
            # limit, expiry): its last transaction is over all the same.
            if _written.get(pid) is mine:  # not a new backend that got the same pid
                del _written[pid]
            self._tell(mine)

        conn.add_termination_listener(closed)

    def released(self, conn: asyncpg.Connection) -> None:
        """Pool ``reset`` hook: the connection's transaction is over; pass its halls on."""
        halls = _written.get(conn.get_server_pid())
        if halls:
            noted = set(halls)
            halls.clear()
            self._tell(noted)

    def _tell(self, halls: set[str]) -> None:
        for hall_id in sorted(halls):
            for listener in list(self._listeners):
                try:
                    listener(hall_id)
                except Exception:  # a listener's bug must not break the pool's release
                    log.exception("commit notice for hall %s failed", hall_id)
