"""Wait estimates and the trimmed mean of service times."""

from __future__ import annotations

import math
import re
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hall.domain.estimate import (
    DEFAULT_CV,
    PAUSE_GUESS_S,
    RANGE_FLOOR,
    RANGE_MIN_S,
    OpenCounter,
    QueueState,
    aged_priority_wait,
    call_curve,
    curve_forecast,
    estimate_wait,
    forecast_wait,
    mean_service_seconds,
    spread,
    typical_seconds,
)


def test_wait_scales_with_position_and_counters() -> None:
    assert estimate_wait(0, 300.0, 2) == 0.0
    assert estimate_wait(5, 300.0, 1) == 1500.0
    assert estimate_wait(5, 300.0, 2) == 750.0


def test_wait_none_without_serving_counter() -> None:
    assert estimate_wait(3, 300.0, 0) is None


@pytest.mark.parametrize(
    ("position", "mean", "message"),
    [
        (-1, 300.0, "position must be >= 0, got -1"),
        (1, -1.0, "mean service time must be finite and >= 0, got -1.0"),
        (1, math.nan, "mean service time must be finite and >= 0, got nan"),
        (1, math.inf, "mean service time must be finite and >= 0, got inf"),
    ],
)
def test_wait_rejects_bad_input(position: int, mean: float, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        estimate_wait(position, mean, 1)


@given(st.integers(0, 500), st.floats(0, 3600), st.integers(1, 40))
def test_wait_monotone(position: int, mean: float, counters: int) -> None:
    wait = estimate_wait(position, mean, counters)
    more_ahead = estimate_wait(position + 1, mean, counters)
    more_counters = estimate_wait(position, mean, counters + 1)
    assert wait is not None
    assert more_ahead is not None
    assert more_counters is not None
    assert more_ahead >= wait >= more_counters >= 0


def test_mean_default_when_too_few() -> None:
    assert mean_service_seconds([], 480.0) == 480.0
    assert mean_service_seconds([100.0, 200.0], 480.0) == 480.0
    # invalid values do not count towards the minimum
    assert mean_service_seconds([100.0, -5.0, math.nan, 200.0], 480.0) == 480.0


def test_mean_three_values_is_median() -> None:
    assert mean_service_seconds([100.0, 10_000.0, 200.0], 480.0) == 200.0


def test_mean_trims_outliers() -> None:
    durations = [300.0] * 18 + [0.0, 36_000.0]  # an instant skip and a forgotten finish
    assert mean_service_seconds(durations, 480.0) == 300.0


def test_mean_trims_a_tenth_at_each_end() -> None:
    # 20 values: the two lowest and the two highest go, whatever their size.
    durations = [100.0] * 16 + [10.0, 20.0, 1000.0, 2000.0]
    assert mean_service_seconds(durations, 480.0) == 100.0
    # 19 values: a tenth rounds down to one at each end.
    durations = [100.0] * 15 + [10.0, 20.0, 1000.0, 2000.0]
    assert mean_service_seconds(durations, 480.0) == (20.0 + 1500.0 + 1000.0) / 17


def test_mean_default_window_is_the_newest_twenty() -> None:
    newest = [100.0 * i for i in range(1, 21)]  # 100 … 2000
    # Trimmed to 300 … 1800: an older 21st value (however long) does not count.
    assert mean_service_seconds([*newest, 5000.0], 480.0) == 1050.0


def test_mean_uses_newest_window_only() -> None:
    newest = [120.0, 120.0, 120.0]
    older = [900.0] * 10
    assert mean_service_seconds(newest + older, 480.0, window=3) == 120.0
    assert mean_service_seconds(newest + older, 480.0, window=13) > 120.0


def test_mean_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match=r"^window must be >= 1, got 0$"):
        mean_service_seconds([1.0, 2.0, 3.0], 480.0, window=0)
    assert mean_service_seconds([7.0, 1.0, 2.0, 3.0], 480.0, window=1) == 480.0


@given(st.lists(st.floats(0, 36_000), min_size=3, max_size=40), st.integers(3, 40))
def test_mean_within_range_of_window(durations: list[float], window: int) -> None:
    used = durations[:window]
    mean = mean_service_seconds(durations, 480.0, window=window)
    # Summing floats may land one ulp outside, e.g. the mean of [0.2] * 3.
    slack = 1e-12 * max(1.0, max(used))
    assert min(used) - slack <= mean <= max(used) + slack


