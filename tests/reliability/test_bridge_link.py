"""The edge bridge's websocket link cut while citizens rate on the pads.

Four counters each finish a visit, so each pad asks for a rating; then the link to the server
is cut. Meanwhile three citizens rate and the fourth walks away (the pad's rating timeout,
sent as "not rated"). The pads are acknowledged from the edge outbox; when the link returns
every rating is stored exactly once. The short variant cuts for 1.5 s; ``pytest --long``
(tests/reliability/conftest.py) cuts for five minutes with the production reconnect backoff
(up to 10 s between attempts).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from firmware_bridge.emulators.pad import PadEmulator
from firmware_bridge.transport import Backoff
from firmware_bridge.wslink import RECONNECT
from hall.config.models import HallConfig
from hall.services.queue import ActionParams, CounterAction, IssueTicket
from hall.web.state import QUEUE
from tests.bridge import conftest as bridge_fixtures
from tests.bridge.conftest import BAUD, AppMaker, Client, eventually, fetch, on_pty_bus
from tests.factories import hall_config
from tests.ptybus import pty_bus
from tests.reliability.bridge_edge import QUICK, edge_bridge

fast_timing = bridge_fixtures.fast_timing
make_app = bridge_fixtures.make_app

COUNTERS = (1, 2, 3, 4)
RATED = {1: 5, 2: 1, 3: 4}  # counter → level; counter 4's citizen walks away


def pad_address(counter: int) -> int:
    return 0x10 + counter


class ShiftedClock:
    """Monotonic time that a test can move ahead (the citizen who walked away)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


class Pads:
    def __init__(self, pads: dict[int, PadEmulator], clocks: dict[int, ShiftedClock]) -> None:
        self.by_counter = pads
        self.clocks = clocks


@pytest.fixture
async def pads(tmp_path: Path) -> AsyncIterator[Pads]:
    clocks = {n: ShiftedClock() for n in COUNTERS}
    by_counter = {n: PadEmulator(pad_address(n), clock=clocks[n]) for n in COUNTERS}
    async with pty_bus(by_counter.values(), tmp_path / "ttyHB0", BAUD):
        yield Pads(by_counter, clocks)


@pytest.fixture
def config(tmp_path: Path) -> HallConfig:
    body = hall_config().model_dump(mode="json", by_alias=True, exclude_unset=True)
    devices = [
        {"bus": "b1", "address": pad_address(n), "class": "pad", "counter": n} for n in COUNTERS
    ]
    return on_pty_bus(body, str(tmp_path / "ttyHB0"), devices)


async def finish_a_visit_at_every_counter(client: Client) -> None:
    queue = client.app[QUEUE]
    for n in COUNTERS:
        await queue.issue(IssueTicket(hall_id="test", service_code="BDC"))
        clerk = ActionParams(clerk="c001")
        for action in (
            CounterAction.OPEN,
            CounterAction.CALL_NEXT,
            CounterAction.START,
            CounterAction.FINISH,
        ):
            await queue.act("test", n, action, "tests", clerk)


async def test_ratings_during_a_link_cut_are_stored_once_when_it_returns(
    make_app: AppMaker,
    config: HallConfig,
    pads: Pads,
    tmp_path: Path,
    long_run: bool,
    record_property: Callable[[str, object], None],
) -> None:
    long = long_run
    cut_s = 300.0 if long else 1.5
    backoff: Backoff = RECONNECT if long else QUICK
    async with edge_bridge(make_app, config, tmp_path / "edge", backoff=backoff) as edge:
        client, link, proxy = edge.client, edge.link, edge.proxy
        await eventually(link.connected.is_set, "bridge connected")
        await finish_a_visit_at_every_counter(client)
        await eventually(
            lambda: all(p.rating is not None for p in pads.by_counter.values()),
            "rating screens on every pad",
        )

        await eventually(lambda: len(link.queue) == 0, "boot events delivered")
        before = await events_per_pad(client, pads)
        loop = asyncio.get_running_loop()
        await proxy.cut()
        cut_at = loop.time()
        await eventually(lambda: not link.connected.is_set(), "link down")
        # Citizens rate over the first part of the cut (inside the pads' 30 s window).
        spread = min(cut_s / 2, 20.0)
        for i, (n, level) in enumerate(RATED.items()):
            await asyncio.sleep(max(0.0, cut_at + spread * i / len(RATED) - loop.time()))
            assert pads.by_counter[n].rate(level), f"pad {n} refused the rating"
        walked_away = pads.by_counter[4]
        if not long:
            pads.clocks[4].offset = 31.0  # the pad's 30 s pass at once
        await eventually(lambda: walked_away.rating is None, "rating timed out", within=40.0)

        # Every pad is acknowledged from the outbox while the server has none of it.
        await eventually(
            lambda: not any(p.pending_events for p in pads.by_counter.values()),
            "every pad acknowledged",
        )
        assert len(link.queue) == len(COUNTERS)
        assert await fetch(client, "SELECT 1 FROM ratings") == []

        await asyncio.sleep(max(0.0, cut_at + cut_s - loop.time()))  # the outage lasts
        assert not link.connected.is_set()
        assert len(link.queue) == len(COUNTERS)
        await proxy.start()
        restored_at = loop.time()
        back = 30.0 if long else 5.0  # the production backoff waits up to 10 s

        async def all_stored() -> bool:
            rows = await fetch(client, "SELECT 1 FROM ratings")
            return len(rows) == len(COUNTERS)

        await eventually(all_stored, "every rating stored", within=back)
        # The figure for docs/reliability.md: from the cable back to every rating stored.
        record_property("stored_after_s", round(loop.time() - restored_at, 2))
        print(f"cut {cut_s:.0f} s: every rating stored {loop.time() - restored_at:.2f} s after")
        await eventually(lambda: len(link.queue) == 0, "outbox drained")

        rows = await fetch(
            client,
            "SELECT counter_number, level, not_rated_reason FROM ratings ORDER BY counter_number",
        )
        expected = [(n, RATED.get(n), None if n in RATED else "timeout") for n in COUNTERS]
        assert [tuple(r) for r in rows] == expected
        # Exactly once: one more stored key per pad than before the cut.
        assert await events_per_pad(client, pads) == {uid: n + 1 for uid, n in before.items()}


async def events_per_pad(client: Client, pads: Pads) -> dict[str, int]:
    """Device events stored per pad UID (boot and login events included)."""
    rows = await fetch(
        client, "SELECT device_uid, count(*) AS n FROM device_events_seen GROUP BY device_uid"
    )
    counts = {r["device_uid"]: int(r["n"]) for r in rows}
    return {p.uid.hex(): counts.get(p.uid.hex(), 0) for p in pads.by_counter.values()}
