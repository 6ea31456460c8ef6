"""Erlang C against textbook values (M/M/c closed forms and the classic call-centre example)."""

from __future__ import annotations

import math

import pytest

from manager.erlang import counters_needed, erlang_b, erlang_c, mean_wait_s, service_level


def test_closed_forms_of_small_systems() -> None:
    # M/M/1: P(wait) = rho; M/M/2 with a = 1: 1/3; M/M/3 with a = 2: 4/9.
    assert erlang_c(1, 0.7) == pytest.approx(0.7)
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert erlang_c(3, 2.0) == pytest.approx(4 / 9)
    # Erlang B: 2 servers, 1 Erlang: (1/2) / (1 + 1 + 1/2) = 0.2.
    assert erlang_b(2, 1.0) == pytest.approx(0.2)
    # M/M/1 mean wait: rho / (mu - lambda) = rho * s / (1 - rho).
    assert mean_wait_s(1, 0.5, 600) == pytest.approx(600.0)


@pytest.mark.parametrize(
    ("n", "p_wait", "level"),
    # 10 Erlangs (200 arrivals an hour, 180 s each), target 20 s: the classic worked example.
    [(11, 0.6821, 0.3896), (12, 0.4494, 0.6402), (13, 0.2853, 0.7956), (14, 0.1741, 0.8884)],
)
def test_the_classic_ten_erlang_example(n: int, p_wait: float, level: float) -> None:
    assert erlang_c(n, 10.0) == pytest.approx(p_wait, abs=5e-5)
    assert service_level(n, 10.0, 180, 20) == pytest.approx(level, abs=5e-5)


def test_counters_needed_is_the_fewest_that_reach_the_goal() -> None:
    advice = counters_needed(200, 180, 20, goal=0.8)
    assert advice.counters == 14  # 13 gives 79.6 %
    assert advice.service_level == pytest.approx(0.8884, abs=5e-5)
    assert counters_needed(200, 180, 20, goal=0.79).counters == 13
    assert counters_needed(0, 180, 20).counters == 0


def test_an_overloaded_queue_needs_more_counters_than_its_load() -> None:
    # 30 citizens an hour at 12 minutes each is 6 Erlangs: 6 counters never catch up.
    assert erlang_c(6, 6.0) == 1.0
    assert service_level(6, 6.0, 720, 1200) == 0.0
    assert math.isinf(mean_wait_s(6, 6.0, 720))
    assert counters_needed(30, 720, 1200).counters > 6


def test_large_loads_stay_finite() -> None:
    # The recurrence does not overflow where a! / n! formulas would.
    assert 0 < erlang_c(400, 380.0) < 1
