"""Working-day calendar, business day and opening hours (standard library only).

The calendar is data: weekdays that are normally worked, public holidays and hall closures
(``holidays``), and make-up working days (调休, ``workdays``) that turn a weekend into a working
day. A date listed as a holiday is never a working day, even when it is also listed as a
make-up day (a hall closure wins).

Local times are resolved against a real time zone. For a zone with daylight saving time, a
wall-clock time that does not exist (spring forward) resolves to the instant the clock jumps
over it, and a time that occurs twice (fall back) resolves to its first occurrence, so the
business day and opening hours never move backwards.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

__all__ = [
    "WorkingCalendar",
    "business_day",
    "is_open",
    "local_instant",
    "next_opening",
]

_ONE_DAY = timedelta(days=1)
_SEARCH_DAYS = 60
# Offset changes are found by sampling every few hours; real zones never change twice that fast.
_TRANSITION_STEP = timedelta(hours=6)


@dataclass(frozen=True, slots=True)
class WorkingCalendar:
    """Working days: ``working_weekdays`` (1..7, Monday=1) minus ``holidays`` plus ``workdays``."""

    working_weekdays: frozenset[int]
    holidays: frozenset[date]
    workdays: frozenset[date]

    def __post_init__(self) -> None:
        bad = [d for d in self.working_weekdays if not 1 <= d <= 7]
        if bad:
            raise ValueError(f"weekdays must be 1..7 (Monday=1), got {sorted(bad)}")

    @classmethod
    def of(
        cls,
        working_weekdays: Iterable[int] = (1, 2, 3, 4, 5),
        holidays: Iterable[date] = (),
        workdays: Iterable[date] = (),
    ) -> WorkingCalendar:
        """Build from any iterables (e.g. the lists of ``hall.config.models.Calendar``)."""
        return cls(frozenset(working_weekdays), frozenset(holidays), frozenset(workdays))

    def is_working_day(self, day: date) -> bool:
        if day in self.holidays:
            return False
        return day in self.workdays or day.isoweekday() in self.working_weekdays

    def _ensure_more_after(self, day: date) -> None:
        # With no working weekdays the only working days are the listed make-up days.
        if not self.working_weekdays and not any(
            w > day and w not in self.holidays for w in self.workdays
        ):
            raise ValueError(f"the calendar has no working day after {day.isoformat()}")

    def next_working_day(self, day: date) -> date:
        """The first working day strictly after ``day``."""
        self._ensure_more_after(day)
        day += _ONE_DAY
        while not self.is_working_day(day):
            day += _ONE_DAY
        return day

    def add_working_days(self, start: date, n: int) -> date:
        """Due date: the n-th working day counted from the next working day after ``start``.

        ``n = 0`` gives ``start`` itself when it is a working day, else the next working day.
        """
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if n == 0:
            return start if self.is_working_day(start) else self.next_working_day(start)
        day = start
        for _ in range(n):
            day = self.next_working_day(day)
        return day

    def working_days_between(self, start: date, end: date) -> int:
        """Number of working days in ``(start, end]``; 0 when ``end <= start``."""
        if end <= start:
            return 0
        weeks, rest = divmod((end - start).days, 7)
        count = weeks * len(self.working_weekdays)
        count += sum(
            1
            for i in range(1, rest + 1)
            if (start + timedelta(days=i)).isoweekday() in self.working_weekdays
        )
        for day in self.holidays:
            if start < day <= end and day.isoweekday() in self.working_weekdays:
                count -= 1
        for day in self.workdays:
            if (
                start < day <= end
                and day not in self.holidays
                and day.isoweekday() not in self.working_weekdays
            ):
                count += 1
        return count


def _require_aware(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("an aware datetime is required")


def _wall(at: datetime, tz: ZoneInfo) -> datetime:
    """Naive local wall-clock time of an aware instant."""
    return at.astimezone(tz).replace(tzinfo=None)


def _offset(at: datetime, tz: ZoneInfo) -> timedelta:
    offset = at.astimezone(tz).utcoffset()
    assert offset is not None  # a ZoneInfo always has an offset
    return offset


def _first_change(lo: datetime, hi: datetime, tz: ZoneInfo) -> datetime:
    """First instant in ``(lo, hi]`` whose UTC offset differs from ``lo``'s (one change assumed)."""
    before = _offset(lo, tz)
    lo_s, hi_s = 0, int((hi - lo).total_seconds())
    while hi_s - lo_s > 1:
        mid = (lo_s + hi_s) // 2
        if _offset(lo + timedelta(seconds=mid), tz) == before:
            lo_s = mid
        else:
            hi_s = mid
    return lo + timedelta(seconds=hi_s)


