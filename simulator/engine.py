"""Plays simulated days through a driver: citizens take tickets, clerks call, serve, pause.

The engine keeps its own picture of the hall (who waits for which service, what each
counter does) only to decide when a simulated person acts; every outcome comes from the
driver, i.e. from the real queue code. Events run one at a time in time order, so a run
with the same plans and the same answers replays exactly.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import logging
import random
from collections import Counter as Tally
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from hall.config.models import Hall
from simulator.plan import Behaviour, Citizen, DayPlan, Pause, Shift

log = logging.getLogger("simulator")


class QueueEmptyError(Exception):
    """call_next found nobody to call."""


class DriverError(Exception):
    """The server refused an action (the engine carries on)."""


@dataclass(frozen=True, slots=True)
class TicketRef:
    """A ticket as the driver answered it."""

    number: str
    service: str
    ticket_id: int | None = None
    token: str | None = None


class Driver(Protocol):
    async def issue(self, citizen: Citizen, at: datetime) -> TicketRef: ...

    async def act(
        self,
        counter: int,
        action: str,
        at: datetime,
        *,
        clerk: str | None = None,
        reason: str | None = None,
        to_service: str | None = None,
    ) -> TicketRef | None: ...

    async def rate(self, counter: int, ticket: TicketRef, level: int, at: datetime) -> None: ...


class Pace(Protocol):
    async def until(self, at: datetime, *, hall_idle: bool) -> None:
        """Return once simulated time ``at`` has come (set a clock, or sleep)."""
        ...


class InstantPace:
    """Headless: time jumps from event to event; ``clock`` (the server's) follows."""

    def __init__(self, clock: object) -> None:
        self.clock = clock

    async def until(self, at: datetime, *, hall_idle: bool) -> None:
        self.clock.set(at)  # type: ignore[attr-defined]


class RealtimePace:
    """Real time, ``speed`` simulated seconds per second; nights and other stretches with
    every counter closed are skipped."""

    def __init__(self, speed: float, start: datetime) -> None:
        self.speed = speed
        self.sim0 = start
        self.wall0 = asyncio.get_running_loop().time()

    async def until(self, at: datetime, *, hall_idle: bool) -> None:
        loop = asyncio.get_running_loop()
        wall = self.wall0 + (at - self.sim0).total_seconds() / self.speed
        if hall_idle and wall - loop.time() > 2.0:
            # Nothing to watch until then: move the mapping so it comes in 2 s.
            self.wall0 -= wall - loop.time() - 2.0
            wall = self.wall0 + (at - self.sim0).total_seconds() / self.speed
        delay = wall - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)


@dataclass
class Stats:
    issued: int = 0
    refused: int = 0
    called: int = 0
    finished: int = 0
    no_shows: int = 0
    transfers: int = 0
    ratings: int = 0
    pauses: int = 0
    errors: int = 0
    opened: int = 0
    closed: int = 0


@dataclass
class _Desk:
    number: int
    services: tuple[str, ...]
    rng: random.Random
    state: str = "closed"  # closed | idle | busy | paused
    shift: Shift | None = None
    pauses: deque[Pause] = field(default_factory=deque)
    woken: bool = False
    ticket: TicketRef | None = None
    visit: tuple[Citizen, bool] | None = None  # citizen, second visit (after a transfer)
    recalls: int = 0