# --- the forecast shown to citizens ------------------------------------------------------


def _counter(number: int, *services: str, busy: float = 0.0, order: str = "order") -> OpenCounter:
    return OpenCounter(number, tuple((s, 1) for s in services), order, busy)


def _state(**overrides: object) -> QueueState:
    values: dict[str, object] = {
        "service": "A",
        "priority": False,
        "normal_ahead": 0,
        "priority_waiting": 0,
        "waiting": {},
        "service_s": {"A": 300.0, "B": 600.0},
        "cv": DEFAULT_CV,
        "priority_ratio": 3,
        "priority_share": 0.0,
    }
    values.update(overrides)
    return QueueState(**values)  # type: ignore[arg-type]


def test_forecast_none_without_an_open_counter_of_the_service() -> None:
    assert forecast_wait(_state(normal_ahead=3), []) is None
    assert forecast_wait(_state(normal_ahead=3), [_counter(1, "B")]) is None


def test_forecast_of_one_queue_is_the_naive_estimate() -> None:
    """One service on its own counters: people ahead × mean ÷ counters, as before."""
    counters = [_counter(1, "A"), _counter(2, "A")]
    forecast = forecast_wait(_state(normal_ahead=6), counters)
    assert forecast is not None
    assert forecast.seconds == estimate_wait(6, 300.0, 2) == 900.0
    assert forecast.calls_before == 6


def test_forecast_counts_the_other_services_of_shared_counters() -> None:
    """A counter that serves B first ("order") calls the B tickets before the A ones."""
    counters = [_counter(1, "B", "A")]
    alone = forecast_wait(_state(normal_ahead=2), counters)
    shared = forecast_wait(_state(normal_ahead=2, waiting={"B": 2}), counters)
    assert alone is not None and shared is not None
    assert alone.seconds == 2 * 300.0
    assert shared.seconds == 2 * 600.0 + 2 * 300.0


def test_forecast_interleaves_priority_tickets_by_the_ratio() -> None:
    counters = [_counter(1, "A")]
    # Ratio 3: the counter (taken to be half-way, 1 normal call since its last priority one)
    # calls 2 normal, then the priority one, then the last normal before this ticket.
    normal = forecast_wait(_state(normal_ahead=3, priority_waiting=1), counters)
    assert normal is not None and normal.seconds == 4 * 300.0
    # A priority ticket waits only for the priority ones ahead of it and the ratio.
    first = forecast_wait(_state(priority=True, normal_ahead=5, priority_waiting=0), counters)
    assert first is not None and first.seconds == 2 * 300.0
    # Ratio 0: priority always first.
    always = forecast_wait(
        _state(priority=True, normal_ahead=5, priority_waiting=1, priority_ratio=0), counters
    )
    assert always is not None and always.seconds == 300.0


def test_each_counter_starts_half_way_through_the_ratio() -> None:
    """Ratio 2: a counter is taken to have made one normal call since its last priority one,
    so it calls one more normal ticket, then the priority one."""
    one = [_counter(1, "A")]
    state = _state(normal_ahead=1, priority_waiting=1, priority_ratio=2)
    forecast = forecast_wait(state, one)
    assert forecast is not None and (forecast.seconds, forecast.calls_before) == (600.0, 2)


def test_a_counter_calls_priority_early_only_when_it_has_nothing_else() -> None:
    """Before its ratio is reached a counter calls a priority ticket only if none of its
    queues has anyone; one empty queue (B) among them does not count."""
    desk = [_counter(1, "A", "B")]
    state = _state(normal_ahead=1, priority_waiting=1, waiting={"B": 0})
    forecast = forecast_wait(state, desk)
    assert forecast is not None and (forecast.seconds, forecast.calls_before) == (300.0, 1)


def test_with_ratio_zero_every_waiting_priority_ticket_goes_first() -> None:
    one = [_counter(1, "A")]
    state = _state(normal_ahead=0, priority_waiting=3, priority_ratio=0)
    forecast = forecast_wait(state, one)
    assert forecast is not None and (forecast.seconds, forecast.calls_before) == (900.0, 3)
    # A priority ticket of A keeps the counter for A's time, whatever else it serves.
    desk = [_counter(1, "A", "B")]
    state = _state(priority_waiting=1, priority_ratio=0, waiting={"B": 0})
    shared = forecast_wait(state, desk)
    assert shared is not None and shared.seconds == 300.0


