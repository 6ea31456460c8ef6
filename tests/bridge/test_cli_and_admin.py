"""``hall bridge`` as a process on an "edge PC", and SET_ADDRESS by UID through the API."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from firmware_bridge.constants import KeyCode
from hall.cli_bridge import server_url
from tests.access_helpers import admin_headers, create_device, staff_headers
from tests.bridge.conftest import (
    CALLER,
    STRIP,
    AppMaker,
    Rig,
    eventually,
    hub_of,
    issue,
    open_counter,
)

EDGE_TOML = """
[[halls]]
id = "test"
name = "测试县政务服务中心"

[[halls.services]]
code = "BDC"
name = "不动产登记"
prefix = "A"

[[halls.counters]]
number = 1
services = [{{ code = "BDC" }}]

[[buses]]
name = "b1"
hall = "test"
url = "{url}"
baudrate = 115200
options = {{ poll_interactive_ms = 50, poll_display_ms = 500 }}

[[devices]]
bus = "b1"
address = {strip}
class = "strip"
counter = 1

[[devices]]
bus = "b1"
address = {caller}
class = "caller"
counter = 1
"""


def test_server_url() -> None:
    assert server_url("ws://10.0.0.2:8080") == "ws://10.0.0.2:8080/api/v1/bridge"
    assert server_url("wss://h:1/api/v1/bridge") == "wss://h:1/api/v1/bridge"
    with pytest.raises(ValueError, match="ws://"):
        server_url("http://h:1")


async def test_hall_bridge_process_links_devices_to_the_server(
    make_app: AppMaker, rig: Rig, tmp_path: Path
) -> None:
    client = await make_app(mode="remote")
    _, token = await create_device(client, "bridge", device_id="edge1")
    config = tmp_path / "edge.toml"
    url = rig.port.pair.slave_path  # a /dev/pts path, as the config validator wants
    config.write_text(EDGE_TOML.format(url=url, strip=STRIP, caller=CALLER), encoding="utf-8")
    number = await issue(client)
    await open_counter(client)
    proc = subprocess.Popen(  # noqa: ASYNC220 - returns at once; readiness is polled below
        [
            sys.executable,
            "-m",
            "hall.cli",
            "bridge",
            "--server",
            f"ws://127.0.0.1:{client.port}",
            "--token",
            token,
            "--config",
            str(config),
            "--data-dir",
            str(tmp_path / "edge"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        await eventually(lambda: bool(hub_of(client).sessions), "edge bridge connected", 20.0)
        await eventually(lambda: rig.strip.text == "1号窗口 欢迎光临", "idle text via the edge")
        assert rig.caller.press_key(KeyCode.CALL_NEXT)
        await eventually(lambda: rig.strip.text == f"请{number}号到1号窗口", "call via the edge")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.to_thread(proc.communicate, timeout=20)
    assert proc.returncode == 0, out.decode(errors="replace")
    assert "设备网关已启动" in out.decode()


async def test_set_address_by_uid_is_broadcast_to_the_bus(make_app: AppMaker, rig: Rig) -> None:
    client = await make_app()
    await eventually(lambda: rig.pad.boots == 1 and rig.pad.log, "pad polled")
    body = {"bus": "b1", "uid": rig.pad.uid.hex(), "address": 0x33}

    clerk = await staff_headers(client, "c009", counters=(1,))
    denied = await client.post("/api/v1/halls/test/devices/set-address", json=body, headers=clerk)
    assert denied.status == 403
    resp = await client.post(
        "/api/v1/halls/test/devices/set-address", json=body, headers=await admin_headers(client)
    )
    assert resp.status == 202, await resp.text()

    await eventually(lambda: rig.pad.address == 0x33, "pad took its new address")
    assert rig.strip.address == STRIP and rig.caller.address == CALLER
