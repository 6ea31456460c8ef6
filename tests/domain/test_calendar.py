"""Working days, business day and opening hours."""

from __future__ import annotations

import os
import re
import time as clock
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hall.domain.calendar import (
    WorkingCalendar,
    business_day,
    is_open,
    local_instant,
    next_opening,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
BOUNDARY = time(3, 0)
HOURS = ((time(8, 30), time(12, 0)), (time(13, 30), time(17, 30)))

# 2026 National Day (国庆节): 1-7 October off; Sunday 20 September and Saturday 10 October worked.
NATIONAL_DAY_2026 = WorkingCalendar.of(
    holidays=[date(2026, 10, d) for d in range(1, 8)],
    workdays=[date(2026, 9, 20), date(2026, 10, 10)],
)
WEEKDAYS = WorkingCalendar.of()


def sh(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, tzinfo=SHANGHAI)


def utc(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, tzinfo=UTC)


# --- working days -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2026, 9, 18), True),  # Friday
        (date(2026, 9, 19), False),  # Saturday
        (date(2026, 9, 20), True),  # Sunday, make-up day
        (date(2026, 10, 1), False),  # Thursday, holiday
        (date(2026, 10, 7), False),  # Wednesday, holiday
        (date(2026, 10, 8), True),
        (date(2026, 10, 10), True),  # Saturday, make-up day
        (date(2026, 10, 11), False),  # Sunday
    ],
)
def test_is_working_day_national_day(day: date, working: bool) -> None:
    assert NATIONAL_DAY_2026.is_working_day(day) is working


def test_holiday_wins_over_make_up_day() -> None:
    cal = WorkingCalendar.of(holidays=[date(2026, 10, 10)], workdays=[date(2026, 10, 10)])
    assert not cal.is_working_day(date(2026, 10, 10))


def test_invalid_weekday_rejected() -> None:
    with pytest.raises(ValueError, match=r"1\.\.7"):
        WorkingCalendar.of(working_weekdays=[0, 1])


@pytest.mark.parametrize(
    ("start", "n", "due"),
    [
        (date(2026, 9, 30), 0, date(2026, 9, 30)),  # working day itself
        (date(2026, 9, 30), 1, date(2026, 10, 8)),  # skips the whole holiday
        (date(2026, 9, 30), 3, date(2026, 10, 10)),  # 8, 9, then the make-up Saturday
        (date(2026, 9, 30), 4, date(2026, 10, 12)),
        (date(2026, 10, 3), 0, date(2026, 10, 8)),  # accepted on a holiday
        (date(2026, 10, 3), 1, date(2026, 10, 8)),
        (date(2026, 9, 18), 1, date(2026, 9, 20)),  # Friday -> make-up Sunday
        (date(2026, 9, 18), 5, date(2026, 9, 24)),
        (date(2026, 9, 25), 5, date(2026, 10, 9)),  # 28, 29, 30, Oct 8, 9
    ],
)
def test_add_working_days_national_day(start: date, n: int, due: date) -> None:
    assert NATIONAL_DAY_2026.add_working_days(start, n) == due


def test_add_working_days_plain_weekend() -> None:
    assert WEEKDAYS.add_working_days(date(2026, 11, 20), 1) == date(2026, 11, 23)  # Fri -> Mon
    assert WEEKDAYS.add_working_days(date(2026, 11, 21), 0) == date(2026, 11, 23)  # Sat -> Mon


def test_add_working_days_negative_rejected() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        WEEKDAYS.add_working_days(date(2026, 1, 5), -1)


def test_calendar_without_weekdays_runs_out() -> None:
    cal = WorkingCalendar.of(working_weekdays=[], workdays=[date(2026, 1, 10)])
    assert cal.add_working_days(date(2026, 1, 1), 1) == date(2026, 1, 10)
    with pytest.raises(ValueError, match="no working day"):
        cal.add_working_days(date(2026, 1, 1), 2)


@pytest.mark.parametrize(
    ("start", "end", "count"),
    [
        (date(2026, 9, 30), date(2026, 10, 10), 3),
        (date(2026, 9, 30), date(2026, 10, 7), 0),
        (date(2026, 9, 18), date(2026, 9, 30), 9),
        (date(2026, 9, 19), date(2026, 9, 20), 1),
        (date(2026, 10, 10), date(2026, 10, 10), 0),
        (date(2026, 10, 12), date(2026, 10, 1), 0),  # end before start
        (date(2025, 12, 31), date(2026, 12, 31), 261 - 5 + 2),  # 261 weekdays in 2026
    ],
)
def test_working_days_between_national_day(start: date, end: date, count: int) -> None:
    assert NATIONAL_DAY_2026.working_days_between(start, end) == count