def test_after_a_priority_call_the_counter_starts_its_ratio_again() -> None:
    """Ratio 3, two priority tickets waiting: the counter (half-way) makes two normal calls,
    the first priority one, three normal calls, the second."""
    one = [_counter(1, "A")]
    state = _state(normal_ahead=4, priority_waiting=2)
    forecast = forecast_wait(state, one)
    assert forecast is not None and (forecast.seconds, forecast.calls_before) == (1500.0, 5)


def test_a_weighted_counter_counts_the_weight_of_each_service() -> None:
    """Weights 1 (B) and 3 (A): A's 2 tickets score 3 × 2 × 300 = 1800 against B's
    2 × 600 = 1200, so A first; then B (1200 > 900); then the ticket (900 > 600)."""
    desk = [OpenCounter(1, (("B", 1), ("A", 3)), "weighted", 0.0)]
    forecast = forecast_wait(_state(normal_ahead=1, waiting={"B": 2}), desk)
    assert forecast is not None and (forecast.seconds, forecast.calls_before) == (900.0, 2)


def test_past_a_line_played_to_its_end_a_call_comes_per_mean_time_over_the_counters() -> None:
    two = [_counter(1, "A"), _counter(2, "A")]
    curve = call_curve(_state(normal_ahead=2), two)
    assert curve is not None and not curve.capped
    assert curve.times == (0.0, 0.0, 300.0)
    assert curve.at(10) == (300.0 + 8 * 150.0, 10)


def test_a_priority_citizen_is_expected_once_half_of_one_is_due() -> None:
    """A share of a fifth: a quarter of a priority citizen per normal call; after two normal
    calls half of one is due, and the counter (ratio 0: priority first) calls them."""
    one = [_counter(1, "A")]
    state = _state(normal_ahead=2, priority_ratio=0, priority_share=0.2)
    forecast = forecast_wait(state, one)
    assert forecast is not None and (forecast.seconds, forecast.calls_before) == (900.0, 3)
    # The one called is no longer expected: the next is due four normal calls later.
    later = forecast_wait(_state(**{**_fields(state), "normal_ahead": 6}), one)
    assert later is not None and (later.seconds, later.calls_before) == (2400.0, 8)


def test_forecast_expects_priority_citizens_still_to_come() -> None:
    counters = [_counter(1, "A")]
    none = forecast_wait(_state(normal_ahead=9), counters)
    some = forecast_wait(_state(normal_ahead=9, priority_share=0.1), counters)
    assert none is not None and some is not None
    assert some.seconds == 10 * 300.0  # one priority citizen expected among the nine
    assert none.seconds == 9 * 300.0


def test_priority_citizens_expected_beyond_the_ratio_change_nothing() -> None:
    """Ratio 3 lets one priority call through per three normal ones: a share of priority
    citizens above a quarter cannot make the normal line wait longer than a quarter does.
    Two counters, each half-way through its ratio; ten normal tickets ahead."""
    two = [_counter(1, "A"), _counter(2, "A")]
    waits = []
    for share in (0.25, 0.5, 0.8):
        forecast = forecast_wait(_state(normal_ahead=10, priority_share=share), two)
        assert forecast is not None
        waits.append((forecast.seconds, forecast.calls_before))
    # Priority calls at 600 (counter 1), 900 (counter 2) and 1800 (counter 1).
    assert waits == [(1800.0, 13)] * 3
    # Ratio 0 (priority always first): at most 9 in 10 are taken to be priority citizens,
    # however many were; none or a share below zero expects none.
    one = [_counter(1, "A")]
    capped = [
        forecast_wait(_state(normal_ahead=1, priority_ratio=0, priority_share=share), one)
        for share in (0.9, 0.95, 1.0)
    ]
    assert [(f.seconds, f.calls_before) for f in capped if f] == [(3000.0, 10)] * 3
    for share in (0.0, -0.5):
        none = forecast_wait(_state(normal_ahead=1, priority_share=share), one)
        assert none is not None and none.seconds == 300.0


