"""``hall demo`` as a living hall: devices on ptys, simulated citizens and clerks.

The kernel's ``hall demo`` finds this through the ``hall.demo`` entry point (the kernel never
imports the simulator). It

* puts every HB/1 device of the example hall (strips, hall screens, callers, pads, kiosk key
  boards) on emulators behind pseudo-terminals that the server's own bridge opens as its
  serial buses, kiosk k1's ticket printer on an ESC/POS emulator on a pty too, and kiosk k2's
  printer on an ESC/POS emulator on its key board's local port (HB/1 tunnel printing: a key
  pressed on k2's board prints through the bus);
* adds ``/demo/pair/{kind}/{device}``, which pairs the browser it is opened in as that kiosk
  or hall screen (the demo's stand-in for approving a pairing code) and opens its page;
* creates the demo logins (a clerk per window, a manager) and, unless ``--no-sim``, runs the
  simulator in real time × ``--speed`` through the HTTP API as kiosk k1 and the clerks, the
  citizens rating on the emulated pads of the windows that have one.

The URLs printed are listed once, in ``demo_pages``: the lead adjusts that list when the
counter terminal, TV, web pad and dashboard pages land.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import tempfile
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web

from firmware_bridge.emulators.base import Hb1Device
from firmware_bridge.emulators.bus import Hb1Bus
from firmware_bridge.emulators.display import ScreenEmulator, StripEmulator
from firmware_bridge.emulators.keypad import CallerEmulator, KioskEmulator
from firmware_bridge.emulators.line import LineEndpoint
from firmware_bridge.emulators.pad import PadEmulator
from firmware_bridge.emulators.printer import EscPosPrinter
from firmware_bridge.pty import VirtualPort
from hall.config.models import DeviceClass, HallConfig
from hall.domain.errors import NotFound
from hall.security import tokens
from hall.security.passwords import hash_password
from hall.storage import access_repo
from hall.web.access import ACCESS, DEVICE_COOKIE_NAME
from hall.web.auth_api import DEVICE_COOKIE_MAX_AGE
from hall.web.pairing import device_name, next_page
from hall.web.pairing_kinds import kinds_of
from hall.web.routes import Access, Route, register
from hall.web.start_page import PAGES
from hall.web.state import CLOCK, DIRECTORY, POOL
from simulator.drivers import HttpDriver
from simulator.engine import Engine, RealtimePace, TicketRef
from simulator.plan import Citizen, plan_day

log = logging.getLogger("simulator.demo")
DEMO_PASSWORD = "hall-demo"
MANAGER = "demo-manager"
RATING_WAIT_S = 10.0  # how long a simulated citizen waits for the pad's rating screen
DEMO_REPLY_TIMEOUT_MS = 500
BAUDRATES = (9600, 19200, 38400, 115200)  # what HB/1 buses run at (hall.config.models.Bus)


def demo_baudrate(configured: int, speed: float) -> int:
    """The rate the demo's emulated bus runs at: a hall played ``speed`` times faster sends
    its devices ``speed`` times as many frames, which the configured rate could not carry
    (at 9600 baud the pads' rating requests queued for seconds behind the strips' updates at
    high speed). The slowest rate that carries the sped-up traffic, at most 115200."""
    needed = configured * max(1.0, speed)
    return next((b for b in BAUDRATES if b >= needed), BAUDRATES[-1])


def demo_pages(
    hall_id: str,
    ticket_token: str | None,
    printed: Collection[str] = (),
    web_pad_counter: int | None = None,
) -> list[tuple[str, str]]:
    """The pages the living hall prints after the kernel's own list (the start page and the
    features' ``PageLink`` pages), (title, path), leaving out a page whose path (without its
    query) is in ``printed``: every URL is printed once. ``web_pad_counter``: a window
    without an HB/1 pad, whose tablet rating page the demo pairs (nobody simulated rates
    there: it is for whoever watches)."""
    pages = [
        ("取号机（自动配对为 k1）", "/demo/pair/kiosk/k1"),
        ("大厅电视（自动配对为 tv1）", "/demo/pair/display/tv1"),
    ]
    if web_pad_counter is not None:
        pages.append(
            (
                f"网页评价器（自动配对为 {web_pad_counter} 号窗口）",
                f"/demo/pair/pad/{web_pad_counter}",
            )
        )
    pages += [
        ("窗口工作台", "/counter"),
        ("登录", "/login"),
        ("管理看板", "/manage"),
        ("接口文档", "/api/v1/openapi.json"),
    ]
    if ticket_token:
        pages.append(("市民的号票页面", f"/t/{ticket_token}"))
    return [(title, path) for title, path in pages if path.split("?")[0] not in printed]


@dataclass
class DemoWiring:
    """The living hall's emulators: what a test (or a curious developer) can press and read."""

    ports: list[VirtualPort] = field(default_factory=list)
    endpoints: list[LineEndpoint] = field(default_factory=list)
    pads: dict[int, PadEmulator] = field(default_factory=dict)
    kiosks: dict[str, KioskEmulator] = field(default_factory=dict)  # by kiosk id: key boards
    printers: dict[str, EscPosPrinter] = field(default_factory=dict)  # by printer name
    tunnelled: dict[str, str] = field(default_factory=dict)  # printer → kiosk of its board
    devices: int = 0
    baudrates: dict[str, int] = field(default_factory=dict)


