"""A clerk's whole day on a caller keypad over a real pty bus: LOGIN (job_no*pin, card) opens
the counter and the pad shows the clerk's name; keys serve citizens; refusals beep and are
logged with the reason; a key delivered twice calls one ticket; LOGOUT closes the counter."""

from __future__ import annotations

from typing import Any

import pytest

from firmware_bridge.bridge import EventResult, UpEvent
from firmware_bridge.constants import EventType, KeyCode, LoginMethod
from hall.services.devices import DeviceService
from tests.access_helpers import admin_headers, create_staff
from tests.bridge.conftest import AppMaker, Client, Rig, eventually, fetch, issue


async def counter_is(client: Client, state: str, number: str | None = None) -> bool:
    rows = await fetch(
        client,
        "SELECT c.state::text AS state, t.display_number FROM counters c"
        " LEFT JOIN tickets t ON t.hall_id = c.hall_id AND t.counter_number = c.number"
        " WHERE c.number = 1",
    )
    return (rows[0]["state"], rows[0]["display_number"]) == (state, number)


async def state_of(client: Client, number: str) -> str:
    rows = await fetch(client, "SELECT state::text FROM tickets WHERE display_number = $1", number)
    return str(rows[0]["state"])


async def test_a_day_on_the_keypad(
    make_app: AppMaker,
    rig: Rig,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key_outcomes: list[str] = []
    original = DeviceService.handle_event

    async def delivered_twice(self: DeviceService, ev: UpEvent, age_s: float = 0.0) -> EventResult:
        # Every event reaches the host twice (a retransmission after a lost ack, a bouncing
        # bridge link): the second delivery must change nothing.
        first = await original(self, ev, age_s)
        again = await original(self, ev, age_s)
        assert again.outcome == "duplicate", again
        if ev.evt_type == EventType.KEY:
            key_outcomes.append(first.outcome)
        return first

    monkeypatch.setattr(DeviceService, "handle_event", delivered_twice)
    client = await make_app()
    # Not in the hall config (added like `hall user add`): the pad still shows the real name.
    await create_staff(client, "c101", counters=(1,), name="赵敏")
    await create_staff(client, "c002", counters=(2,), name="李芳")
    admin = await admin_headers(client)
    r = await client.put(
        "/api/v1/staff/c101/device-credentials",
        json={"pin": "3721", "card": "0a:1b:2c:3d", "badge": "GZ-c101-2026"},
        headers=admin,
    )
    assert r.status == 200, await r.text()
    assert (await r.json())["kinds"] == ["badge", "card", "pin"]
    numbers = [await issue(client) for _ in range(4)]

    async def refused(reason: str, before: Any) -> None:
        await eventually(
            lambda: rig.caller.indication is not None and rig.caller.indication != before,
            f"error beep for {reason}",
        )
        rows = await fetch(client, "SELECT outcome, reason FROM device_sign_ins ORDER BY id DESC")
        assert (rows[0]["outcome"], rows[0]["reason"]) == ("refused", reason)

    # Refused: a wrong PIN, a clerk of another window, a job number without PIN.
    for cred, reason in (
        (b"c101*0000", "wrong_credential"),
        (b"c002*1111", "not_assigned"),
        (b"c101", "pin_required"),
    ):
        before = rig.caller.indication
        assert rig.caller.login(LoginMethod.KEYS, cred)
        await refused(reason, before)
    assert await counter_is(client, "closed")

    # LOGIN with job_no*pin: the counter opens for the clerk, the pad shows their name.
    assert rig.caller.login(LoginMethod.KEYS, b"c101*3721")
    await eventually(lambda: counter_is(client, "idle"), "counter opened by LOGIN")
    try:
        await eventually(
            lambda: rig.pad.screen == ("窗口：1号窗口", "工号：c101", "姓名：赵敏"),
            "clerk card on the pad",
        )
    except AssertionError:
        raise AssertionError(f"{rig.pad.screen} {rig.pad.clerk}") from None
    rows = await fetch(client, "SELECT clerk FROM counters WHERE number = 1")
    assert rows[0]["clerk"] == "c101"

    # The day: call, recall, finish; no-show; pause/resume; park and call back; transfer refused.
    assert rig.caller.press_key(KeyCode.CALL_NEXT)
    await eventually(lambda: counter_is(client, "calling", numbers[0]), "first call")
    await eventually(lambda: rig.caller.display.ticket == numbers[0], "number on the caller")
    assert rig.caller.press_key(KeyCode.RECALL)
    assert rig.caller.press_key(KeyCode.FINISH)
    await eventually(lambda: counter_is(client, "idle"), "finished")
    assert await state_of(client, numbers[0]) == "done"
    assert rig.caller.press_key(KeyCode.CALL_NEXT)
    await eventually(lambda: counter_is(client, "calling", numbers[1]), "second call")
    assert rig.caller.press_key(KeyCode.NO_SHOW)
    await eventually(lambda: counter_is(client, "idle"), "no-show")
    assert rig.caller.press_key(KeyCode.PAUSE)
    await eventually(lambda: counter_is(client, "paused"), "paused")
    assert rig.caller.press_key(KeyCode.RESUME)
    await eventually(lambda: counter_is(client, "idle"), "resumed")
    assert rig.caller.press_key(KeyCode.CALL_NEXT)
    await eventually(lambda: counter_is(client, "calling", numbers[2]), "third call")
    assert rig.caller.press_key(KeyCode.HOLD)
    await eventually(lambda: counter_is(client, "idle"), "parked")
    assert rig.caller.press_key(KeyCode.CALL_BACK, numbers[2])
    assert rig.caller.press_key(KeyCode.CALL_NEXT)
    await eventually(lambda: counter_is(client, "calling", numbers[2]), "called back")
    before = rig.caller.indication
    assert rig.caller.press_key(KeyCode.TRANSFER, "2")  # counter 2 is closed
    await eventually(lambda: rig.caller.indication != before, "beep: transfer to a closed window")
    assert await counter_is(client, "calling", numbers[2])

    # LOGOUT with a ticket in hand is refused; after finishing it closes the counter.
    before = rig.caller.indication
    assert rig.caller.logout()
    await refused("ticket_in_hand", before)
    assert rig.caller.press_key(KeyCode.FINISH)
    await eventually(lambda: counter_is(client, "idle"), "finished the last one")
    assert rig.caller.logout()
    await eventually(lambda: counter_is(client, "closed"), "closed by LOGOUT")
    await eventually(lambda: rig.pad.screen == ("暂停服务",), "pad without a clerk")

    # The next morning by card on the caller: the same clerk, found by the card's hash;
    # logging out on the pad, and in again on the pad with the scanned badge.
    assert rig.caller.login(LoginMethod.CARD, bytes.fromhex("0A1B2C3D"))
    await eventually(lambda: counter_is(client, "idle"), "counter opened by card")
    assert rig.pad.logout()
    await eventually(lambda: counter_is(client, "closed"), "closed by the pad's LOGOUT")
    assert rig.pad.login(LoginMethod.SCAN, b"GZ-c101-2026")
    await eventually(lambda: counter_is(client, "idle"), "counter opened by the pad's badge")

    # Each key was applied once although delivered twice; the fourth ticket was never called.
    assert key_outcomes.count("applied") == 12
    assert await state_of(client, numbers[3]) == "waiting"
    called = await fetch(client, "SELECT count(*) AS n FROM events WHERE type = 'ticket.called'")
    assert called[0]["n"] == 4
    log = await fetch(
        client, "SELECT kind, method, job_no, outcome, reason FROM device_sign_ins ORDER BY id"
    )
    assert [tuple(r) for r in log] == [
        ("login", "pin", "c101", "refused", "wrong_credential"),
        ("login", "pin", "c002", "refused", "not_assigned"),
        ("login", "pin", "c101", "refused", "pin_required"),
        ("login", "pin", "c101", "accepted", None),
        ("logout", None, "c101", "refused", "ticket_in_hand"),
        ("logout", None, "c101", "accepted", None),
        ("login", "card", "c101", "accepted", None),
        ("logout", None, "c101", "accepted", None),
        ("login", "badge", "c101", "accepted", None),
    ]
    stored = await fetch(client, "SELECT secret_hash FROM staff_device_credentials")
    for row in stored:
        for secret in ("3721", "0A1B2C3D", "GZ-C101"):
            assert secret not in row["secret_hash"].upper()