def test_forecast_waits_for_busy_and_paused_counters() -> None:
    busy = forecast_wait(_state(normal_ahead=0), [_counter(1, "A", busy=120.0)])
    assert busy is not None and busy.seconds == 120.0
    # The first free counter calls first, whatever the order they are listed in.
    first = forecast_wait(_state(normal_ahead=0), [_counter(1, "A", busy=120.0), _counter(2, "A")])
    assert first is not None and first.seconds == 0.0
    # The idle counter takes the first ticket, the one free in 120 s the second.
    two = forecast_wait(_state(normal_ahead=1), [_counter(1, "A"), _counter(2, "A", busy=120.0)])
    assert two is not None and two.seconds == 120.0


def test_forecast_range_holds_the_estimate_and_narrows_with_more_calls() -> None:
    one = forecast_wait(_state(normal_ahead=1, cv=0.7), [_counter(1, "A")])
    many = forecast_wait(_state(normal_ahead=40, cv=0.7), [_counter(1, "A")])
    assert one is not None and many is not None
    for f in (one, many):
        assert 0 <= f.low_s <= f.seconds <= f.high_s
        assert f.high_s - f.seconds >= RANGE_MIN_S
    assert (many.high_s - many.low_s) / many.seconds < (one.high_s - one.low_s) / one.seconds
    assert (many.high_s - many.low_s) / many.seconds >= 2 * RANGE_FLOOR


def test_forecast_of_a_very_long_queue_goes_on_at_the_pace_so_far() -> None:
    """Past a bounded number of calls the rest is extrapolated: exact for a steady queue."""
    one = forecast_wait(_state(normal_ahead=999), [_counter(1, "A")])
    assert one is not None and one.seconds == 999 * 300.0 and one.calls_before == 999
    two = forecast_wait(_state(normal_ahead=5000), [_counter(1, "A"), _counter(2, "A")])
    assert two is not None and two.seconds == pytest.approx(5000 * 300.0 / 2, rel=0.01)


def _range(state: QueueState, counters: list[OpenCounter]) -> tuple[float, float, float]:
    forecast = forecast_wait(state, counters)
    assert forecast is not None
    return forecast.low_s, forecast.seconds, forecast.high_s


def test_the_range_shown_keeps_at_least_a_minute_either_way() -> None:
    """The next ticket at an idle counter is told "now to 1 minute", not "now"; one 30 s
    away is told up to 1½ minutes (a range is shown in whole minutes)."""
    assert _range(_state(), [_counter(1, "A")]) == (0.0, 0.0, 60.0)
    assert _range(_state(), [_counter(1, "A", busy=30.0)]) == (0.0, 30.0, 90.0)


def test_the_range_of_a_steady_service_is_still_twenty_percent_either_way() -> None:
    """Service times that never vary (spread 0) do not make the forecast exact: priority
    arrivals, pauses and no-shows still move it, by ±20 %."""
    steady = spread([300.0] * 10)
    assert steady == 0.0
    assert _range(_state(normal_ahead=40, cv=steady), [_counter(1, "A")]) == pytest.approx(
        (9600.0, 12_000.0, 14_400.0)
    )
    # With one visit ahead, at least half a visit either way (150 s, more than 20 % of 300);
    # half the wait when that is shorter than a visit.
    assert _range(_state(normal_ahead=1, cv=steady), [_counter(1, "A")]) == (150.0, 300.0, 450.0)
    busy = [_counter(1, "A", busy=200.0)]
    assert _range(_state(cv=steady), busy) == (100.0, 200.0, 300.0)


def test_a_service_without_history_gets_the_typical_spread() -> None:
    """Too few finished visits to measure a spread: the range assumes 0.6 (documented), so
    nine visits ahead of 5 minutes (45 minutes) are shown as about 24½ to 65½ minutes:
    ±(20 % + 1.28 × 0.6 / √9) of the wait."""
    for too_few in ([], [300.0], [300.0, 900.0], [300.0, math.nan, -1.0]):
        assert spread(too_few) == DEFAULT_CV == 0.6
    state = _state(normal_ahead=9, cv=spread([]))
    assert _range(state, [_counter(1, "A")]) == pytest.approx((1468.8, 2700.0, 3931.2))


