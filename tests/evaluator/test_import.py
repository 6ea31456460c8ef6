"""Cases imported from the upstream platform (keypad-only windows): created or updated by the
upstream case number, idempotently, linked to the ticket the record names."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from hall.config.models import HallConfig
from tests.evaluator.conftest import Client, clerk, evaluator_body, finish, manager, serve_one
from tests.evaluator.fake_upstream import FakeUpstream

IMPORT = "/api/v1/halls/test/cases/import"
PULL = "/api/v1/halls/test/cases/pull"


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    upstream = FakeUpstream()
    await upstream.start()
    try:
        yield upstream
    finally:
        await upstream.stop()


@pytest.fixture
def config(fake: FakeUpstream) -> HallConfig:
    return HallConfig.model_validate(
        evaluator_body(
            upstream={
                "url": fake.url,
                "cases_url": fake.cases_url,
                "token": fake.token,
                "timeout_s": 2,
                # The platform calls the case number "bjbh" and the ticket "pdh".
                "field_map": {"case_number": "bjbh", "ticket_number": "pdh"},
            }
        )
    )


def record(number: str, **fields: Any) -> dict[str, Any]:
    return {"bjbh": number, "matter_impl_code": "BDC-001", "accepted_on": "2026-11-24"} | fields


async def test_a_file_import_creates_links_and_updates_cases_idempotently(
    client: Client, pool: asyncpg.Pool
) -> None:
    await serve_one(client)  # A001 at counter 1, by c001
    await finish(client)
    headers = await manager(client)
    records = [
        record(
            "SC-UP-0001",
            pdh="A001",
            status="completed",
            completed_at="2026-11-24T03:00:00+00:00",
        ),
        record(
            "SC-UP-0002",
            matter_impl_code=None,
            matter_name="个体工商户登记",
            case_type="promised",
            promised_days=3,
            window=2,
            clerk="c002",
        ),
        record("SC-UP-0003", matter_impl_code="NOPE-9"),
        record("SC-UP-0004", accepted_on="昨天"),
    ]
    response = await client.post(IMPORT, json={"cases": records}, headers=headers)
    assert response.status == 200, await response.text()
    out = await response.json()
    assert (out["created"], out["updated"], out["unchanged"]) == (
        ["SC-UP-0001", "SC-UP-0002"], [], [],
    )  # fmt: skip
    assert {e["case_number"]: e["detail"] for e in out["errors"]} == {
        "SC-UP-0004": "字段 accepted_on 不正确",
        "SC-UP-0003": "事项 NOPE-9 不在事项目录中",
    }
    assert out["message"] == "新建 2 件，更新 0 件，无变化 0 件，2 件未导入"
    linked = await pool.fetchrow(
        """SELECT c.source, c.status, c.ticket_number, c.counter_number, c.clerk, c.service_code,
                  c.due_on::text, t.display_number
           FROM cases c JOIN tickets t ON t.id = c.ticket_id WHERE c.number = 'SC-UP-0001'"""
    )
    assert linked is not None
    assert tuple(linked) == (
        "upstream",
        "completed",
        "A001",
        1,
        "c001",
        "BDC",
        "2026-12-01",
        "A001",
    )
    other = await pool.fetchrow(
        "SELECT ticket_id, counter_number, clerk, due_on::text FROM cases"
        " WHERE number = 'SC-UP-0002'"
    )
    assert other is not None and tuple(other) == (None, 2, "c002", "2026-11-27")
    # The platform's own status changes are not sent back to it.
    assert await pool.fetchval("SELECT count(*) FROM upstream_outbox") == 0

    # The same file again: nothing changes. Then the platform moves one case on.
    again = await (await client.post(IMPORT, json={"cases": records[:2]}, headers=headers)).json()
    assert (again["created"], again["updated"]) == ([], [])
    assert again["unchanged"] == ["SC-UP-0001", "SC-UP-0002"]
    events = await pool.fetchval("SELECT count(*) FROM case_events")
    later = [record("SC-UP-0002", status="collected", completed_at="2026-11-26T02:00:00+00:00")]
    moved = await (await client.post(IMPORT, json={"cases": later}, headers=headers)).json()
    assert moved["updated"] == ["SC-UP-0002"]
    steps = await pool.fetch(
        """SELECT e.from_status, e.to_status, e.actor FROM case_events e
           JOIN cases c ON c.id = e.case_id WHERE c.number = 'SC-UP-0002' ORDER BY e.id"""
    )
    assert [(r["from_status"], r["to_status"]) for r in steps] == [
        (None, "accepted"), ("accepted", "completed"), ("completed", "collected"),
    ]  # fmt: skip
    assert {r["actor"] for r in steps} == {"upstream:import"}
    assert await pool.fetchval("SELECT count(*) FROM case_events") == events + 2
    facts = await pool.fetchrow(
        "SELECT completed, on_time FROM evaluator_case_facts c WHERE case_id = "
        "(SELECT id FROM cases WHERE number = 'SC-UP-0002')"
    )
    assert facts is not None and tuple(facts) == (True, True)
    # A status never goes back: refused in Chinese, nothing written.
    back = [record("SC-UP-0002", status="accepted")]
    refused = await (await client.post(IMPORT, json={"cases": back}, headers=headers)).json()
    assert refused["errors"] == [
        {"case_number": "SC-UP-0002", "detail": "办件 SC-UP-0002 的状态不能从“领取”变为“受理”"}
    ]
    assert await pool.fetchval("SELECT status FROM cases WHERE number = 'SC-UP-0002'") == (
        "collected"
    )
    # Clerks cannot import.
    as_clerk = await client.post(IMPORT, json={"cases": records}, headers=await clerk(client))
    assert as_clerk.status == 403


async def test_a_pull_from_the_platform_imports_its_cases_once(
    client: Client, pool: asyncpg.Pool, fake: FakeUpstream
) -> None:
    headers = await manager(client)
    fake.cases = [record("SC-UP-0100", hall="test"), record("SC-UP-0200", hall="north")]
    fake.cases_mode = "fail"
    down = await client.post(PULL, json={}, headers=headers)
    assert down.status == 503
    assert "上游平台拒绝了办件查询（HTTP 503）" in (await down.json())["detail"]
    fake.cases_mode = "garbage"
    assert (await client.post(PULL, json={}, headers=headers)).status == 503
    assert await pool.fetchval("SELECT count(*) FROM cases") == 0

    fake.cases_mode = "ok"
    first = await (await client.post(PULL, json={"since": "2026-11-24"}, headers=headers)).json()
    assert first["created"] == ["SC-UP-0100"]  # only this hall's
    second = await (await client.post(PULL, json={}, headers=headers)).json()
    assert (second["created"], second["unchanged"]) == ([], ["SC-UP-0100"])
    assert await pool.fetchval("SELECT count(*) FROM cases") == 1
    assert fake.case_queries[2] == {"hall": "test", "since": "2026-11-24"}


async def test_odd_records_are_reported_one_by_one_and_never_a_500(
    client: Client, pool: asyncpg.Pool
) -> None:
    headers = await manager(client)
    odd: list[Any] = [
        record("SC-X-1", accepted_on="9999-12-31", promised_days=3650),
        record("SC-X-2", status="completed", completed_at="2026-11-24T10:00:00"),  # no zone
        record("SC-X-3", status="teleported"),
        record("SC-X-4", due_on="2026-11-01"),  # before acceptance
        "not a record",
        {"accepted_on": "2026-11-24"},  # no number
    ]
    response = await client.post(IMPORT, json={"cases": odd}, headers=headers)
    assert response.status == 200, await response.text()
    out = await response.json()
    assert out["created"] == [] and len(out["errors"]) == len(odd)
    assert {e["case_number"] for e in out["errors"]} == {
        "SC-X-1", "SC-X-2", "SC-X-3", "SC-X-4", "第 5 条", "第 6 条",
    }  # fmt: skip
    assert await pool.fetchval("SELECT count(*) FROM cases") == 0
    not_a_list = await client.post(IMPORT, json={"cases": "SC-X-9"}, headers=headers)
    assert not_a_list.status == 422
