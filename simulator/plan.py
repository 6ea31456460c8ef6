"""A simulated day, drawn from a seed (no I/O, standard library only).

Everything random about a day is drawn here, up front and per citizen or per counter, so
that a day replays exactly whatever order the engine meets its events in.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from itertools import accumulate
from zoneinfo import ZoneInfo

from hall.config.models import Hall, Purpose

# Arrivals per hour of the day, relative (local time): a morning peak from 9 to 11, a
# smaller one after lunch. Hours outside the hall's business hours get no arrivals.
HOURLY_PROFILE: dict[int, float] = {
    8: 0.9, 9: 2.0, 10: 1.9, 11: 1.2, 12: 0.5, 13: 0.7, 14: 1.3, 15: 1.1, 16: 0.8, 17: 0.5,
}  # fmt: skip

# Share of a day's tickets per service code of the example county hall; services not listed
# get an equal share of what is left (``DEFAULT_SHARE`` each, relative).
SERVICE_MIX: dict[str, float] = {
    "zh": 18, "bdc": 12, "tax": 20, "sb": 10, "yb": 8, "gjj": 6, "qykb": 4, "hz": 5,
    "cg": 4, "zj": 3, "hy": 2, "qj": 5, "zx": 2.5, "ts": 0.5,
}  # fmt: skip
DEFAULT_SHARE = 5.0
APPOINTMENT_CLASS = "appointment"


@dataclass(frozen=True, slots=True)
class Behaviour:
    """Rates and spreads of a simulated hall; the defaults are a plausible county hall."""

    tickets_per_day: int = 1500
    service_cv: float = 0.7  # spread of service times (lognormal)
    clerk_speed_sd: float = 0.12  # clerks differ: a factor on their service times
    priority_share: float = 0.06  # citizens with a priority class (老年人, 军人 …)
    appointment_share: float = 0.05  # check-ins for a booked slot (where the service allows)
    no_show_share: float = 0.04
    transfer_share: float = 0.03  # sent on to another service after being served
    rating_share: float = 0.85
    walk_s: tuple[float, float] = (15.0, 60.0)  # from the seat to the window once called
    recall_s: float = 30.0  # between calls of a number that nobody answers
    react_s: tuple[float, float] = (3.0, 20.0)  # an idle clerk noticing a new ticket
    gap_s: tuple[float, float] = (2.0, 12.0)  # between finishing and calling the next
    pauses_per_hour: float = 0.4
    pause_s: float = 360.0  # mean length of a pause
    late_open_share: float = 0.1  # a counter opens 20-90 minutes late on a given day
    early_close_share: float = 0.1  # a counter closes 20-90 minutes early
    unstaffed: tuple[int, ...] = (44,)  # counters nobody staffs (the example has 44 windows)


@dataclass(frozen=True, slots=True)
class Citizen:
    """One visit: when the ticket is taken, for what, and how the visit goes."""

    index: int
    arrive: datetime
    service: str
    purpose: str  # 办理 where the service takes it, else its first purpose (取件, 咨询 …)
    priority_class: str | None
    appointment: tuple[datetime, datetime] | None
    service_s: float  # time at the window once served (before the clerk's own factor)
    no_show: bool
    transfer_to: str | None
    transfer_service_s: float
    rating: int | None  # 1-5, None: walks away without rating


@dataclass(frozen=True, slots=True)
class Pause:
    at: datetime  # the first moment the clerk takes it (after finishing a visit)
    seconds: float


@dataclass(frozen=True, slots=True)
class Shift:
    """One counter's staffing in one opening period of the day."""

    counter: int
    clerk: str
    opens: datetime
    closes: datetime  # stops calling once this has passed and nobody waits for it
    speed: float  # factor on service times


@dataclass(slots=True)
class DayPlan:
    day: date
    citizens: list[Citizen]
    shifts: list[Shift]
    pauses: dict[int, list[Pause]] = field(default_factory=dict)
    seed: str = ""

    def rng(self, name: str) -> random.Random:
        """A random stream of its own for ``name`` (a counter's reaction times …)."""
        return random.Random(f"{self.seed}:{self.day.isoformat()}:{name}")


def _lognormal(rng: random.Random, mean: float, cv: float) -> float:
    sigma = math.sqrt(math.log(1 + cv * cv))
    mu = math.log(mean) - sigma * sigma / 2
    return rng.lognormvariate(mu, sigma)


def _local(day: date, at: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, at, tzinfo=tz)


def _periods(hall: Hall) -> list[tuple[time, time]]:
    return [(p.open, p.close) for p in hall.business_hours]


def _open_for(hall: Hall, service: str, moment: time) -> bool:
    svc = hall.service(service)
    hours = svc.hours if svc is not None and svc.hours else hall.business_hours
    return any(p.open <= moment < p.close for p in hours)


