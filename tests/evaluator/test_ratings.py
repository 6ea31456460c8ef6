"""Ratings (好差评) through the web pad and the phone link; 差评 tasks, alarms, the list."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import asyncpg

from evaluator.web import EVALUATOR
from hall.ports import FixedClock
from hall.web.state import CLOCK
from tests.access_helpers import device_headers, staff_headers
from tests.evaluator.conftest import Client, clerk, finish, manager, serve_one

CASES = "/api/v1/halls/test/evaluator/counters/1/cases"
PAD = "/api/v1/halls/test/evaluator/counters/1/pad"


async def pad_headers(client: Client) -> dict[str, str]:
    return await device_headers(client, "display", device_id="pad1")


async def served_with_case(client: Client, matter: str = "BDC-002") -> tuple[int, dict[str, Any]]:
    ticket = await serve_one(client)
    response = await client.post(
        CASES,
        json={
            "ticket_id": ticket,
            "matter": matter,
            "applicant_name": "张三",
            "applicant_phone": "13812345678",
        },
        headers=await clerk(client),
    )
    assert response.status == 201, await response.text()
    return ticket, await response.json()


async def test_the_web_pad_rates_the_visit_under_a_random_session_once(
    client: Client, pool: asyncpg.Pool
) -> None:
    ticket, case = await served_with_case(client)
    pad = await pad_headers(client)
    serving = await (await client.get(PAD, headers=pad)).json()
    assert serving["state"] == "serving" and serving["ticket_number"] == "A001"
    session = serving["session"]
    assert session not in (0, ticket)
    # Rating is only possible once the visit is finished at this counter.
    early = await client.post(f"{PAD}/ratings", json={"session": session, "level": 5}, headers=pad)
    assert early.status == 409
    await finish(client)
    rating = await (await client.get(PAD, headers=pad)).json()
    assert (rating["state"], rating["session"], rating["timeout_s"]) == ("rating", session, 30)

    no_reason = await client.post(
        f"{PAD}/ratings", json={"session": session, "level": 2}, headers=pad
    )
    unknown = await client.post(
        f"{PAD}/ratings", json={"session": session, "level": 2, "reasons": ["nope"]}, headers=pad
    )
    assert (no_reason.status, unknown.status) == (422, 422)
    assert "至少选择一项原因" in (await no_reason.json())["detail"]
    assert "未知的差评原因：nope" in (await unknown.json())["detail"]
    assert await pool.fetchval("SELECT count(*) FROM ratings") == 0

    ok = await client.post(
        f"{PAD}/ratings",
        json={"session": session, "level": 2, "reasons": ["slow", "attitude"]},
        headers=pad,
    )
    again = await client.post(f"{PAD}/ratings", json={"session": session, "level": 5}, headers=pad)
    assert ok.status == 201, await ok.text()
    assert again.status == 409
    assert "本次服务已评价，不能重复评价" in (await again.json())["detail"]

    row = await pool.fetchrow(
        "SELECT r.level, r.reason_codes, r.case_id, r.ticket_id, r.counter_number, r.clerk,"
        " r.session_id, r.channel, k.due_on, k.owner FROM ratings r"
        " JOIN bad_rating_tasks k ON k.rating_id = r.id"
    )
    assert row is not None
    assert dict(row) == {
        "level": 2,
        "reason_codes": ["slow", "attitude"],
        "case_id": case["id"],
        "ticket_id": ticket,
        "counter_number": 1,
        "clerk": "c001",
        "session_id": session,
        "channel": "web_pad",
        "due_on": datetime(2026, 12, 15).date(),
        "owner": "c001",
    }
    # After the rating the pad goes back to the clerk card.
    assert (await (await client.get(PAD, headers=pad)).json())["state"] == "idle"


async def test_a_rating_for_a_session_not_open_on_that_pad_is_refused_and_logged(
    client: Client, pool: asyncpg.Pool, caplog: Any
) -> None:
    await serve_one(client)
    await finish(client)
    pad = await pad_headers(client)
    session = (await (await client.get(PAD, headers=pad)).json())["session"]
    other = "/api/v1/halls/test/evaluator/counters/2/pad/ratings"
    response = await client.post(other, json={"session": session, "level": 5}, headers=pad)
    assert response.status == 409
    assert "没有待评价的服务" in (await response.json())["detail"]
    assert "not open on the pad of test/2" in caplog.text
    assert await pool.fetchval("SELECT count(*) FROM ratings") == 0


async def test_the_web_pad_timeout_is_stored_as_not_rated_never_as_a_level(
    client: Client, pool: asyncpg.Pool
) -> None:
    await serve_one(client)
    await finish(client)
    pad = await pad_headers(client)
    session = (await (await client.get(PAD, headers=pad)).json())["session"]
    response = await client.post(
        f"{PAD}/ratings", json={"session": session, "level": None}, headers=pad
    )
    assert response.status == 201
    row = await pool.fetchrow("SELECT level, not_rated_reason FROM ratings")
    assert row is not None and tuple(row) == (None, "timeout")
    assert await pool.fetchval("SELECT count(*) FROM bad_rating_tasks") == 0


async def test_a_case_completed_later_is_rated_once_by_its_phone_link(
    client: Client, pool: asyncpg.Pool
) -> None:
    _, case = await served_with_case(client, matter="BDC-001")
    token = case["rating_url"].rsplit("/", 1)[-1]
    assert (await (await client.get(f"/api/v1/rate/{token}")).json())["rateable"] is False
    too_early = await client.post(f"/api/v1/rate/{token}", json={"level": 5})
    assert too_early.status == 409 and "办结后再评价" in (await too_early.json())["detail"]

    headers = await clerk(client)
    status = f"/api/v1/halls/test/cases/{case['id']}/status"
    assert (await client.post(status, json={"status": "completed"}, headers=headers)).status == 200
    first = await client.post(f"/api/v1/rate/{token}", json={"level": 4})
    second = await client.post(f"/api/v1/rate/{token}", json={"level": 1, "reasons": ["slow"]})
    assert first.status == 201
    assert second.status == 409
    assert f"办件 {case['number']} 已评价，不能重复评价" in (await second.json())["detail"]
    rows = await pool.fetch("SELECT level, channel, case_id FROM ratings")
    assert [tuple(r) for r in rows] == [(4, "phone", case["id"])]
    assert (await client.get("/api/v1/rate/not-a-real-token-xx")).status == 404


async def test_one_rating_per_case_is_enforced_by_the_database(
    client: Client, pool: asyncpg.Pool
) -> None:
    _, case = await served_with_case(client)
    sql = """INSERT INTO ratings (hall_id, level, channel, rated_at, case_id)
             VALUES ('test', 5, 'phone', now(), $1)"""
    await pool.execute(sql, case["id"])
    try:
        await pool.execute(sql, case["id"])
    except asyncpg.UniqueViolationError:
        pass
    else:
        raise AssertionError("a second rating of the case was stored")


async def test_a_bad_rating_deadline_skips_national_day_and_counts_the_make_up_saturday(
    client: Client, pool: asyncpg.Pool
) -> None:
    clock = client.app[CLOCK]
    assert isinstance(clock, FixedClock)
    clock.set(datetime(2026, 9, 28, 2, 0, tzinfo=UTC))  # Monday 10:00 in Shanghai
    await serve_one(client)
    await finish(client)
    pad = await pad_headers(client)
    session = (await (await client.get(PAD, headers=pad)).json())["session"]
    response = await client.post(
        f"{PAD}/ratings", json={"session": session, "level": 1, "reasons": ["runs"]}, headers=pad
    )
    assert response.status == 201
    # 15 working days from Tue 9-29: 9-29, 9-30, (10-1..10-7 national day), 10-8, 10-9,
    # Sat 10-10 (make-up), 10-12..10-16, 10-19..10-23.
    assert (
        await pool.fetchval("SELECT due_on FROM bad_rating_tasks") == datetime(2026, 10, 23).date()
    )


async def test_an_overdue_bad_rating_raises_one_alarm_and_only_the_owner_sees_the_contact(
    client: Client, pool: asyncpg.Pool
) -> None:
    await served_with_case(client)
    await finish(client)
    pad = await pad_headers(client)
    session = (await (await client.get(PAD, headers=pad)).json())["session"]
    await client.post(
        f"{PAD}/ratings", json={"session": session, "level": 2, "reasons": ["slow"]}, headers=pad
    )
    owner = await clerk(client)
    boss = await manager(client)
    mine = await (await client.get("/api/v1/halls/test/bad-rating-tasks", headers=owner)).json()
    theirs = await (await client.get("/api/v1/halls/test/bad-rating-tasks", headers=boss)).json()
    assert (mine[0]["applicant_phone"], theirs[0]["applicant_phone"]) == (
        "13812345678",
        "138****5678",
    )
    assert (mine[0]["applicant_name"], theirs[0]["applicant_name"]) == ("张三", "张*")

    heard: list[dict[str, Any]] = []
    got = asyncio.Event()
    conn = await pool.acquire()
    try:

        def listen(*args: Any) -> None:
            heard.append(json.loads(args[3]))
            got.set()

        await conn.add_listener("evaluator_alarms", listen)
        evaluator = client.app[EVALUATOR]
        assert await evaluator.sweep_overdue() == 0
        clock = client.app[CLOCK]
        assert isinstance(clock, FixedClock)
        clock.set(datetime(2026, 12, 16, 2, 0, tzinfo=UTC))  # the day after the due date
        assert await evaluator.sweep_overdue() == 1
        assert await evaluator.sweep_overdue() == 0  # once per task
        await asyncio.wait_for(got.wait(), 5)
        await conn.remove_listener("evaluator_alarms", listen)
    finally:
        await pool.release(conn)
    # Sessions from before the jump in time have expired.
    owner = await clerk(client)
    boss = await manager(client)
    assert heard[0]["kind"] == "bad_rating_overdue" and heard[0]["hall"] == "test"
    alarms = await (await client.get("/api/v1/halls/test/evaluator/alarms", headers=boss)).json()
    assert [a["kind"] for a in alarms] == ["bad_rating_overdue"]
    assert "差评处理超期" in alarms[0]["message"]
    # The manager's dashboard lists it among the hall's alarms (view alarms_evaluator).
    board = await (await client.get("/api/v1/halls/test/dashboard", headers=boss)).json()
    assert [a["kind"] for a in board["alarms"] if a["kind"] == "bad_rating_overdue"] == [
        "bad_rating_overdue"
    ]

    task = f"/api/v1/halls/test/bad-rating-tasks/{mine[0]['id']}"
    refused = await client.post(task, json={"action": "close"}, headers=owner)
    assert refused.status == 409
    steps = [
        (owner, {"action": "visit", "result": "basic", "note": "已电话回访"}),
        (owner, {"action": "rectify", "text": "增加窗口高峰时段人手"}),
        (owner, {"action": "appeal", "reason": "排队时间系系统故障所致"}),
        (boss, {"action": "decide_appeal", "outcome": "rejected"}),
        (owner, {"action": "close"}),
    ]
    own_verdict = await client.post(
        task, json={"action": "decide_appeal", "outcome": "upheld"}, headers=owner
    )
    assert own_verdict.status == 403  # checked below: the appeal is decided by a manager
    for who, step in steps:
        response = await client.post(task, json=step, headers=who)
        assert response.status == 200, (step, await response.text())
    done = await response.json()
    assert (done["status"], done["appeal_outcome"], done["return_visit_result"]) == (
        "closed",
        "rejected",
        "basic",
    )
    alarms_url = "/api/v1/halls/test/evaluator/alarms"
    assert await (await client.get(alarms_url, headers=boss)).json() == []
    board = await (await client.get("/api/v1/halls/test/dashboard", headers=boss)).json()
    assert not [a for a in board["alarms"] if a["kind"] == "bad_rating_overdue"]


async def test_managers_filter_ratings_and_clerks_cannot_read_them(client: Client) -> None:
    pad = await pad_headers(client)
    levels = [5, 2, 4]
    for level in levels:
        await serve_one(client, service="BDC" if level != 4 else "TAX")
        await finish(client)
        session = (await (await client.get(PAD, headers=pad)).json())["session"]
        body: dict[str, Any] = {"session": session, "level": level}
        if level <= 2:
            body["reasons"] = ["unclear"]
        rated = await client.post(f"{PAD}/ratings", json=body, headers=pad)
        assert rated.status == 201, await rated.text()
    boss = await manager(client)
    base = "/api/v1/halls/test/ratings"

    async def get(query: str) -> list[dict[str, Any]]:
        response = await client.get(f"{base}{query}", headers=boss)
        assert response.status == 200, await response.text()
        result: list[dict[str, Any]] = await response.json()
        return result

    assert [r["level"] for r in await get("")] == [4, 2, 5]
    bad = await get("?level=2")
    assert [(r["level_name"], r["reason_texts"], r["bad"]) for r in bad] == [
        ("不满意", ["一次性告知不清楚"], True)
    ]
    assert bad[0]["task_id"] is not None
    assert [r["level"] for r in await get("?service=TAX")] == [4]
    assert len(await get("?counter=1&clerk=c001&from=2026-11-24&to=2026-11-24")) == 3
    assert await get("?from=2026-11-25") == []
    assert await get("?counter=2") == []
    assert (await client.get(f"{base}?level=9", headers=boss)).status == 422
    assert (await client.get(f"{base}?from=yesterday", headers=boss)).status == 422
    assert (await client.get(f"{base}?to=9999-12-31", headers=boss)).status == 422  # no 500
    clerk_only = await staff_headers(client, "c002", roles=("clerk",), counters=(1,))
    assert (await client.get(base, headers=clerk_only)).status == 403


async def test_a_rating_for_a_visit_of_another_hall_is_refused(
    client: Client, pool: asyncpg.Pool
) -> None:
    await serve_one(client)
    await finish(client)
    session = (await (await client.get(PAD, headers=await pad_headers(client))).json())["session"]
    north_pad = await device_headers(client, "display", hall="north", device_id="pad9")
    north = PAD.replace("/halls/test/", "/halls/north/") + "/ratings"
    response = await client.post(north, json={"session": session, "level": 5}, headers=north_pad)
    assert response.status == 409
    assert "没有待评价的服务" in (await response.json())["detail"]
    assert await pool.fetchval("SELECT count(*) FROM ratings") == 0


async def test_staff_cannot_rate_for_the_citizen(client: Client, pool: asyncpg.Pool) -> None:
    await serve_one(client)
    await finish(client)
    session = (await (await client.get(PAD, headers=await pad_headers(client))).json())["session"]
    for headers in (await clerk(client), await manager(client)):
        response = await client.post(
            f"{PAD}/ratings", json={"session": session, "level": 5}, headers=headers
        )
        assert response.status == 403
        assert "工作人员不能代为评价" in (await response.json())["detail"]
    assert await pool.fetchval("SELECT count(*) FROM ratings") == 0


async def test_a_hall_without_dimensions_refuses_them(client: Client, pool: asyncpg.Pool) -> None:
    await served_with_case(client)
    await finish(client)
    pad = await pad_headers(client)
    session = (await (await client.get(PAD, headers=pad)).json())["session"]
    bad = await client.post(
        f"{PAD}/ratings", json={"session": session, "level": 5, "dims": {"level": 5}}, headers=pad
    )
    assert bad.status == 422
    assert (await bad.json())["detail"] == "本大厅未启用分项评价，请只提交满意度等级"
    assert await pool.fetchval("SELECT count(*) FROM ratings") == 0