DAYS = st.dates(min_value=date(2025, 1, 1), max_value=date(2027, 12, 31))


@st.composite
def calendars(draw: st.DrawFn) -> WorkingCalendar:
    weekdays = draw(st.frozensets(st.integers(1, 7), min_size=1))
    holidays = draw(st.frozensets(DAYS, max_size=40))
    workdays = draw(st.frozensets(DAYS, max_size=20))
    return WorkingCalendar(weekdays, holidays, workdays)


def brute_count(cal: WorkingCalendar, start: date, end: date) -> int:
    days = (end - start).days
    return sum(cal.is_working_day(start + timedelta(days=i)) for i in range(1, days + 1))


@given(calendars(), DAYS, DAYS)
def test_working_days_between_matches_brute_force(
    cal: WorkingCalendar, start: date, end: date
) -> None:
    assert cal.working_days_between(start, end) == brute_count(cal, start, end)


@given(calendars(), DAYS, st.integers(1, 60))
def test_add_and_between_agree(cal: WorkingCalendar, start: date, n: int) -> None:
    due = cal.add_working_days(start, n)
    assert cal.is_working_day(due)
    assert cal.working_days_between(start, due) == n
    # due is the earliest such day: the day before it holds one working day fewer
    assert cal.working_days_between(start, due - timedelta(days=1)) == n - 1


@given(calendars(), DAYS)
def test_add_zero_is_first_working_day_on_or_after(cal: WorkingCalendar, start: date) -> None:
    due = cal.add_working_days(start, 0)
    assert cal.is_working_day(due)
    assert due >= start
    assert brute_count(cal, start - timedelta(days=1), due - timedelta(days=1)) == 0


# --- business day -----------------------------------------------------------------------


def test_business_day_changes_at_boundary_in_shanghai() -> None:
    assert business_day(sh(2026, 5, 20, 2, 59, 59), SHANGHAI, BOUNDARY) == date(2026, 5, 19)
    assert business_day(sh(2026, 5, 20, 3, 0, 0), SHANGHAI, BOUNDARY) == date(2026, 5, 20)
    # local midnight is not the boundary
    assert business_day(sh(2026, 5, 20, 0, 0, 0), SHANGHAI, BOUNDARY) == date(2026, 5, 19)


def test_business_day_does_not_change_at_utc_midnight() -> None:
    # UTC midnight is 08:00 in Shanghai, in the middle of the business day
    before = utc(2026, 5, 19, 23, 59, 59)
    after = utc(2026, 5, 20, 0, 0, 0)
    assert business_day(before, SHANGHAI, BOUNDARY) == date(2026, 5, 20)
    assert business_day(after, SHANGHAI, BOUNDARY) == date(2026, 5, 20)
    # the real change is at 19:00 UTC (03:00 local)
    assert business_day(utc(2026, 5, 19, 18, 59, 59), SHANGHAI, BOUNDARY) == date(2026, 5, 19)
    assert business_day(utc(2026, 5, 19, 19, 0, 0), SHANGHAI, BOUNDARY) == date(2026, 5, 20)


def test_business_day_rejects_naive() -> None:
    with pytest.raises(ValueError, match="aware"):
        business_day(datetime(2026, 5, 20, 9, 0), SHANGHAI, BOUNDARY)


INSTANTS = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2028, 1, 1), timezones=st.just(UTC)
)


@given(INSTANTS, st.times())
def test_business_day_shanghai_is_shifted_local_date(at: datetime, boundary: time) -> None:
    # Shanghai is UTC+8 all year: the business day starts at boundary local time exactly
    shift = timedelta(hours=8) - timedelta(
        hours=boundary.hour,
        minutes=boundary.minute,
        seconds=boundary.second,
        microseconds=boundary.microsecond,
    )
    assert business_day(at, SHANGHAI, boundary) == (at + shift).date()


def test_business_day_dst_gap() -> None:
    # New York, 8 March 2026: 02:00 EST jumps to 03:00 EDT; 02:30 does not exist
    boundary = time(2, 30)
    assert business_day(utc(2026, 3, 8, 6, 59, 59), NEW_YORK, boundary) == date(2026, 3, 7)
    assert business_day(utc(2026, 3, 8, 7, 0, 0), NEW_YORK, boundary) == date(2026, 3, 8)


