"""The hall's side of the firmware bridge: device events in, desired device state out.

``setup_bridge(app)`` adds the bridge websocket (/api/v1/bridge, for an edge PC running
``hall bridge``), the device registry API, and a hub that

- runs the bridge in-process when the config names buses (unless ``HALL_BRIDGE=remote``),
- recomputes the desired state of a hall's devices after every committed change (this
  process's commits as its pool releases them, hall.storage.commit_notices; other writers'
  ``hall_events`` notices; the sequencers' notices of numbered events, unless the latest pass
  already saw those events, hall.storage.sequencer.Seen; device events that changed ratings),
  and pushes the devices whose state changed to the in-process bridge and to remote bridges;
  a device event's own counter (its strip and caller) is pushed at the event's commit from
  the event's transaction, ahead of the pass (``apply_render``), and no render from an older
  read replaces a newer one (``hall.services.devices.ReadPoint``),
- lets a feature send one request to one device and await its reply (``command``), and read a
  device's events as they are stored (``watch``), for uses that are not desired state (bytes
  for a device's local port).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from aiohttp import WSMsgType, web
from pydantic import BaseModel, Field

from firmware_bridge.bridge import (
    AlarmReport,
    Bridge,
    BusSpec,
    DeviceSpec,
    InMemoryLink,
    Report,
    UpEvent,
    requests_to_json,
)
from firmware_bridge.errors import BridgeError, DecodeError
from firmware_bridge.master import AlarmKind
from firmware_bridge.messages import Event, Reply, Request, decode_reply
from firmware_bridge.transport import Backoff
from firmware_bridge.wslink import OUTBOX_FULL, OUTBOX_OK
from hall.config.models import HallConfig
from hall.domain.errors import Forbidden, InvalidInput, NotFound, Unavailable
from hall.services.device_roles import DeviceRole
from hall.services.devices import (
    WIRE_CLASS,
    CounterRender,
    Desired,
    DesiredPass,
    DeviceService,
    ReadPoint,
)
from hall.storage.notify import Subscription
from hall.storage.sequencer import EVENTS_CHANNEL, Seen, sequenced, writer_hall
from hall.web.access import principal_of
from hall.web.routes import Access, Route, register
from hall.web.state import (
    CLOCK,
    COMMIT_NOTICES,
    DEVICE_ROLES,
    DIRECTORY,
    NOTIFIER,
    POOL,
    QUEUE,
)
from hall.web.validation import load_json

log = logging.getLogger(__name__)
T = TypeVar("T")

BridgeMode = Literal["auto", "inprocess", "remote", "off"]
MAX_BRIDGE_MESSAGE = 64 * 1024
COMMAND_TIMEOUT_S = 5.0
"""How long a one-off device command (BridgeHub.command) may take, queueing included."""


@dataclass
class BridgeSettings:
    """``mode``: auto = in-process when the config names buses; remote = only edge bridges."""

    mode: BridgeMode = field(default_factory=lambda: _mode(os.environ.get("HALL_BRIDGE", "auto")))
    backoff: Backoff | None = None  # serial reconnect backoff of the in-process bridge
    report_interval_s: float = 2.0


def _mode(value: str) -> BridgeMode:
    if value not in ("auto", "inprocess", "remote", "off"):
        raise ValueError(f"HALL_BRIDGE must be auto, inprocess, remote or off, not {value!r}")
    return value  # type: ignore[return-value]


def bridge_specs(config: HallConfig) -> tuple[list[BusSpec], list[DeviceSpec]]:
    """The bridge's view of the config's buses and devices."""
    zones = {h.id: h.timezone for h in config.halls}
    buses = [
        BusSpec(
            name=b.name,
            url=b.url,
            baud=b.baudrate,
            poll_interactive_s=b.options.poll_interactive_ms / 1000,
            poll_display_s=b.options.poll_display_ms / 1000,
            reply_timeout_s=(
                None if b.options.reply_timeout_ms is None else b.options.reply_timeout_ms / 1000
            ),
            offline_after_failures=b.options.offline_after_failures,
            offline_probe_s=b.options.offline_probe_ms / 1000,
            timezone=zones.get(b.hall),
        )
        for b in config.buses
    ]
    devices = [
        DeviceSpec(
            bus=d.bus,
            address=d.address,
            device_class=WIRE_CLASS[d.device_class],
            uid=bytes.fromhex(d.uid) if d.uid else None,
        )
        for d in config.devices
    ]
    return buses, devices


# Alarm kinds a bridge may report: its master's about devices, and its own about its outbox.
DEVICE_ALARMS = frozenset(k.value for k in AlarmKind) | {"fault"}
BRIDGE_ALARMS = frozenset({OUTBOX_FULL, OUTBOX_OK})


class _Disconnected(Exception):
    """The edge bridge a command went to disconnected before it replied (its device id)."""


class _RemoteSession:
    """One edge bridge connected over the websocket (one connection: a bridge that reconnects
    is a new session)."""

    def __init__(self, hall_id: str, ws: web.WebSocketResponse, device_id: str = "") -> None:
        self.hall_id = hall_id
        self.device_id = device_id  # the bridge token's device id, e.g. "edge1"
        self.ws = ws
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=4096)
        self.buses: frozenset[str] = frozenset()  # the buses its reports name (of its hall)
        self.closed = False

    def send(self, message: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait(json.dumps(message, ensure_ascii=False))
        except asyncio.QueueFull:
            log.warning("bridge session of %s too slow; closing", self.hall_id)
            self.queue = asyncio.Queue(maxsize=1)
            self.queue.put_nowait("")  # empty string: the writer closes the socket

    async def writer(self) -> None:
        while True:
            text = await self.queue.get()
            if not text:
                await self.ws.close()
                return
            await self.ws.send_str(text)


class BridgeHub:
    """Per-app: the device service, the in-process bridge, remote sessions, desired state."""

    def __init__(self, app: web.Application, settings: BridgeSettings) -> None:
        self.app = app
        self.settings = settings
        self._service: DeviceService | None = None
        self.bridge: Bridge | None = None
        self.sessions: set[_RemoteSession] = set()
        self.bus_stats: dict[str, dict[str, float | int | None]] = {}
        self._pushed: dict[tuple[str, int], Desired] = {}
        # The read each device's pushed state was rendered from: a render from an older read
        # (a pass that began before a key's commit, a key's render that a pass already saw)
        # never replaces a newer one (ReadPoint.newer_than).
        self._points: dict[tuple[str, int], ReadPoint] = {}
        self._dirty: dict[str, asyncio.Event] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        # What each hall's latest pass saw of its event log, to tell which sequencer notices
        # call for another pass; notices that come while a pass reads wait for its answer.
        self._seen = Seen()
        self._reading: dict[str, list[int]] = {}
        self._listening = False
        self._listen_epoch = 0  # +1 whenever the LISTEN connection comes up or goes down
        self.passes = 0
        self._subscription: Subscription | None = None
        self._report: Report | None = None
        self._report_wake = asyncio.Event()
        self._reporter: asyncio.Task[None] | None = None
        self.pushes = 0
        self.fast_renders = 0
        # Commands sent to edge bridges, awaiting a reply: the session each went to, its answer.
        self._replies: dict[int, tuple[_RemoteSession, asyncio.Future[dict[str, Any]]]] = {}
        self._command_ids = 0

    @property
    def service(self) -> DeviceService:
        if self._service is None:
            raise Unavailable("设备服务未启动")
        return self._service

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        app = self.app
        roles: tuple[DeviceRole, ...] = app.get(DEVICE_ROLES, ())
        self._service = DeviceService(app[POOL], app[DIRECTORY], app[QUEUE], app[CLOCK], roles)
        self.service.on_change = self.mark
        self.service.on_render = self.apply_render
        await self.service.sync_registry()
        config = app[DIRECTORY].config
        self._reporter = asyncio.create_task(self._report_writer(), name="bridge-registry")
        if config.buses:  # no devices, no desired state: nothing to follow
            app[COMMIT_NOTICES].add(self.mark)
            self._subscription = await app[NOTIFIER].subscribe(
                EVENTS_CHANNEL, self._on_notify, on_up=self._connected, on_down=self._lost
            )
        mode = self.settings.mode
        if config.buses and mode in ("auto", "inprocess"):
            buses, devices = bridge_specs(config)
            bridge = Bridge(
                buses,
                devices,
                backoff=self.settings.backoff,
                report_interval_s=self.settings.report_interval_s,
            )
            bridge.connect(
                InMemoryLink(self.service.handle_event, self.service.record_alarm, self.on_report)
            )
            self.bridge = bridge
            await bridge.start()
        for hall_id in {b.hall for b in config.buses}:
            self.mark(hall_id)

    async def stop(self) -> None:
        if self._subscription is not None:
            self.app[COMMIT_NOTICES].remove(self.mark)
            await self.app[NOTIFIER].unsubscribe(self._subscription)
            self._subscription = None
        for session in list(self.sessions):
            with contextlib.suppress(Exception):
                await session.ws.close(code=1001, message=b"server shutdown")
        if self.bridge is not None:
            await self.bridge.stop()
        tasks = [t for t in (self._reporter,) if t is not None]
        tasks += list(self._workers.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- registry reports -------------------------------------------------------------------

    def on_report(self, report: Report) -> None:
        """Keep the newest report; one writer stores it (a slow database skips old ones)."""
        self.bus_stats.update(report.buses)
        self._report = report
        self._report_wake.set()

    async def _report_writer(self) -> None:
        while True:
            await self._report_wake.wait()
            self._report_wake.clear()
            report, self._report = self._report, None
            if report is None:
                continue
            try:
                await self.service.record_report(report)
            except Exception:
                log.exception("device registry update failed")

    # --- desired state ----------------------------------------------------------------------

    def mark(self, hall_id: str) -> None:
        """Recompute the hall's desired device state soon (bursts coalesce)."""
        if not self.service.wiring.buses_of_hall(hall_id):
            return
        event = self._dirty.get(hall_id)
        if event is None:
            event = self._dirty[hall_id] = asyncio.Event()
            self._workers[hall_id] = asyncio.create_task(
                self._worker(hall_id, event), name=f"bridge-desired-{hall_id}"
            )
        event.set()

    async def _worker(self, hall_id: str, dirty: asyncio.Event) -> None:
        while True:
            await dirty.wait()
            dirty.clear()
            # Notices of numbered events that arrive while this pass reads are judged by what
            # it read; a pass that began before the LISTEN was up (or across its loss) judges
            # none and they call for another pass.
            epoch, listening = self._listen_epoch, self._listening
            held = self._reading[hall_id] = []
            try:
                # A mark that comes before the read is sent (a device event's own, after the
                # commit notice of its release started this pass) is covered by the read.
                result = await self.service.desired_pass(hall_id, reading=dirty.clear)
            except Exception:
                log.exception("desired device state of %s failed", hall_id)
                del self._reading[hall_id]
                self._seen.forget(hall_id)
                await asyncio.sleep(1.0)
                dirty.set()
                continue
            del self._reading[hall_id]
            self.passes += 1
            if listening and epoch == self._listen_epoch:
                self._seen.read(hall_id, result.position)
            else:
                self._seen.forget(hall_id)
            for seq in held:
                self._sequenced(hall_id, seq)
            self.apply_pass(hall_id, result)

    def apply_pass(self, hall_id: str, result: DesiredPass) -> None:
        """A full pass's states: each device whose pushed state is not newer (``_apply``)."""
        self._apply(hall_id, result.states, result.point)

    def pushed(self, bus: str, address: int) -> Desired | None:
        """The state last handed to the device's bridge."""
        return self._pushed.get((bus, address))

    def apply_render(self, render: CounterRender) -> None:
        """A device event's counter rendered from its own transaction, just committed: its
        strip and caller get their commands now, ahead of the pass that follows."""
        self.fast_renders += 1
        self._apply(render.hall_id, render.states, render.point)

    def _apply(
        self, hall_id: str, states: dict[tuple[str, int], Desired], point: ReadPoint
    ) -> None:
        for key, state in states.items():
            if not point.newer_than(self._points.get(key)):
                # A pass whose read began before a key's commit (the next pass sees it), or a
                # key's render that a pass or a later key already superseded.
                continue
            self._points[key] = point
            pushed = self._pushed.get(key)
            if pushed is state or pushed == state:
                continue
            self._pushed[key] = state
            self._push(hall_id, key[0], key[1], state)

    def settled(self, hall_id: str) -> bool:
        """No desired-state pass of the hall is under way or due (nor a device event's
        release, which may call for one)."""
        dirty = self._dirty.get(hall_id)
        return (
            hall_id not in self._reading
            and (dirty is None or not dirty.is_set())
            and not self.service.releasing
        )

    def _push(self, hall_id: str, bus: str, address: int, state: Desired) -> None:
        self.pushes += 1
        if self.bridge is not None:
            self.bridge.apply_desired(bus, address, state.commands, state.generation)
        # Built only for a hall with an edge bridge: with the in-process bridge alone, a key's
        # render pushes its strip and caller (and the bridge answers) without it.
        message = None
        for session in self.sessions:
            if session.hall_id == hall_id:
                message = message or _desired_message(bus, address, state)
                session.send(message)

    def send_all(self, session: _RemoteSession) -> None:
        """A (re)connected bridge gets the whole desired state of its hall."""
        for (bus, address), state in self._pushed.items():
            if self.service.wiring.buses.get(bus) is not None and (
                self.service.wiring.hall_of_bus(bus) == session.hall_id
            ):
                session.send(_desired_message(bus, address, state))

    async def set_address(self, hall_id: str, bus: str, uid: bytes, address: int) -> None:
        if self.service.wiring.hall_of_bus(bus) != hall_id:
            raise NotFound(f"总线 {bus} 不属于大厅 {hall_id}", bus=bus)
        if self.bridge is not None and bus in self.bridge.bus_specs:
            await self.bridge.set_address(bus, uid, address)
            return
        sessions = [s for s in self.sessions if s.hall_id == hall_id]
        if not sessions:
            raise Unavailable("设备网关未连接")
        for s in sessions:
            s.send({"type": "set_address", "bus": bus, "uid": uid.hex(), "address": address})

    # --- one-off commands ---------------------------------------------------------------------

    async def command(
        self, bus: str, address: int, request: Request, timeout_s: float = COMMAND_TIMEOUT_S
    ) -> Reply:
        """Send ``request`` to configured device (bus, address), outside its desired state, and
        return its reply: through the in-process bridge, or an edge bridge of the bus's hall.
        ``Unavailable`` when no bridge runs the bus, the device is offline or does not answer,
        or answers with an error; ``NotFound`` for a device the config does not have."""
        if (bus, address) not in self.service.wiring.devices:
            raise NotFound(f"总线 {bus} 上没有配置地址 {address} 的设备", bus=bus)
        try:
            async with asyncio.timeout(timeout_s):
                if self.bridge is not None and bus in self.bridge.bus_specs:
                    return await self.bridge.command(bus, address, request)
                return await self._remote_command(bus, address, request)
        except BridgeError as exc:
            raise Unavailable(f"设备 {bus}/{address} 未执行命令：{exc}") from None
        except TimeoutError:
            raise Unavailable(f"设备 {bus}/{address} 在 {timeout_s:g} 秒内未应答") from None

    def reaches(self, bus: str) -> bool:
        """Whether this process can send commands on ``bus`` now (it runs the bus's bridge, or
        an edge bridge of the bus's hall is connected to it)."""
        if self.bridge is not None and bus in self.bridge.bus_specs:
            return True
        return self._edge_session(bus) is not None

    def _edge_session(self, bus: str) -> _RemoteSession | None:
        """A connected edge bridge of the hall whose bus ``bus`` is, if any: one whose reports
        name the bus, else (none has reported it yet) any of the hall's."""
        if self._service is None or bus not in self.service.wiring.buses:
            return None
        hall_id = self.service.wiring.hall_of_bus(bus)
        of_hall = [s for s in self.sessions if s.hall_id == hall_id and not s.closed]
        return next((s for s in of_hall if bus in s.buses), of_hall[0] if of_hall else None)

    def watch(
        self, bus: str, address: int
    ) -> contextlib.AbstractContextManager[asyncio.Queue[Event]]:
        """The device's events as they are stored (``DeviceService.watch``)."""
        return self.service.watch(bus, address)

    async def _remote_command(self, bus: str, address: int, request: Request) -> Reply:
        session = self._edge_session(bus)
        if session is None:
            raise Unavailable("设备网关未连接")
        self._command_ids += 1
        command_id = self._command_ids
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[command_id] = (session, answer)
        try:
            session.send(
                {
                    "type": "command",
                    "id": command_id,
                    "bus": bus,
                    "address": address,
                    "command": requests_to_json([request])[0],
                }
            )
            data = await answer
        except _Disconnected as exc:
            raise Unavailable(
                f"设备 {bus}/{address} 未执行命令：设备网关 {exc} 的连接已断开"
            ) from None
        finally:
            self._replies.pop(command_id, None)
        if "reply" not in data:
            raise Unavailable(f"设备 {bus}/{address} 未执行命令：{str(data.get('error'))[:200]}")
        try:
            return decode_reply(request.CMD, bytes.fromhex(str(data["reply"])))
        except (DecodeError, ValueError):
            raise Unavailable(f"设备 {bus}/{address} 的应答无法解析") from None

    def replied(self, session: _RemoteSession, data: dict[str, Any]) -> None:
        """An edge bridge's ``reply`` to a command. Only the session the command was sent to
        can answer it; a reply from any other (another bridge, or an earlier connection of the
        same one) is logged and dropped."""
        command_id = int(data["id"])
        pending = self._replies.get(command_id)
        if pending is None:
            log.info(
                "reply to command %d from %s: no such command waits", command_id, session.device_id
            )
            return
        target, answer = pending
        if target is not session:
            log.warning(
                "reply to command %d from %s (hall %s) ignored: it was sent to %s (hall %s)",
                command_id,
                session.device_id,
                session.hall_id,
                target.device_id,
                target.hall_id,
            )
            return
        if not answer.done():
            answer.set_result(data)

    def session_closed(self, session: _RemoteSession) -> None:
        """An edge bridge's connection ended: the commands it had not answered fail now."""
        session.closed = True
        self.sessions.discard(session)
        for target, answer in list(self._replies.values()):
            if target is session and not answer.done():
                answer.set_exception(_Disconnected(session.device_id))

    # --- hall_events, on the process's LISTEN connection (hall.storage.notify) ------------

    def _connected(self) -> None:
        """The LISTEN connection is (again) up: catch up on changes missed while it was not."""
        self._listening = True
        self._listen_epoch += 1
        for hall_id in {b.hall for b in self.service.wiring.buses.values()}:
            self.mark(hall_id)

    def _lost(self) -> None:
        """The LISTEN connection is down: notices are lost until it is back (``_connected``
        recomputes every hall then), so no pass's read can vouch for the notices after it."""
        self._listening = False
        self._listen_epoch += 1
        self._seen.forget()

    def _on_notify(self, payload: str) -> None:
        # A writer's commit outside a server pool: recompute. A sequencer numbered events:
        # recompute unless the latest pass saw them all, which it did for this process's own
        # writes (their commit notices marked the hub before the sequencer ran) unless other
        # processes' events came with them (hall.storage.sequencer.Seen).
        notice = sequenced(payload)
        if notice is None:
            hall_id = writer_hall(payload)
            if hall_id is not None:
                self.mark(hall_id)
            return
        hall_id, seq = notice
        held = self._reading.get(hall_id)
        if held is not None:
            held.append(seq)
        else:
            self._sequenced(hall_id, seq)

    def _sequenced(self, hall_id: str, seq: int) -> None:
        if not self._seen.notice(hall_id, seq):
            self.mark(hall_id)


