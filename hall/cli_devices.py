"""``hall device pair CODE --kind kiosk --id k1``: approve a browser device's pairing code.

The kinds (kiosk, display/tv, pad, …) are the installed features' pairing kinds."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

import asyncpg

from hall.domain.errors import HallError
from hall.storage import pairing_repo
from hall.storage.config_store import latest_config
from hall.web.pairing import device_name
from hall.web.pairing_kinds import PairingKinds


def installed_kinds() -> PairingKinds:
    from hall.app import FEATURES  # the composition root names the features
    from hall.features import pairing_kinds

    return pairing_kinds(FEATURES)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    device = sub.add_parser("device", help="browser devices (kiosk pages, hall TVs, web pads)")
    device_sub = device.add_subparsers(dest="device_command", required=True)
    pair = device_sub.add_parser("pair", help="approve the code a browser shows at /pair")
    pair.add_argument("code", help="the six digits on the device's screen")
    pair.add_argument(
        "--kind",
        required=True,
        help="a feature's pairing kind: "
        + ", ".join(installed_kinds().names())
        + " (display and tv are the same)",
    )
    pair.add_argument(
        "--id", dest="device_id", required=True, help="kiosk or screen id, pad: counter number"
    )
    pair.add_argument("--hall", help="hall id (default: the one hall that has this device)")
    return pair


async def pair_device(conn: asyncpg.Connection, args: argparse.Namespace) -> int:
    kinds = installed_kinds()
    found_kind = kinds.find(args.kind)
    if found_kind is None:
        print(f"未知的设备类型 {args.kind}，可选：{'、'.join(kinds.names())}")
        return 1
    args.kind = found_kind.kind
    config = await latest_config(conn)
    if config is None:
        print("没有大厅配置：请先运行 hall config load FILE")
        return 1
    halls = [h for h in config.halls if args.hall in (None, h.id)]
    candidates = []
    for hall in halls:
        try:
            device_name(kinds, hall, args.kind, args.device_id)
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
    print(
        f"已批准：配对码 {found.code} → {hall.id} 的{found_kind.label_zh} {args.device_id}"
        f"（{args.kind}）"
    )
    return 0
