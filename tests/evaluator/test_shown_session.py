"""Which session a rating pad shows when the clerk calls the next number right away."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from evaluator.devices import shown_session
from evaluator.repo import PadSession

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


def session(n: int, finished_s_ago: float | None, rated: bool = False) -> PadSession:
    finished = None if finished_s_ago is None else NOW - timedelta(seconds=finished_s_ago)
    return PadSession(n, "test", 1, n, f"A{n:03d}", "BDC", "c001", finished, rated)


def test_the_citizen_who_just_left_still_rates_after_a_quick_call() -> None:
    assert shown_session([session(2, None), session(1, 5)], NOW, 30).id == 1  # type: ignore[union-attr]


def test_the_next_visit_shows_once_rated_or_timed_out() -> None:
    assert shown_session([session(2, None), session(1, 5, rated=True)], NOW, 30).id == 2  # type: ignore[union-attr]
    assert shown_session([session(2, None), session(1, 31)], NOW, 30).id == 2  # type: ignore[union-attr]
    assert shown_session([session(2, 3), session(1, 5)], NOW, 30).id == 2  # type: ignore[union-attr]
    assert shown_session([], NOW, 30) is None
