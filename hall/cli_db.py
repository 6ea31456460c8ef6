"""``hall db status|start|stop``: the embedded PostgreSQL as an operator sees it.

The server is shared by every ``hall`` process on a data dir (hall.storage.embedded): it runs
while one of them runs and stops with the last one, unless ``hall db start`` asked to keep it
running. ``hall db stop`` refuses while hall processes use it; ``--force`` stops it anyway and
those processes answer 503 until the database is started again.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from hall.storage.embedded import EmbeddedPostgres, Lease, default_data_dir

NOT_RUNNING = 3  # the LSB exit status of "status" for a stopped service, as pg_ctl uses

_MODES = {
    None: "自动：随第一个 hall 进程启动，最后一个 hall 进程退出时停止",
    "keep": "保持运行：由 hall db start 启动，直到 hall db stop",
    "stopped": "已由管理员停止（hall db stop --force）：hall 进程不会自动重启它",
}


def add_parsers(db_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = db_sub.add_parser(
        "status", help="is the embedded PostgreSQL running: pid, data dir, socket, hall processes"
    )
    status.add_argument("--json", action="store_true", help="one JSON object")
    start = db_sub.add_parser(
        "start", help="start the embedded PostgreSQL and keep it running until hall db stop"
    )
    stop = db_sub.add_parser(
        "stop", help="stop the embedded PostgreSQL (refused while hall processes use it)"
    )
    stop.add_argument(
        "--force",
        action="store_true",
        help="stop it even under running hall processes (they answer 503 until hall db start)",
    )
    for p in (status, start, stop):
        p.add_argument(
            "--data-dir",
            type=Path,
            default=None,
            help="data directory of the embedded server (default: $HALL_DATA_DIR or XDG)",
        )


def run(args: argparse.Namespace) -> int:
    server = EmbeddedPostgres(args.data_dir or default_data_dir())
    if os.environ.get("DATABASE_URL"):
        print("注意：已设置 DATABASE_URL，hall 进程使用该数据库而非此嵌入式数据库")
    match args.db_command:
        case "status":
            return _status(server, as_json=args.json)
        case "start":
            server.operator_start()
            print("嵌入式 PostgreSQL 已启动，将保持运行直到 hall db stop")
            return _status(server, as_json=False)
        case "stop":
            return _stop(server, force=args.force)
    raise AssertionError(args.db_command)


def _status(server: EmbeddedPostgres, *, as_json: bool) -> int:
    pid = server.server_pid()
    users = server.users()
    if as_json:
        print(
            json.dumps(
                {
                    "running": pid is not None,
                    "pid": pid,
                    "data_dir": str(server.root),
                    "pgdata": str(server.pgdata),
                    "socket_dir": str(server.socket_dir),
                    "dsn": server.dsn(),
                    "mode": server.operator_mode() or "auto",
                    "processes": [
                        {"pid": u.pid, "command": u.command, "since": u.since} for u in users
                    ],
                },
                ensure_ascii=False,
            )
        )
        return 0 if pid is not None else NOT_RUNNING
    print(f"嵌入式 PostgreSQL：{'运行中' if pid is not None else '未运行'}")
    if pid is not None:
        print(f"  进程号：{pid}")
    print(f"  数据目录：{server.root}（PostgreSQL 数据：{server.pgdata}）")
    print(f"  套接字目录：{server.socket_dir}")
    if pid is not None:
        print(f"  连接串：{server.dsn()}")
    print(f"  运行方式：{_MODES[server.operator_mode()]}")
    print(f"  使用中的 hall 进程：{len(users)}")
    for user in users:
        print(f"    {_describe(user)}")
    return 0 if pid is not None else NOT_RUNNING


def _stop(server: EmbeddedPostgres, *, force: bool) -> int:
    if not server.running():
        server.operator_stop()  # forgets a "keep running" from hall db start
        print("嵌入式 PostgreSQL 未运行")
        return 0
    users = server.operator_stop(force=force)
    if users and not force:
        print(f"拒绝停止：{len(users)} 个 hall 进程正在使用该数据库：")
        for user in users:
            print(f"    {_describe(user)}")
        print("请先停止这些进程（数据库会随最后一个进程退出而停止），或使用 --force 强制停止")
        return 1
    if users:
        print(
            f"嵌入式 PostgreSQL 已强制停止；{len(users)} 个 hall 进程将返回 503，"
            "直到 hall db start 或重新启动任一 hall 进程"
        )
    else:
        print("嵌入式 PostgreSQL 已停止")
    return 0


def _describe(user: Lease) -> str:
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(user.since))
    return f"{user.pid}  {user.command}  （自 {since} 起）"
