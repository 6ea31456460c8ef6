"""The edge bridge's outbox on a full disk: one clear alarm, and no event lost or doubled.

The outbox is capped (``hall bridge --outbox-max-mb``, SQLite's max_page_count): reaching
the cap makes SQLite answer "database or disk is full" (SQLITE_FULL), exactly as a full disk
does, with no root rights needed to fill a file system.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from firmware_bridge.constants import KeyCode
from firmware_bridge.errors import OutboxError
from hall.config.models import HallConfig
from tests.bridge import conftest as bridge_fixtures
from tests.bridge.conftest import CALLER, AppMaker, Rig, eventually, fetch, issue, open_counter
from tests.reliability.bridge_edge import EDGE_ID, Edge, alarms, edge_bridge

# The bridge tests' rig: strip, caller and pad of counter 1 on a pty bus, and the server.
config = bridge_fixtures.config
fast_timing = bridge_fixtures.fast_timing
make_app = bridge_fixtures.make_app
rig = bridge_fixtures.rig

# A few pages beyond the empty outbox's three: some dozens of events.
OUTBOX_CAP = 24 * 1024


async def rating_screen(edge: Edge, rig: Rig) -> None:
    """A visit called and finished at counter 1 by its caller keypad: the pad asks to rate."""
    await eventually(edge.link.connected.is_set, "bridge connected")
    number = await issue(edge.client)
    await open_counter(edge.client)
    assert rig.caller.press_key(KeyCode.CALL_NEXT)
    await eventually(lambda: rig.strip.text == f"请{number}号到1号窗口", "call on the strip")
    assert rig.caller.press_key(KeyCode.FINISH)
    await eventually(lambda: rig.pad.rating is not None, "rating screen on the pad")
    await eventually(lambda: len(edge.link.queue) == 0, "outbox drained")


async def keys_stored(edge: Edge, rig: Rig) -> int:
    rows = await fetch(
        edge.client,
        "SELECT count(*) AS n FROM device_events_seen WHERE device_uid = $1",
        rig.caller.uid.hex(),
    )
    return int(rows[0]["n"])


async def test_outbox_full_during_an_outage_alarms_once_and_loses_nothing(
    make_app: AppMaker,
    config: HallConfig,
    rig: Rig,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with edge_bridge(make_app, config, tmp_path, outbox_max_bytes=OUTBOX_CAP) as edge:
        link = edge.link
        await rating_screen(edge, rig)
        before = await keys_stored(edge, rig)

        await edge.proxy.cut()
        await eventually(lambda: not link.connected.is_set(), "link down")
        # The clerk keeps pressing keys while the server is unreachable: each waits in the
        # outbox, until the outbox is full.
        pressed = 0
        for _ in range(500):
            assert rig.caller.press_key(KeyCode.RECALL)
            pressed += 1
            await eventually(
                lambda: not rig.caller.pending_events or link.outbox_problem is not None,
                "key stored at the edge or the outbox full",
            )
            if link.outbox_problem is not None:
                break
        assert link.outbox_problem is not None, "the outbox never filled up"
        assert "database or disk is full" in link.outbox_problem

        # The key that did not fit is not acknowledged: the caller keeps offering it.
        failures = link.stats.outbox_failures
        await eventually(
            lambda: link.stats.outbox_failures >= failures + 3, "the key offered again"
        )
        assert len(rig.caller.pending_events) == 1
        # A citizen rates meanwhile: the pad keeps the rating too.
        assert rig.pad.rate(5)
        failures = link.stats.outbox_failures
        await eventually(
            lambda: link.stats.outbox_failures >= failures + 3, "the rating offered again"
        )
        assert len(rig.pad.pending_events) == 1
        assert await fetch(edge.client, "SELECT 1 FROM ratings") == []
        logged = [
            r
            for r in caplog.records
            if r.levelno == logging.ERROR and "outbox cannot store events" in r.getMessage()
        ]
        assert len(logged) == 1, "the condition is logged once, not at every poll"

        await edge.proxy.start()

        async def everything_stored() -> bool:
            rated = await fetch(edge.client, "SELECT level, counter_number FROM ratings")
            return [tuple(r) for r in rated] == [(5, 1)] and (
                await keys_stored(edge, rig) == before + pressed
            )

        await eventually(everything_stored, "every key and the rating stored")
        await eventually(
            lambda: not rig.caller.pending_events and not rig.pad.pending_events,
            "devices acknowledged",
        )
        await eventually(lambda: len(link.queue) == 0, "outbox drained")
        assert link.outbox_problem is None
        # Exactly once: nothing was stored twice.
        assert await keys_stored(edge, rig) == before + pressed
        rows = await fetch(edge.client, "SELECT count(*) AS n FROM ratings")
        assert rows[0]["n"] == 1

        async def alarmed() -> bool:
            kinds = [a["kind"] for a in await alarms(edge.client, bus=EDGE_ID, address=0)]
            return sorted(kinds) == ["outbox_full", "outbox_ok"]

        await eventually(alarmed, "outbox_full, then outbox_ok, in the devices API")
        full = await alarms(edge.client, kind="outbox_full")
        assert "database or disk is full" in full[0]["detail"]
        print(
            f"outbox full after {pressed - 1} keys; {link.stats.outbox_failures} refused writes;"
            f" {pressed} keys and 1 rating stored once, {link.stats.sent_direct} sent directly"
        )


async def test_outbox_failing_with_the_link_up_sends_events_directly(
    make_app: AppMaker,
    config: HallConfig,
    rig: Rig,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with edge_bridge(make_app, config, tmp_path) as edge:
        link = edge.link
        await rating_screen(edge, rig)

        def full(kind: str, body: object) -> int:
            raise OutboxError(f"{link.queue.path}: database or disk is full")

        monkeypatch.setattr(link.queue, "put", full)
        assert rig.pad.rate(4)
        await eventually(lambda: not rig.pad.pending_events, "pad acknowledged")
        # Acknowledged only once the server had it: the rating is already stored.
        rows = await fetch(edge.client, "SELECT level FROM ratings")
        assert [r["level"] for r in rows] == [4]
        assert link.stats.sent_direct == 1
        assert len(link.queue) == 0

        async def alarmed(kind: str) -> bool:
            return bool(await alarms(edge.client, bus=EDGE_ID, address=0, kind=kind))

        await eventually(lambda: alarmed("outbox_full"), "alarm while the disk is still full")

        monkeypatch.undo()  # room on the disk again
        assert rig.caller.press_key(KeyCode.RECALL)
        await eventually(lambda: alarmed("outbox_ok"), "outbox writable again")
        assert link.outbox_problem is None
        rows = await fetch(edge.client, "SELECT count(*) AS n FROM ratings")
        assert rows[0]["n"] == 1


async def test_a_bridge_cannot_report_unknown_alarm_kinds(
    make_app: AppMaker, config: HallConfig, rig: Rig, tmp_path: Path
) -> None:
    from firmware_bridge.bridge import AlarmReport

    async with edge_bridge(make_app, config, tmp_path) as edge:
        await eventually(edge.link.connected.is_set, "bridge connected")
        await edge.link.alarm(AlarmReport("b1", CALLER, "meltdown", "", None, 0.0))
        await eventually(lambda: len(edge.link.queue) == 0, "refused alarm acknowledged")
        assert await alarms(edge.client, kind="meltdown") == []
