"""The terminal's read API, the clerk's counters, refusals that say why, transfer targets."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.access_helpers import staff_headers

Client = TestClient[web.Request, web.Application]
BASE = "/api/v1/halls/test/counters"


async def post(client: Client, headers: dict[str, str], path: str, **body: Any) -> Any:
    r = await client.post(f"{BASE}/{path}", json=body, headers=headers)
    return r.status, await r.json()


async def issue(client: Client, headers: dict[str, str], service: str, **extra: Any) -> str:
    r = await client.post(
        "/api/v1/halls/test/tickets", json={"service": service, **extra}, headers=headers
    )
    assert r.status == 201, await r.text()
    number: str = (await r.json())["number"]
    return number


async def test_desk_shows_queues_current_ticket_timers_and_notes(client: Client) -> None:
    clerk = await staff_headers(client, "c001", counters=(1,))
    other = await staff_headers(client, "c002", counters=(2,))
    first = await issue(client, clerk, "BDC")
    await issue(client, clerk, "BDC", priority_class="elderly")
    await issue(client, clerk, "TAX")
    assert (await post(client, clerk, "1/open"))[0] == 200
    assert (await post(client, other, "2/open"))[0] == 200
    status, body = await post(client, other, "2/call_next")
    assert status == 200, body
    called = body["ticket"]["number"]
    status, body = await post(client, other, "2/transfer", to_counter=1, reason="需核对原件")
    assert status == 200, body

    r = await client.get(f"{BASE}/1/desk", headers=clerk)
    desk = await r.json()
    assert r.status == 200, desk
    assert desk["state"] == "idle" and desk["state_label"] == "空闲"
    assert desk["ticket"] is None
    assert desk["sent_here"] == 1
    assert desk["pause_reasons"] == ["午休", "会议", "业务咨询", "其他"]
    bdc = next(q for q in desk["queues"] if q["code"] == "BDC")
    numbers = [n["number"] for n in bdc["next"]]
    assert called in numbers and first in numbers
    assert any(n["priority"] for n in bdc["next"])
    assert next(n for n in bdc["next"] if n["number"] == called)["transferred"]

    status, body = await post(client, clerk, "1/call", number=called)
    assert status == 200, body
    desk = await (await client.get(f"{BASE}/1/desk", headers=clerk)).json()
    assert desk["state"] == "calling"
    assert desk["ticket"]["number"] == called
    assert desk["ticket"]["called_at"] is not None
    assert [n["text"] for n in desk["ticket"]["notes"]] == ["需核对原件"]
    two = next(c for c in desk["counters"] if c["number"] == 2)
    assert two["state_label"] == "空闲"


async def test_a_clerk_is_told_which_counter_they_are_not_assigned_to(client: Client) -> None:
    clerk = await staff_headers(client, "c001", counters=(1,))
    status, body = await post(client, clerk, "2/open")
    assert status == 403
    assert body["detail"] == "您未被分配到 2 号窗口"
    r = await client.get(f"{BASE}/2/desk", headers=clerk)
    assert r.status == 403 and (await r.json())["detail"] == "您未被分配到 2 号窗口"


async def test_my_counters_lists_the_assigned_ones_with_closed_and_paused_apart(
    client: Client,
) -> None:
    clerk = await staff_headers(client, "c001", counters=(1, 2))
    await post(client, clerk, "2/open")
    await post(client, clerk, "2/pause", reason="午休")
    r = await client.get("/api/v1/me/counters", headers=clerk)
    body = await r.json()
    assert [(c["number"], c["state_label"]) for c in body] == [
        (1, "窗口关闭"),
        (2, "暂停服务（午休）"),
    ]


async def test_transfer_to_a_closed_counter_is_refused_and_nothing_changes(
    client: Client,
) -> None:
    clerk = await staff_headers(client, "c001", counters=(1,))
    await issue(client, clerk, "BDC")
    await post(client, clerk, "1/open")
    _, body = await post(client, clerk, "1/call_next")
    number = body["ticket"]["number"]
    status, body = await post(client, clerk, "1/transfer", to_counter=3)
    assert status == 409
    assert "3号窗口当前窗口关闭" in body["detail"]
    desk = await (await client.get(f"{BASE}/1/desk", headers=clerk)).json()
    assert desk["state"] == "calling" and desk["ticket"]["number"] == number


async def test_counter_events_carry_the_state_they_leave_and_its_duration(
    client: Client, clock: Any
) -> None:
    from datetime import timedelta

    from hall.web.state import POOL

    clerk = await staff_headers(client, "c001", counters=(1,))
    await issue(client, clerk, "BDC")
    await post(client, clerk, "1/open")
    clock.set(clock.now() + timedelta(seconds=90))
    await post(client, clerk, "1/call_next")
    clock.set(clock.now() + timedelta(seconds=30))
    await post(client, clerk, "1/recall")  # stays calling: no duration
    await post(client, clerk, "1/start")
    rows = await client.app[POOL].fetch(
        "SELECT type, details FROM events WHERE counter_number = 1 ORDER BY id"
    )
    got = [
        (r["type"], r["details"].get("from_state"), r["details"].get("duration_s")) for r in rows
    ]
    assert got == [
        ("counter.opened", "closed", got[0][2]),
        ("ticket.called", "idle", 90.0),
        ("ticket.recalled", None, None),
        ("ticket.started", "calling", 30.0),
    ]


def test_the_caller_display_tells_closed_from_paused() -> None:
    from counters.keypad import keypad_requests

    closed, paused, idle = (keypad_requests(s, None)[0] for s in ("closed", "paused", "idle"))
    assert len({closed.ticket, paused.ticket, idle.ticket}) == 3  # type: ignore[attr-defined]
    assert paused.ticket == "PAUSE"  # type: ignore[attr-defined]


async def test_next_numbers_are_listed_in_the_order_call_next_calls_them(client: Client) -> None:
    """Not issue order (the elderly citizen took the first number): a call-back first, then
    normal tickets until the priority ratio (3) is due, the priority ticket, the rest; the
    second service after the first (call order "order"). Then call-next calls exactly that
    sequence."""
    clerk = await staff_headers(client, "c001", counters=(1,))
    elder = await issue(client, clerk, "BDC", priority_class="elderly")
    normal = [await issue(client, clerk, "BDC") for _ in range(5)]
    tax = await issue(client, clerk, "TAX")
    assert (await post(client, clerk, "1/open"))[0] == 200
    status, body = await post(client, clerk, "1/call_next")
    assert body["ticket"]["number"] == normal[0], body  # tally 0: a priority call is not due
    assert (await post(client, clerk, "1/park", reason="补材料"))[0] == 200
    assert (await post(client, clerk, "1/call_back", number=normal[0]))[0] == 200

    desk = await (await client.get(f"{BASE}/1/desk", headers=clerk)).json()
    # The first call made the tally 1; the call-back keeps it; two more normals make it due.
    expected = [normal[0], normal[1], normal[2], elder, normal[3], normal[4], tax]
    bdc = next(q for q in desk["queues"] if q["code"] == "BDC")
    assert [n["number"] for n in bdc["next"]] == expected[:5]
    assert [n["number"] for n in bdc["next"]] != sorted(n["number"] for n in bdc["next"])
    marks = {n["number"]: n for n in bdc["next"]}
    assert marks[normal[0]]["called_back"] and not marks[normal[0]]["transferred"]
    assert marks[elder]["priority"] and marks[elder]["reason"] == "priority"
    taxq = next(q for q in desk["queues"] if q["code"] == "TAX")
    assert [n["number"] for n in taxq["next"]] == [tax]
    assert [n["number"] for n in desk["upcoming"]] == expected[:6]

    called = []
    for _ in expected:
        status, body = await post(client, clerk, "1/call_next")
        assert status == 200, body
        called.append(body["ticket"]["number"])
        assert (await post(client, clerk, "1/no_show"))[0] == 200
    assert called == expected


async def test_a_hall_manager_releases_a_sign_in_lockout_and_it_is_audited(
    client: Client, clock: Any
) -> None:
    from counters.signin import LOCK_AFTER, Credential, SignInRefused, identify, log_sign_in
    from counters.signin import set_credential as set_secret
    from hall.security.passwords import ScryptParams
    from hall.web.state import POOL

    clerk = await staff_headers(client, "c001", counters=(1,))
    manager = await staff_headers(client, "m001", roles=("manager",))
    pool = client.app[POOL]
    now = clock.now()
    right = Credential("pin", "c001", "3721")
    async with pool.acquire() as conn:
        await set_secret(conn, "c001", "pin", "3721", now, ScryptParams(n=2**4, r=8, p=1))
        for kind, job_no in [("pin", "c001")] * LOCK_AFTER + [("card", None)] * LOCK_AFTER:
            await log_sign_in(
                conn, hall_id="test", counter=1, device="device:b1/2", at=now, kind="login",
                method=kind, job_no=job_no, refusal="wrong_credential",
            )  # fmt: skip
        with pytest.raises(SignInRefused, match="密码错误次数过多"):
            await identify(conn, "test", 1, right, now)

    locks = "/api/v1/halls/test/sign-in-locks"
    r = await client.get(locks, headers=clerk)
    assert r.status == 403  # a clerk cannot release their own lock
    r = await client.get(locks, headers=manager)
    body = await r.json()
    assert r.status == 200, body
    assert {(x["job_no"], x["counter"], x["failures"]) for x in body} == {
        ("c001", 1, LOCK_AFTER),
        (None, 1, LOCK_AFTER),
    }
    assert next(x for x in body if x["job_no"])["name"] == "测试员工c001"

    r = await client.post(f"{locks}/staff/c001/unlock", headers=clerk)
    assert r.status == 403
    r = await client.post(f"{locks}/staff/c001/unlock", headers=manager)
    body = await r.json()
    assert r.status == 200, body
    assert [(x["job_no"], x["counter"]) for x in body["locks"]] == [(None, 1)]
    async with pool.acquire() as conn:
        assert await identify(conn, "test", 1, right, clock.now()) == "c001"
        audit = await conn.fetchrow(
            "SELECT actor, route, status, params FROM audit_log"
            " WHERE route = 'sign_in_unlock_staff' ORDER BY id DESC LIMIT 1"
        )
        released = await conn.fetchrow("SELECT by_actor, job_no FROM sign_in_unlocks")
    assert (audit["actor"], audit["status"]) == ("m001", 200)
    assert audit["params"] == {"hall": "test", "job_no": "c001"}
    assert tuple(released) == ("m001", "c001")

    r = await client.post(f"{locks}/staff/c001/unlock", headers=manager)
    assert r.status == 404 and (await r.json())["detail"] == "工号 c001 当前没有被锁定"
    r = await client.post(f"{locks}/counters/1/unlock", headers=manager)
    assert r.status == 200 and (await r.json())["locks"] == []
    r = await client.post(f"{locks}/counters/999/unlock", headers=manager)
    assert r.status == 404
