"""``hall device pair CODE --kind kiosk --id k1``: approve a browser device's pairing code."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

import asyncpg

from hall.domain.errors import HallError
from hall.storage import pairing_repo
from hall.storage.config_store import latest_config
from hall.web.pairing import device_name


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    device = sub.add_parser("device", help="browser devices (kiosk pages, hall TVs)")
    device_sub = device.add_subparsers(dest="device_command", required=True)
    pair = device_sub.add_parser("pair", help="approve the code a browser shows at /pair")
    pair.add_argument("code", help="the six digits on the device's screen")
    pair.add_argument(
        "--kind",
        choices=["kiosk", "display", "tv"],
        required=True,
        help="display and tv are the same: a TV page or screen paired as a configured screen",
    )
    pair.add_argument("--id", dest="device_id", required=True, help="kiosk or screen id")
    pair.add_argument("--hall", help="hall id (default: the one hall that has this device)")
    return pair


async def pair_device(conn: asyncpg.Connection, args: argparse.Namespace) -> int:
    if args.kind == "tv":
        args.kind = "display"
    config = await latest_config(conn)
    if config is None:
        print("没有大厅配置：请先运行 hall config load FILE")
        return 1
    halls = [h for h in config.halls if args.hall in (None, h.id)]
    candidates = []
    for hall in halls:
        try:
            device_name(hall, args.kind, args.device_id)
        except HallError:
            continue
        candidates.append(hall)
    if len(candidates) != 1:
        where = "、".join(h.id for h in candidates) or "任何大厅"
        print(f"无法确定设备 {args.device_id}：{where}（请用 --hall 指定）")
        return 1
    hall = candidates[0]
    found = await pairing_repo.approve(
        conn,
        code=args.code.strip(),
        kind=args.kind,
        hall_id=hall.id,
        device_id=args.device_id,
        by="cli",
        now=datetime.now(UTC),
    )
    if found is None:
        print(f"没有等待批准的配对码 {args.code}（可能已过期或已使用）")
        return 1
    print(f"已批准：配对码 {found.code} → {hall.id} 的 {args.kind} {args.device_id}")
    return 0
