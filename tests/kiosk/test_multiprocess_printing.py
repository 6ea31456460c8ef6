"""Two server processes on one database, one kiosk printer: every ticket is printed exactly
once, whichever process issued it, and when the printing process dies the other takes over."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from firmware_bridge.emulators.line import LineEndpoint
from firmware_bridge.emulators.printer import EscPosPrinter
from tests.kiosk.conftest import kiosk_config, numbers_of
from tests.kiosk.test_crash import _kiosk_token, _until
from tests.live.helpers import write_config_toml
from tests.servers import ServerProcess

pytestmark = pytest.mark.slow

PRINTED = "SELECT count(*) FROM kiosk_print_jobs WHERE state = 'printed'"


async def test_two_processes_print_every_ticket_once_and_take_over_from_a_dead_one(
    database_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    printer = EscPosPrinter(chinese_default=False)
    async with LineEndpoint(printer) as endpoint:
        port = await endpoint.serve_tcp()
        path = write_config_toml(
            kiosk_config(f"tcp://127.0.0.1:{port}").model_dump(mode="json", exclude_none=True),
            tmp_path / "h.toml",
        )
        args = ["serve", "--database-url", database_url, "--config", str(path)]
        token = await _kiosk_token(pool)
        first = ServerProcess(args, log_path=tmp_path / "first.log")
        second = ServerProcess(args, log_path=tmp_path / "second.log")
        await first.start()
        try:
            async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as api:

                async def issue(server: ServerProcess) -> str:
                    async with api.post(
                        f"{server.url}/api/v1/halls/test/tickets", json={"service": "BDC"}
                    ) as resp:
                        assert resp.status == 201, await resp.text()
                        number: str = (await resp.json())["number"]
                        return number

                await issue(first)  # the first process takes the printer's lease
                await _until(pool, PRINTED, 1)
                await second.start()
                issued = await asyncio.gather(
                    *(issue(first if i % 2 else second) for i in range(30))
                )
                await _until(pool, PRINTED, 31)
                # One printer, one talker: the second process never opened the printer's port
                # (two would interleave their status queries and jobs on a real printer).
                assert len(endpoint._protocols) == 1

                first.kill9()  # the process that prints dies; the other takes over
                issued += [await issue(second) for _ in range(10)]
                await _until(pool, PRINTED, 41, within_s=30)
                assert len(endpoint._protocols) == 2  # the survivor took over
        finally:
            await first.stop()
            await second.stop()
            for proc in (first, second):
                if proc.log_path is not None:
                    assert "Traceback" not in proc.log_path.read_text(errors="replace")
        printed = Counter(numbers_of(job) for job in printer.jobs)
        assert set(printed) == {"A001", *issued}
        assert all(n == 1 for n in printed.values()), printed.most_common(3)
        jobs = await pool.fetch("SELECT state, attempts FROM kiosk_print_jobs")
        assert len(jobs) == 41
        assert {(r["state"], r["attempts"]) for r in jobs} == {("printed", 1)}
