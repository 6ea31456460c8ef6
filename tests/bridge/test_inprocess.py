"""The bridge inside the server, against emulated devices on a real pty bus."""

from __future__ import annotations

import pytest

from firmware_bridge.constants import EventType, KeyCode
from tests.bridge.conftest import (
    PAD,
    AppMaker,
    Rig,
    eventually,
    fetch,
    hub_of,
    issue,
    open_and_idle,
    open_counter,
    outcomes_of,
    to_the_rating_screen,
)


async def test_caller_key_calls_next_and_strip_shows_the_call(make_app: AppMaker, rig: Rig) -> None:
    client = await make_app()
    number = await issue(client)
    await open_and_idle(client, rig)

    assert rig.caller.press_key(KeyCode.CALL_NEXT)

    await eventually(lambda: rig.strip.text == f"请{number}号到1号窗口", "call on the strip")
    assert rig.strip.flashing()
    rows = await fetch(client, "SELECT state::text, counter_number FROM tickets")
    assert [(r["state"], r["counter_number"]) for r in rows] == [("called", 1)]
    await eventually(lambda: rig.caller.display.ticket == number, "ticket on the caller")
    seen = await fetch(client, "SELECT outcome FROM device_events_seen WHERE evt_type = $1", 0x45)
    assert [r["outcome"] for r in seen] == ["applied"]


async def test_refused_key_beeps_and_changes_nothing(make_app: AppMaker, rig: Rig) -> None:
    client = await make_app()
    await open_and_idle(client, rig)
    beeps_before = rig.caller.indication

    assert rig.caller.press_key(KeyCode.CALL_NEXT)  # nobody waiting

    await eventually(
        lambda: rig.caller.indication is not None and rig.caller.indication != beeps_before,
        "error beep on the caller",
    )
    seen = await fetch(client, "SELECT outcome FROM device_events_seen WHERE evt_type = $1", 0x45)
    assert [r["outcome"] for r in seen] == ["rejected:queue_empty"]
    assert rig.strip.text == "1号窗口 欢迎光临"


async def test_rating_with_the_reply_dropped_twice_is_recorded_once(
    make_app: AppMaker, rig: Rig
) -> None:
    client = await make_app()
    number = await to_the_rating_screen(client, rig)
    master = hub_of(client).bridge
    assert master is not None
    retries_before = master.master("b1").stats.retries

    rig.pad.switches.drop_next = 2  # the POLL reply carrying the rating is lost twice
    assert rig.pad.rate(4)

    await eventually(lambda: fetch(client, "SELECT 1 FROM ratings"), "rating row")
    await eventually(lambda: not rig.pad.pending_events, "device acknowledged")
    ratings = await fetch(
        client,
        "SELECT r.level, r.counter_number, r.clerk, t.display_number FROM ratings r"
        " JOIN tickets t ON t.id = r.ticket_id",
    )
    assert [tuple(r) for r in ratings] == [(4, 1, "c001", number)]
    keys = await fetch(
        client, "SELECT device_uid FROM device_events_seen WHERE evt_type = $1", 0x41
    )
    assert [r["device_uid"] for r in keys] == [rig.pad.uid.hex()]
    assert master.master("b1").stats.retries >= retries_before + 2
    assert rig.pad.address == PAD


async def test_event_committed_but_never_acknowledged_is_not_applied_twice(
    make_app: AppMaker, rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server stops after the commit and before the device heard the ack (§8.3)."""

    def go_deaf() -> None:
        rig.caller.switches.silent = True  # the POLL carrying the ack is never heard

    outcomes = outcomes_of(monkeypatch, EventType.KEY, then=go_deaf)
    first = await make_app()
    number = await issue(first)
    await open_counter(first)
    assert rig.caller.press_key(KeyCode.CALL_NEXT)
    await eventually(lambda: outcomes == ["applied"], "key committed")
    await first.close()  # server restart: the ack state of the bridge is gone
    assert len(rig.caller.pending_events) == 1

    rig.caller.switches.silent = False
    rig.unplug()  # a pty master reads EIO once its slave closes: give the next server a new one
    await rig.replug()
    second = await make_app()
    await eventually(lambda: not rig.caller.pending_events, "device acknowledged")

    assert outcomes == ["applied", "duplicate"]
    rows = await fetch(second, "SELECT count(*) AS n FROM events WHERE type = 'ticket.called'")
    assert rows[0]["n"] == 1
    await eventually(lambda: rig.strip.text == f"请{number}号到1号窗口", "call on the strip")
