"""Must-show: a whole visit through an emulated caller and rating pad on a real pty bus.

Call, finish with a case, rating 2 with reasons → case, rating and 差评 task linked to the
ticket, counter and clerk, visible through the API; dropped replies (so the pad sends its
RATING again) → one rating; a RATING delivered twice (its ack lost over a server restart) → one
rating; a second rating of the case refused in Chinese; a pad timeout → not rated.
"""

from __future__ import annotations

from typing import Any

import pytest

from evaluator import pad as pad_rules
from firmware_bridge.constants import EventType, KeyCode
from hall.config.models import HallConfig
from tests.bridge import conftest as bridge_fixtures
from tests.bridge.conftest import (
    AppMaker,
    Rig,
    eventually,
    fetch,
    issue,
    open_counter,
    outcomes_of,
    to_the_rating_screen,
    wired_config,
)
from tests.evaluator.conftest import clerk, evaluator_body, manager

fast_timing = bridge_fixtures.fast_timing
make_app = bridge_fixtures.make_app
rig = bridge_fixtures.rig


@pytest.fixture
def config(rig: Rig) -> HallConfig:
    wired = wired_config(rig.path)
    body = evaluator_body()
    body["buses"] = [{"name": "b1", "hall": "test", "url": "/dev/ttyHB0"}]
    body["devices"] = [d.model_dump(mode="json", by_alias=True) for d in wired.devices]
    config = HallConfig.model_validate(body)
    config.buses[0] = wired.buses[0]  # the pty path and fast options, as the bridge tests do
    return config


async def test_a_full_visit_with_a_bad_rating_through_caller_and_pad(
    make_app: AppMaker,
    rig: Rig,
) -> None:
    client = await make_app()
    number = await issue(client)
    await open_counter(client)

    assert rig.caller.press_key(KeyCode.CALL_NEXT)
    await eventually(lambda: rig.pad.service is not None, "the visit shown on the pad")
    service = rig.pad.service
    assert service is not None and service.ticket == number
    sessions = await fetch(client, "SELECT id, ticket_id, counter_number, clerk FROM pad_sessions")
    assert [r["id"] for r in sessions] == [service.session_id]
    ticket_id = sessions[0]["ticket_id"]
    assert service.session_id != ticket_id  # a random id, not the ticket's

    # The clerk's finish form creates the case, then the caller's FINISH key ends the visit.
    headers = await clerk(client)
    created = await client.post(
        "/api/v1/halls/test/evaluator/counters/1/cases",
        json={"ticket_id": ticket_id, "matter": "BDC-001", "applicant_phone": "13812345678"},
        headers=headers,
    )
    assert created.status == 201, await created.text()
    case = await created.json()
    assert rig.caller.press_key(KeyCode.FINISH)
    await eventually(lambda: rig.pad.rating is not None, "the rating screen on the pad")
    rating_screen = rig.pad.rating
    assert rating_screen is not None and rating_screen.session_id == service.session_id

    rig.pad.switches.drop_next = 2  # the POLL replies carrying the RATING are lost twice
    assert rig.pad.rate(2, reasons=0b11)  # 不满意: 办事效率低 + 服务态度差

    await eventually(lambda: fetch(client, "SELECT 1 FROM ratings"), "the rating row")
    await eventually(lambda: not rig.pad.pending_events, "the pad acknowledged")
    assert not rig.pad.rate(5)  # the session is over on the pad as well

    boss = await manager(client)
    ratings = await (await client.get("/api/v1/halls/test/ratings", headers=boss)).json()
    assert len(ratings) == 1
    r = ratings[0]
    assert (r["level"], r["reason_texts"], r["ticket_number"], r["counter"], r["clerk"]) == (
        2,
        ["办事效率低", "服务态度差"],
        number,
        1,
        "c001",
    )
    assert (r["case_number"], r["session_id"], r["channel"]) == (
        case["number"],
        service.session_id,
        "pad",
    )
    tasks = await (await client.get("/api/v1/halls/test/bad-rating-tasks", headers=boss)).json()
    assert [
        (t["rating_id"], t["case_number"], t["ticket_number"], t["counter"]) for t in tasks
    ] == [(r["id"], case["number"], number, 1)]
    found = await (
        await client.get(f"/api/v1/halls/test/cases?ticket_id={ticket_id}", headers=boss)
    ).json()
    assert [c["rating_id"] for c in found] == [r["id"]]
    seen = await fetch(client, "SELECT outcome FROM device_events_seen WHERE evt_type = $1", 0x41)
    assert [row["outcome"] for row in seen] == ["applied"]

    # The same case rated again (its phone link): refused, nothing written.
    token = case["rating_url"].rsplit("/", 1)[-1]
    again = await client.post(f"/api/v1/rate/{token}", json={"level": 5})
    assert again.status == 409
    assert (await again.json())["detail"] == f"办件 {case['number']} 已评价，不能重复评价"
    assert len(await fetch(client, "SELECT id FROM ratings")) == 1


async def test_no_press_before_the_pad_timeout_is_stored_as_not_rated(
    make_app: AppMaker,
    rig: Rig,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = await make_app()
    monkeypatch.setattr(pad_rules.SETTINGS, "timeout_s", 1)  # a real pad waits 30-60 s
    await to_the_rating_screen(client, rig)

    async def stored() -> Any:
        return await fetch(client, "SELECT level, not_rated_reason FROM ratings")

    await eventually(stored, "the not-rated row", within=5)
    rows = await stored()
    assert [tuple(row) for row in rows] == [(None, "timeout")]
    assert len(await fetch(client, "SELECT id FROM bad_rating_tasks")) == 0
    await eventually(lambda: rig.pad.rating is None, "the pad back to the clerk card")


async def test_a_rating_delivered_twice_after_a_lost_ack_is_stored_once(
    make_app: AppMaker,
    rig: Rig,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The server commits the RATING, then stops before the pad hears the ack (HB1.md §8.3):
    the pad sends the same RATING again to the next server, which stores nothing new."""

    def go_deaf() -> None:
        rig.pad.switches.silent = True  # the POLL carrying the ack is never heard

    outcomes = outcomes_of(monkeypatch, EventType.RATING, then=go_deaf)
    first = await make_app()
    await to_the_rating_screen(first, rig)
    assert rig.pad.rate(1, reasons=0b1)
    await eventually(lambda: outcomes == ["applied"], "rating committed")
    await first.close()  # server restart: the bridge's ack state is gone
    assert len(rig.pad.pending_events) == 1  # the pad still holds the RATING

    rig.pad.switches.silent = False
    rig.unplug()
    await rig.replug()
    second = await make_app()
    await eventually(lambda: not rig.pad.pending_events, "the pad acknowledged")

    assert outcomes == ["applied", "duplicate"]
    rows = await fetch(second, "SELECT level, reason_codes FROM ratings")
    assert [(r["level"], r["reason_codes"]) for r in rows] == [(1, ["slow"])]
    assert len(await fetch(second, "SELECT id FROM bad_rating_tasks")) == 1
