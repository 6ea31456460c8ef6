"""Read-only lookups over the loaded hall configuration."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import time, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

from hall.config.models import Counter, Hall, HallConfig, Service
from hall.domain.calendar import WorkingCalendar
from hall.domain.errors import NotFound
from hall.domain.policy import PolicySettings


@dataclass(frozen=True)
class HallRules:
    """One hall's configuration in the shapes the domain functions take."""

    hall: Hall

    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.hall.timezone)

    @cached_property
    def calendar(self) -> WorkingCalendar:
        cal = self.hall.calendar
        return WorkingCalendar(
            working_weekdays=frozenset(cal.working_weekdays),
            holidays=frozenset(cal.holidays),
            workdays=frozenset(cal.workdays),
        )

    @cached_property
    def policy(self) -> PolicySettings:
        p = self.hall.call_policy
        return PolicySettings(
            priority_ratio=p.priority_ratio,
            max_bypass=timedelta(minutes=p.max_bypass_minutes),
            appointment_early=timedelta(minutes=p.appointment_early_minutes),
            appointment_late=timedelta(minutes=p.appointment_late_minutes),
        )

    def periods(self, service: Service | None = None) -> list[tuple[time, time]]:
        chosen = (
            service.hours if service is not None and service.hours else self.hall.business_hours
        )
        return [(p.open, p.close) for p in chosen]

    @cached_property
    def _services(self) -> dict[str, Service]:
        # The first of a code wins, as in Hall.service (a linear scan with a generator, two
        # or three times per issued ticket).
        found: dict[str, Service] = {}
        for s in self.hall.services:
            found.setdefault(s.code, s)
        return found

    def service(self, code: str) -> Service:
        svc = self._services.get(code)
        if svc is None:
            raise NotFound(f"业务 {code} 不存在", service=code)
        return svc

    @cached_property
    def _counters(self) -> dict[int, Counter]:
        return {c.number: c for c in self.hall.counters}

    @cached_property
    def _serving(self) -> dict[str, tuple[int, ...]]:
        serving: dict[str, list[int]] = {}
        for c in self.hall.counters:
            for s in c.services:
                serving.setdefault(s.code, []).append(c.number)
        return {code: tuple(sorted(set(numbers))) for code, numbers in serving.items()}

    def counter(self, number: int) -> Counter:
        found = self._counters.get(number)
        if found is None:
            raise NotFound(f"{number}号窗口不存在", counter=number)
        return found

    def counters_serving(self, service_code: str) -> tuple[int, ...]:
        """Numbers of the counters that serve a service, ascending; every request for a
        ticket's wait estimate asks, so it is worked out once per loaded config."""
        return self._serving.get(service_code, ())

    @cached_property
    def _competing(self) -> dict[str, tuple[str, ...]]:
        found: dict[str, dict[str, None]] = {}
        for code in self._serving:
            others = found.setdefault(code, {})
            for number in self._serving[code]:
                for ref in self._counters[number].services:
                    if ref.code != code:
                        others[ref.code] = None
        return {code: tuple(others) for code, others in found.items()}

    def competing(self, service_code: str) -> tuple[str, ...]:
        """The other services of the counters that serve a service, in the order the
        counters list them; every issued ticket's forecast asks, so it is worked out once
        per loaded config (it took about 30 µs a ticket, cProfile)."""
        return self._competing.get(service_code, ())


class Directory:
    """All halls of a deployment, by id.

    One object per server process, shared by every service; a configuration loaded while
    the server runs replaces its contents in place (``replace``), so every holder sees it.
    A request that already took its ``HallRules`` finishes with them.
    """

    def __init__(self, config: HallConfig, snapshot_id: int | None = None) -> None:
        self.config = config
        self.snapshot_id = snapshot_id
        """Id of the config snapshot in force (None: not from the database)."""
        self._halls = {h.id: HallRules(h) for h in config.halls}
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def replace(self, config: HallConfig, snapshot_id: int) -> None:
        """Put a newly loaded configuration in force."""
        halls = {h.id: HallRules(h) for h in config.halls}
        self.config, self._halls, self.snapshot_id = config, halls, snapshot_id
        for wanted, future in list(self._waiters):
            if wanted <= snapshot_id and not future.done():
                future.set_result(None)
        self._waiters = [(w, f) for w, f in self._waiters if not f.done()]

    async def wait_for_snapshot(self, snapshot_id: int, timeout_s: float) -> None:
        """Return once snapshot ``snapshot_id`` (or a later one) is in force; TimeoutError
        after ``timeout_s``."""
        if self.snapshot_id is not None and self.snapshot_id >= snapshot_id:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((snapshot_id, future))
        try:
            async with asyncio.timeout(timeout_s):
                await future
        finally:
            self._waiters = [(w, f) for w, f in self._waiters if f is not future]

    def hall(self, hall_id: str) -> HallRules:
        try:
            return self._halls[hall_id]
        except KeyError:
            raise NotFound(f"大厅 {hall_id} 不存在", hall=hall_id) from None

    def hall_ids(self) -> list[str]:
        return list(self._halls)
