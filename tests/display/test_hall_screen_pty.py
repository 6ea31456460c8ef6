"""Hall screens (综合屏) on a real pty bus through the in-process bridge: each shows the last N
calls of its own windows and services, newest on top and flashing, and a recall flashes the
top row again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from display.screen import FLASH
from firmware_bridge.emulators.bus import Hb1Bus
from firmware_bridge.emulators.display import ScreenEmulator
from firmware_bridge.emulators.line import LineEndpoint
from firmware_bridge.messages import ShowRowsRequest
from firmware_bridge.pty import VirtualPort
from hall.config.models import HallConfig
from hall.services.queue import ActionParams, CounterAction, IssueTicket
from hall.web.state import QUEUE
from tests.bridge.conftest import (  # noqa: F401 (fixtures used by name)
    BAUD,
    AppMaker,
    Client,
    eventually,
    fast_timing,
    make_app,
)
from tests.factories import hall_config

WINDOWS, TAX = 0x10, 0x11  # screen s1: windows 1 and 2; screen s2: the TAX queue only


@pytest.fixture
async def screens(tmp_path: Path) -> AsyncIterator[tuple[ScreenEmulator, ScreenEmulator, str]]:
    s1, s2 = ScreenEmulator(WINDOWS), ScreenEmulator(TAX)
    endpoint = LineEndpoint(Hb1Bus([s1, s2], baud=BAUD))
    port = VirtualPort(str(tmp_path / "ttyHB0"))
    await endpoint.attach_fd(port.plug().master_fd)
    yield s1, s2, port.link_path
    await endpoint.close()
    port.unplug()


@pytest.fixture
def config(screens: tuple[ScreenEmulator, ScreenEmulator, str]) -> HallConfig:
    base = hall_config(
        extra_hall={
            "screens": [
                {"id": "s1", "name": "一区综合屏", "counters": [1, 2], "rows": 3},
                {"id": "s2", "name": "税务综合屏", "services": ["TAX"], "rows": 2},
            ]
        }
    )
    body: dict[str, Any] = base.model_dump(mode="json", by_alias=True, exclude_unset=True)
    body["buses"] = [
        {
            "name": "b1",
            "hall": "test",
            "url": "/dev/ttyHB0",
            "baudrate": BAUD,
            "options": {"poll_interactive_ms": 50, "poll_display_ms": 500},
        }
    ]
    body["devices"] = [
        {"bus": "b1", "address": WINDOWS, "class": "screen", "screen": "s1"},
        {"bus": "b1", "address": TAX, "class": "screen", "screen": "s2"},
    ]
    config = HallConfig.model_validate(body)
    config.buses[0] = config.buses[0].model_copy(update={"url": screens[2]})  # the pty
    return config


async def call(
    client: Client, counter: int, action: CounterAction = CounterAction.CALL_NEXT
) -> Any:
    view = await client.app[QUEUE].act("test", counter, action, "tests")
    assert view.ticket is not None
    return view.ticket


def rows_sent(screen: ScreenEmulator, since: int) -> list[ShowRowsRequest]:
    return [e.request for e in screen.log[since:] if isinstance(e.request, ShowRowsRequest)]


async def test_hall_screens_show_the_last_calls_of_their_own_windows_and_services(
    make_app: AppMaker,  # noqa: F811 (the bridge tests' fixture)
    screens: tuple[ScreenEmulator, ScreenEmulator, str],
) -> None:
    s1, s2, _ = screens
    client = await make_app()
    queue = client.app[QUEUE]
    for service in ("BDC", "TAX") * 4:
        await queue.issue(IssueTicket(hall_id="test", service_code=service))
    for counter in (1, 2, 3):
        await queue.act("test", counter, CounterAction.OPEN, "tests", ActionParams(clerk="c001"))

    calls: list[Any] = []  # (ticket, counter), oldest first
    for counter in (1, 3, 2, 1, 3, 2):
        if calls and any(c == counter for _, c in calls):
            await queue.act("test", counter, CounterAction.START, "tests")
            await queue.act("test", counter, CounterAction.FINISH, "tests")
        calls.append((await call(client, counter), counter))

    def expected(keep: Any, rows: int) -> tuple[str, ...]:
        mine = [f"{t.display_number} {c}号窗口" for t, c in reversed(calls) if keep(t, c)]
        return tuple(mine[:rows]) + ("",) * (rows - len(mine[:rows]))

    want1 = expected(lambda t, c: c in (1, 2), 3)
    want2 = expected(lambda t, c: t.service_code == "TAX", 2)
    await eventually(lambda: s1.lines[:3] == want1, f"screen s1 showing {want1}")
    await eventually(lambda: s2.lines[:2] == want2, f"screen s2 showing {want2}")
    assert all("3号窗口" not in line for line in s1.lines)  # window 3 is not s1's
    row = s1.row(0)
    assert row is not None and row.attr & FLASH  # the newest call flashes

    # A recall of the newest call on s1: the same rows are sent again and the top one flashes.
    newest_counter = calls[-1][1]
    mark = len(s1.log)
    await queue.act("test", newest_counter, CounterAction.RECALL, "tests")
    await eventually(lambda: rows_sent(s1, mark), "the rows sent again on recall")
    [again] = rows_sent(s1, mark)[:1]
    assert again.rows[0].text == want1[0] and again.rows[0].attr & FLASH
    assert s1.lines[:3] == want1  # a recalled number is listed once
