"""Cases (办件) through the API: created from the ticket being served, DB-enforced rules."""

from __future__ import annotations

from datetime import date

import asyncpg
import pytest

from tests.evaluator.conftest import Client, clerk, finish, manager, serve_one

URL = "/api/v1/halls/test/evaluator/counters/1/cases"


async def test_a_case_from_the_ticket_being_served_is_linked_and_due_in_working_days(
    client: Client,
) -> None:
    ticket = await serve_one(client)
    headers = await clerk(client)

    response = await client.post(
        URL,
        json={
            "ticket_id": ticket,
            "matter": "BDC-001",
            "applicant_name": "张三",
            "applicant_phone": "13812345678",
        },
        headers=headers,
    )

    assert response.status == 201, await response.text()
    case = await response.json()
    # Accepted Tue 2026-11-24; 5 working days counted from Wed: Wed Thu Fri Mon Tue.
    assert (case["case_type_name"], case["promised_days"], case["due_on"]) == (
        "承诺件",
        5,
        "2026-12-01",
    )
    assert (case["ticket_id"], case["ticket_number"], case["counter"], case["clerk"]) == (
        ticket,
        "A001",
        1,
        "c001",
    )
    assert case["status_name"] == "受理"
    assert case["number"].startswith("L20261124")
    assert (case["applicant_name"], case["applicant_phone"]) == ("张*", "138****5678")


async def test_an_immediate_case_is_completed_on_the_spot(client: Client) -> None:
    ticket = await serve_one(client)
    response = await client.post(
        URL, json={"ticket_id": ticket, "matter": "BDC-002"}, headers=await clerk(client)
    )
    case = await response.json()
    assert (case["case_type_name"], case["status_name"], case["due_on"]) == (
        "即办件",
        "办结",
        "2026-11-24",
    )


async def test_a_visit_may_produce_several_cases_and_finding_them_masks_the_citizen(
    client: Client,
) -> None:
    ticket = await serve_one(client)
    headers = await clerk(client)
    for matter in ("BDC-001", "BDC-002"):
        body = {"ticket_id": ticket, "matter": matter, "applicant_phone": "138 1234 5678"}
        assert (await client.post(URL, json=body, headers=headers)).status == 201

    by_ticket = await (
        await client.get(f"/api/v1/halls/test/cases?ticket_id={ticket}", headers=headers)
    ).json()
    by_phone = await (
        await client.get("/api/v1/halls/test/cases?phone=13812345678", headers=headers)
    ).json()
    by_number = await (
        await client.get(
            f"/api/v1/halls/test/cases?number={by_ticket[0]['number']}", headers=headers
        )
    ).json()

    assert len(by_ticket) == 2 and len(by_phone) == 2 and len(by_number) == 1
    assert {c["applicant_phone"] for c in by_phone} == {"138****5678"}


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"matter": "NOPE-1"}, 422, "不在事项目录中"),
        ({"matter": "BDC-001", "due_on": "2026-11-01"}, 422, "办结期限不能早于今天"),
        ({"matter_name": "某事项", "case_type": "immediate", "promised_days": 3}, 422, "即办件"),
        ({"matter": "BDC-001", "ticket_id": 999999}, 404, "没有在本窗口办理过"),
    ],
)
async def test_bad_cases_are_refused_in_chinese_and_write_nothing(
    client: Client, pool: asyncpg.Pool, body: dict[str, object], status: int, words: str
) -> None:
    await serve_one(client)
    response = await client.post(URL, json=body, headers=await clerk(client))
    assert response.status == status
    assert words in (await response.json())["detail"]
    assert await pool.fetchval("SELECT count(*) FROM cases") == 0


async def test_a_case_number_is_unique_in_the_hall(client: Client, pool: asyncpg.Pool) -> None:
    ticket = await serve_one(client)
    headers = await clerk(client)
    body = {
        "ticket_id": ticket,
        "matter": "BDC-001",
        "number": "SC2026000123",
        "source": "upstream",
    }
    assert (await client.post(URL, json=body, headers=headers)).status == 201
    again = await client.post(URL, json=body, headers=headers)
    assert again.status == 409
    assert "SC2026000123 已被本大厅使用" in (await again.json())["detail"]
    assert await pool.fetchval("SELECT count(*) FROM cases") == 1
    with pytest.raises(asyncpg.UniqueViolationError):  # the database itself refuses it too
        await pool.execute(
            """INSERT INTO cases (hall_id, number, matter_name, case_type, promised_days,
                 accepted_on, due_on, rating_token, created_at, updated_at)
               VALUES ('test', 'SC2026000123', 'x', 'immediate', 0, $1, $1, 'tok-x', now(),
                       now())""",
            date(2026, 11, 24),
        )


async def test_a_case_can_be_attached_after_the_visit_and_follows_its_status_flow(
    client: Client, pool: asyncpg.Pool
) -> None:
    ticket = await serve_one(client)
    await finish(client)
    headers = await clerk(client)
    case = await (
        await client.post(URL, json={"ticket_id": ticket, "matter": "BDC-001"}, headers=headers)
    ).json()
    status_url = f"/api/v1/halls/test/cases/{case['id']}/status"

    illegal = await client.post(status_url, json={"status": "collected"}, headers=headers)
    assert illegal.status == 409
    assert "不能从“受理”变为“领取”" in (await illegal.json())["detail"]
    for target in ("reviewing", "completed", "collected"):
        response = await client.post(status_url, json={"status": target}, headers=headers)
        assert response.status == 200, await response.text()
    history = await pool.fetch(
        "SELECT from_status, to_status FROM case_events WHERE case_id = $1 ORDER BY id",
        case["id"],
    )
    assert [tuple(r) for r in history] == [
        (None, "accepted"),
        ("accepted", "reviewing"),
        ("reviewing", "completed"),
        ("completed", "collected"),
    ]
    keys = await pool.fetch("SELECT key FROM upstream_outbox ORDER BY id")
    assert len(keys) == 4 and len({r["key"] for r in keys}) == 4


async def test_cases_of_another_hall_and_bad_queries_are_refused(client: Client) -> None:
    headers = await manager(client)
    assert (await client.get("/api/v1/halls/test/cases", headers=headers)).status == 422
    assert (await client.get("/api/v1/halls/other/cases?number=1", headers=headers)).status in (
        403,
        404,
    )
