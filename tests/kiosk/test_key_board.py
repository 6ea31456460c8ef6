"""An HB/1 kiosk key board (kiosk MCU) issues a ticket that the kiosk's printer prints."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from firmware_bridge.bridge import UpEvent
from firmware_bridge.constants import KeyCode
from firmware_bridge.emulators.line import LineEndpoint
from firmware_bridge.emulators.printer import EscPosPrinter
from firmware_bridge.messages import KeyEvent
from hall.app import Settings, create_app
from hall.config.models import HallConfig
from hall.ports import FixedClock
from hall.web.bridge import BRIDGE, BridgeSettings
from kiosk.web import PRINT
from tests.kiosk.conftest import kiosk_config, numbers_of

UID = "4842050000000004"


@pytest.fixture
async def printer() -> AsyncIterator[tuple[EscPosPrinter, int]]:
    emulator = EscPosPrinter(chinese_default=False)
    async with LineEndpoint(emulator) as endpoint:
        yield emulator, await endpoint.serve_tcp()


@pytest.fixture
def config(printer: tuple[EscPosPrinter, int]) -> HallConfig:
    body: dict[str, Any] = kiosk_config(f"tcp://127.0.0.1:{printer[1]}").model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    body["buses"] = [{"name": "b1", "hall": "test", "url": "/dev/ttyHB0"}]
    body["devices"] = [{"bus": "b1", "address": 4, "class": "kiosk", "kiosk": "k1"}]
    return HallConfig.model_validate(body)


def key(code: int, evt_seq: int) -> UpEvent:
    event = KeyEvent(KeyCode(code))
    return UpEvent(
        bus="b1",
        address=4,
        device_class=0,
        uid=UID,
        boot_id=3,
        evt_seq=evt_seq,
        evt_type=int(event.evt_type),
        data=event.encode(),
        at=time.time(),
    )


async def test_kiosk_keys_issue_the_kiosks_services_and_print(
    pool: object, database_url: str, config: HallConfig, clock: FixedClock,
    printer: tuple[EscPosPrinter, int],
) -> None:  # fmt: skip
    emulator, _ = printer
    app = create_app(Settings(database_url=database_url, config=config, clock=clock))
    app[BRIDGE].settings = BridgeSettings(mode="off")
    client: TestClient[web.Request, web.Application] = TestClient(TestServer(app))
    await client.start_server()
    try:
        service = app[BRIDGE].service
        # k1 lists BDC then TAX: key 0x80 is BDC, 0x81 TAX, 0x82 nothing.
        assert (await service.handle_event(key(0x81, 2))).outcome == "applied"
        assert (await service.handle_event(key(0x80, 3))).outcome == "applied"
        refused = await service.handle_event(key(0x82, 4))
        assert (refused.outcome, refused.beep) == ("rejected:key_refused", True)
        prints = app[PRINT]
        async with asyncio.timeout(10), prints.changed:
            while len(emulator.jobs) < 2:
                await prints.changed.wait()
        assert [numbers_of(j) for j in emulator.jobs] == ["B001", "A001"]
    finally:
        await client.close()
