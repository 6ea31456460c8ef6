"""Device-event service against the real database: exactly once, kiosks, ratings, registry."""

from __future__ import annotations

import time
from typing import Any

import pytest

from firmware_bridge.bridge import DeviceReport, Report, UpEvent
from firmware_bridge.constants import Color, DisplayMode, KeyCode
from firmware_bridge.messages import (
    NO_WAITING,
    Event,
    KeyEvent,
    KeypadShowRequest,
    PadClerkRequest,
    PadServiceRequest,
    RatingEvent,
    Row,
    SetIdleRequest,
    ShowRowsRequest,
    ShowTextRequest,
)
from hall.config.models import HallConfig
from hall.services.devices import DeviceService
from hall.services.directory import Directory
from hall.services.queue import CounterAction
from tests.bridge.conftest import AppMaker, Client, fetch, hub_of, issue, open_counter
from tests.factories import hall_config

UID_CALLER = "4842040000000002"
UID_PAD = "4842030000000003"


@pytest.fixture
def config() -> HallConfig:
    base = hall_config(
        extra_hall={
            "kiosks": [{"id": "k1", "name": "一号取号机"}],
            "screens": [{"id": "s1", "name": "大厅屏", "rows": 3}],
        }
    )
    body: dict[str, Any] = base.model_dump(mode="json", by_alias=True, exclude_unset=True)
    body["buses"] = [{"name": "b1", "hall": "test", "url": "/dev/ttyHB0"}]
    body["devices"] = [
        {"bus": "b1", "address": 1, "class": "strip", "counter": 1},
        {"bus": "b1", "address": 2, "class": "caller", "counter": 1},
        {"bus": "b1", "address": 3, "class": "pad", "counter": 1},
        {"bus": "b1", "address": 4, "class": "kiosk", "kiosk": "k1"},
        {"bus": "b1", "address": 5, "class": "pad", "counter": 2},
        {"bus": "b1", "address": 6, "class": "screen", "screen": "s1"},
    ]
    return HallConfig.model_validate(body)


def up(address: int, uid: str, event: Event, *, evt_seq: int = 2, boot_id: int = 7) -> UpEvent:
    return UpEvent(
        bus="b1",
        address=address,
        device_class=0,
        uid=uid,
        boot_id=boot_id,
        evt_seq=evt_seq,
        evt_type=int(event.evt_type),
        data=event.encode(),
        at=time.time(),
    )


async def service(make_app: AppMaker) -> tuple[Client, DeviceService]:
    client = await make_app(mode="off")
    return client, hub_of(client).service


async def test_a_repeated_key_event_has_one_effect(make_app: AppMaker) -> None:
    client, svc = await service(make_app)
    await issue(client)
    await issue(client)
    await open_counter(client)
    press = up(2, UID_CALLER, KeyEvent(KeyCode.CALL_NEXT))

    first = await svc.handle_event(press)
    again = await svc.handle_event(press)

    assert (first.outcome, again.outcome) == ("applied", "duplicate")
    called = await fetch(client, "SELECT display_number FROM tickets WHERE state = 'called'")
    assert [r["display_number"] for r in called] == ["A001"]
    events = await fetch(client, "SELECT count(*) AS n FROM events WHERE type = 'ticket.called'")
    assert events[0]["n"] == 1


async def test_refused_key_keeps_its_key_and_writes_nothing_else(make_app: AppMaker) -> None:
    client, svc = await service(make_app)
    await open_counter(client)
    before = await fetch(client, "SELECT count(*) AS n FROM events")

    result = await svc.handle_event(up(2, UID_CALLER, KeyEvent(KeyCode.RECALL)))

    assert (result.outcome, result.beep) == ("rejected:no_active_ticket", True)
    after = await fetch(client, "SELECT count(*) AS n FROM events")
    assert after[0]["n"] == before[0]["n"]
    again = await svc.handle_event(up(2, UID_CALLER, KeyEvent(KeyCode.RECALL)))
    assert again.outcome == "duplicate"


async def test_kiosk_key_issues_a_ticket_once(make_app: AppMaker) -> None:
    client, svc = await service(make_app)
    press = up(4, "4842050000000004", KeyEvent(KeyCode(0x81)))

    assert (await svc.handle_event(press)).outcome == "applied"
    assert (await svc.handle_event(press)).outcome == "duplicate"

    rows = await fetch(client, "SELECT display_number, service_code, kiosk FROM tickets")
    assert [tuple(r) for r in rows] == [("B001", "TAX", "k1")]


async def test_rating_only_for_a_visit_finished_at_the_pads_counter(make_app: AppMaker) -> None:
    client, svc = await service(make_app)
    await issue(client)
    await open_counter(client)
    queue = hub_of(client).service.queue
    for action in (CounterAction.CALL_NEXT, CounterAction.START, CounterAction.FINISH):
        await queue.act("test", 1, action, "c001")
    ticket_id = (await fetch(client, "SELECT id FROM tickets"))[0]["id"]
    session = (await fetch(client, "SELECT id FROM pad_sessions"))[0]["id"]

    by_ticket_id = await svc.handle_event(up(3, UID_PAD, RatingEvent(ticket_id, 5), evt_seq=2))
    foreign = await svc.handle_event(up(5, "4842030000000005", RatingEvent(session, 1)))
    own = await svc.handle_event(up(3, UID_PAD, RatingEvent(session, 5), evt_seq=3))
    second = await svc.handle_event(up(3, UID_PAD, RatingEvent(session, 2), evt_seq=4))

    assert [by_ticket_id.outcome, foreign.outcome, own.outcome, second.outcome] == [
        "rejected:unknown_session",
        "rejected:unknown_session",
        "applied",
        "rejected:already_rated",
    ]
    rows = await fetch(client, "SELECT level, counter_number, device_uid, session_id FROM ratings")
    assert [tuple(r) for r in rows] == [(5, 1, UID_PAD, session)]


