"""Report figures equal an independent recomputation in Python over days generated through
the real queue service (bench/reports.py), for every dimension."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from typing import Any

import asyncpg
import pytest

from bench.reports import HALL, generate, hall_config, working_days
from hall.config.models import HallConfig
from hall.services.directory import Directory
from manager.periods import period
from manager.reports import (
    ROLL_AFTER_DAYS,
    Dimension,
    ReportRow,
    build_report,
    roll_up,
    staff_names,
)
from manager.staffing import staffing

DAYS = working_days(date(2026, 11, 20), 2)


@pytest.fixture
def config() -> HallConfig:
    return hall_config(counters=8)


@pytest.fixture
async def generated(pool: asyncpg.Pool, config: HallConfig) -> asyncpg.Pool:
    results = await generate(pool, config, DAYS, tickets_per_day=70, seed=3)
    assert sum(r.issued for r in results) > 100
    return pool


def _pct(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (what percentile_cont does)."""
    if not values:
        return None
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


async def _recompute(pool: asyncpg.Pool, config: HallConfig, by: Dimension) -> dict[str, Any]:
    tickets = await pool.fetch("SELECT * FROM tickets WHERE hall_id = $1", HALL)
    events = await pool.fetch("SELECT * FROM events WHERE hall_id = $1 ORDER BY id", HALL)
    ratings = {r["ticket_id"]: r["level"] for r in await pool.fetch("SELECT * FROM ratings")}
    targets = {s.code: s.target_wait_minutes * 60 for s in config.halls[0].services}
    opened: dict[int, list[tuple[int, str]]] = defaultdict(list)
    closing: dict[int, Any] = {}
    first_transfer: dict[int, Any] = {}
    for e in events:
        if e["type"] == "counter.opened":
            opened[e["counter_number"]].append((e["id"], e["details"]["clerk"]))
        if e["ticket_id"] is None:
            continue
        if e["type"] in ("ticket.finished", "ticket.no_show", "ticket.cancelled"):
            closing[e["ticket_id"]] = e  # the last one wins
        if e["type"] == "ticket.transferred" and e["ticket_id"] not in first_transfer:
            first_transfer[e["ticket_id"]] = e

    def clerk_at(counter: int, before: int) -> str:
        found = [clerk for eid, clerk in opened[counter] if eid < before]
        return found[-1] if found else "?"

    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    moved: dict[str, int] = defaultdict(int)
    for t in tickets:
        if not DAYS[0] <= t["business_day"] <= DAYS[-1]:
            continue
        tr = first_transfer.get(t["id"])
        service = tr["details"]["from_service"] if tr else t["service_code"]
        wait = (
            (t["first_called_at"] - t["issued_at"]).total_seconds()
            if t["first_called_at"]
            else None
        )
        served = t["state"] == "done"
        fact = {
            "state": t["state"],
            "wait": wait,
            "service_s": (t["finished_at"] - t["serve_started_at"]).total_seconds()
            if served
            else None,
            "in_target": served and wait is not None and wait <= targets[service],
            "level": ratings.get(t["id"]),
            "transferred": tr is not None,
        }
        end = closing.get(t["id"])
        key: str | None
        if by is Dimension.HALL:
            key = HALL
        elif by is Dimension.DAY:
            key = t["business_day"].isoformat()
        elif by is Dimension.SERVICE:
            key = service
        elif by is Dimension.COUNTER:
            key = str(end["counter_number"]) if end else None
            if tr:
                moved[str(tr["counter_number"])] += 1
        else:
            key = clerk_at(end["counter_number"], end["id"]) if end else None
            if tr:
                moved[clerk_at(tr["counter_number"], tr["id"])] += 1
        if key is not None:
            groups[key].append(fact)
    out: dict[str, Any] = {}
    for key in sorted(set(groups) | set(moved)):
        facts = groups.get(key, [])
        waits = [f["wait"] for f in facts if f["wait"] is not None]
        services = [f["service_s"] for f in facts if f["service_s"] is not None]
        served_n = sum(f["state"] == "done" for f in facts)
        levels = [f["level"] for f in facts if f["level"] is not None]
        per_counter = by in (Dimension.COUNTER, Dimension.CLERK)
        out[key] = {
            "issued": None if per_counter else len(facts),
            "served": served_n,
            "no_show": sum(f["state"] == "no_show" for f in facts),
            "cancelled": sum(f["state"] == "cancelled" for f in facts),
            "transferred": moved[key] if per_counter else sum(f["transferred"] for f in facts),
            "wait_p50_s": _pct(waits, 0.5),
            "wait_p90_s": _pct(waits, 0.9),
            "wait_max_s": max(waits) if waits else None,
            "service_p50_s": _pct(services, 0.5),
            "service_p90_s": _pct(services, 0.9),
            "service_max_s": max(services) if services else None,
            "service_level": sum(f["in_target"] for f in facts) / served_n if served_n else None,
            "rated": len(levels),
            "satisfied": sum(level >= 3 for level in levels),
            "bad": sum(level <= 2 for level in levels),
            "satisfaction": sum(level >= 3 for level in levels) / len(levels) if levels else None,
        }
    return out


