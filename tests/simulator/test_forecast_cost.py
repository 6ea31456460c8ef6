"""The wait forecast of a new ticket costs the same whatever the queue: the queues are played
once per service and the curve read by the tickets after it (issue 9: with thousands waiting,
playing them per ticket took half the server's CPU). Cost is counted in simulation steps, not
wall time, so a loaded machine cannot make this pass or fail."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hall.cli import EXAMPLE_CONFIG
from hall.config.loader import load_config
from hall.ports import FixedClock
from hall.services.directory import Directory
from hall.services.queue import CURVE_TTL_S, QueueService

HALL = "xx-county"
T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in the hall


def _service() -> tuple[QueueService, Directory, FixedClock]:
    directory = Directory(load_config(EXAMPLE_CONFIG))
    clock = FixedClock(T0)
    pool: Any = None  # the forecast reads nothing from the database
    return QueueService(pool, directory, clock, group_commit=False), directory, clock


def _issue_forecasts(depth: int, tickets: int) -> tuple[int, list[float]]:
    """Steps taken and waits forecast for ``tickets`` new "zh" tickets issued a few ms apart
    behind ``depth`` waiting, the counters serving it open and busy."""
    service, directory, clock = _service()
    rules = directory.hall(HALL)
    counters = [(n, "serving", 120.0) for n in rules.counters_serving("zh")]
    waits: list[float] = []
    for k in range(tickets):
        now = T0 + timedelta(milliseconds=5 * k)
        clock.set(now)
        forecast = service._forecast(
            rules,
            "zh",
            priority=k % 10 == 9,
            normal_ahead=depth + k,
            priority_waiting=3,
            counters=counters,
            others={"sb": 40.0, "yb": 30.0, "gjj": 20.0, "zj": 10.0},
            appointment_start=None,
            now=now,
        )
        assert forecast is not None
        waits.append(forecast.seconds)
    return service.forecast_steps, waits


@pytest.mark.parametrize("depth", [20, 2_000, 20_000])
def test_forecast_steps_do_not_grow_with_the_queue(depth: int) -> None:
    steps, waits = _issue_forecasts(depth, tickets=60)
    shallow, _ = _issue_forecasts(20, tickets=60)
    # One play per line (normal, priority) serves all 60 tickets; a deep queue is played
    # no further than a shallow one beyond the step cap.
    assert steps <= 2 * 500
    assert steps <= shallow + 500
    normal = [w for k, w in enumerate(waits) if k % 10 != 9]
    # Later tickets, further back, never wait less (but for the few ms between them).
    assert all(b >= a - 0.5 for a, b in itertools.pairwise(normal))
    assert normal[-1] > normal[0]


def test_a_counter_changing_state_or_time_passing_plays_again() -> None:
    service, directory, _ = _service()
    rules = directory.hall(HALL)
    serving = list(rules.counters_serving("zh"))
    counters = [(n, "serving", 120.0) for n in serving]

    def forecast(now: datetime, desks: list[tuple[int, str, float]]) -> float:
        found = service._forecast(
            rules,
            "zh",
            priority=False,
            normal_ahead=50,
            priority_waiting=0,
            counters=desks,
            others={},
            appointment_start=None,
            now=now,
        )
        assert found is not None
        return found.seconds

    first = forecast(T0, counters)
    played = service.forecast_steps
    # Half a second later, same counters: read off the curve, shifted by the time since.
    assert forecast(T0 + timedelta(seconds=0.5), counters) == pytest.approx(first - 0.5)
    assert service.forecast_steps == played
    # A counter going idle (it finished and is about to call) changes the picture.
    idle = [(serving[0], "idle", 0.0), *counters[1:]]
    assert forecast(T0 + timedelta(seconds=0.6), idle) < first
    assert service.forecast_steps > played
    played = service.forecast_steps
    # Past the validity, played again.
    forecast(T0 + timedelta(seconds=0.6 + CURVE_TTL_S), idle)
    assert service.forecast_steps > played