def test_a_counter_paused_just_now_is_expected_back_after_a_short_break() -> None:
    """A clerk's short break is taken to last 10 minutes in all (the queue service passes
    what is left of it as the counter's busy time)."""
    assert PAUSE_GUESS_S == 600.0
    back = forecast_wait(_state(normal_ahead=1), [_counter(1, "A", busy=PAUSE_GUESS_S)])
    # One call before (cv 0.6): ±(20 % + 1.28 × 0.6) of 15 minutes.
    assert back is not None
    assert (back.low_s, back.seconds, back.high_s) == pytest.approx((28.8, 900.0, 1771.2))


def test_the_play_stops_after_four_hundred_calls() -> None:
    """Bounded cost per forecast: a line of 400 is played call by call; a longer one stops at
    400 calls (one counter turn more to notice) and goes on at the pace so far."""
    one = [_counter(1, "A")]
    played = call_curve(_state(normal_ahead=399), one)
    assert played is not None
    assert (len(played.times), played.capped, played.steps) == (400, False, 400)
    assert played.times[-1] == 399 * 300.0
    capped = call_curve(_state(normal_ahead=400), one)
    assert capped is not None
    assert (len(capped.times), capped.capped, capped.steps) == (400, True, 401)
    assert (capped.end_s, capped.end_taken, capped.end_calls) == (400 * 300.0, 400, 400)
    assert capped.at(400) == (400 * 300.0, 400)
    assert capped.at(1000) == (1000 * 300.0, 1000)


def test_a_curve_played_earlier_tells_the_time_left() -> None:
    """The queue service reads a cached curve for a while: a ticket looked at 100 s after the
    play is 100 s nearer its call, and one past its time is due now, not overdue."""
    state = _state(normal_ahead=2)
    curve = call_curve(state, [_counter(1, "A")])
    assert curve is not None
    fresh = curve_forecast(curve, 2, state)
    later = curve_forecast(curve, 2, state, elapsed_s=100.0)
    overdue = curve_forecast(curve, 2, state, elapsed_s=900.0)
    assert fresh is not None and later is not None and overdue is not None
    assert (fresh.seconds, later.seconds, overdue.seconds) == (600.0, 500.0, 0.0)
    assert later.calls_before == 2


def test_the_curve_plays_the_tickets_issued_after_this_one_too() -> None:
    """The queue service plays a few tickets past the one that asked (``phantoms``) so that
    the tickets issued next read the same curve; a priority ticket's curve too."""
    one = [_counter(1, "A")]
    normal = call_curve(_state(normal_ahead=2), one, phantoms=3)
    assert normal is not None
    assert normal.times == (0.0, 300.0, 600.0, 900.0, 1200.0, 1500.0)
    assert normal.calls == (0, 1, 2, 3, 4, 5)
    assert not normal.capped
    # No normal ticket waits: every call is a priority one; the ticket and two after it.
    prio = call_curve(_state(priority=True, priority_waiting=1), one, phantoms=2)
    assert prio is not None
    assert prio.times == (0.0, 300.0, 600.0, 900.0)


def test_a_weighted_counter_does_not_see_tickets_not_yet_issued() -> None:
    """A "weighted" counter calls from the queue with the most work (an older head); the
    tickets played past the one that asked are not issued yet and must not make its queue
    look longer. B (10 min a visit, 2 waiting) has more work than A (5 min, 2 ahead and the
    ticket: the two played after it do not count)."""
    desk = [_counter(1, "B", "A", order="weighted")]
    state = _state(normal_ahead=2, waiting={"B": 2})
    curve = call_curve(state, desk, phantoms=2)
    assert curve is not None
    # B at 0 (1200 > 900); A at 600 (900 > 600); B at 900 (a tie goes to B, listed first);
    # then A: 1500, the ticket at 1800, and the two after it.
    assert curve.times == (600.0, 1500.0, 1800.0, 2100.0, 2400.0)
    assert curve.calls == (1, 3, 4, 5, 6)
    # Without the tickets after it, the same for the ticket.
    alone = forecast_wait(state, desk)
    assert alone is not None and (alone.seconds, alone.calls_before) == (1800.0, 4)