def report(address: int, uid: str, boot_id: int = 1) -> Report:
    device = DeviceReport("b1", address, 1, uid, "1.0.0", boot_id, "online", time.time())
    return Report((device,), {})


async def test_changed_and_duplicate_uids_raise_one_alarm_each(make_app: AppMaker) -> None:
    client, svc = await service(make_app)

    await svc.record_report(report(1, "aaaaaaaaaaaaaaaa"))
    await svc.record_report(report(1, "bbbbbbbbbbbbbbbb"))
    await svc.record_report(report(3, "bbbbbbbbbbbbbbbb"))
    for _ in range(2):  # the same view again raises nothing new
        await svc.record_report(report(1, "bbbbbbbbbbbbbbbb"))
        await svc.record_report(report(3, "bbbbbbbbbbbbbbbb"))

    alarms = await fetch(client, "SELECT kind, address, detail FROM device_alarms ORDER BY id")
    assert [(r["kind"], r["address"]) for r in alarms] == [
        ("uid_changed", 1),
        ("duplicate_uid", 3),
    ]
    registry = await svc.registry("test")
    strip = next(d for d in registry.devices if d.address == 1)
    assert (strip.uid, strip.state, strip.firmware) == ("bbbbbbbbbbbbbbbb", "online", "1.0.0")


async def test_a_device_taken_out_of_the_config_leaves_the_registry(
    make_app: AppMaker, config: HallConfig
) -> None:
    _, svc = await service(make_app)
    await svc.record_report(report(6, "cccccccccccccccc"))
    await svc.record_report(report(6, "dddddddddddddddd"))  # swapped: a uid_changed alarm
    assert {d.address for d in (await svc.registry("test")).devices} == {1, 2, 3, 4, 5, 6}

    # The hall screen is unplugged for good and dropped from the config; a server starts on it.
    body = config.model_dump(mode="json", by_alias=True, exclude_unset=True)
    body["devices"] = [d for d in body["devices"] if d["address"] != 6]
    smaller = Directory(HallConfig.model_validate(body))
    await DeviceService(
        svc.pool, smaller, svc.queue, svc.clock, tuple(svc.roles.values())
    ).sync_registry()

    registry = await svc.registry("test")
    assert {d.address for d in registry.devices} == {1, 2, 3, 4, 5}
    # Its history is kept: the alarms it raised are still listed.
    assert [(a.kind, a.address) for a in registry.alarms] == [("uid_changed", 6)]


async def test_a_key_that_waited_long_at_the_edge_has_no_effect(make_app: AppMaker) -> None:
    client, svc = await service(make_app)
    await issue(client)
    await open_counter(client)

    late = await svc.handle_event(up(2, UID_CALLER, KeyEvent(KeyCode.CALL_NEXT)), age_s=120.0)
    fresh = await svc.handle_event(
        up(2, UID_CALLER, KeyEvent(KeyCode.CALL_NEXT), evt_seq=3), age_s=1.0
    )

    assert (late.outcome, fresh.outcome) == ("rejected:stale", "applied")
    called = await fetch(client, "SELECT count(*) AS n FROM tickets WHERE state = 'called'")
    assert called[0]["n"] == 1


async def test_desired_state_follows_the_counters(make_app: AppMaker) -> None:
    client, svc = await service(make_app)
    queue = svc.queue
    await issue(client)
    await issue(client)
    await open_counter(client, 1)
    await open_counter(client, 2)
    await queue.act("test", 1, CounterAction.CALL_NEXT, "c001")
    await queue.act("test", 2, CounterAction.CALL_NEXT, "c001")
    await queue.act("test", 1, CounterAction.RECALL, "c001")
    await queue.act("test", 2, CounterAction.START, "c001")

    desired = await svc.desired("test")

    assert desired[("b1", 1)] == (
        ShowTextRequest(
            mode=DisplayMode.FLASH, color=Color.RED, hold_s=10, text="请A001号到1号窗口"
        ),
        SetIdleRequest(color=Color.GREEN, text="1号窗口 欢迎光临"),
    )
    assert desired[("b1", 2)] == (KeypadShowRequest("A001", NO_WAITING, 2),)
    clerk = PadClerkRequest("1号窗口", "c001", "王小明")
    session = (await fetch(client, "SELECT id FROM pad_sessions WHERE counter_number = 1"))[0]
    assert desired[("b1", 3)] == (clerk, PadServiceRequest(session["id"], "A001", "不动产登记"))
    assert desired[("b1", 6)] == (
        ShowRowsRequest(
            0,
            (
                Row(int(Color.RED) | 0x08, "A001 1号窗口"),
                Row(int(Color.GREEN), "A002 2号窗口"),
                Row(0, ""),
            ),
        ),
    )
    assert desired[("b1", 4)] == ()


async def test_an_event_without_a_valid_key_is_acknowledged_without_effect(
    make_app: AppMaker,
) -> None:
    client, svc = await service(make_app)
    await issue(client)
    await open_counter(client)

    result = await svc.handle_event(up(2, UID_CALLER, KeyEvent(KeyCode.CALL_NEXT), boot_id=0))

    assert result.outcome == "ignored"
    assert await fetch(client, "SELECT 1 FROM tickets WHERE state = 'called'") == []
    assert await fetch(client, "SELECT 1 FROM device_events_seen") == []