class Engine:
    """Runs day plans of one hall through a driver at a pace."""

    def __init__(
        self,
        hall: Hall,
        driver: Driver,
        pace: Pace,
        *,
        behaviour: Behaviour | None = None,
        max_recalls: int | None = None,
        on_issue: Callable[[Citizen, TicketRef], None] | None = None,
    ) -> None:
        self.hall = hall
        self.driver = driver
        self.pace = pace
        self.b = behaviour or Behaviour()
        self.max_recalls = hall.call_policy.max_recalls if max_recalls is None else max_recalls
        self.on_issue = on_issue
        self.stats = Stats()
        self._heap: list[tuple[datetime, int, Callable[[], Awaitable[None]]]] = []
        self._seq = 0
        self._now: datetime | None = None
        self._desks: dict[int, _Desk] = {}
        self._waiting: Tally[str] = Tally()
        self._visits: dict[str, tuple[Citizen, bool]] = {}
        self._rng = random.Random(0)
        self._stopped = False

    # --- running ---------------------------------------------------------------------------

    def seed_waiting(self, waiting: dict[str, int]) -> None:
        """Tickets already waiting when the engine starts (a demo that continues a day)."""
        self._waiting.update({k: v for k, v in waiting.items() if v > 0})

    async def run(self, plans: Sequence[DayPlan]) -> Stats:
        for plan in plans:
            await self.run_day(plan)
        return self.stats

    def stop(self) -> None:
        self._stopped = True

    async def run_day(self, plan: DayPlan) -> None:
        self._rng = plan.rng("engine")
        self._visits = {}
        self._desks = {
            c.number: _Desk(
                c.number, tuple(s.code for s in c.services), plan.rng(f"desk{c.number}")
            )
            for c in self.hall.counters
        }
        for number, pauses in plan.pauses.items():
            self._desks[number].pauses = deque(pauses)
        for citizen in plan.citizens:
            self._at(citizen.arrive, functools.partial(self._arrive, citizen))
        for shift in plan.shifts:
            self._at(shift.opens, functools.partial(self._open, shift))
            self._at(shift.closes, functools.partial(self._closing, shift))
        while self._heap and not self._stopped:
            at, _, action = heapq.heappop(self._heap)
            idle = all(d.state == "closed" for d in self._desks.values())
            await self.pace.until(at, hall_idle=idle)
            self._now = at
            try:
                await action()
            except DriverError as exc:
                self.stats.errors += 1
                log.warning("simulated action refused: %s", exc)

    def _at(self, at: datetime, action: Callable[[], Awaitable[None]]) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, action))

    def _after(self, seconds: float, action: Callable[[], Awaitable[None]]) -> None:
        assert self._now is not None
        self._at(self._now + timedelta(seconds=seconds), action)

    @property
    def now(self) -> datetime:
        assert self._now is not None
        return self._now

    # --- citizens ----------------------------------------------------------------------------

    async def _arrive(self, citizen: Citizen) -> None:
        try:
            ticket = await self.driver.issue(citizen, self.now)
        except DriverError as exc:
            self.stats.refused += 1
            log.debug("ticket refused: %s", exc)
            return
        self.stats.issued += 1
        self._visits[ticket.number] = (citizen, False)
        self._waiting[ticket.service] += 1
        if self.on_issue is not None:
            self.on_issue(citizen, ticket)
        self._wake()

    # --- clerks --------------------------------------------------------------------------------

    async def _open(self, shift: Shift) -> None:
        desk = self._desks[shift.counter]
        desk.shift = shift
        if desk.state != "closed":
            return
        await self.driver.act(desk.number, "open", self.now, clerk=shift.clerk)
        self.stats.opened += 1
        desk.state = "idle"
        await self._try_call(desk)

    async def _closing(self, shift: Shift) -> None:
        """Closing time: an idle clerk asks once more (the server, not the engine's picture,
        says whether anyone still waits) and closes when nobody does."""
        desk = self._desks[shift.counter]
        if desk.state == "idle" and not desk.woken:
            await self._try_call(desk)

    async def _close(self, desk: _Desk) -> None:
        await self.driver.act(desk.number, "close", self.now)
        self.stats.closed += 1
        desk.state = "closed"
        desk.shift = None

    def _work_for(self, desk: _Desk) -> bool:
        return any(self._waiting[s] > 0 for s in desk.services)

    def _wake(self) -> None:
        """Idle clerks notice tickets they can take: at most one clerk per waiting ticket."""
        budget = Tally({k: v for k, v in self._waiting.items() if v > 0})
        if not budget:
            return
        idle = [d for d in self._desks.values() if d.state == "idle" and not d.woken]
        self._rng.shuffle(idle)
        for desk in idle:
            code = next((s for s in desk.services if budget[s] > 0), None)
            if code is None:
                continue
            budget[code] -= 1
            desk.woken = True
            self._after(desk.rng.uniform(*self.b.react_s), functools.partial(self._try_call, desk))

    async def _try_call(self, desk: _Desk) -> None:
        desk.woken = False
        if desk.state != "idle":
            return
        shift = desk.shift
        if desk.pauses and desk.pauses[0].at <= self.now:
            pause = desk.pauses.popleft()
            await self.driver.act(desk.number, "pause", self.now, reason="临时离开")
            self.stats.pauses += 1
            desk.state = "paused"
            self._after(pause.seconds, lambda: self._resume(desk))
            return
        try:
            ticket = await self.driver.act(desk.number, "call_next", self.now)
        except QueueEmptyError:
            if shift is None or self.now >= shift.closes:
                await self._close(desk)
            return
        if ticket is None:
            return
        self.stats.called += 1
        self._waiting[ticket.service] -= 1
        desk.state = "busy"
        desk.ticket = ticket
        desk.recalls = 0
        desk.visit = self._visits.get(ticket.number)
        citizen = desk.visit[0] if desk.visit else None
        if citizen is not None and citizen.no_show and not desk.visit[1]:  # type: ignore[index]
            self._after(self.b.recall_s, lambda: self._recall(desk))
        else:
            self._after(desk.rng.uniform(*self.b.walk_s), lambda: self._start(desk))
        self._wake()

    async def _resume(self, desk: _Desk) -> None:
        await self.driver.act(desk.number, "resume", self.now)
        desk.state = "idle"
        await self._try_call(desk)

    async def _recall(self, desk: _Desk) -> None:
        if desk.recalls < self.max_recalls:
            desk.recalls += 1
            await self.driver.act(desk.number, "recall", self.now)
            self._after(self.b.recall_s, lambda: self._recall(desk))
            return
        await self.driver.act(desk.number, "no_show", self.now)
        self.stats.no_shows += 1
        self._next(desk)

    async def _start(self, desk: _Desk) -> None:
        await self.driver.act(desk.number, "start", self.now)
        speed = desk.shift.speed if desk.shift else 1.0
        if desk.visit is None:
            svc = self.hall.service(desk.ticket.service if desk.ticket else "")
            seconds = (svc.default_service_minutes if svc else 5.0) * 60
        else:
            citizen, second = desk.visit
            seconds = citizen.transfer_service_s if second else citizen.service_s
        self._after(seconds * speed, lambda: self._finish(desk))

    async def _finish(self, desk: _Desk) -> None:
        ticket = desk.ticket
        assert ticket is not None
        visit = desk.visit
        if visit is not None and visit[0].transfer_to and not visit[1]:
            citizen = visit[0]
            await self.driver.act(
                desk.number, "transfer", self.now, to_service=citizen.transfer_to,
                reason="需到其他窗口继续办理",
            )  # fmt: skip
            self.stats.transfers += 1
            self._visits[ticket.number] = (citizen, True)
            assert citizen.transfer_to is not None
            self._waiting[citizen.transfer_to] += 1
            self._next(desk)
            self._wake()
            return
        await self.driver.act(desk.number, "finish", self.now)
        self.stats.finished += 1
        rated = visit[0].rating if visit else None
        if rated is not None:
            level = rated
            self._after(desk.rng.uniform(2.0, 8.0), lambda: self._rate(desk.number, ticket, level))
        self._next(desk)

    async def _rate(self, counter: int, ticket: TicketRef, level: int) -> None:
        await self.driver.rate(counter, ticket, level, self.now)
        self.stats.ratings += 1

    def _next(self, desk: _Desk) -> None:
        desk.state = "idle"
        desk.ticket = None
        desk.visit = None
        desk.woken = True
        self._after(desk.rng.uniform(*self.b.gap_s), lambda: self._try_call(desk))
