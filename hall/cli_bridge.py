"""``hall bridge``: run the firmware bridge on an edge PC, linked to the server by websocket."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from pathlib import Path

from firmware_bridge.bridge import Bridge
from firmware_bridge.wslink import WebSocketLink
from hall.config.loader import load_config
from hall.storage.embedded import default_data_dir
from hall.web.bridge import bridge_specs

log = logging.getLogger("hall.bridge")
BRIDGE_PATH = "/api/v1/bridge"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("bridge", help="run the serial device bridge and link it to a server")
    p.add_argument("--server", required=True, help="ws://HOST:PORT of the hall server")
    p.add_argument(
        "--token",
        required=True,
        help='bridge device token (hd1_…), from POST /api/v1/device-tokens with kind "bridge"',
    )
    p.add_argument("--config", type=Path, required=True, help="hall config naming the buses")
    p.add_argument("--hall", help="only the buses of this hall (default: every bus)")
    p.add_argument("--data-dir", type=Path, default=None, help="where the event outbox lives")
    p.add_argument(
        "--outbox-max-mb",
        type=int,
        default=None,
        help="cap the event outbox file (default: until the disk is full); at the cap it "
        "raises the same outbox_full alarm as a full disk",
    )


def server_url(server: str) -> str:
    """``ws://host:port`` → the bridge endpoint URL; a full URL is kept."""
    if not server.startswith(("ws://", "wss://")):
        raise ValueError("--server 应为 ws://主机:端口 或 wss://主机:端口")
    rest = server.split("://", 1)[1]
    return server if "/" in rest.rstrip("/") else server.rstrip("/") + BRIDGE_PATH


async def run_bridge(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    buses, devices = bridge_specs(config)
    if args.hall:
        names = {b.name for b in config.buses if b.hall == args.hall}
        buses = [b for b in buses if b.name in names]
        devices = [d for d in devices if d.bus in names]
    if not buses:
        raise ValueError("配置中没有串口总线（[[buses]]）")
    bridge = Bridge(buses, devices)
    cap = getattr(args, "outbox_max_mb", None)
    link = WebSocketLink(
        server_url(args.server),
        args.token,
        args.data_dir or default_data_dir(),
        outbox_max_bytes=None if cap is None else cap * 1024 * 1024,
    )
    link.attach(bridge)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await bridge.start()
    link.start()
    print(f"设备网关已启动：{len(buses)} 条总线、{len(devices)} 台设备 → {link.url}")
    try:
        await stop.wait()
    finally:
        await bridge.stop()
        await link.close()
    return 0