def _desired_message(bus: str, address: int, state: Desired) -> dict[str, Any]:
    return {
        "type": "desired",
        "bus": bus,
        "address": address,
        "commands": requests_to_json(state.commands),
        "generation": state.generation,
    }


BRIDGE = web.AppKey("bridge_hub", BridgeHub)


# --- HTTP -----------------------------------------------------------------------------------


class SetAddressBody(BaseModel):
    bus: str = Field(min_length=1, max_length=32)
    uid: str = Field(pattern=r"^[0-9A-Fa-f]{16}$")
    address: int = Field(ge=1, le=0xF0)


def _iso(value: Any) -> str | None:
    return None if value is None else str(value.isoformat())


async def list_devices(request: web.Request) -> web.Response:
    hub = request.app[BRIDGE]
    hall_id = request.match_info["hall"]
    registry = await hub.service.registry(hall_id)
    buses = {b.name for b in hub.service.wiring.buses_of_hall(hall_id)}
    body = {
        "devices": [
            {
                "bus": d.bus,
                "address": d.address,
                "class": d.device_class,
                "uid": d.uid,
                "firmware": d.firmware,
                "boot_id": d.boot_id,
                "counter": d.counter_number,
                "kiosk": d.kiosk,
                "screen": d.screen,
                "state": d.state,
                "state_since": _iso(d.state_since),
                "last_seen": _iso(d.last_seen),
            }
            for d in registry.devices
        ],
        "alarms": [
            {
                "id": a.id,
                "bus": a.bus,
                "address": a.address,
                "uid": a.uid,
                "kind": a.kind,
                "detail": a.detail,
                "at": _iso(a.at),
            }
            for a in registry.alarms
        ],
        "buses": {name: stats for name, stats in hub.bus_stats.items() if name in buses},
    }
    return web.json_response(body, dumps=lambda v: json.dumps(v, ensure_ascii=False))