# Pure, and asked the same few questions all day (the business day of every issued ticket).
@lru_cache(maxsize=256)
def local_instant(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The first instant (UTC) at which the local clock of ``tz`` reads ``at`` or later on ``day``.

    An ambiguous time gives its first occurrence; a nonexistent one gives the instant the
    clock jumps over it.
    """
    naive = datetime.combine(day, at)
    first = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if _wall(first, tz) == naive:
        return first
    # In a gap: fold=1 uses the offset after the change (earlier instant), fold=0 the offset
    # before it (later instant); the change itself lies between them.
    earlier = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    lo, hi = min(earlier, first), max(earlier, first)
    return _first_change(lo, hi, tz)


def business_day(at: datetime, tz: ZoneInfo, boundary: time) -> date:
    """The hall's business day for an aware instant: local date, minus one day before the boundary.

    The boundary (e.g. 03:00) is local wall-clock time; the day changes at the first instant the
    clock reads the boundary or later, so it never moves backwards in a DST zone.
    """
    _require_aware(at)
    local = at.astimezone(tz).date()
    if at >= local_instant(local, boundary, tz):
        return local
    return local - _ONE_DAY


def is_open(
    at: datetime,
    tz: ZoneInfo,
    periods: Sequence[tuple[time, time]],
    calendar: WorkingCalendar,
) -> bool:
    """True when the local time falls in one of the periods on a working day.

    Periods are half-open ``[open, close)`` in local wall-clock time.
    """
    _require_aware(at)
    wall = _wall(at, tz)
    if not calendar.is_working_day(wall.date()):
        return False
    now = wall.time()
    return any(start <= now < end for start, end in periods)


def _transitions(lo: datetime, hi: datetime, tz: ZoneInfo) -> list[datetime]:
    found: list[datetime] = []
    cur = lo
    while cur < hi:
        nxt = cur + _TRANSITION_STEP
        if _offset(cur, tz) != _offset(nxt, tz):
            found.append(_first_change(cur, nxt, tz))
        cur = nxt
    return found


def next_opening(
    at: datetime,
    tz: ZoneInfo,
    periods: Sequence[tuple[time, time]],
    calendar: WorkingCalendar,
) -> datetime | None:
    """Next instant (aware, UTC) the hall opens, searching up to 60 days ahead.

    For the "closed now, opens at …" message. Returns ``at`` itself (in UTC) when the hall
    is open at ``at``; otherwise the earliest later instant at which :func:`is_open` becomes
    true, or ``None`` if there is none within the search window.
    """
    _require_aware(at)
    at = at.astimezone(UTC)
    if is_open(at, tz, periods, calendar):
        return at
    first_day = _wall(at, tz).date()
    last_day = first_day + timedelta(days=_SEARCH_DAYS)
    candidates: list[datetime] = []
    day = first_day
    while day <= last_day:
        if calendar.is_working_day(day):
            for start, _end in periods:
                naive = datetime.combine(day, start)
                candidates.append(local_instant(day, start, tz))
                # The second occurrence of an ambiguous opening time (clocks went back).
                candidates.append(naive.replace(tzinfo=tz, fold=1).astimezone(UTC))
        day += _ONE_DAY
    # Clocks going back can re-enter a period without passing its opening time.
    horizon = local_instant(last_day + _ONE_DAY, time(0), tz)
    candidates.extend(_transitions(at, horizon, tz))
    for candidate in sorted(set(candidates)):
        if candidate > at and is_open(candidate, tz, periods, calendar):
            return candidate
    return None
