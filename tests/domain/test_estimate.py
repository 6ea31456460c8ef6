"""Wait estimates and the trimmed mean of service times."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hall.domain.estimate import estimate_wait, mean_service_seconds


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