def _figures(row: ReportRow) -> dict[str, Any]:
    return {
        name: getattr(row, name)
        for name in (
            "issued", "served", "no_show", "cancelled", "transferred", "wait_p50_s",
            "wait_p90_s", "wait_max_s", "service_p50_s", "service_p90_s", "service_max_s",
            "service_level", "rated", "satisfied", "bad", "satisfaction",
        )
    }  # fmt: skip


LATER = DAYS[-1] + timedelta(days=ROLL_AFTER_DAYS)
"""A day from which both generated days can be rolled up."""


@pytest.mark.parametrize("rolled", ["none", "first day", "both days"])
@pytest.mark.parametrize("by", list(Dimension))
async def test_report_equals_a_recomputation_in_python(
    generated: asyncpg.Pool, config: HallConfig, by: Dimension, rolled: str
) -> None:
    """Whether the days come from the roll-up, from the event log or from both."""
    rules = Directory(config).hall(HALL)
    async with generated.acquire() as conn:
        if rolled == "first day":
            assert await roll_up(conn, rules, LATER, DAYS[:1]) == 1
        elif rolled == "both days":
            assert await roll_up(conn, rules, LATER, DAYS) == 2
            assert await roll_up(conn, rules, LATER, DAYS) == 0  # once only
        facts = await conn.fetchval("SELECT count(*) FROM manager_ticket_facts")
        assert (facts > 0) == (rolled != "none")
        report = await build_report(
            conn, rules, period(DAYS[0], DAYS[-1]), by, await staff_names(conn)
        )
    expected = await _recompute(generated, config, by)
    got = {row.key: _figures(row) for row in report.rows}
    assert set(got) == set(expected)
    for key, figures in expected.items():
        for name, value in figures.items():
            if value is None:
                assert got[key][name] is None, (by, key, name)
            else:
                assert got[key][name] == pytest.approx(value, rel=1e-9, abs=1e-6), (by, key, name)
    # The data is rich enough that every kind of outcome is exercised.
    total = report.total
    assert total.served and total.no_show and total.transferred and total.rated and total.bad
    assert total.issued == sum(r.issued or 0 for r in report.rows) or by in (
        Dimension.COUNTER,
        Dimension.CLERK,
    )


async def test_one_day_of_the_period_is_that_day_only(
    generated: asyncpg.Pool, config: HallConfig
) -> None:
    rules = Directory(config).hall(HALL)
    async with generated.acquire() as conn:
        both = await build_report(conn, rules, period(DAYS[0], DAYS[-1]), Dimension.DAY)
        first = await build_report(conn, rules, period(DAYS[0], DAYS[0]), Dimension.HALL)
    assert [row.key for row in both.rows] == [d.isoformat() for d in DAYS]
    assert first.total.issued == both.rows[0].issued
    assert first.total.served == both.rows[0].served


async def test_a_day_is_rolled_up_only_when_it_is_old_enough_and_closed(
    generated: asyncpg.Pool, config: HallConfig
) -> None:
    rules = Directory(config).hall(HALL)
    async with generated.acquire() as conn:
        # Too recent: its late events may still come.
        assert await roll_up(conn, rules, DAYS[-1] + timedelta(days=1), DAYS) == 1
        await conn.execute(
            "UPDATE tickets SET state = 'waiting' WHERE id = (SELECT min(id) FROM tickets"
            " WHERE business_day = $1)",
            DAYS[-1],
        )
        # A ticket of it is still open: it stays worked out from the event log.
        assert await roll_up(conn, rules, LATER, DAYS) == 0
        rolled = await conn.fetch("SELECT business_day FROM manager_rolled_days")
    assert [r["business_day"] for r in rolled] == [DAYS[0]]


async def test_staffing_advice_is_the_same_from_the_roll_up(
    generated: asyncpg.Pool, config: HallConfig
) -> None:
    rules = Directory(config).hall(HALL)
    span = period(DAYS[0], DAYS[-1])
    async with generated.acquire() as conn:
        live = await staffing(conn, rules, span)
        assert await roll_up(conn, rules, LATER, DAYS) == 2
        assert await conn.fetchval("SELECT count(*) FROM manager_called_hours") > 0
        rolled = await staffing(conn, rules, span)
    assert live and rolled == live
    assert any(row.counters_working > 0 for row in live)