DEMO_WIRING = web.AppKey("demo_wiring", DemoWiring)


def _emulator(cls: DeviceClass, address: int, uid: str | None) -> Hb1Device:
    raw = bytes.fromhex(uid) if uid else None
    match cls:
        case DeviceClass.STRIP:
            return StripEmulator(address, raw)
        case DeviceClass.SCREEN:
            return ScreenEmulator(address, raw)
        case DeviceClass.PAD:
            return PadEmulator(address, raw)
        case DeviceClass.CALLER:
            return CallerEmulator(address, raw)
        case DeviceClass.KIOSK:
            return KioskEmulator(address, raw)
    raise AssertionError(cls)


class LivingHall:
    """The ``hall.demo`` plugin (see the module docstring)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.speed: float = getattr(args, "speed", 60.0)
        self.simulate: bool = not getattr(args, "no_sim", False)
        self.seed: str = str(getattr(args, "seed", "demo"))
        self.workdir = Path(tempfile.mkdtemp(prefix="hall-demo-"))
        self.wiring = DemoWiring()
        self.hall_id = ""
        self._tasks: list[asyncio.Task[Any]] = []
        self._session: aiohttp.ClientSession | None = None
        self._engine: Engine | None = None
        self.first_ticket: str | None = None
        self._started = False

    # --- before the server starts -----------------------------------------------------------

    async def wire(self, config: HallConfig) -> HallConfig:
        """The config with every bus on a pty of emulated devices, and the printers that an
        emulator can stand in for on a pty (the others are left out: no LAN is dialled)."""
        self.hall_id = config.halls[0].id
        buses = []
        boards: dict[tuple[str, int], KioskEmulator] = {}
        for bus in config.buses:
            devices = [d for d in config.devices if d.bus == bus.name]
            emulators = []
            for d in devices:
                emu = _emulator(d.device_class, d.address, d.uid)
                emulators.append(emu)
                if isinstance(emu, PadEmulator) and d.counter is not None:
                    self.wiring.pads[d.counter] = emu
                if isinstance(emu, KioskEmulator):
                    boards[(d.bus, d.address)] = emu
                    if d.kiosk is not None:
                        self.wiring.kiosks[d.kiosk] = emu
            baud = demo_baudrate(bus.baudrate, self.speed)
            self.wiring.baudrates[bus.name] = baud
            endpoint = LineEndpoint(Hb1Bus(emulators, baud=baud))
            port = VirtualPort(str(self.workdir / f"tty-{bus.name}"))
            await endpoint.attach_fd(port.plug().master_fd)
            self.wiring.ports.append(port)
            self.wiring.endpoints.append(endpoint)
            self.wiring.devices += len(emulators)
            # The emulators answer from this process's event loop, which a loaded machine
            # can hold up for longer than a wire would: a missed reply is retried, and then
            # the device is taken for dead. They always answer, so waiting longer costs
            # nothing.
            timeout = max(bus.options.reply_timeout_ms or 0, DEMO_REPLY_TIMEOUT_MS)
            options = bus.options.model_copy(update={"reply_timeout_ms": timeout})
            buses.append(
                bus.model_copy(update={"url": port.link_path, "baudrate": baud, "options": options})
            )
        printers = []
        for printer in config.printers:
            if printer.tunnel is not None:
                # Behind a kiosk's key board: the paper hangs on the board's local port.
                board = boards.get((printer.tunnel.bus, printer.tunnel.address))
                if board is None:
                    continue  # no emulated board to print through: left out
                paper = EscPosPrinter()
                board.attach_local(printer.tunnel.port, paper.feed)
                self.wiring.printers[printer.name] = paper
                self.wiring.tunnelled[printer.name] = printer.kiosk
                printers.append(printer)
                continue
            paper = EscPosPrinter()
            endpoint = LineEndpoint(paper)
            port = VirtualPort(str(self.workdir / f"lp-{printer.name}"))
            await endpoint.attach_fd(port.plug().master_fd)
            self.wiring.ports.append(port)
            self.wiring.endpoints.append(endpoint)
            self.wiring.printers[printer.name] = paper
            printers.append(printer.model_copy(update={"url": port.link_path}))
        return config.model_copy(update={"buses": buses, "printers": printers})

    def install(self, app: web.Application) -> None:
        """Add the demo's pairing shortcut to the app (before it starts), and unplug the
        emulated lines only once the server's bridge has let go of them."""
        app.on_cleanup.append(self._unplug)
        app[DEMO_WIRING] = self.wiring
        register(
            app,
            [
                Route(
                    "GET",
                    "/demo/pair/{kind}/{device}",
                    _pair_here,
                    "demo_pair",
                    "演示：把本浏览器配对为取号机或大厅电视并打开其页面",
                    Access.PUBLIC,
                    in_openapi=False,
                )
            ],
        )

    # --- once it listens ----------------------------------------------------------------------

    async def start(self, app: web.Application, base: str) -> list[str]:
        """Demo logins and, unless idle, the simulation; the lines to print."""
        self._started = True
        pool = app[POOL]
        hall = app[DIRECTORY].hall(self.hall_id).hall
        # The demo server's own (cheap) password cost, so that logging in does not rehash.
        digest = hash_password(DEMO_PASSWORD, app[ACCESS].settings.password_params)
        async with pool.acquire() as conn:
            for c in hall.counters:
                await access_repo.save_account(
                    conn,
                    f"sim{c.number:02d}",
                    password_hash=digest,
                    name=f"模拟{c.number}号窗口",
                    roles=["clerk"],
                    halls=[hall.id],
                    counters=[c.number],
                )
            await access_repo.save_account(
                conn,
                MANAGER,
                password_hash=digest,
                name="演示值班长",
                roles=["manager"],
                halls=[hall.id],
                counters=[],
            )
        lines = [
            f"演示登录（密码均为 {DEMO_PASSWORD}）：管理 {MANAGER}；"
            f"各窗口 sim01…sim{max(c.number for c in hall.counters):02d}（sim07 = 7 号窗口）",
            f"模拟设备：{self.wiring.devices} 台串口设备（{len(self.wiring.ports)} 个 pty），"
            f"评价器所在窗口 {sorted(self.wiring.pads)}；串口速率 "
            + "、".join(f"{n} {b}" for n, b in self.wiring.baudrates.items()),
        ]
        if self.wiring.printers:
            lines.append(
                "模拟打印机："
                + "、".join(
                    f"{name}（经取号机 {self.wiring.tunnelled[name]} 的按键板透传）"
                    if name in self.wiring.tunnelled
                    else name
                    for name in self.wiring.printers
                )
            )
        if self.simulate:  # always, as hall demo runs it (--no-sim leaves the plugin out)
            self._session = aiohttp.ClientSession()
            driver = await self._driver(app, base)
            ticket = await driver.issue(_visitor(hall.services[0].code, hall.services[0]), _now())
            self.first_ticket = ticket.token
            self._tasks.append(asyncio.create_task(self._run(app, driver)))
            lines.append(f"模拟运行中：{self.speed:g} 倍速（--no-sim 关闭）")
        else:
            lines.append("空闲大厅：未运行模拟（去掉 --no-sim 即可看到办事群众和窗口）")
        printed = {
            page.path.replace("{hall}", self.hall_id).split("?")[0] for page in app.get(PAGES, ())
        }
        lines += [
            f"  {title}：{base}{path}"
            for title, path in demo_pages(
                self.hall_id,
                self.first_ticket,
                printed,
                web_pad_counter=next(
                    (c.number for c in hall.counters if c.number not in self.wiring.pads), None
                ),
            )
        ]
        return lines

    async def _driver(self, app: web.Application, base: str) -> HttpDriver:
        assert self._session is not None
        token = tokens.new_token(tokens.DEVICE_PREFIX)
        await access_repo.create_device_token(
            app[POOL],
            kind="kiosk",
            hall_id=self.hall_id,
            device_id="k1",
            name="演示模拟取号",
            token_hash=tokens.token_hash(token),
            created_by="demo",
            now=datetime.now(UTC),
        )
        clerks: dict[int, dict[str, str]] = {}
        for c in app[DIRECTORY].hall(self.hall_id).hall.counters:
            body = {"job_no": f"sim{c.number:02d}", "password": DEMO_PASSWORD}
            async with self._session.post(f"{base}/api/v1/login", json=body) as resp:
                resp.raise_for_status()
                clerks[c.number] = {"Authorization": f"Bearer {(await resp.json())['token']}"}
        return HttpDriver(
            self._session,
            base,
            self.hall_id,
            {"Authorization": f"Bearer {token}"},
            clerks,
            kiosk="k1",
            rate_hook=self._rate,
        )

    async def _run(self, app: web.Application, driver: HttpDriver) -> None:
        hall = app[DIRECTORY].hall(self.hall_id).hall
        try:
            await _settle_counters(driver, hall.counters)
            tz = ZoneInfo(hall.timezone)
            today = datetime.now(tz).date()
            # Drawn a day at a time, off the event loop (a day is 1,500 citizens).
            plan = await asyncio.to_thread(plan_day, hall, today, self.seed)
            start = min(s.opens for s in plan.shifts) - timedelta(minutes=1)
            pace = RealtimePace(self.speed, start)

            def server_time(at: datetime) -> datetime:
                # When the pace reaches ``at``, on the server's (real) clock.
                loop = asyncio.get_running_loop()
                ahead = (at - start).total_seconds() / self.speed - (loop.time() - pace.wall0)
                return _now() + timedelta(seconds=ahead)

            driver.server_time = server_time
            self._engine = Engine(hall, driver, pace)
            self._engine.seed_waiting(await _waiting(driver))
            day = today
            while True:
                await self._engine.run_day(plan)
                day += timedelta(days=1)
                plan = await asyncio.to_thread(plan_day, hall, day, self.seed)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the simulation stopped")

    async def _rate(self, counter: int, ticket: TicketRef, level: int) -> None:
        pad = self.wiring.pads.get(counter)
        if pad is None:
            return  # no pad at this window (the web pad is another page)

        async def press() -> None:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + RATING_WAIT_S
            while loop.time() < deadline:
                if pad.rating is not None and pad.rate(level):
                    return
                await asyncio.sleep(0.05)

        self._tasks.append(asyncio.create_task(press()))

    @property
    def stats(self) -> Any:
        return None if self._engine is None else self._engine.stats

    async def close(self) -> None:
        """Stop the simulation (before the server stops: its requests would fail). The lines
        are unplugged after the server's cleanup (``install``), or now if it never ran."""
        if self._engine is not None:
            self._engine.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._session is not None:
            await self._session.close()
            self._session = None
        if not self._started:
            await self._unplug()

    async def _unplug(self, app: web.Application | None = None) -> None:
        endpoints, self.wiring.endpoints = self.wiring.endpoints, []
        ports, self.wiring.ports = self.wiring.ports, []
        for endpoint in endpoints:
            with contextlib.suppress(Exception):
                await endpoint.close()
        for port in ports:
            with contextlib.suppress(Exception):
                port.unplug()


