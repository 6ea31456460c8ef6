"""Fixtures for bridge tests: emulated devices on a re-pluggable pty bus and the real app."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from firmware_bridge import health, timing
from firmware_bridge.emulators.bus import Hb1Bus
from firmware_bridge.emulators.display import StripEmulator
from firmware_bridge.emulators.keypad import CallerEmulator
from firmware_bridge.emulators.line import LineEndpoint
from firmware_bridge.emulators.pad import PadEmulator
from firmware_bridge.pty import VirtualPort
from firmware_bridge.transport import Backoff
from hall.app import Settings, create_app
from hall.config.models import HallConfig
from hall.ports import FixedClock
from hall.services.queue import ActionParams, CounterAction
from hall.web.bridge import BRIDGE, BridgeHub, BridgeMode, BridgeSettings
from hall.web.state import POOL, QUEUE
from tests.factories import hall_config

Client = TestClient[web.Request, web.Application]
BAUD = 115200
WAIT_S = 5.0

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
class Rig:
    """Strip, caller and pad of counter 1 on one pty bus behind a stable symlink path."""

    strip: StripEmulator
    caller: CallerEmulator
    pad: PadEmulator
    bus: Hb1Bus
    endpoint: LineEndpoint
    port: VirtualPort

    @property
    def path(self) -> str:
        return self.port.link_path

    def noise(self, data: bytes) -> None:
        """Bytes on the line as the host's receiver sees them (EMI, a second talker)."""
        os.write(self.port.pair.master_fd, data)

    def unplug(self) -> None:
        self.endpoint.unplug()
        self.port.unplug()

    async def replug(self) -> None:
        pair = self.port.plug()
        await self.endpoint.attach_fd(pair.master_fd)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    strip, caller, pad = StripEmulator(STRIP), CallerEmulator(CALLER), PadEmulator(PAD)
    bus = Hb1Bus([strip, caller, pad], baud=BAUD)
    endpoint = LineEndpoint(bus)
    port = VirtualPort(str(tmp_path / "ttyHB0"))
    pair = port.plug()
    await endpoint.attach_fd(pair.master_fd)
    yield Rig(strip, caller, pad, bus, endpoint, port)
    await endpoint.close()
    port.unplug()


def wired_config(path: str) -> HallConfig:
    base = hall_config()
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
        {"bus": "b1", "address": STRIP, "class": "strip", "counter": 1},
        {"bus": "b1", "address": CALLER, "class": "caller", "counter": 1},
        {"bus": "b1", "address": PAD, "class": "pad", "counter": 1},
    ]
    config = HallConfig.model_validate(body)
    # A pty path is not a /dev/… name the validator accepts; the model keeps what it is given.
    bus = config.buses[0]
    # Below what the validator allows, so offline probes happen in tens of milliseconds.
    faster = bus.options.model_copy(update={"poll_display_ms": 100, "offline_probe_ms": 100})
    config.buses[0] = bus.model_copy(update={"url": path, "options": faster})
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


async def eventually(check: Callable[[], Any], what: str, within: float = WAIT_S) -> None:
    """Wait until ``check()`` (sync or async) is truthy; fail with ``what`` after ``within`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


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
