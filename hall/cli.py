"""The ``hall`` console script."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from aiohttp import web

from hall.app import Settings, create_app, resolve_database, server_options
from hall.config.models import HallConfig
from hall.security.logfilter import install_pii_filter
from hall.security.passwords import ScryptParams

EXAMPLE_CONFIG = Path(__file__).resolve().parent.parent / "examples" / "county-hall.toml"
log = logging.getLogger("hall")
DEMO_ADMIN_PASSWORD = "hall-demo"  # a demo on loopback; `hall serve` never creates accounts
DEMO_PASSWORD_PARAMS = ScryptParams(n=2**10, r=8, p=1)


def _database_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL"),
        help="PostgreSQL URL (default: $DATABASE_URL, else an embedded server)",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="data directory of the embedded server (default: $HALL_DATA_DIR or XDG data home)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hall", description="政务服务大厅排队叫号系统")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the hall server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--config", type=Path, help="hall config TOML to apply at start-up")
    serve.add_argument("--access-log", action="store_true", help="log every HTTP request")
    serve.add_argument(
        "--read-timeout",
        type=float,
        default=15.0,
        help="seconds a request's headers or body may take to arrive (slow clients are dropped)",
    )
    serve.add_argument(
        "--pool-size", type=int, default=10, help="database connections of this process"
    )
    _database_args(serve)

    demo = sub.add_parser(
        "demo", help="run the server on the embedded database with the example hall"
    )
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8080)
    demo.add_argument("--config", type=Path, default=EXAMPLE_CONFIG)
    demo.add_argument(
        "--office-hours-only",
        action="store_true",
        help="refuse tickets outside business hours, as a real hall does",
    )
    demo.add_argument("--access-log", action="store_true", help="log every HTTP request")
    demo.add_argument(
        "--read-timeout",
        type=float,
        default=15.0,
        help="seconds a request's headers or body may take to arrive (slow clients are dropped)",
    )
    demo.add_argument(
        "--admin-password",
        default=DEMO_ADMIN_PASSWORD,
        help="password of the demo administrator 'admin' (created when no admin exists)",
    )
    demo.add_argument(
        "--speed",
        type=float,
        default=60.0,
        help="simulated seconds per second of the living hall (default 60)",
    )
    demo.add_argument(
        "--no-sim",
        action="store_true",
        help="an idle hall: the plain server, no emulated devices and no simulated people",
    )
    demo.add_argument("--seed", default="demo", help="seed of the simulated days")
    _database_args(demo)

    db = sub.add_parser("db", help="database tasks")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    mig = db_sub.add_parser("migrate", help="apply pending migrations")
    _database_args(mig)
    from hall.cli_db import add_parsers as add_db_parsers

    add_db_parsers(db_sub)

    cfg = sub.add_parser("config", help="hall configuration")
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True)
    check = cfg_sub.add_parser("check", help="validate a config file and list every error")
    check.add_argument("file", type=Path)
    load = cfg_sub.add_parser("load", help="validate and apply a config file (idempotent)")
    load.add_argument("file", type=Path)
    _database_args(load)

    user = sub.add_parser("user", help="staff accounts")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    add = user_sub.add_parser("add", help="create a staff login or reset its password")
    add.add_argument("job_no")
    add.add_argument("--name")
    add.add_argument("--role", action="append", dest="roles", help="clerk, manager, admin, …")
    add.add_argument("--hall", action="append", dest="halls")
    add.add_argument("--password", help="default: prompt")
    add.add_argument("--counter", type=int, action="append", dest="counters", help="counter no.")
    _database_args(add)

    from hall.cli_devices import add_parser as add_device_parser

    _database_args(add_device_parser(sub))

    from hall.cli_bridge import add_parser as add_bridge_parser

    add_bridge_parser(sub)

    emulate = sub.add_parser("emulate", help="emulate a device on a serial line", add_help=False)
    emulate.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


async def _with_database(args: argparse.Namespace, work: str) -> int:
    from hall.app import migrate_all
    from hall.storage.db import connect_pool

    settings = Settings(database_url=args.database_url, data_dir=args.data_dir)
    dsn, server = await resolve_database(settings)
    try:
        pool = await connect_pool(dsn, min_size=1, max_size=2)
        try:
            async with pool.acquire() as conn:
                applied = await migrate_all(conn)
                if work == "migrate":
                    print(
                        f"已应用 {len(applied)} 个迁移"
                        + (f"：{', '.join(applied)}" if applied else "")
                    )
                    return 0
                if work == "config_load":
                    from hall.config.loader import load_config
                    from hall.storage.config_store import (
                        apply_config,
                        latest_config,
                        restart_needed,
                    )

                    loaded = load_config(args.file)
                    running = await latest_config(conn)
                    changed = await apply_config(conn, loaded)
                    print("配置已更新，运行中的服务将在数秒内生效" if changed else "配置无变化")
                    for note in restart_needed(running, loaded) if changed else []:
                        print(f"注意：{note}")
                    return 0
                if work == "user_add":
                    from hall.cli_users import add_user

                    return await add_user(conn, args)
                if work == "device_pair":
                    from hall.cli_devices import pair_device

                    return await pair_device(conn, args)
            raise AssertionError(work)
        finally:
            await pool.close()
    finally:
        if server is not None:
            await asyncio.to_thread(server.stop)


def demo_config(config: HallConfig, *, any_hour: bool, devices: bool = False) -> HallConfig:
    """The example hall as a demo runs it: tickets at any hour unless asked, and no real
    serial ports or printers (the example names LAN addresses of a real hall): they are
    dropped, or kept (``devices``) for a demo plugin that puts emulators in their place."""
    halls = config.halls
    if any_hour:
        halls = [h.model_copy(update={"issue_outside_hours": True}) for h in halls]
    if devices:
        return config.model_copy(update={"halls": halls})
    return config.model_copy(update={"halls": halls, "buses": [], "devices": [], "printers": []})


class DemoPlugin(Protocol):
    """What an installed ``hall.demo`` entry point adds to ``hall demo`` (the simulator's
    living hall): the kernel knows it only by this shape, never by import."""

    async def wire(self, config: HallConfig) -> HallConfig:
        """The demo config with its devices and printers put on emulators."""
        ...

    def install(self, app: web.Application) -> None:
        """Add routes to the app before it starts."""
        ...

    async def start(self, app: web.Application, base: str) -> list[str]:
        """Once the port listens: start, and say what to print."""
        ...

    async def close(self) -> None: ...


def demo_plugin(args: argparse.Namespace) -> DemoPlugin | None:
    """The installed ``hall.demo`` plugin, made for these arguments; None when there is none."""
    from importlib.metadata import entry_points

    for entry in entry_points(group="hall.demo"):
        plugin: DemoPlugin = entry.load()(args)
        return plugin
    return None


async def run_demo(
    args: argparse.Namespace,
    *,
    stop: asyncio.Event | None = None,
    ready: Callable[[str, web.Application], None] | None = None,
) -> int:
    """``hall demo``: the server on the example hall, with the living hall when the plugin is
    installed; prints the pages only once the port listens; runs until ``stop`` (default:
    Ctrl-C or SIGTERM) and then stops everything."""
    from hall.config.loader import load_config
    from hall.security.ratelimit import BucketSpec
    from hall.web.access import AccessSettings

    plugin = None if args.no_sim else demo_plugin(args)
    config = demo_config(
        load_config(args.config), any_hour=not args.office_hours_only, devices=plugin is not None
    )
    if plugin is not None:
        config = await plugin.wire(config)
    settings = Settings(database_url=args.database_url, data_dir=args.data_dir, config=config)
    settings.read_timeout_s = args.read_timeout
    settings.access = AccessSettings(
        bootstrap_admin=("admin", args.admin_password),
        # A demo on loopback: every login comes from this machine (one per window at start),
        # and its throwaway passwords need not cost each login tens of MiB and a second.
        login_rate=BucketSpec(100, 1),
        password_params=DEMO_PASSWORD_PARAMS,
    )
    app = create_app(settings)
    if plugin is not None:
        plugin.install(app)
    runner = web.AppRunner(
        app,
        access_log=logging.getLogger("aiohttp.access") if args.access_log else None,
        **server_options(settings),
    )
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    if stop is None:
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
                handled.append(sig)
    try:
        await runner.setup()
        site = web.TCPSite(runner, args.host, args.port)
        await site.start()
        port = runner.addresses[0][1] if runner.addresses else args.port
        base = f"http://{args.host}:{port}"
        # Every URL once: the start page, then each page of each hall.
        lines = [
            f"大厅演示已启动：{base}/  （Ctrl+C 退出）",
            f"管理员登录：工号 admin，密码 {args.admin_password}（登录页见下方）",
        ]
        from hall.web.start_page import PAGES

        for hall in config.halls:
            for page in app.get(PAGES, ()):
                path = page.path.replace("{hall}", hall.id)
                lines.append(f"  {hall.name} · {page.title}：{base}{path}")
        if plugin is not None:
            lines += await plugin.start(app, base)
        else:
            lines.append(f"接口：{base}/api/v1/halls")
        print("\n".join(lines), flush=True)
        if ready is not None:
            ready(base, app)
        await stop.wait()
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        if plugin is not None:
            await plugin.close()
        await runner.cleanup()
    return 0


def _serve(args: argparse.Namespace) -> int:
    config = None
    if args.config is not None:
        from hall.config.loader import load_config

        config = load_config(args.config)
    settings = Settings(database_url=args.database_url, data_dir=args.data_dir, config=config)
    settings.pool_size = getattr(args, "pool_size", settings.pool_size)
    settings.read_timeout_s = args.read_timeout
    app = create_app(settings)
    app.on_startup.append(settle_heap)  # last: after the database, the features, the caches
    install_uvloop()
    web.run_app(
        app,
        host=args.host,
        port=args.port,
        print=print,
        access_log=logging.getLogger("aiohttp.access") if args.access_log else None,
        **server_options(settings),
    )
    return 0


async def settle_heap(app: web.Application) -> None:
    """Move what start-up built out of the cyclic collector's reach (``gc.freeze``).

    A full collection walks every tracked object; start-up leaves about 270,000 (pypinyin's
    dictionaries, the config, the modules), so each one paused the loop for 60-80 ms under
    load, every request in flight waiting. What is left after the freeze is what requests
    create, and a full collection walks only that. The second collection resets the
    collector's count of long-lived objects to what it still walks, so full collections keep
    their usual pace instead of waiting for a quarter of the frozen heap to be allocated anew.
    """
    gc.collect()
    gc.freeze()
    gc.collect()


def install_uvloop() -> None:
    """uvloop roughly halves the server's per-request CPU; the standard loop still works."""
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    install_pii_filter()
    try:
        match args.command:
            case "serve":
                return _serve(args)
            case "demo":
                install_uvloop()
                return asyncio.run(run_demo(args))
            case "db" if args.db_command == "migrate":
                return asyncio.run(_with_database(args, "migrate"))
            case "db":
                from hall.cli_db import run as run_db

                return run_db(args)
            case "config" if args.config_command == "check":
                from hall.config.check import check_command

                return check_command(str(args.file))
            case "config":
                return asyncio.run(_with_database(args, "config_load"))
            case "user":
                return asyncio.run(_with_database(args, "user_add"))
            case "device":
                return asyncio.run(_with_database(args, "device_pair"))
            case "bridge":
                from hall.cli_bridge import run_bridge

                return asyncio.run(run_bridge(args))
            case "emulate":
                from firmware_bridge.emulators.cli import main as emulate_main

                return emulate_main(args.rest)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the CLI's edge: one readable line, details with -v
        from hall.config.loader import ConfigError

        if isinstance(exc, ConfigError):
            print(str(exc), file=sys.stderr)
            return 1
        if args.verbose:
            raise
        print(f"错误：{exc}", file=sys.stderr)
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
