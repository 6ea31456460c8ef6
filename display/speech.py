"""One announcement queue per hall: calls are said one after another, never over each other.

The hub follows the hall's event log (the sequencer's notices on ``hall_events``, then the
events themselves in seq order, as the live hub does) for every hall that has a listener. Each
``ticket.called`` and ``ticket.recalled`` becomes an :class:`Announcement`; the hall's worker
hands one announcement at a time to every listener (TV pages over server-sent events, a
``hall speaker`` process) and waits for its playing time, measured on the segment files,
before the next one. Calls during the hall's quiet hours are shown but not said.

Each server process keeps its own queue per hall: listeners on one process hear that
process's order, which is the log's order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import asyncpg
from aiohttp import web

from display.announce import Announcement, call_segments, durations
from hall.config.models import Voice
from hall.domain.tickets import EventType
from hall.ports import Clock
from hall.services.directory import Directory
from hall.storage import repo
from hall.storage.notify import Notifier, Subscription
from hall.storage.sequencer import EVENTS_CHANNEL, sequenced

log = logging.getLogger(__name__)

_CALLS = (EventType.TICKET_CALLED, EventType.TICKET_RECALLED)
MAX_BACKLOG = 200  # announcements waiting in one hall; older ones are dropped past this


@dataclass
class Played:
    """One announcement as the queue ran it (monotonic seconds), for tests and stats."""

    announcement: Announcement
    start: float
    end: float
    silent: bool


Listener = Callable[[Announcement], None]


def quiet(voice: Voice, at: datetime, zone: str) -> bool:
    local = at.astimezone(ZoneInfo(zone)).time()
    return any(p.contains(local) for p in voice.quiet_hours)


def announcement(seq: int, number: str, counter: int, recall: bool, voice: Voice) -> Announcement:
    return Announcement(
        seq=seq,
        number=number,
        counter=counter,
        recall=recall,
        segments=tuple(call_segments(number, counter)),
        repeat=voice.repeat,
        pause_s=voice.pause_ms / 1000,
        volume=voice.volume / 100,
    )


@dataclass
class _HallQueue:
    seq: int
    items: asyncio.Queue[Announcement] = field(default_factory=asyncio.Queue)
    listeners: set[Listener] = field(default_factory=set)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    played: list[Played] = field(default_factory=list)
    played_count: int = 0
    progress: asyncio.Condition = field(default_factory=asyncio.Condition)


class VoiceHub:
    def __init__(
        self,
        pool: asyncpg.Pool,
        directory: Directory,
        notifier: Notifier,
        clock: Clock,
        lengths: Mapping[str, float] | None = None,
        speed: float = 1.0,
    ) -> None:
        self.pool = pool
        self.directory = directory
        self.notifier = notifier
        self.clock = clock
        self.lengths = lengths if lengths is not None else durations()
        self.speed = speed
        """Tests only: pace the queue this many times faster than the audio plays."""
        self._halls: dict[str, _HallQueue] = {}
        self._lock = asyncio.Lock()
        self._sub: Subscription | None = None

    async def start(self) -> None:
        self._sub = await self.notifier.subscribe(
            EVENTS_CHANNEL, self._on_notify, on_up=self._on_up
        )

    async def stop(self) -> None:
        if self._sub is not None:
            await self.notifier.unsubscribe(self._sub)
        tasks = [t for h in self._halls.values() for t in h.tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def played(self, hall_id: str) -> list[Played]:
        hall = self._halls.get(hall_id)
        return list(hall.played) if hall else []

    async def wait_played(self, hall_id: str, count: int) -> None:
        """Until ``count`` announcements of the hall have finished (tests, benchmarks)."""
        hall = await self._follow(hall_id)
        async with hall.progress:
            await hall.progress.wait_for(lambda: hall.played_count >= count)

    @contextlib.asynccontextmanager
    async def listen(self, hall_id: str, listener: Listener) -> AsyncIterator[None]:
        """Call ``listener`` with each announcement of the hall while the block runs."""
        hall = await self._follow(hall_id)
        hall.listeners.add(listener)
        try:
            yield
        finally:
            hall.listeners.discard(listener)

    async def _follow(self, hall_id: str) -> _HallQueue:
        self.directory.hall(hall_id)  # NotFound for an unknown hall
        async with self._lock:
            hall = self._halls.get(hall_id)
            if hall is None:
                async with self.pool.acquire() as conn:
                    seq = await conn.fetchval("SELECT last_seq FROM halls WHERE id = $1", hall_id)
                hall = _HallQueue(seq=int(seq or 0))
                hall.tasks = [
                    asyncio.create_task(self._pump(hall_id, hall), name=f"voice-pump-{hall_id}"),
                    asyncio.create_task(self._say(hall_id, hall), name=f"voice-{hall_id}"),
                ]
                self._halls[hall_id] = hall
        return hall

    def _on_up(self) -> None:
        for hall in self._halls.values():
            hall.wake.set()

    def _on_notify(self, payload: str) -> None:
        notice = sequenced(payload)
        if notice is None:
            return
        hall = self._halls.get(notice[0])
        if hall is not None and notice[1] > hall.seq:
            hall.wake.set()

    async def _pump(self, hall_id: str, hall: _HallQueue) -> None:
        """Turn the hall's new call events into announcements, in seq order."""
        while True:
            await hall.wake.wait()
            hall.wake.clear()
            try:
                async with self.pool.acquire() as conn:
                    rows = await repo.events_after(conn, hall_id, hall.seq, 500)
            except Exception:
                log.exception("voice: reading the events of %s failed", hall_id)
                await asyncio.sleep(1.0)
                hall.wake.set()
                continue
            voice = self.directory.hall(hall_id).hall.display.voice
            for seq, event in rows:
                hall.seq = seq
                number = event.details.get("display_number")
                if (
                    event.type in _CALLS
                    and voice.enabled
                    and isinstance(number, str)
                    and event.counter_number is not None
                ):
                    recall = event.type is EventType.TICKET_RECALLED
                    hall.items.put_nowait(
                        announcement(seq, number, event.counter_number, recall, voice)
                    )
                    while hall.items.qsize() > MAX_BACKLOG:
                        hall.items.get_nowait()
            if len(rows) == 500:
                hall.wake.set()

    async def _say(self, hall_id: str, hall: _HallQueue) -> None:
        """Hand announcements to the listeners one at a time, each after the last ended."""
        while True:
            item = await hall.items.get()
            rules = self.directory.hall(hall_id).hall
            silent = quiet(rules.display.voice, self.clock.now(), rules.timezone)
            start = time.monotonic()
            if not silent:
                for listener in list(hall.listeners):
                    try:
                        listener(item)
                    except Exception:
                        log.exception("voice listener failed")
                await asyncio.sleep(item.seconds(self.lengths) / self.speed)
            hall.played.append(Played(item, start, time.monotonic(), silent))
            del hall.played[:-MAX_BACKLOG]
            async with hall.progress:
                hall.played_count += 1
                hall.progress.notify_all()


VOICE = web.AppKey("display_voice", VoiceHub)