def test_business_day_dst_overlap_never_goes_back() -> None:
    # New York, 1 November 2026: 02:00 EDT goes back to 01:00 EST; 01:30 happens twice
    boundary = time(1, 30)
    assert business_day(utc(2026, 11, 1, 5, 29, 59), NEW_YORK, boundary) == date(2026, 10, 31)
    assert business_day(utc(2026, 11, 1, 5, 30, 0), NEW_YORK, boundary) == date(2026, 11, 1)
    # 01:10 EST, the second pass through the hour, stays on the new day
    assert business_day(utc(2026, 11, 1, 6, 10, 0), NEW_YORK, boundary) == date(2026, 11, 1)


@settings(max_examples=200)
@given(
    st.lists(
        st.datetimes(
            min_value=datetime(2026, 3, 7), max_value=datetime(2026, 3, 10), timezones=st.just(UTC)
        )
        | st.datetimes(
            min_value=datetime(2026, 10, 31),
            max_value=datetime(2026, 11, 3),
            timezones=st.just(UTC),
        ),
        min_size=2,
    ),
    st.times(min_value=time(0, 0), max_value=time(4, 0)),
)
def test_business_day_monotonic_in_dst_zone(instants: list[datetime], boundary: time) -> None:
    days = [business_day(at, NEW_YORK, boundary) for at in sorted(instants)]
    assert days == sorted(days)


def test_local_instant_resolves_gap_and_overlap() -> None:
    assert local_instant(date(2026, 3, 8), time(2, 30), NEW_YORK) == utc(2026, 3, 8, 7)
    assert local_instant(date(2026, 11, 1), time(1, 30), NEW_YORK) == utc(2026, 11, 1, 5, 30)
    assert local_instant(date(2026, 5, 20), time(8, 30), SHANGHAI) == utc(2026, 5, 20, 0, 30)


@pytest.mark.parametrize("server_zone", ["Pacific/Honolulu", "Asia/Shanghai", "Pacific/Kiritimati"])
def test_results_do_not_depend_on_the_servers_own_time_zone(server_zone: str) -> None:
    # Every local time is resolved against the hall's zone, never the process's TZ.
    saved = os.environ.get("TZ")
    os.environ["TZ"] = server_zone
    clock.tzset()
    try:
        assert local_instant(date(2026, 3, 8), time(2, 30), NEW_YORK) == utc(2026, 3, 8, 7)
        assert local_instant(date(2026, 11, 1), time(1, 30), NEW_YORK) == utc(2026, 11, 1, 5, 30)
        assert business_day(utc(2026, 11, 1, 5, 30), NEW_YORK, BOUNDARY) == date(2026, 10, 31)
    finally:
        if saved is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved
        clock.tzset()


def test_local_instant_in_the_last_second_of_a_gap() -> None:
    # 02:59:59 does not exist; the clock jumps over it one second after 01:59:59 EST.
    got = local_instant(date(2026, 3, 8), time(2, 59, 59), NEW_YORK)
    assert got == utc(2026, 3, 8, 7, 0, 0)


@pytest.mark.parametrize(
    ("zone", "day", "gap_start", "minutes", "jump"),
    [
        ("America/New_York", date(2026, 3, 8), time(2, 0), 60, utc(2026, 3, 8, 7)),
        ("Europe/Berlin", date(2026, 3, 29), time(2, 0), 60, utc(2026, 3, 29, 1)),
        # A half-hour change: 02:00–02:29 does not exist.
        ("Australia/Lord_Howe", date(2026, 10, 4), time(2, 0), 30, utc(2026, 10, 3, 15, 30)),
    ],
)
def test_every_time_in_a_gap_opens_at_the_exact_second_of_the_jump(
    zone: str, day: date, gap_start: time, minutes: int, jump: datetime
) -> None:
    # A hall set to open at a time the clocks skip opens when they jump, not a second later.
    for m in range(minutes):
        wall = datetime.combine(day, gap_start) + timedelta(minutes=m)
        assert local_instant(day, wall.time(), ZoneInfo(zone)) == jump, wall


def test_local_instant_gives_the_first_occurrence_whatever_the_fold_asked() -> None:
    # A time that says "the second 01:30" still opens the hall at the first one.
    got = local_instant(date(2026, 11, 1), time(1, 30, fold=1), NEW_YORK)
    assert got == utc(2026, 11, 1, 5, 30)


