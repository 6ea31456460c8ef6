"""A printer behind the kiosk key board (HB1.md §13 tunnel), on a pty bus of emulators: a key
press issues a ticket that prints through PASSTHRU_TX, its status read through PASSTHRU_RX;
paper out holds the job, and it prints once the paper is back."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web

from firmware_bridge.constants import KeyCode
from firmware_bridge.emulators.keypad import KioskEmulator
from firmware_bridge.emulators.printer import OK, PAPER_OUT, EscPosPrinter
from hall.config.models import HallConfig
from kiosk import tunnel
from kiosk.web import PRINT
from tests import waiting
from tests.bridge import conftest as bridge_fixtures
from tests.bridge.conftest import AppMaker, on_pty_bus
from tests.kiosk.conftest import kiosk_config, numbers_of
from tests.ptybus import pty_bus

BAUD = 9600
BOARD = 4
WAIT_S = 15.0


@pytest.fixture
async def board(tmp_path: Path) -> AsyncIterator[tuple[KioskEmulator, EscPosPrinter, str]]:
    printer = EscPosPrinter(chinese_default=False)
    kiosk = KioskEmulator(BOARD)
    kiosk.attach_local(0, printer.feed)
    async with pty_bus([kiosk], tmp_path / "ttyHB0", BAUD) as line:
        yield kiosk, printer, line.path


@pytest.fixture
def config(board: tuple[KioskEmulator, EscPosPrinter, str]) -> HallConfig:
    body: dict[str, Any] = kiosk_config(None).model_dump(mode="json", exclude_none=True)
    body["printers"] = [
        {"name": "p1", "hall": "test", "kiosk": "k1", "tunnel": {"bus": "b1", "address": BOARD}}
    ]
    devices = [{"bus": "b1", "address": BOARD, "class": "kiosk", "kiosk": "k1"}]
    return on_pty_bus(body, board[2], devices, BAUD, {"poll_interactive_ms": 50})


make_app = bridge_fixtures.make_app


@pytest.fixture
async def app(make_app: AppMaker) -> web.Application:
    return (await make_app(mode="inprocess")).app


def eventually(check: Callable[[], Any], what: str) -> Awaitable[None]:
    return waiting.eventually(check, what, within=WAIT_S)  # 9600 baud: a ticket takes a while


async def job_states(pool: asyncpg.Pool) -> list[str]:
    rows = await pool.fetch("SELECT state FROM kiosk_print_jobs ORDER BY id")
    return [r["state"] for r in rows]


def test_tunnel_urls_round_trip_and_refuse_others() -> None:
    assert tunnel.parse_url("hb1://b1/4/0") == ("b1", 4, 0)
    for bad in ("tcp://b1/4/0", "hb1://b1/4", "hb1:///4/0", "hb1://b1/x/0"):
        with pytest.raises(OSError, match="not an HB/1 tunnel url"):
            tunnel.parse_url(bad)


async def test_a_key_press_prints_through_the_board_and_paper_out_holds_it(
    app: web.Application, pool: asyncpg.Pool, board: tuple[KioskEmulator, EscPosPrinter, str]
) -> None:
    kiosk, printer, _ = board
    await eventually(lambda: kiosk.press_key(KeyCode(0x80)), "the key board to take a key")
    await eventually(lambda: printer.jobs, "the ticket printed through the board")
    [job] = printer.jobs
    assert numbers_of(job) == "A001" and job.cut is not None
    assert any("不动产" in line.text for line in job.lines)
    # The job went as PASSTHRU_TX bytes on port 0, with the status queries before it.
    assert bytes(kiosk.uart_tx[0]).startswith(b"\x10\x04\x01\x10\x04\x02\x10\x04\x03\x10\x04\x04")
    await eventually(lambda: _printed(pool), "the job marked printed")

    printer.set_condition(PAPER_OUT)
    assert kiosk.press_key(KeyCode(0x80))
    await eventually(lambda: _held(pool), "the second job held (paper out)")
    assert len(printer.jobs) == 1
    state = await pool.fetchval("SELECT state FROM kiosk_printer_status")
    assert state == "paper_out"

    printer.set_condition(OK)
    app[PRINT].wake("test", "k1")
    await eventually(lambda: len(printer.jobs) == 2, "the held job printed on recovery")
    assert numbers_of(printer.jobs[1]) == "A002"
    await eventually(lambda: _all_printed(pool), "both jobs printed")


async def _printed(pool: asyncpg.Pool) -> bool:
    return await job_states(pool) == ["printed"]


async def _held(pool: asyncpg.Pool) -> bool:
    return (await job_states(pool))[-1:] == ["held"]


async def _all_printed(pool: asyncpg.Pool) -> bool:
    return await job_states(pool) == ["printed", "printed"]