async def set_address(request: web.Request) -> web.Response:
    from hall.web.api import parse_body

    body = await parse_body(request, SetAddressBody)
    await request.app[BRIDGE].set_address(
        request.match_info["hall"], body.bus, bytes.fromhex(body.uid), body.address
    )
    return web.json_response({"sent": True}, status=202)


async def bridge_socket(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/bridge: an edge bridge's link (JSON messages, see docs/hardware.md)."""
    principal = principal_of(request)
    if principal.kind != "bridge" or not principal.halls:
        raise Forbidden("需要设备网关（bridge）令牌")
    hub = request.app[BRIDGE]
    hall_id = principal.halls[0]
    ws = web.WebSocketResponse(max_msg_size=MAX_BRIDGE_MESSAGE, heartbeat=10.0)
    await ws.prepare(request)
    session = _RemoteSession(hall_id, ws, principal.device_id or "bridge")
    writer = asyncio.create_task(session.writer(), name=f"bridge-writer-{hall_id}")
    hub.sessions.add(session)
    try:
        async for msg in ws:
            if msg.type is WSMsgType.ERROR:
                break  # aiohttp closes it (1009 for a message over the size limit)
            if msg.type is not WSMsgType.TEXT:
                await ws.close(code=4400, message=b"bad message")
                break
            try:
                data = load_json(msg.data)
                kind = data["type"]
            except (InvalidInput, KeyError, TypeError):
                await ws.close(code=4400, message=b"bad message")
                break
            try:
                await _on_message(hub, session, kind, data)
            except (KeyError, TypeError, ValueError, AttributeError):
                # A message of the right type with the wrong shape: a protocol error too.
                await ws.close(code=4400, message=b"bad message")
                break
    finally:
        hub.session_closed(session)
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
    return ws


async def _on_message(
    hub: BridgeHub, session: _RemoteSession, kind: str, data: dict[str, Any]
) -> None:
    wiring = hub.service.wiring
    if kind == "hello":
        session.send({"type": "welcome", "hall": session.hall_id})
        hub.send_all(session)
        return
    if kind == "reply":
        hub.replied(session, data)
        return
    if kind == "report":
        report = Report.from_json(data["report"])

        def own(bus: str) -> bool:
            return wiring.buses.get(bus) is not None and wiring.hall_of_bus(bus) == session.hall_id

        buses = {name: stats for name, stats in report.buses.items() if own(name)}
        session.buses = frozenset(buses)
        hub.on_report(Report(tuple(d for d in report.devices if own(d.bus)), buses))
        return
    item_id = data.get("id")
    try:
        if kind == "event":
            event = _parse_item(UpEvent.from_json, data, "event")
            _check_bus(hub, session, event.bus)
            age = data.get("age_s", 0.0)
            result = await hub.service.handle_event(
                event, float(age) if isinstance(age, int | float) else 0.0
            )
            session.send(
                {"type": "ack", "id": item_id, "outcome": result.outcome, "beep": result.beep}
            )
        elif kind == "alarm":
            alarm = _parse_item(AlarmReport.from_json, data, "alarm")
            if alarm.kind in BRIDGE_ALARMS:
                # About the bridge, not a device: filed under the bridge's own id.
                alarm = dataclasses.replace(alarm, bus=session.device_id, address=0, uid=None)
                await hub.service.record_alarm(alarm, session.hall_id)
            elif alarm.kind in DEVICE_ALARMS:
                _check_bus(hub, session, alarm.bus)
                await hub.service.record_alarm(alarm)
            else:
                raise InvalidInput(f"未知的告警类型 {alarm.kind[:40]}")
            session.send({"type": "ack", "id": item_id, "outcome": "applied"})
    except (InvalidInput, NotFound, Forbidden) as exc:
        # Nothing will ever make it acceptable: acknowledge so the edge queue moves on.
        log.warning("bridge item %s of %s refused: %s", item_id, session.hall_id, exc)
        session.send({"type": "ack", "id": item_id, "outcome": f"refused:{exc.code}"})
    except Exception:
        log.exception("bridge item %s of %s failed", item_id, session.hall_id)
        session.send({"type": "nack", "id": item_id})


def _parse_item(parse: Callable[[dict[str, Any]], T], data: dict[str, Any], key: str) -> T:
    """An event or alarm of the link; a malformed one is refused (acknowledged), not retried."""
    try:
        return parse(data[key])
    except (KeyError, TypeError, ValueError, AttributeError):
        raise InvalidInput(f"设备网关消息 {key} 格式错误") from None


def _check_bus(hub: BridgeHub, session: _RemoteSession, bus: str) -> None:
    if hub.service.wiring.hall_of_bus(bus) != session.hall_id:
        raise Forbidden(f"总线 {bus} 不属于本网关的大厅")


ROUTES = [
    Route(
        "GET",
        "/api/v1/bridge",
        bridge_socket,
        "bridge",
        "设备网关链路（WebSocket）：设备事件上行，设备期望状态下行",
        Access.DEVICE,
        tags=("devices",),
        in_openapi=False,
    ),
    Route(
        "GET",
        "/api/v1/halls/{hall}/devices",
        list_devices,
        "devices",
        "串口设备登记：状态、最后在线、固件、告警与总线计数",
        Access.MANAGER,
        tags=("devices",),
    ),
    Route(
        "POST",
        "/api/v1/halls/{hall}/devices/set-address",
        set_address,
        "device_set_address",
        "按 UID 设置设备地址（SET_ADDRESS 广播）",
        Access.ADMIN,
        body=SetAddressBody,
        tags=("devices",),
    ),
]


def setup_bridge(app: web.Application, settings: BridgeSettings | None = None) -> None:
    """Add the bridge websocket, the device API and the hub's lifecycle to the app."""
    hub = BridgeHub(app, settings or BridgeSettings())
    app[BRIDGE] = hub

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await hub.start()
        try:
            yield
        finally:
            await hub.stop()

    app.cleanup_ctx.append(lifecycle)
    register(app, ROUTES)