def _now() -> datetime:
    return datetime.now(UTC)


def _visitor(code: str, svc: Any) -> Citizen:
    purpose = "apply" if "apply" in [str(p) for p in svc.purposes] else str(svc.purposes[0])
    return Citizen(0, _now(), code, purpose, None, None, 300.0, False, None, 0.0, None)


async def _waiting(driver: HttpDriver) -> dict[str, int]:
    url = f"{driver.base}/api/v1/halls/{driver.hall_id}/snapshot"
    headers = next(iter(driver.clerk_headers.values()), {})
    async with driver.session.get(url, headers=headers) as resp:
        if resp.status != 200:
            return {}
        data = await resp.json()
    return {k: int(v) for k, v in data.get("waiting", {}).items()}


async def _settle_counters(driver: HttpDriver, counters: Any) -> None:
    """A demo started again the same day: windows left open are tidied up and closed, so
    the simulated clerks start their day as the plan says."""
    for c in counters:
        headers = driver.clerk_headers.get(c.number, {})
        url = f"{driver.base}/api/v1/halls/{driver.hall_id}/counters/{c.number}"
        async with driver.session.get(url, headers=headers) as resp:
            if resp.status != 200:
                continue
            data = await resp.json()
        state = (data.get("status") or data).get("state")
        ticket = data.get("ticket")
        steps: list[str] = []
        if ticket and ticket.get("state") == "called":
            steps.append("no_show")
        elif ticket and ticket.get("state") == "serving":
            steps.append("finish")
        if state == "paused":
            steps.append("resume")
        if state not in (None, "closed"):
            steps.append("close")
        for step in steps:
            with contextlib.suppress(Exception):
                await driver.act(c.number, step, _now())