def plan_day(hall: Hall, day: date, seed: str | int, behaviour: Behaviour | None = None) -> DayPlan:
    """Draw one working day of ``hall``: its citizens and its counters' shifts."""
    b = behaviour or Behaviour()
    tz = ZoneInfo(hall.timezone)
    rng = random.Random(f"{seed}:{day.isoformat()}:arrivals")
    # Arrival density: the hourly profile, cut to the business hours, per minute.
    minutes: list[tuple[datetime, float]] = []
    for start, end in _periods(hall):
        t = _local(day, start, tz)
        stop = _local(day, end, tz)
        while t < stop:
            minutes.append((t, HOURLY_PROFILE.get(t.hour, 0.0)))
            t += timedelta(minutes=1)
    weights = list(accumulate(w for _, w in minutes))
    codes = [s.code for s in hall.services]
    shares = [SERVICE_MIX.get(c, DEFAULT_SHARE) for c in codes]
    citizens: list[Citizen] = []
    for i in range(b.tickets_per_day):
        k = min(len(minutes) - 1, bisect_right(weights, rng.random() * weights[-1]))
        arrive = minutes[k][0] + timedelta(seconds=rng.random() * 60)
        local = arrive.astimezone(tz).time()
        open_codes = [c for c in codes if _open_for(hall, c, local)]
        open_shares = [shares[codes.index(c)] for c in open_codes]
        code = rng.choices(open_codes, weights=open_shares)[0]
        svc = hall.service(code)
        assert svc is not None
        classes = [c for c in svc.priority_classes if c != APPOINTMENT_CLASS]
        priority: str | None = None
        appointment: tuple[datetime, datetime] | None = None
        roll = rng.random()
        if APPOINTMENT_CLASS in svc.priority_classes and roll < b.appointment_share:
            # Booked a half-hour slot, checks in 0-20 minutes before it starts.
            ahead_by = timedelta(minutes=rng.uniform(0, 20))
            slot_start = _round_up(arrive + ahead_by, 30)
            appointment = (slot_start, slot_start + timedelta(minutes=30))
            priority = APPOINTMENT_CLASS
        elif classes and roll < b.appointment_share + b.priority_share:
            priority = rng.choice(classes)
        service_s = _lognormal(rng, svc.default_service_minutes * 60, b.service_cv)
        no_show = rng.random() < b.no_show_share
        transfer_to = None
        if not no_show and rng.random() < b.transfer_share:
            others = [c for c in codes if c != code and c not in ("zx", "ts")]
            transfer_to = rng.choice(others)
        target = hall.service(transfer_to) if transfer_to else None
        transfer_s = _lognormal(
            rng, (target.default_service_minutes if target else 5.0) * 60, b.service_cv
        )
        rating = None
        if rng.random() < b.rating_share:
            rating = rng.choices([5, 4, 3, 2, 1], weights=[80, 12, 4, 2, 2])[0]
        citizens.append(
            Citizen(
                index=i,
                arrive=arrive,
                service=code,
                purpose="apply" if Purpose.APPLY in svc.purposes else str(svc.purposes[0]),
                priority_class=priority,
                appointment=appointment,
                service_s=service_s,
                no_show=no_show,
                transfer_to=transfer_to,
                transfer_service_s=transfer_s,
                rating=rating,
            )
        )
    citizens.sort(key=lambda c: (c.arrive, c.index))
    plan = DayPlan(day=day, citizens=citizens, shifts=[], seed=str(seed))
    staff = random.Random(f"{seed}:{day.isoformat()}:staff")
    for counter in hall.counters:
        if counter.number in b.unstaffed:
            continue
        speed = max(0.6, staff.gauss(1.0, b.clerk_speed_sd))
        late = staff.random() < b.late_open_share
        early = staff.random() < b.early_close_share
        periods = _periods(hall)
        for j, (start, end) in enumerate(periods):
            opens = _local(day, start, tz) - timedelta(minutes=staff.uniform(1, 6))
            closes = _local(day, end, tz)
            if late and j == 0:
                opens += timedelta(minutes=staff.uniform(20, 90))
            if early and j == len(periods) - 1:
                closes -= timedelta(minutes=staff.uniform(20, 90))
            plan.shifts.append(
                Shift(counter.number, f"sim{counter.number:02d}", opens, closes, speed)
            )
        pauses: list[Pause] = []
        t = _local(day, periods[0][0], tz)
        end_of_day = _local(day, periods[-1][1], tz)
        while True:
            t += timedelta(hours=staff.expovariate(b.pauses_per_hour))
            if t >= end_of_day:
                break
            pauses.append(Pause(t, _lognormal(staff, b.pause_s, 0.5)))
        plan.pauses[counter.number] = pauses
    plan.shifts.sort(key=lambda s: (s.opens, s.counter))
    return plan


def _round_up(t: datetime, minutes: int) -> datetime:
    base = t.replace(second=0, microsecond=0)
    extra = (-base.minute) % minutes
    if extra == 0 and t > base:
        extra = minutes
    return base + timedelta(minutes=extra)


def working_days(hall: Hall, start: date, count: int) -> list[date]:
    """The first ``count`` working days of the hall's calendar from ``start`` on."""
    cal = hall.calendar
    days: list[date] = []
    day = start
    while len(days) < count:
        working = (day.isoweekday() in cal.working_weekdays and day not in cal.holidays) or (
            day in cal.workdays
        )
        if working:
            days.append(day)
        day += timedelta(days=1)
    return days
