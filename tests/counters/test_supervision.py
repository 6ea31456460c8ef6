"""Electronic supervision driven by an injected clock: alarms fire and clear, reach the
dashboard's live channel (and not the public one), and add up per clerk per day."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from counters.supervision import tick
from hall.config.check import check_command
from hall.ports import FixedClock
from hall.web.live import Client as LiveClient
from hall.web.state import CLOCK, DIRECTORY, POOL
from tests.access_helpers import admin_headers, staff_headers

Client = TestClient[web.Request, web.Application]
BASE = "/api/v1/halls/test"


async def act(client: Client, headers: dict[str, str], n: int, action: str, **body: Any) -> Any:
    r = await client.post(f"{BASE}/counters/{n}/{action}", json=body, headers=headers)
    assert r.status == 200, await r.text()
    return await r.json()


async def issue(client: Client, headers: dict[str, str]) -> None:
    r = await client.post(f"{BASE}/tickets", json={"service": "BDC"}, headers=headers)
    assert r.status == 201


async def run(client: Client) -> tuple[set[tuple[str, int]], set[tuple[str, int]]]:
    change = await tick(client.app[POOL], client.app[DIRECTORY], client.app[CLOCK], "test")
    return {(c.kind, c.counter) for c in change.raised}, set(change.cleared)


def later(clock: FixedClock, minutes: float) -> None:
    clock.set(clock.now() + timedelta(minutes=minutes))


async def open_alarms(client: Client, counter: int) -> set[str]:
    rows = await client.app[POOL].fetch(
        "SELECT kind FROM supervision_alarms WHERE counter_number = $1 AND cleared_at IS NULL",
        counter,
    )
    return {r["kind"] for r in rows}


async def test_idle_with_queue_and_long_service_fire_and_clear(
    client: Client, clock: FixedClock
) -> None:
    clerk = await staff_headers(client, "c001", counters=(1,))
    await act(client, clerk, 1, "open")
    await issue(client, clerk)
    await run(client)
    assert "idle_with_queue" not in await open_alarms(client, 1)

    later(clock, 9)
    await run(client)
    assert "idle_with_queue" not in await open_alarms(client, 1)  # threshold 10 min
    later(clock, 1.5)
    raised, _ = await run(client)
    assert ("idle_with_queue", 1) in raised
    raised, _ = await run(client)
    assert ("idle_with_queue", 1) not in raised  # raised once while it holds

    await act(client, clerk, 1, "call_next")
    await act(client, clerk, 1, "start")
    _, cleared = await run(client)
    assert ("idle_with_queue", 1) in cleared

    later(clock, 31)
    raised, _ = await run(client)
    assert ("long_service", 1) in raised
    await act(client, clerk, 1, "finish")
    _, cleared = await run(client)
    assert ("long_service", 1) in cleared
    assert await open_alarms(client, 1) == set()
    events = await client.app[POOL].fetch(
        "SELECT type, details->>'kind' AS kind FROM events"
        " WHERE type LIKE 'supervision.%' AND counter_number = 1 ORDER BY id"
    )
    assert [(e["type"], e["kind"]) for e in events] == [
        ("supervision.alarm", "idle_with_queue"),
        ("supervision.cleared", "idle_with_queue"),
        ("supervision.alarm", "long_service"),
        ("supervision.cleared", "long_service"),
    ]


async def test_unattended_late_sign_in_and_no_shows(client: Client, clock: FixedClock) -> None:
    clerk = await staff_headers(client, "c002", counters=(2, 3))
    # Closed since yesterday evening (the seed wrote the real time, after the test's clock).
    await client.app[POOL].execute(
        "UPDATE counters SET state_since = $1", clock.now() - timedelta(hours=15)
    )
    await act(client, clerk, 2, "open")
    await act(client, clerk, 2, "pause", reason="午休")
    await run(client)
    assert await open_alarms(client, 2) == set()  # opened at 10:00, paused just now
    # Counter 3 was never opened: it is late (08:30 + 5 min), and unattended.
    assert await open_alarms(client, 3) == {"late_sign_in", "unattended"}

    later(clock, 16)
    raised, _ = await run(client)
    assert ("unattended", 2) in raised
    await act(client, clerk, 3, "open")
    _, cleared = await run(client)
    assert {("late_sign_in", 3), ("unattended", 3)} <= cleared

    for _ in range(3):
        await issue(client, clerk)
    for _ in range(3):
        await act(client, clerk, 3, "call_next")
        await act(client, clerk, 3, "no_show")
    raised, _ = await run(client)
    assert ("no_shows", 3) in raised
    await issue(client, clerk)
    await act(client, clerk, 3, "call_next")
    await act(client, clerk, 3, "start")
    await act(client, clerk, 3, "finish")
    _, cleared = await run(client)
    assert ("no_shows", 3) in cleared


async def test_no_unattended_alarm_outside_business_hours(
    client: Client, clock: FixedClock
) -> None:
    morning = clock.now()
    await client.app[POOL].execute(
        "UPDATE counters SET state_since = $1", morning - timedelta(hours=15)
    )
    clock.set(morning + timedelta(hours=10))  # 20:00 in Shanghai
    await run(client)
    assert await client.app[POOL].fetch("SELECT kind FROM supervision_alarms") == []
    clock.set(morning)  # the same closed counters at 10:00 are unattended
    raised, _ = await run(client)
    assert ("unattended", 1) in raised


async def test_alarms_reach_the_dashboard_channel_only(client: Client, clock: FixedClock) -> None:
    admin = await admin_headers(client)
    clerk = await staff_headers(client, "c001", counters=(1,))
    await act(client, clerk, 1, "open")
    await issue(client, clerk)
    ws = await client.ws_connect(f"{BASE}/live?channel=dashboard", headers=admin)
    try:
        snapshot = await ws.receive_json()
        assert snapshot["type"] == "snapshot"
        later(clock, 11)
        await run(client)
        while True:
            msg = await ws.receive_json(timeout=10)
            if (
                msg["type"] == "event"
                and msg["event"]["type"] == "supervision.alarm"
                and msg["event"]["counter"] == 1
            ):
                break
        # (the other counters, never opened today, have late sign-in alarms of their own)
        assert msg["event"]["details"]["kind"] == "idle_with_queue"
        assert msg["event"]["details"]["points"] == 2.0
    finally:
        await ws.close()
    from hall.domain.tickets import Event, EventType

    alarm = Event(EventType.SUPERVISION_ALARM, clock.now(), "supervision", counter_number=1)
    for channel, counter, wanted in (("display", None, False), ("dashboard", None, True),
                                     ("counter:1", 1, False)):  # fmt: skip
        client_ = LiveClient(hall="test", channel=channel, ws=None, transport=None)  # type: ignore[arg-type]
        client_.counter = counter
        assert client_.wants(alarm) is wanted


async def test_day_figures_per_clerk(client: Client, clock: FixedClock) -> None:
    manager = await staff_headers(client, "m001", roles=("manager",))
    clerk = await staff_headers(client, "c001", counters=(1,))
    await act(client, clerk, 1, "open")
    for _ in range(2):
        await issue(client, clerk)
    later(clock, 11)
    await run(client)  # idle with a queue: 2 points
    for _ in range(2):
        await act(client, clerk, 1, "call_next")
        await act(client, clerk, 1, "start")
        await act(client, clerk, 1, "finish")
    await act(client, clerk, 1, "pause", reason="会议")
    later(clock, 20)
    await act(client, clerk, 1, "resume")
    await act(client, clerk, 1, "pause", reason="午休")
    later(clock, 5)
    await act(client, clerk, 1, "close")
    r = await client.get(f"{BASE}/supervision/day", headers=manager)
    body = await r.json()
    assert r.status == 200, body
    (c001,) = [c for c in body["clerks"] if c["job_no"] == "c001"]
    assert c001["served"] == 2
    assert c001["pause_s"] == {"会议": 1200.0, "午休": 300.0}
    assert c001["signed_in_at"].startswith("2026-11-24T02:00")
    assert c001["signed_out_at"] is not None
    assert (c001["alarms"], c001["points"]) == (1, 2.0)
    r = await client.get(f"{BASE}/supervision/alarms?open=1", headers=manager)
    assert r.status == 200
    r = await client.get(f"{BASE}/supervision/day?date=nonsense", headers=manager)
    assert r.status == 422
    r = await client.get(f"{BASE}/supervision/day", headers=clerk)
    assert r.status == 403


def test_thresholds_are_checked_with_their_key_paths(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        """
[[halls]]
id = "h"
name = "大厅"
[halls.supervision]
idle_with_queue_minutes = 0
[halls.supervision.deductions]
unattended = -5
[halls.counter_rules]
pause_reasons = []
""",
        encoding="utf-8",
    )
    err = io.StringIO()
    assert check_command(str(path), out=io.StringIO(), err=err) == 1
    text = err.getvalue()
    assert "halls[0].supervision.idle_with_queue_minutes" in text
    assert "halls[0].supervision.deductions.unattended" in text
    assert "halls[0].counter_rules.pause_reasons" in text


@pytest.fixture
def clock() -> FixedClock:
    """Tuesday 2026-11-24 10:00 in Shanghai, inside business hours (08:30-12:00)."""
    from datetime import UTC, datetime

    return FixedClock(datetime(2026, 11, 24, 2, 0, tzinfo=UTC))