async def _pair_here(request: web.Request) -> web.Response:
    """Pair this browser as a configured kiosk or hall screen, then open its page."""
    kind = request.match_info["kind"]
    device = request.match_info["device"]
    directory = request.app[DIRECTORY]
    hall_id = directory.hall_ids()[0]
    hall = directory.hall(hall_id).hall
    kinds = kinds_of(request.app)
    if kinds.find(kind) is None:
        raise NotFound(f"没有这种设备：{kind}")
    kind = kinds.get(kind).kind
    name = device_name(kinds, hall, kind, device)
    token = tokens.new_token(tokens.DEVICE_PREFIX)
    await access_repo.create_device_token(
        request.app[POOL],
        kind=kind,
        hall_id=hall_id,
        device_id=device,
        name=name,
        token_hash=tokens.token_hash(token),
        created_by="demo",
        now=request.app[CLOCK].now(),
    )
    response = web.Response(
        status=302, headers={"Location": next_page(kinds, kind, hall_id, device) or "/"}
    )
    response.set_cookie(
        DEVICE_COOKIE_NAME,
        token,
        max_age=DEVICE_COOKIE_MAX_AGE,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.app[ACCESS].settings.cookie_secure,
    )
    return response


def make(args: argparse.Namespace) -> LivingHall:
    """The ``hall.demo`` entry point."""
    return LivingHall(args)


__all__ = ["DEMO_PASSWORD", "LivingHall", "demo_pages", "make"]
