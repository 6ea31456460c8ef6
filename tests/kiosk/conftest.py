"""Kiosk fixtures: a hall with kiosk k1 (BDC, TAX) and its printer, emulated over TCP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from firmware_bridge.emulators.line import LineEndpoint
from firmware_bridge.emulators.printer import EscPosPrinter, PrintJob
from hall.config.models import HallConfig
from hall.ports import FixedClock
from hall.services.directory import Directory
from hall.services.queue import IssueTicket, QueueService, TicketView
from kiosk.service import PrintService
from tests.factories import hall_config
from tests.servers import ServerProcess, config_server

PAGE_URL = "http://hall.test/t/{token}"


def kiosk_config(
    printer_url: str | None = "tcp://127.0.0.1:9", quota: int | None = None
) -> HallConfig:
    base = hall_config(
        quota=quota,
        extra_hall={
            "kiosks": [
                {"id": "k1", "name": "一楼取号机", "services": ["BDC", "TAX"]},
                {"id": "k2", "name": "二楼取号机"},
            ],
            "ticket": {"page_url": PAGE_URL},
        },
    )
    data: dict[str, Any] = base.model_dump(mode="json", exclude_none=True)
    if printer_url is not None:
        data["printers"] = [{"name": "p1", "hall": "test", "kiosk": "k1", "url": printer_url}]
    return HallConfig.model_validate(data)


@pytest.fixture
def config() -> HallConfig:
    return kiosk_config()


@dataclass
class Bench:
    """A print service with its printer emulated on a TCP port (like port 9100)."""

    printer: EscPosPrinter
    endpoint: LineEndpoint
    service: PrintService
    queue: QueueService

    async def issue(self, service: str = "BDC", kiosk: str | None = "k1") -> TicketView:
        view = await self.queue.issue(
            IssueTicket(hall_id="test", service_code=service, kiosk=kiosk)
        )
        if kiosk is not None:
            self.service.wake("test", kiosk)
        return view

    async def settled(self, view: TicketView, timeout_s: float = 5.0) -> str:
        job = await self.service.wait_settled(view.ticket.id, timeout_s)
        assert job is not None
        return job.state

    def printed_numbers(self) -> list[str]:
        return [numbers_of(job) for job in self.printer.jobs]


def numbers_of(job: PrintJob) -> str:
    """The ticket number: the one line printed at 3×."""
    [number] = [line.text for line in job.lines if line.style.width == 3]
    return number


@pytest.fixture
async def bench(pool: asyncpg.Pool, clock: FixedClock) -> AsyncIterator[Bench]:
    printer = EscPosPrinter(chinese_default=False)
    endpoint = LineEndpoint(printer)
    port = await endpoint.serve_tcp()
    directory = Directory(kiosk_config(f"tcp://127.0.0.1:{port}"))
    queue = QueueService(pool, directory, clock)
    service = PrintService(pool, directory, queue, clock, probe_s=0.05, status_timeout_s=0.2)
    await service.start()
    try:
        yield Bench(printer, endpoint, service, queue)
    finally:
        await service.stop()
        await endpoint.close()


# --- browser tests: a real server process with the kiosk's printer emulated on TCP --------------


@pytest.fixture
async def page_printer() -> AsyncIterator[tuple[EscPosPrinter, int]]:
    emulator = EscPosPrinter(chinese_default=False)
    async with LineEndpoint(emulator) as endpoint:
        yield emulator, await endpoint.serve_tcp()


@pytest.fixture
def page_config(page_printer: tuple[EscPosPrinter, int]) -> HallConfig:
    data: dict[str, Any] = kiosk_config(f"tcp://127.0.0.1:{page_printer[1]}").model_dump(
        mode="json", exclude_none=True
    )
    data["halls"][0]["ticket"].pop("page_url")  # the QR then points at this server
    for svc in data["halls"][0]["services"]:
        if svc["code"] == "TAX":
            svc["per_person_daily_limit"] = 1  # the page asks for the ID number
    return HallConfig.model_validate(data)


@pytest.fixture
async def page_server(
    database_url: str, pool: asyncpg.Pool, page_config: HallConfig, tmp_path: Path
) -> AsyncIterator[ServerProcess]:
    async with config_server(database_url, page_config, tmp_path) as proc:
        yield proc
