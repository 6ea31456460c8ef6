"""Serial cable pulled and put back, with events waiting on the devices, bridge in the server.

The offline alarm and the resync after a replug with new boot ids are in
tests/bridge/test_line_health.py, a silent device after the commit in
tests/bridge/test_inprocess.py; these add what a pulled cable does to events in flight.
"""

from __future__ import annotations

import pytest

from firmware_bridge.constants import EventType, KeyCode
from firmware_bridge.health import DeviceHealth
from tests.bridge import conftest as bridge_fixtures
from tests.bridge.conftest import (
    CALLER,
    PAD,
    AppMaker,
    Client,
    Rig,
    eventually,
    fetch,
    master_of,
    open_counter,
    outcomes_of,
    to_the_rating_screen,
)
from tests.bridge.conftest import issue as issue_ticket

config = bridge_fixtures.config
fast_timing = bridge_fixtures.fast_timing
make_app = bridge_fixtures.make_app
rig = bridge_fixtures.rig


async def stored_events(client: Client, uid: bytes) -> int:
    rows = await fetch(
        client, "SELECT count(*) AS n FROM device_events_seen WHERE device_uid = $1", uid.hex()
    )
    return int(rows[0]["n"])


async def calls(client: Client) -> int:
    rows = await fetch(client, "SELECT count(*) AS n FROM events WHERE type = 'ticket.called'")
    return int(rows[0]["n"])


async def test_keys_and_ratings_pressed_while_unplugged_are_stored_once_after_replug(
    make_app: AppMaker, rig: Rig
) -> None:
    client = await make_app()
    first = await issue_ticket(client)
    second = await issue_ticket(client)
    await open_counter(client)
    assert rig.caller.press_key(KeyCode.CALL_NEXT)
    await eventually(lambda: rig.strip.text == f"请{first}号到1号窗口", "first call on the strip")
    assert rig.caller.press_key(KeyCode.FINISH)
    await eventually(lambda: rig.pad.rating is not None, "rating screen on the pad")
    await eventually(lambda: not rig.caller.pending_events, "caller acknowledged")
    keys, ratings = (
        await stored_events(client, rig.caller.uid),
        await stored_events(client, rig.pad.uid),
    )
    master = master_of(client)

    rig.unplug()
    await eventually(lambda: master.device(CALLER).health is DeviceHealth.OFFLINE, "caller offline")
    # The devices stay powered: the citizen rates and the clerk calls the next one.
    assert rig.pad.rate(3)
    assert rig.caller.press_key(KeyCode.CALL_NEXT)
    assert len(rig.pad.pending_events) == 1
    assert len(rig.caller.pending_events) == 1
    await rig.replug()

    await eventually(lambda: rig.strip.text == f"请{second}号到1号窗口", "second call shown")
    await eventually(
        lambda: not rig.pad.pending_events and not rig.caller.pending_events,
        "both devices acknowledged",
    )
    rows = await fetch(client, "SELECT level, counter_number FROM ratings")
    assert [tuple(r) for r in rows] == [(3, 1)]
    assert await calls(client) == 2
    assert await stored_events(client, rig.caller.uid) == keys + 1
    assert await stored_events(client, rig.pad.uid) == ratings + 1


async def test_cable_pulled_between_commit_and_ack_applies_the_event_once(
    make_app: AppMaker, rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rating is committed, then the cable is pulled before the POLL carrying its ack."""
    outcomes = outcomes_of(monkeypatch, EventType.RATING, then=rig.unplug)
    client = await make_app()
    await to_the_rating_screen(client, rig)
    master = master_of(client)

    assert rig.pad.rate(2, reasons=0b1)
    await eventually(lambda: outcomes == ["applied"], "rating committed")
    await eventually(lambda: master.device(PAD).health is DeviceHealth.OFFLINE, "pad offline")
    assert len(rig.pad.pending_events) == 1  # the ack never reached it

    await rig.replug()
    await eventually(lambda: not rig.pad.pending_events, "pad acknowledged after the replug")
    # The master remembers what was committed: the event offered again after the replug is
    # only acknowledged (HB1.md §8.3), the server is not even asked again.
    assert outcomes == ["applied"]
    rows = await fetch(client, "SELECT level, counter_number FROM ratings")
    assert [tuple(r) for r in rows] == [(2, 1)]