def test_a_weighted_counter_weighs_work_per_counter_serving_the_queue() -> None:
    """Counter 1 (weighted: B, A) is the only one serving B, counter 2 serves A too: A's
    three tickets are 450 s of work per counter, less than B's one (500 s), so counter 1
    calls B first while counter 2 calls A. (Counted per counter plus one, A's would be
    300 s against B's 250 s.)"""
    desks = [_counter(1, "B", "A", order="weighted"), _counter(2, "A")]
    state = _state(normal_ahead=2, waiting={"B": 1}, service_s={"A": 300.0, "B": 500.0})
    forecast = forecast_wait(state, desks)
    # B at 0 on counter 1; A at 0 and 300 on counter 2; the ticket at 500 on counter 1.
    assert forecast is not None and (forecast.seconds, forecast.calls_before) == (500.0, 3)


def test_a_long_queue_of_another_service_is_played_until_the_ticket() -> None:
    """The step limit extrapolates the ticket's own line; 450 B tickets called first by an
    "order" counter leave no pace of that line to go on at, so the play goes on."""
    desk = [_counter(1, "B", "A")]
    forecast = forecast_wait(_state(waiting={"B": 450}), desk)
    assert forecast is not None
    assert (forecast.seconds, forecast.calls_before) == (450 * 600.0, 450)


def test_a_weighted_counter_weighs_a_shared_queue_by_its_share() -> None:
    """Another service's queue counts for the share these counters serve (here 0.4 of a
    ticket: 240 s of work), less than the ticket's own 300 s: the ticket goes first."""
    desk = [_counter(1, "A", "B", order="weighted")]
    forecast = forecast_wait(_state(waiting={"B": 0.4}), desk)
    assert forecast is not None and (forecast.seconds, forecast.calls_before) == (0.0, 0)


def test_a_priority_ticket_at_a_weighted_counter_waits_for_the_ratio() -> None:
    """A priority ticket's counter, half-way through its ratio of 3, makes two normal calls
    first: the weighted choice picks B (more work), then A (3 × 5 min against 1 × 10 min)."""
    desk = [_counter(1, "B", "A", order="weighted")]
    state = _state(priority=True, normal_ahead=3, waiting={"B": 2})
    forecast = forecast_wait(state, desk)
    assert forecast is not None and (forecast.seconds, forecast.calls_before) == (900.0, 2)


def test_a_priority_ticket_waits_only_while_normal_tickets_are_there() -> None:
    """Ratio 3, the counter half-way (one normal call since its last priority one): with one
    normal ticket waiting it calls that one, then the priority tickets in turn."""
    one = [_counter(1, "A")]
    state = _state(priority=True, normal_ahead=1, priority_waiting=1)
    forecast = forecast_wait(state, one)
    assert forecast is not None and (forecast.seconds, forecast.calls_before) == (600.0, 2)


def test_queues_without_anyone_and_counters_overdue_cost_no_time() -> None:
    """Nobody waiting for B (or a count below zero) adds nothing at a B-first counter; a
    counter whose visit has overrun its mean time (negative time left) is free now."""
    desk = [_counter(1, "B", "A")]
    for waiting in (0.0, -2.0):
        free = forecast_wait(_state(waiting={"B": waiting}), desk)
        assert free is not None and free.seconds == 0.0
    overdue = forecast_wait(_state(), [_counter(1, "A", busy=-50.0)])
    assert overdue is not None and overdue.seconds == 0.0


def test_a_service_without_a_known_time_is_taken_as_the_tickets_own() -> None:
    """Other services' visits count at their own mean time, or at the ticket's service's when
    theirs is not known; a service with no time known at all costs none (only busy
    counters delay it)."""
    desk = [_counter(1, "B", "A")]
    known = forecast_wait(_state(waiting={"B": 1}), desk)
    unknown = forecast_wait(_state(waiting={"B": 1}, service_s={"A": 300.0}), desk)
    assert known is not None and unknown is not None
    assert (known.seconds, unknown.seconds) == (600.0, 300.0)
    nothing = forecast_wait(
        _state(normal_ahead=3, service_s={}, cv=0.0), [_counter(1, "A", busy=120.0)]
    )
    assert nothing is not None
    assert (nothing.seconds, nothing.low_s, nothing.high_s) == (120.0, 60.0, 180.0)


