"""The sequencer numbers committed events right after commit, and catches up on what it missed."""

from __future__ import annotations

import asyncio

import asyncpg

from hall.config.models import HallConfig
from hall.ports import FixedClock
from hall.services.directory import Directory
from hall.services.queue import CounterAction, IssueTicket, QueueService
from hall.storage.notify import Notifier
from hall.storage.sequencer import (
    EVENTS_CHANNEL,
    LogPosition,
    Seen,
    Sequencer,
    sequenced,
    writer_hall,
)


async def unnumbered(pool: asyncpg.Pool) -> int:
    value: int = await pool.fetchval("SELECT count(*) FROM events WHERE seq IS NULL")
    return value


class Published:
    """The last seq the sequencer published for hall ``test``, followed on a notifier."""

    def __init__(self) -> None:
        self.seq = 0
        self.changed = asyncio.Event()

    @classmethod
    async def following(cls, notifier: Notifier) -> Published:
        """One that follows ``notifier``'s sequencer notices from now on (after the
        notifier's earlier subscribers have had each notice)."""
        published = cls()
        await notifier.subscribe(EVENTS_CHANNEL, published.on_notify)
        return published

    def on_notify(self, payload: str) -> None:
        notice = sequenced(payload)
        if notice is not None and notice[0] == "test":
            self.seq = max(self.seq, notice[1])
            self.changed.set()

    async def reach(self, seq: int, seconds: float = 10.0) -> None:
        async with asyncio.timeout(seconds):
            while self.seq < seq:
                self.changed.clear()
                await self.changed.wait()


async def start_sequencer(notifier: Notifier, pool: asyncpg.Pool) -> tuple[Sequencer, Published]:
    published = await Published.following(notifier)
    sequencer = Sequencer(pool, notifier, lambda: ["test"])
    await sequencer.start()
    return sequencer, published


def test_notices_are_told_apart() -> None:
    assert writer_hall('{"hall": "h1"}') == "h1"
    assert writer_hall('{"hall": "h1", "seq": 4}') is None
    assert sequenced('{"hall": "h1", "seq": 4}') == ("h1", 4)
    for bad in ("", "null", "[]", '{"hall": 3}', '{"seq": 4}', '{"hall": "h", "seq": "4"}'):
        assert sequenced(bad) is None
    for bad in ("", "null", "[]", '{"hall": 3}', "{"):
        assert writer_hall(bad) is None


async def test_events_committed_before_it_started_are_numbered_at_start(
    pool: asyncpg.Pool, config: HallConfig, clock: FixedClock, notifier: Notifier
) -> None:
    service = QueueService(pool, Directory(config), clock)
    for _ in range(5):
        await service.issue(IssueTicket(hall_id="test", service_code="BDC"))
    assert await unnumbered(pool) == 5  # nobody was sequencing
    sequencer, published = await start_sequencer(notifier, pool)  # catches up once LISTENing
    try:
        await published.reach(5)
    finally:
        await sequencer.close()
    assert await unnumbered(pool) == 0
    seqs = [r["seq"] for r in await pool.fetch("SELECT seq FROM events ORDER BY id")]
    assert seqs == [1, 2, 3, 4, 5]


async def test_a_burst_of_concurrent_writes_is_numbered_gap_free_in_commit_order(
    notifier: Notifier, pool: asyncpg.Pool, config: HallConfig, clock: FixedClock
) -> None:
    sequencer, published = await start_sequencer(notifier, pool)
    service = QueueService(pool, Directory(config), clock)
    await asyncio.gather(*(service.act("test", n, CounterAction.OPEN, "c001") for n in (1, 2, 3)))
    await asyncio.gather(
        *(service.issue(IssueTicket(hall_id="test", service_code="BDC")) for _ in range(60))
    )
    await published.reach(63)
    await sequencer.close()
    assert await unnumbered(pool) == 0
    rows = await pool.fetch("SELECT id, seq, type FROM events ORDER BY seq")
    assert [r["seq"] for r in rows] == list(range(1, 64))
    # Issues conflict (one number counter), so their seqs follow their commit order, which is
    # their numbers' order; the three openings are independent and may come in any order.
    issued = [r["id"] for r in rows if r["type"] == "ticket.issued"]
    assert issued == sorted(issued)
    numbers = await pool.fetch(
        "SELECT t.seq FROM events e JOIN tickets t ON t.id = e.ticket_id ORDER BY e.seq"
    )
    assert [r["seq"] for r in numbers] == list(range(1, 61))
    assert await pool.fetchval("SELECT last_seq FROM halls WHERE id = 'test'") == 63


def test_a_read_vouches_for_the_runs_it_saw_and_the_first_runs_within_its_unnumbered() -> None:
    seen = Seen()
    assert not seen.notice("h", 3)  # nothing read yet
    # A read saw seq 10 and 3 committed events not numbered yet.
    seen.read("h", LogPosition(last_seq=10, unnumbered=3))
    assert seen.notice("h", 9)  # a run that had committed before the read (its notice late)
    assert seen.notice("h", 10)
    assert seen.notice("h", 12)  # the next run numbered 2 events: both among the read's 3
    assert seen.notice("h", 13)  # the run after it numbered the third
    # One more: committed after the read, which cannot have seen it; and once one is
    # missed, the read vouches for nothing newer.
    assert not seen.notice("h", 14)
    assert not seen.notice("h", 15)
    assert seen.notice("h", 13) is False  # forgotten: even old runs call for a new read


def test_a_run_that_numbered_more_than_the_read_saw_unnumbered_calls_for_a_read() -> None:
    seen = Seen()
    # This process's read saw its own write's 2 events unnumbered; the sequencer's run also
    # numbered another process's event committed after the read: 3 events.
    seen.read("h", LogPosition(last_seq=4, unnumbered=2))
    assert not seen.notice("h", 7)
    seen.read("h", LogPosition(last_seq=4, unnumbered=2))
    assert seen.notice("h", 6)
    # Halls are apart, and a lost LISTEN connection makes every read untrusted.
    seen.read("g", LogPosition(last_seq=0, unnumbered=1))
    assert not seen.notice("h", 8)
    seen.forget()
    assert not seen.notice("g", 1)
