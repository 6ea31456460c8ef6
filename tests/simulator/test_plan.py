"""Simulated days: drawn from a seed, shaped like a county hall's day."""

from __future__ import annotations

from collections import Counter
from datetime import date, time
from zoneinfo import ZoneInfo

import pytest

from hall.cli import EXAMPLE_CONFIG
from hall.config.loader import load_config
from hall.config.models import Hall
from simulator.plan import Behaviour, plan_day, working_days

DAY = date(2026, 11, 24)  # a Tuesday


@pytest.fixture(scope="module")
def hall() -> Hall:
    return load_config(EXAMPLE_CONFIG).halls[0]


def test_same_seed_same_day_other_seed_other_day(hall: Hall) -> None:
    assert plan_day(hall, DAY, 7) == plan_day(hall, DAY, 7)
    assert plan_day(hall, DAY, 7).citizens != plan_day(hall, DAY, 8).citizens
    assert plan_day(hall, DAY, 7).citizens != plan_day(hall, date(2026, 11, 25), 7).citizens


def test_arrivals_fill_the_business_hours_with_a_morning_peak(hall: Hall) -> None:
    plan = plan_day(hall, DAY, 1, Behaviour(tickets_per_day=1500))
    tz = ZoneInfo(hall.timezone)
    local = [c.arrive.astimezone(tz).time() for c in plan.citizens]
    assert len(local) == 1500
    assert all(any(p.open <= t < p.close for p in hall.business_hours) for t in local), (
        "no ticket outside business hours (the hall refuses them)"
    )
    per_hour = Counter(t.hour for t in local)
    assert per_hour[9] + per_hour[10] > 2 * (per_hour[15] + per_hour[16]) * 0.8
    assert per_hour[9] > per_hour[16]
    # Ordered by arrival, so the engine meets them as a day would.
    assert [c.arrive for c in plan.citizens] == sorted(c.arrive for c in plan.citizens)


def test_citizens_ask_only_for_what_their_service_offers(hall: Hall) -> None:
    plan = plan_day(hall, DAY, 3, Behaviour(tickets_per_day=1500))
    tz = ZoneInfo(hall.timezone)
    kinds: Counter[str] = Counter()
    for c in plan.citizens:
        svc = hall.service(c.service)
        assert svc is not None
        assert c.purpose in svc.purposes
        hours = svc.hours or hall.business_hours
        at = c.arrive.astimezone(tz).time()
        assert any(p.open <= at < p.close for p in hours)
        if c.priority_class is not None:
            assert c.priority_class in svc.priority_classes
            kinds["priority"] += 1
        if c.appointment is not None:
            assert c.priority_class == "appointment"
            assert c.appointment[0] >= c.arrive
            kinds["appointment"] += 1
        kinds["no_show"] += c.no_show
        kinds["transfer"] += c.transfer_to is not None
        assert c.transfer_to != c.service
        assert c.service_s > 0
    # Each behaviour shows up, at roughly its configured rate.
    assert 40 < kinds["appointment"] < 140
    assert 100 < kinds["priority"] < 300
    assert 30 < kinds["no_show"] < 100
    assert 20 < kinds["transfer"] < 90


def test_staffing_pauses_and_odd_hours(hall: Hall) -> None:
    plan = plan_day(hall, DAY, 5)
    staffed = {s.counter for s in plan.shifts}
    assert staffed == {c.number for c in hall.counters} - {44}
    assert len(staffed) == 43
    tz = ZoneInfo(hall.timezone)
    mornings = [s for s in plan.shifts if s.opens.astimezone(tz).time() < time(12)]
    assert any(s.opens.astimezone(tz).time() > time(9) for s in mornings), "someone late"
    assert sum(len(p) for p in plan.pauses.values()) > 20


def test_working_days_skip_weekends_and_holidays(hall: Hall) -> None:
    assert working_days(hall, date(2026, 9, 30), 3) == [
        date(2026, 9, 30),
        date(2026, 10, 8),  # 国庆节 1-7 October
        date(2026, 10, 9),
    ]


def test_no_kernel_or_feature_module_imports_the_simulator() -> None:
    """The simulator is tooling: ``hall demo`` reaches it through an entry point only."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    offending = []
    for package in ("hall", "kiosk", "counters", "display", "evaluator", "firmware_bridge"):
        for path in sorted((root / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                if any(n.split(".")[0] == "simulator" for n in names):
                    offending.append(str(path.relative_to(root)))
    assert offending == []