def test_the_step_limit_holds_whatever_the_service_times() -> None:
    """Sub-second visits are still cut at 400 calls; only a line that has not moved at all
    (no time known: every call at 0) is played to its end, having no pace to go on at."""
    one = [_counter(1, "A")]
    fast = call_curve(_state(normal_ahead=999, service_s={"A": 0.001}), one)
    assert fast is not None and (len(fast.times), fast.capped) == (400, True)
    still = call_curve(_state(normal_ahead=999, service_s={}), one)
    assert still is not None and (len(still.times), still.capped) == (1000, False)
    assert set(still.times) == {0.0}


def test_past_the_step_limit_the_line_goes_on_at_the_pace_of_the_first_free_counter() -> None:
    """Two counters, one free in 100 s: after 400 calls the next one comes at 60,000 s (from
    the counter free first), so the line moves 150 s a call; the 1,000th ticket is called
    600 calls after, at 150,000 s."""
    two = [_counter(1, "A"), _counter(2, "A", busy=100.0)]
    curve = call_curve(_state(normal_ahead=1000), two)
    assert curve is not None and curve.capped
    assert (curve.end_s, curve.end_taken, curve.end_calls, curve.pace_s) == (
        60_000.0,
        400,
        400,
        150.0,
    )
    assert curve.at(1000) == (150_000.0, 1000)


def test_forecast_rejects_bad_counts() -> None:
    one = [_counter(1, "A")]
    for bad in ({"normal_ahead": -1}, {"priority_waiting": -1}):
        with pytest.raises(ValueError, match=r"^counts must be >= 0$"):
            forecast_wait(_state(**bad), one)
    with pytest.raises(ValueError, match=r"^counts must be >= 0$"):
        call_curve(_state(), one, phantoms=-1)
    with pytest.raises(ValueError, match=r"^priority_ratio must be >= 0$"):
        forecast_wait(_state(priority_ratio=-1), one)
    curve = call_curve(_state(), one, phantoms=0)
    assert curve is not None
    with pytest.raises(ValueError, match=r"^ahead must be >= 0, got -1$"):
        curve.at(-1)


@given(
    st.integers(0, 300),
    st.integers(0, 20),
    st.integers(0, 30),
    st.integers(1, 8),
    st.integers(0, 5),
)
def test_forecast_monotone(
    ahead: int, priority: int, other: int, counters: int, ratio: int
) -> None:
    """In one play of the queues, the ticket behind is never forecast a shorter wait; another
    open counter never lengthens it; the range always holds it (queues within the calls
    played exactly, _MAX_STEPS; past them the rest is extrapolated).

    Across two plays it need not hold: under weighted order a longer queue draws the
    counters to it sooner, so a queue with one more ticket can call its 36th earlier than
    the shorter queue calls its 35th (hypothesis found 34 and 35 ahead, 8 counters, ratio
    5: 3,300 s and 3,000 s). Each is right for the queue it was played on."""
    desks = [_counter(n, "B", "A", order="weighted") for n in range(1, counters + 1)]
    state = _state(
        normal_ahead=ahead, priority_waiting=priority, waiting={"B": other}, priority_ratio=ratio
    )
    base = forecast_wait(state, desks)
    curve = call_curve(state, desks)
    assert curve is not None
    behind = curve_forecast(curve, ahead + 1, state)
    extra = forecast_wait(state, [*desks, _counter(99, "A")])
    assert base is not None and behind is not None and extra is not None
    assert behind.seconds >= base.seconds >= extra.seconds >= 0
    assert base.low_s <= base.seconds <= base.high_s


def _fields(state: QueueState) -> dict[str, object]:
    return {name: getattr(state, name) for name in state.__slots__}


def test_typical_keeps_the_long_tail_and_drops_the_absurd() -> None:
    assert typical_seconds([], 480.0) == 480.0
    assert typical_seconds([120.0, 240.0, 540.0], 480.0) == 300.0  # trimmed mean says 240
    # A forgotten finish (10 h) and an instant skip (1 s) are dropped.
    assert typical_seconds([300.0] * 10 + [36_000.0, 1.0], 480.0) == 300.0
    # Four times the median either way is kept (median 100: 25 and 400 stay, 24 and 401 go).
    assert typical_seconds([401.0, 100.0, 24.0, 25.0, 400.0], 480.0) == 175.0
    # Of an even number, the upper middle one is the median.
    assert typical_seconds([100.0, 100.0, 1000.0, 1000.0], 480.0) == 1000.0


