"""The view evaluator_case_facts: the per-case facts behind 办结率, 按时办结率 and 现场办结率
(domain.md §2.4), counted in the hall's local days."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import asyncpg

from hall.ports import FixedClock
from hall.web.state import CLOCK
from tests.evaluator.conftest import Client, clerk

URL = "/api/v1/halls/test/evaluator/counters/1/cases"


async def _at(client: Client, when: datetime) -> dict[str, str]:
    """Move the clock; the clerk logs in again (a session does not last for days)."""
    clock = client.app[CLOCK]
    assert isinstance(clock, FixedClock)
    clock.set(when)
    return await clerk(client)


async def _case(client: Client, headers: dict[str, str], body: dict[str, Any]) -> int:
    response = await client.post(URL, json=body, headers=headers)
    assert response.status == 201, await response.text()
    case_id: int = (await response.json())["id"]
    return case_id


async def _move(client: Client, headers: dict[str, str], case_id: int, status: str) -> None:
    response = await client.post(
        f"/api/v1/halls/test/cases/{case_id}/status", json={"status": status}, headers=headers
    )
    assert response.status == 200, await response.text()


async def test_case_facts_give_the_on_time_and_on_the_spot_rates_by_local_day(
    client: Client, pool: asyncpg.Pool
) -> None:
    # Tue 24 Nov, 10:00 in Shanghai
    headers = await _at(client, datetime(2026, 11, 24, 2, 0, tzinfo=UTC))
    immediate = await _case(client, headers, {"matter": "BDC-002"})  # 即办件: done at once
    same_day = await _case(client, headers, {"matter": "BDC-001"})  # 承诺件, due Tue 1 Dec
    last_minute = await _case(client, headers, {"matter": "BDC-001"})
    late = await _case(client, headers, {"matter": "BDC-001"})
    open_ = await _case(client, headers, {"matter": "BDC-001"})
    returned = await _case(client, headers, {"matter": "BDC-001"})
    await _move(client, headers, same_day, "completed")
    await _move(client, headers, returned, "returned")
    # 23:30 on the due day in Shanghai is 15:30 UTC: still on time in the hall's day.
    headers = await _at(client, datetime(2026, 12, 1, 15, 30, tzinfo=UTC))
    await _move(client, headers, last_minute, "completed")
    await _move(client, headers, same_day, "delivered")  # a later status keeps it completed
    headers = await _at(
        client, datetime(2026, 12, 1, 16, 30, tzinfo=UTC)
    )  # 00:30 on Wed 2 Dec in Shanghai
    await _move(client, headers, late, "completed")
    # Accepted at 01:00 on Wed 25 Nov in Shanghai (17:00 UTC on the 24th): the 25th's case.
    headers = await _at(client, datetime(2026, 11, 24, 17, 0, tzinfo=UTC))
    next_day = await _case(
        client, headers, {"matter_name": "咨询后即办", "case_type": "immediate", "promised_days": 0}
    )

    rows = await pool.fetch(
        """SELECT case_id, hall_id, business_day, counter_id, job_no, case_type, completed,
                  on_time, on_the_spot
           FROM evaluator_case_facts ORDER BY case_id"""
    )
    facts = {r["case_id"]: (r["completed"], r["on_time"], r["on_the_spot"]) for r in rows}
    assert facts == {
        immediate: (True, True, True),
        same_day: (True, True, False),  # 承诺件 finished on the day: on time, not 现场办结
        last_minute: (True, True, False),
        late: (True, False, False),
        open_: (False, False, False),
        returned: (False, False, False),  # 退件 is not 办结
        next_day: (True, True, True),
    }
    assert {(r["hall_id"], r["counter_id"], r["job_no"]) for r in rows} == {("test", 1, "c001")}
    days = {r["case_id"]: r["business_day"] for r in rows}
    assert days[next_day] == date(2026, 11, 25)
    assert {days[c] for c in facts if c != next_day} == {date(2026, 11, 24)}
    types = {r["case_id"]: r["case_type"] for r in rows}
    assert (types[immediate], types[late]) == ("immediate", "promised")

    # The manager's figures for Tue 24 Nov, as the view is meant to be summed.
    rates = await pool.fetchrow(
        """SELECT count(*) AS handled, count(*) FILTER (WHERE completed) AS completed,
                  count(*) FILTER (WHERE on_time) AS on_time,
                  count(*) FILTER (WHERE on_the_spot) AS on_the_spot
           FROM evaluator_case_facts
           WHERE hall_id = 'test' AND business_day = '2026-11-24'"""
    )
    assert rates is not None
    # 按时办结率 = 3/4 completed (denominator: completed); 现场办结率 = 1/6 handled.
    assert tuple(rates) == (6, 4, 3, 1)


async def test_bad_rating_facts_give_rectification_return_visit_and_on_time_closure(
    client: Client, pool: asyncpg.Pool
) -> None:
    """evaluator_bad_rating_facts: one row per 差评 task, by the hall's local day it opened."""
    from tests.evaluator.conftest import finish, manager, serve_one
    from tests.evaluator.test_ratings import PAD, pad_headers

    headers = await _at(client, datetime(2026, 11, 24, 2, 0, tzinfo=UTC))
    tasks = []
    for reason in ("slow", "attitude"):
        await serve_one(client)
        await finish(client)
        pad = await pad_headers(client)
        session = (await (await client.get(PAD, headers=pad)).json())["session"]
        rated = await client.post(
            f"{PAD}/ratings", json={"session": session, "level": 2, "reasons": [reason]},
            headers=pad,
        )  # fmt: skip
        assert rated.status == 201, await rated.text()
    listed = await (await client.get("/api/v1/halls/test/bad-rating-tasks", headers=headers)).json()
    tasks = sorted(t["id"] for t in listed)
    assert len(tasks) == 2

    async def step(task: int, body: dict[str, Any], who: dict[str, str]) -> None:
        url = f"/api/v1/halls/test/bad-rating-tasks/{task}"
        response = await client.post(url, json=body, headers=who)
        assert response.status == 200, (body, await response.text())

    # The first is visited, rectified and closed the same day; the second is appealed and
    # the appeal upheld (it leaves the statistics), never closed.
    await step(tasks[0], {"action": "visit", "result": "satisfied", "note": "已回访"}, headers)
    await step(tasks[0], {"action": "rectify", "text": "已整改"}, headers)
    await step(tasks[0], {"action": "close"}, headers)
    await step(tasks[1], {"action": "appeal", "reason": "恶意差评"}, headers)
    await step(tasks[1], {"action": "decide_appeal", "outcome": "upheld"}, await manager(client))

    rows = await pool.fetch(
        "SELECT task_id, business_day, rectified, return_visited, closed_on_time, appeal_upheld"
        " FROM evaluator_bad_rating_facts WHERE hall_id = 'test' ORDER BY task_id"
    )
    assert [tuple(r.values()) for r in rows] == [
        (tasks[0], date(2026, 11, 24), True, True, True, False),
        (tasks[1], date(2026, 11, 24), False, False, False, True),
    ]
