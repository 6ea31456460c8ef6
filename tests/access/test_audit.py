"""The audit log: who did what, where from and with what outcome; append-only; admin-readable."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from hall.ports import FixedClock
from hall.web.state import POOL
from tests.access_helpers import admin_headers, staff_headers

Client = TestClient[web.Request, web.Application]


async def audit_rows(client: Client) -> list[dict[str, Any]]:
    rows = await client.app[POOL].fetch("SELECT * FROM audit_log ORDER BY id")
    return [dict(r) for r in rows]


async def test_staff_actions_are_audited_with_outcome_and_reads_are_not(
    access_client: Client, clock: FixedClock
) -> None:
    clerk = await staff_headers(access_client, "c001", counters=(1,))
    opened = await access_client.post("/api/v1/halls/test/counters/1/open", headers=clerk)
    refused = await access_client.post("/api/v1/halls/test/counters/2/open", headers=clerk)
    again = await access_client.post("/api/v1/halls/test/counters/1/open", headers=clerk)
    await access_client.get("/api/v1/halls/test/counters/1", headers=clerk)
    assert (opened.status, refused.status, again.status) == (200, 403, 409)

    rows = await audit_rows(access_client)
    assert [(r["actor"], r["route"], r["params"], r["status"]) for r in rows] == [
        ("c001", "counter_action", {"hall": "test", "number": "1", "action": "open"}, 200),
        ("c001", "counter_action", {"hall": "test", "number": "2", "action": "open"}, 403),
        ("c001", "counter_action", {"hall": "test", "number": "1", "action": "open"}, 409),
    ]
    first = rows[0]
    assert first["actor_kind"] == "staff"
    assert first["method"] == "POST"
    assert first["path"] == "/api/v1/halls/test/counters/1/open"
    assert first["remote"] == "127.0.0.1"
    assert first["session_id"] is not None
    assert first["at"] == clock.now()


async def test_login_attempts_are_audited_under_the_job_number(access_client: Client) -> None:
    await access_client.post("/api/v1/login", json={"job_no": "c001", "password": "wrong-one"})
    rows = await audit_rows(access_client)
    assert [(r["actor"], r["actor_kind"], r["route"], r["status"]) for r in rows] == [
        ("c001", "anonymous", "login", 401)
    ]
    assert rows[0]["params"] == {"job_no": "c001"}, "the password is never kept"


async def test_key_body_fields_are_kept_with_personal_numbers_masked(
    access_client: Client,
) -> None:
    clerk = await staff_headers(access_client, "c001", counters=(1,))
    await access_client.post("/api/v1/halls/test/counters/1/open", headers=clerk)
    paused = await access_client.post(
        "/api/v1/halls/test/counters/1/pause",
        json={"reason": "回电 13812345678"},
        headers=clerk,
    )
    assert paused.status == 200
    row = (await audit_rows(access_client))[-1]
    assert row["params"] == {
        "hall": "test",
        "number": "1",
        "action": "pause",
        "reason": "回电 138****5678",
    }


async def test_admins_page_through_the_log_newest_first(access_client: Client) -> None:
    clerk = await staff_headers(access_client, "c001", counters=(1,))
    for action in ("open", "pause", "resume", "close", "open"):
        body = {"reason": "休息"} if action == "pause" else {}
        await access_client.post(
            f"/api/v1/halls/test/counters/1/{action}", json=body, headers=clerk
        )
    admin = await admin_headers(access_client)
    seen: list[str] = []
    url = "/api/v1/audit?limit=2&actor=c001"
    pages = 0
    while True:
        response = await access_client.get(url, headers=admin)
        assert response.status == 200
        page = await response.json()
        pages += 1
        seen += [item["params"]["action"] for item in page["items"]]
        if page["next_before"] is None:
            break
        url = f"/api/v1/audit?limit=2&actor=c001&before={page['next_before']}"
    assert pages == 3
    assert seen == ["open", "close", "resume", "pause", "open"]


async def test_the_audit_log_cannot_be_changed(access_client: Client) -> None:
    clerk = await staff_headers(access_client, "c001", counters=(1,))
    await access_client.post("/api/v1/halls/test/counters/1/open", headers=clerk)
    pool = access_client.app[POOL]
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await pool.execute("UPDATE audit_log SET actor = 'someone-else'")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await pool.execute("DELETE FROM audit_log")
    assert [r["actor"] for r in await audit_rows(access_client)] == ["c001"]


async def test_a_state_change_and_its_audit_row_commit_in_one_transaction(
    access_client: Client,
) -> None:
    clerk = await staff_headers(access_client, "c001", counters=(1,))
    issued = await access_client.post(
        "/api/v1/halls/test/tickets", json={"service": "BDC"}, headers=clerk
    )
    opened = await access_client.post("/api/v1/halls/test/counters/1/open", headers=clerk)
    assert (issued.status, opened.status) == (201, 200)
    rows = await access_client.app[POOL].fetch(
        """SELECT a.route, a.status, a.xmin::text AS audit_tx,
                  (SELECT c.xmin::text FROM counters c
                    WHERE c.hall_id = 'test' AND c.number = 1) AS state_tx
           FROM audit_log a ORDER BY a.id"""
    )
    assert [(r["route"], r["status"]) for r in rows] == [
        ("issue_ticket", 201),
        ("counter_action", 200),
    ]
    assert rows[-1]["audit_tx"] == rows[-1]["state_tx"]  # written by the action's transaction