def test_typical_counts_valid_recent_times_only() -> None:
    # Junk does not count, neither towards the mean nor towards the three needed.
    assert typical_seconds([300.0, math.nan, -5.0, math.inf, 600.0], 480.0) == 480.0
    assert typical_seconds([300.0, math.nan, -5.0, math.inf, 600.0, 900.0], 480.0) == 600.0
    # An instant skip (0 s) is a valid time: it makes the three, though it is then dropped.
    assert typical_seconds([0.0, 300.0, 300.0], 480.0) == 300.0
    # The newest 20 by default: an older 21st (within four times the median) is left out.
    newest = [300.0] * 19 + [600.0]
    assert typical_seconds([*newest, 1200.0], 480.0) == 315.0
    assert typical_seconds([*newest, 1200.0], 480.0, window=21) == pytest.approx(7500.0 / 21)
    with pytest.raises(ValueError, match=r"^window must be >= 1, got 0$"):
        typical_seconds([300.0] * 3, 480.0, window=0)
    assert typical_seconds([300.0] * 3, 480.0, window=1) == 480.0


def test_spread_of_recent_times() -> None:
    assert spread([]) == DEFAULT_CV
    assert spread([300.0] * 5) == 0.0
    assert 0.3 < spread([100.0, 300.0, 500.0] * 4) < 0.9


def _cv(values: list[float]) -> float:
    """Sample coefficient of variation, worked out independently of the estimator."""
    return statistics.stdev(values) / statistics.fmean(values)


@pytest.mark.parametrize(
    ("recent", "window", "expected"),
    [
        # The range shown on a ticket widens with this: exact values, not just "some spread".
        ([100.0, 200.0, 300.0], 20, 0.5),  # three samples are enough, n - 1 in the variance
        ([100.0, 200.0], 20, DEFAULT_CV),  # two are not
        ([100.0, math.nan, 200.0, -5.0, 300.0, math.inf], 20, 0.5),  # junk is left out
        ([0.0, 0.0, 0.0], 20, DEFAULT_CV),  # no time at the counter: no ratio to take
        ([0.2, 0.4, 0.6], 20, 0.5),  # sub-second times still have a ratio
        ([0.0, 0.0, 0.0, 0.0, 1000.0], 20, 2.0),  # capped: one freak visit cannot blow it up
        ([100.0, 200.0, 300.0, 10_000.0], 3, 0.5),  # only the newest `window` count
        # Nine samples: none trimmed.
        ([10.0] + [100.0] * 7 + [1000.0], 20, _cv([10.0] + [100.0] * 7 + [1000.0])),
        # Ten: the lowest and the highest are trimmed.
        ([10.0, 90.0] + [100.0] * 7 + [9000.0], 20, _cv([90.0] + [100.0] * 7)),
        # Twenty (the default window) of thirty: two trimmed at each end.
        (
            [float(v) for v in range(100, 300, 10)] + [5000.0] * 10,
            20,
            _cv([float(v) for v in range(120, 280, 10)]),
        ),
    ],
)
def test_spread_is_the_trimmed_coefficient_of_variation(
    recent: list[float], window: int, expected: float
) -> None:
    assert spread(recent, window=window) == pytest.approx(expected)
    if window == 20:
        assert spread(recent) == pytest.approx(expected)  # 20 is the default window


def test_a_priority_ticket_waits_like_a_normal_one_while_normal_ones_are_aged() -> None:
    """Policy rule 5: past the aging limit the oldest normal ticket goes first, so a priority
    ticket then waits about as long as a normal one issued with it."""
    assert aged_priority_wait(120.0, 900.0, max_bypass_s=1200.0) == 120.0
    assert aged_priority_wait(120.0, 3000.0, max_bypass_s=1200.0) == 3000.0
    assert aged_priority_wait(400.0, 300.0, max_bypass_s=200.0) == 400.0
    # "Longer than" the limit: exactly at it, priority still goes ahead.
    assert aged_priority_wait(120.0, 1200.0, max_bypass_s=1200.0) == 120.0
