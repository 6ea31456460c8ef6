"""kill -9 of the server between a ticket's commit and its printing: nothing is lost."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from firmware_bridge.emulators.line import LineEndpoint
from firmware_bridge.emulators.printer import OK, SILENT, EscPosPrinter
from hall.config.models import HallConfig
from hall.security import tokens
from hall.storage import access_repo
from tests.kiosk.conftest import kiosk_config, numbers_of
from tests.live.helpers import write_config_toml
from tests.servers import ServerProcess

pytestmark = pytest.mark.slow


async def _kiosk_token(pool: asyncpg.Pool) -> str:
    from datetime import UTC, datetime

    token = tokens.new_token(tokens.DEVICE_PREFIX)
    await access_repo.create_device_token(
        pool,
        kind="kiosk",
        hall_id="test",
        device_id="k1",
        name="k1",
        token_hash=tokens.token_hash(token),
        created_by="tests",
        now=datetime.now(UTC),
    )
    return token


async def _until(pool: asyncpg.Pool, sql: str, expected: object, within_s: float = 20) -> None:
    """Poll another process's effect in the database (no event crosses the process boundary)."""
    async with asyncio.timeout(within_s):
        while await pool.fetchval(sql) != expected:  # noqa: ASYNC110 - another process
            await asyncio.sleep(0.05)


async def test_kill_9_between_commit_and_print_then_restart_prints_every_ticket(
    database_url: str, pool: asyncpg.Pool, config: HallConfig, tmp_path: Path
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
        printer.set_condition(SILENT)  # the printer is off: nothing gets printed yet
        first = ServerProcess(args, log_path=tmp_path / "first.log")
        await first.start()
        try:
            async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as api:
                for _ in range(3):
                    async with api.post(
                        f"{first.url}/api/v1/halls/test/tickets", json={"service": "BDC"}
                    ) as resp:
                        assert resp.status == 201
            first.kill9()  # while its worker is still asking the silent printer
        finally:
            await first.stop()
        left = await pool.fetch("SELECT state FROM kiosk_print_jobs ORDER BY id")
        assert len(left) == 3 and all(r["state"] != "printed" for r in left)

        printer.set_condition(OK)  # switched on again
        second = ServerProcess(args, port=first.port, log_path=tmp_path / "second.log")
        await second.start()
        try:
            await _until(pool, "SELECT count(*) FROM kiosk_print_jobs WHERE state = 'printed'", 3)
        finally:
            await second.stop()
    # Each ticket printed (a job cut short by the kill may print twice: better than never).
    assert sorted({numbers_of(j) for j in printer.jobs}) == ["A001", "A002", "A003"]