# --- opening hours ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (sh(2026, 10, 8, 9, 0), True),
        (sh(2026, 10, 8, 8, 30), True),  # opening instant included
        (sh(2026, 10, 8, 8, 29, 59), False),
        (sh(2026, 10, 8, 12, 0), False),  # closing instant excluded
        (sh(2026, 10, 8, 12, 30), False),  # lunch
        (sh(2026, 10, 8, 17, 29, 59), True),
        (sh(2026, 10, 8, 17, 30), False),
        (sh(2026, 10, 3, 9, 0), False),  # holiday
        (sh(2026, 9, 20, 9, 0), True),  # make-up Sunday
        (utc(2026, 10, 8, 1, 0), True),  # 09:00 local given in UTC
    ],
)
def test_is_open(at: datetime, expected: bool) -> None:
    assert is_open(at, SHANGHAI, HOURS, NATIONAL_DAY_2026) is expected


def test_next_opening_over_holiday() -> None:
    got = next_opening(sh(2026, 9, 30, 18, 0), SHANGHAI, HOURS, NATIONAL_DAY_2026)
    assert got == sh(2026, 10, 8, 8, 30)
    assert got is not None
    assert got.tzinfo is UTC


def test_next_opening_after_lunch_and_before_morning() -> None:
    assert next_opening(sh(2026, 10, 8, 12, 10), SHANGHAI, HOURS, NATIONAL_DAY_2026) == sh(
        2026, 10, 8, 13, 30
    )
    assert next_opening(sh(2026, 10, 9, 3, 0), SHANGHAI, HOURS, NATIONAL_DAY_2026) == sh(
        2026, 10, 9, 8, 30
    )
    # closing instant: next is the next morning, which is the make-up Saturday
    assert next_opening(sh(2026, 10, 9, 17, 30), SHANGHAI, HOURS, NATIONAL_DAY_2026) == sh(
        2026, 10, 10, 8, 30
    )


def test_next_opening_when_open_is_now() -> None:
    at = sh(2026, 10, 8, 9, 15)
    assert next_opening(at, SHANGHAI, HOURS, NATIONAL_DAY_2026) == at.astimezone(UTC)


def test_next_opening_none_beyond_search_window() -> None:
    closed = WorkingCalendar.of(working_weekdays=[], workdays=[date(2027, 1, 4)])
    assert next_opening(sh(2026, 10, 8, 9, 0), SHANGHAI, HOURS, closed) is None
    assert next_opening(sh(2026, 11, 20, 9, 0), SHANGHAI, HOURS, closed) == sh(2027, 1, 4, 8, 30)
    assert next_opening(sh(2026, 10, 8, 9, 0), SHANGHAI, (), WEEKDAYS) is None


EVERY_DAY = WorkingCalendar.of(working_weekdays=range(1, 8))


def test_next_opening_in_dst_gap() -> None:
    # opens 02:30 on the night 02:00-03:00 is skipped: open from the jump at 03:00 EDT
    periods = ((time(2, 30), time(4, 0)),)
    got = next_opening(utc(2026, 3, 8, 6, 0), NEW_YORK, periods, EVERY_DAY)
    assert got == utc(2026, 3, 8, 7, 0)


def test_next_opening_first_pass_of_ambiguous_hour() -> None:
    periods = ((time(1, 15), time(1, 45)),)
    # 01:00 EDT: the hall opens at the first 01:15 (EDT, 05:15Z), not at the second (06:15Z)
    got = next_opening(utc(2026, 11, 1, 5, 0), NEW_YORK, periods, EVERY_DAY)
    assert got == utc(2026, 11, 1, 5, 15)


def test_next_opening_second_pass_of_ambiguous_hour() -> None:
    periods = ((time(1, 15), time(1, 45)),)
    # 01:50 EDT, closed; the clock returns to 01:00 EST and reaches 01:15 again at 06:15Z
    got = next_opening(utc(2026, 11, 1, 5, 50), NEW_YORK, periods, EVERY_DAY)
    assert got == utc(2026, 11, 1, 6, 15)


def test_next_opening_reentered_by_clock_going_back() -> None:
    periods = ((time(0, 30), time(1, 30)),)
    # 01:45 EDT, closed; at 06:00Z the clock reads 01:00 EST, inside the period again
    got = next_opening(utc(2026, 11, 1, 5, 45), NEW_YORK, periods, EVERY_DAY)
    assert got == utc(2026, 11, 1, 6, 0)