async def test_case_rates_come_from_the_evaluators_case_view(
    generated: asyncpg.Pool, config: HallConfig
) -> None:
    """按时办结率 / 现场办结率 read ``evaluator_case_facts``; the test shadows the evaluator's
    view with a temporary table of the same name on this connection only."""
    rules = Directory(config).hall(HALL)
    span = period(DAYS[0], DAYS[-1])
    async with generated.acquire() as conn:
        if await conn.fetchval("SELECT to_regclass('public.evaluator_case_facts') IS NULL"):
            before = await build_report(conn, rules, span, Dimension.HALL)
            assert before.cases is None  # no view: the page says the data is pending
        await conn.execute(
            """CREATE TEMP TABLE evaluator_case_facts (
                   hall_id text, business_day date, completed boolean, on_time boolean,
                   on_the_spot boolean)"""
        )
        await conn.execute(
            """CREATE TEMP TABLE evaluator_bad_rating_facts (
                   hall_id text, business_day date, rectified boolean, return_visited boolean,
                   closed_on_time boolean, appeal_upheld boolean)"""
        )
        try:
            facts = [
                (HALL, DAYS[0], True, True, True),
                (HALL, DAYS[0], True, True, False),
                (HALL, DAYS[-1], True, False, False),  # completed late
                (HALL, DAYS[-1], True, True, True),
                (HALL, DAYS[-1], True, True, False),
                (HALL, DAYS[-1], False, False, False),  # still open: not in 按时办结率
                (HALL, DAYS[0] - timedelta(days=1), True, False, False),  # outside the period
                ("elsewhere", DAYS[0], True, False, False),  # another hall
            ]
            await conn.executemany(
                "INSERT INTO evaluator_case_facts VALUES ($1, $2, $3, $4, $5)", facts
            )
            bad = [
                (HALL, DAYS[0], True, True, True, False),
                (HALL, DAYS[-1], False, True, False, False),
                (HALL, DAYS[-1], False, False, False, True),  # appeal upheld: left out
                ("elsewhere", DAYS[0], False, False, False, False),
            ]
            await conn.executemany(
                "INSERT INTO evaluator_bad_rating_facts VALUES ($1, $2, $3, $4, $5, $6)", bad
            )
            report = await build_report(conn, rules, span, Dimension.HALL)
            one_day = await build_report(conn, rules, period(DAYS[0], DAYS[0]), Dimension.DAY)
        finally:
            await conn.execute("DROP TABLE evaluator_case_facts, evaluator_bad_rating_facts")
    assert report.cases == {
        "on_time_rate": pytest.approx(4 / 5),  # over completed cases (domain.md §2.4)
        "on_the_spot_rate": pytest.approx(2 / 6),
        "bad_ratings": 2,
        "rectified_rate": 0.5,
        "return_visit_rate": 1.0,
        "closed_on_time_rate": 0.5,
    }
    assert one_day.cases is not None
    assert (one_day.cases["on_time_rate"], one_day.cases["on_the_spot_rate"]) == (1.0, 0.5)
    assert one_day.cases["bad_ratings"] == 1


async def test_supervision_deductions_are_summed_into_the_assessment_score(
    generated: asyncpg.Pool, config: HallConfig
) -> None:
    """考核扣分 sums the points of the period's ``supervision.alarm`` events per counter, clerk,
    day and hall; 考核得分 is 100 minus that; services carry none."""
    rules = Directory(config).hall(HALL)
    span = period(DAYS[0], DAYS[-1])
    noon = datetime.combine(DAYS[0], time(10), rules.tz)
    alarms = [(1, "c001", 2.0), (1, "c001", 5.0), (2, "c002", 2.0)]
    async with generated.acquire() as conn:
        for counter, clerk, points in alarms:  # as the counters slice records them
            await conn.execute(
                """INSERT INTO events (hall_id, type, at, actor, counter_number, details)
                   VALUES ($1, 'supervision.alarm', $2, 'supervision', $3, $4)""",
                HALL, noon, counter,
                {"kind": "unattended", "clerk": clerk, "points": points},
            )  # fmt: skip
        names = await staff_names(conn)
        by_counter = await build_report(conn, rules, span, Dimension.COUNTER)
        by_clerk = await build_report(conn, rules, span, Dimension.CLERK, names)
        by_day = await build_report(conn, rules, span, Dimension.DAY)
        by_service = await build_report(conn, rules, span, Dimension.SERVICE)
    counters = {row.key: row for row in by_counter.rows}
    assert (counters["1"].alarms, counters["1"].deducted, counters["1"].score) == (2, 7.0, 93.0)
    assert (counters["2"].deducted, counters["3"].deducted, counters["3"].score) == (2, 0, 100)
    clerks = {row.key: row for row in by_clerk.rows}
    assert (clerks["c001"].deducted, clerks["c002"].deducted) == (7.0, 2.0)
    days = {row.key: row for row in by_day.rows}
    assert (days[DAYS[0].isoformat()].deducted, days[DAYS[-1].isoformat()].deducted) == (9, 0)
    assert by_counter.total.deducted == 9.0 and by_counter.total.score == 91.0
    assert all(row.deducted is None for row in by_service.rows)
