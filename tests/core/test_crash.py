"""kill -9 of the server loses no acknowledged ticket (embedded database, real processes)."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from hall.cli import DEMO_ADMIN_PASSWORD
from hall.storage.embedded import EmbeddedPostgres
from tests.servers import ServerProcess

pytestmark = pytest.mark.slow
HALL = "xx-county"


async def demo_admin(url: str) -> dict[str, str]:
    """Log in as the demo's bootstrap administrator."""
    async with aiohttp.ClientSession() as session:
        body = {"job_no": "admin", "password": DEMO_ADMIN_PASSWORD}
        async with session.post(f"{url}/api/v1/login", json=body) as resp:
            assert resp.status == 200, await resp.text()
            token = (await resp.json())["token"]
    return {"Authorization": f"Bearer {token}"}


async def test_kill_9_loses_no_acknowledged_ticket(tmp_path: Path) -> None:
    # Not under tmp_path: pytest prunes old base temp dirs, which must not touch a live server.
    data_dir = Path(tempfile.mkdtemp(prefix="hall-crash-")) / "data"
    env = {"HALL_DATA_DIR": str(data_dir)}
    os.environ.pop("DATABASE_URL", None)
    server = ServerProcess(
        ["demo", "--data-dir", str(data_dir)], env=env, log_path=tmp_path / "1.log"
    )
    await server.start()
    acknowledged: list[tuple[str, str]] = []
    enough = asyncio.Event()
    try:
        headers = await demo_admin(server.url)
        async with aiohttp.ClientSession(headers=headers) as session:

            async def kiosk(k: int) -> None:
                for i in range(1000):
                    body = {"service": "bdc"}
                    headers = {"Idempotency-Key": f"kiosk{k}-{i:06d}"}
                    try:
                        async with session.post(
                            f"{server.url}/api/v1/halls/{HALL}/tickets", json=body, headers=headers
                        ) as resp:
                            if resp.status != 201:
                                return
                            data = await resp.json()
                    except (TimeoutError, aiohttp.ClientError):
                        return  # the server died under us: this one was never acknowledged
                    acknowledged.append((data["number"], data["token"]))
                    if len(acknowledged) >= 150:
                        enough.set()

            kiosks = [asyncio.create_task(kiosk(k)) for k in range(8)]
            await asyncio.wait_for(enough.wait(), 60)
            server.kill9()  # requests are in flight right now
            await asyncio.gather(*kiosks)

        restarted = ServerProcess(
            ["demo", "--data-dir", str(data_dir)], env=env, log_path=tmp_path / "2.log"
        )
        await restarted.start()
        try:
            async with aiohttp.ClientSession(headers=headers) as session:
                for number, token in acknowledged:
                    async with session.get(f"{restarted.url}/api/v1/tickets/{token}") as resp:
                        assert resp.status == 200, number
                        assert (await resp.json())["number"] == number
                # Numbering continues after the last committed number, without gaps.
                async with session.post(
                    f"{restarted.url}/api/v1/halls/{HALL}/tickets", json={"service": "bdc"}
                ) as resp:
                    assert resp.status == 201
                    after = (await resp.json())["number"]
        finally:
            await restarted.stop()
    finally:
        await server.stop()
        embedded = EmbeddedPostgres(data_dir)
        dsn = embedded.dsn()
        conn = await asyncpg.connect(dsn)
        try:
            numbers = [r["seq"] for r in await conn.fetch("SELECT seq FROM tickets ORDER BY seq")]
        finally:
            await conn.close()
        await asyncio.to_thread(embedded.force_stop)
        shutil.rmtree(data_dir.parent, ignore_errors=True)

    assert len(acknowledged) >= 150
    assert numbers == list(range(1, len(numbers) + 1))
    assert int(after[1:]) == len(numbers)


def test_demo_config_opens_no_device_ports() -> None:
    """The example names LAN serial servers; a demo on a laptop must not dial them."""
    from hall.cli import EXAMPLE_CONFIG, demo_config
    from hall.config.loader import load_config

    example = load_config(EXAMPLE_CONFIG)
    assert example.buses  # the example does wire devices...
    demo = demo_config(example, any_hour=True)
    assert (demo.buses, demo.devices, demo.printers) == ([], [], [])  # ...the demo does not
    assert all(h.issue_outside_hours for h in demo.halls)
    assert [h.id for h in demo.halls] == [h.id for h in example.halls]
