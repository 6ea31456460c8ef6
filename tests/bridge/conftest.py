"""Fixtures for bridge tests: emulated devices on a re-pluggable pty bus and the real app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from firmware_bridge import health, timing
from firmware_bridge.bridge import EventResult, UpEvent
from firmware_bridge.constants import EventType, KeyCode
from firmware_bridge.emulators.display import StripEmulator
from firmware_bridge.emulators.keypad import CallerEmulator
from firmware_bridge.emulators.pad import PadEmulator
from firmware_bridge.master import BusMaster
from firmware_bridge.transport import Backoff
from hall.app import Settings, create_app
from hall.config.models import HallConfig
from hall.ports import FixedClock
from hall.services.devices import DeviceService
from hall.services.queue import ActionParams, CounterAction
from hall.web.bridge import BRIDGE, BridgeHub, BridgeMode, BridgeSettings
from hall.web.state import POOL, QUEUE
from tests.factories import hall_config
from tests.ptybus import PtyBus, pty_bus
from tests.waiting import WAIT_S, eventually

__all__ = ["WAIT_S", "eventually"]  # for the bridge tests, which import them from here

Client = TestClient[web.Request, web.Application]
BAUD = 115200

STRIP, CALLER, PAD = 0x01, 0x02, 0x03


@pytest.fixture(autouse=True)
def fast_timing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shorter protocol times so offline and probes happen in tens of milliseconds."""
    monkeypatch.setattr(timing, "T_RESP_S", 0.015)
    monkeypatch.setattr(timing, "REPLY_MARGIN_S", 0.01)
    monkeypatch.setattr(timing, "RESYNC_MIN_INTERVAL_S", 0.2)
    monkeypatch.setattr(timing, "LINK_DOWN_RETRY_S", 0.02)
    monkeypatch.setattr(health, "PROBE_S", 0.1)
    monkeypatch.setattr(timing, "IDLE_INTERACTIVE_POLL_S", 0.2)
    monkeypatch.setattr(timing, "IDLE_DISPLAY_POLL_S", 0.2)
    monkeypatch.setattr(timing, "STRIP_CHECK_S", 0.2)  # every strip heartbeat a POLL


@dataclass
class Rig(PtyBus):
    """Strip, caller and pad of counter 1 on one pty bus behind a stable symlink path."""

    strip: StripEmulator
    caller: CallerEmulator
    pad: PadEmulator


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    strip, caller, pad = StripEmulator(STRIP), CallerEmulator(CALLER), PadEmulator(PAD)
    async with pty_bus([strip, caller, pad], tmp_path / "ttyHB0", BAUD) as line:
        yield Rig(line.bus, line.endpoint, line.port, strip=strip, caller=caller, pad=pad)


def on_pty_bus(
    body: dict[str, Any],
    path: str,
    devices: list[dict[str, Any]],
    baud: int = BAUD,
    options: dict[str, int] | None = None,
) -> HallConfig:
    """The config ``body`` with bus b1 of hall test plugged in at pty ``path``, ``devices`` on
    it (fast polls unless ``options`` say otherwise)."""
    bus = {
        "name": "b1",
        "hall": "test",
        "url": "/dev/ttyHB0",
        "baudrate": baud,
        "options": options or {"poll_interactive_ms": 50, "poll_display_ms": 500},
    }
    config = HallConfig.model_validate({**body, "buses": [bus], "devices": devices})
    # A pty path is not a /dev/… name the validator accepts; the model keeps what it is given.
    config.buses[0] = config.buses[0].model_copy(update={"url": path})
    return config


def wired_config(path: str) -> HallConfig:
    body = hall_config().model_dump(mode="json", by_alias=True, exclude_unset=True)
    devices = [
        {"bus": "b1", "address": STRIP, "class": "strip", "counter": 1},
        {"bus": "b1", "address": CALLER, "class": "caller", "counter": 1},
        {"bus": "b1", "address": PAD, "class": "pad", "counter": 1},
    ]
    config = on_pty_bus(body, path, devices)
    bus = config.buses[0]
    # Below what the validator allows, so offline probes happen in tens of milliseconds.
    faster = bus.options.model_copy(update={"poll_display_ms": 100, "offline_probe_ms": 100})
    config.buses[0] = bus.model_copy(update={"options": faster})
    return config


@pytest.fixture
def config(rig: Rig) -> HallConfig:
    return wired_config(rig.path)


AppMaker = Callable[..., Awaitable[Client]]


@pytest.fixture
async def make_app(
    pool: asyncpg.Pool, database_url: str, config: HallConfig, clock: FixedClock
) -> AsyncIterator[AppMaker]:
    clients: list[Client] = []

    async def start(mode: BridgeMode = "auto") -> Client:
        app = create_app(Settings(database_url=database_url, config=config, clock=clock))
        app[BRIDGE].settings = BridgeSettings(
            mode=mode, backoff=Backoff(initial_s=0.02, max_s=0.1), report_interval_s=0.05
        )
        client: Client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()


def hub_of(client: Client) -> BridgeHub:
    return client.app[BRIDGE]


def master_of(client: Client, bus: str = "b1") -> BusMaster:
    """The in-process bridge's master of ``bus``."""
    bridge = hub_of(client).bridge
    assert bridge is not None, "no in-process bridge"
    return bridge.master(bus)


IDLE_STRIP = "1号窗口 欢迎光临"


async def open_and_idle(client: Client, rig: Rig) -> None:
    """Counter 1 opened, and its strip showing the idle text."""
    await open_counter(client)
    await eventually(lambda: rig.strip.text == IDLE_STRIP, "idle strip text")


async def open_counter(client: Client, number: int = 1) -> None:
    await client.app[QUEUE].act(
        "test", number, CounterAction.OPEN, "tests", ActionParams(clerk="c001")
    )


async def issue(client: Client, service: str = "BDC") -> str:
    from hall.services.queue import IssueTicket

    view = await client.app[QUEUE].issue(IssueTicket(hall_id="test", service_code=service))
    return view.ticket.display_number


async def fetch(client: Client, sql: str, *args: Any) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await client.app[POOL].fetch(sql, *args)
    return rows


async def to_the_rating_screen(client: Client, rig: Rig) -> str:
    """A ticket issued, then called and finished at counter 1 with the caller's keys: the
    call is on the strip and the pad, then the pad shows its rating screen. Its number."""
    number = await issue(client)
    await open_counter(client)
    assert rig.caller.press_key(KeyCode.CALL_NEXT)
    await eventually(
        lambda: rig.strip.text == f"请{number}号到1号窗口" and rig.pad.service is not None,
        "the call on the strip and the pad",
    )
    assert rig.caller.press_key(KeyCode.FINISH)
    await eventually(lambda: rig.pad.rating is not None, "the rating screen on the pad")
    return number


def outcomes_of(
    monkeypatch: pytest.MonkeyPatch, evt_type: EventType, then: Callable[[], None]
) -> list[str]:
    """The outcome of every ``evt_type`` event the server handles, in order (filled in as they
    come). ``then()`` runs once, right after the first was committed and before the device
    hears its ack (the device goes deaf, the cable is pulled)."""
    outcomes: list[str] = []
    original = DeviceService.handle_event

    async def handle(self: DeviceService, ev: UpEvent, age_s: float = 0.0) -> EventResult:
        result = await original(self, ev, age_s)
        if ev.evt_type == evt_type:
            outcomes.append(result.outcome)
            if len(outcomes) == 1:
                then()
        return result

    monkeypatch.setattr(DeviceService, "handle_event", handle)
    return outcomes