QUARTERS = st.integers(0, 95).map(lambda q: time(q // 4, q % 4 * 15))


@st.composite
def period_lists(draw: st.DrawFn) -> tuple[tuple[time, time], ...]:
    out: list[tuple[time, time]] = []
    for _ in range(draw(st.integers(1, 3))):
        a, b = draw(QUARTERS), draw(QUARTERS)
        if a != b:
            out.append((min(a, b), max(a, b)))
    return tuple(out)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 30 * 96).map(lambda q: utc(2026, 9, 15) + timedelta(minutes=15 * q)),
    period_lists(),
)
def test_next_opening_is_first_open_quarter(
    at: datetime, periods: tuple[tuple[time, time], ...]
) -> None:
    got = next_opening(at, SHANGHAI, periods, NATIONAL_DAY_2026)
    step = timedelta(minutes=15)
    probe = at
    while got is None or probe < got:
        if probe > at + timedelta(days=61):
            break
        assert not is_open(probe, SHANGHAI, periods, NATIONAL_DAY_2026)
        probe += step
    if got is not None:
        assert got >= at
        assert is_open(got, SHANGHAI, periods, NATIONAL_DAY_2026)


def test_next_opening_searches_exactly_sixty_days_ahead() -> None:
    # From Thursday 8 October, the 60th day is Monday 7 December: still found, the 61st not.
    on_day_60 = WorkingCalendar.of(working_weekdays=[], workdays=[date(2026, 12, 7)])
    assert next_opening(sh(2026, 10, 8, 18, 0), SHANGHAI, HOURS, on_day_60) == sh(
        2026, 12, 7, 8, 30
    )
    on_day_61 = WorkingCalendar.of(working_weekdays=[], workdays=[date(2026, 12, 8)])
    assert next_opening(sh(2026, 10, 8, 18, 0), SHANGHAI, HOURS, on_day_61) is None


def test_next_opening_beyond_the_window_stays_none_when_the_clocks_change_just_after() -> None:
    # From midnight 6 January (New York) the 60 days end at midnight 8 March, the night the
    # clocks jump at 02:00. The 61st day is outside the window: no "opens at 03:00" from the
    # clock change found just past it.
    on_day_61 = WorkingCalendar.of(working_weekdays=[], workdays=[date(2026, 3, 8)])
    periods = ((time(0, 0), time(12, 0)),)
    midnight = datetime(2026, 1, 6, tzinfo=NEW_YORK)
    assert next_opening(midnight, NEW_YORK, periods, on_day_61) is None
    on_day_60 = WorkingCalendar.of(working_weekdays=[], workdays=[date(2026, 3, 7)])
    assert next_opening(midnight, NEW_YORK, periods, on_day_60) == utc(2026, 3, 7, 5)


def test_default_calendar_works_monday_to_friday() -> None:
    week = [date(2026, 11, 23) + timedelta(days=i) for i in range(7)]  # Monday .. Sunday
    assert [WEEKDAYS.is_working_day(d) for d in week] == [True] * 5 + [False] * 2


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: WorkingCalendar.of(working_weekdays=[8, 0, 1]),
            "weekdays must be 1..7 (Monday=1), got [0, 8]",
        ),
        (
            lambda: WEEKDAYS.add_working_days(date(2026, 1, 5), -2),
            "n must be >= 0, got -2",
        ),
        (
            lambda: WorkingCalendar.of(working_weekdays=[]).next_working_day(date(2026, 1, 5)),
            "the calendar has no working day after 2026-01-05",
        ),
        (
            lambda: business_day(datetime(2026, 1, 5, 9, 0), SHANGHAI, BOUNDARY),
            "an aware datetime is required",
        ),
    ],
)
def test_programming_errors_say_exactly_what_is_wrong(
    call: Callable[[], object], message: str
) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        call()


class _NoOffset(tzinfo):
    """A time zone object that does not know its offset: as unusable as no zone at all."""

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None

    def tzname(self, dt: datetime | None) -> str | None:
        return None


def test_a_zone_without_an_offset_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^an aware datetime is required$"):
        business_day(datetime(2026, 1, 5, 9, 0, tzinfo=_NoOffset()), SHANGHAI, BOUNDARY)


@pytest.mark.parametrize("zone", [None, _NoOffset()], ids=["naive", "no-offset"])
@pytest.mark.parametrize(
    "call",
    [
        lambda at: business_day(at, SHANGHAI, BOUNDARY),
        lambda at: is_open(at, SHANGHAI, HOURS, WEEKDAYS),
        lambda at: next_opening(at, SHANGHAI, HOURS, WEEKDAYS),
    ],
    ids=["business_day", "is_open", "next_opening"],
)
def test_every_instant_taking_function_refuses_a_time_without_zone(
    call: Callable[[datetime], object], zone: tzinfo | None
) -> None:
    # Without the check a naive time would silently be read as the server's local time.
    # Monday 2026-01-05 09:00 is inside the opening hours in any zone near Shanghai's.
    with pytest.raises(ValueError, match=r"^an aware datetime is required$"):
        call(datetime(2026, 1, 5, 9, 0, tzinfo=zone))
