"""The bridge process core: one bus master per serial bus, a device registry, and a link to
the hall server. Knows nothing of tickets: events go up as HB/1 events, desired device state
comes down as HB/1 requests.

The :class:`Upstream` link decides what "delivered" means. In-process
(:class:`InMemoryLink`) an event is delivered when the server's handler has committed it; over
a network (``firmware_bridge.wslink``) when it is committed by the server or, while the server
is unreachable, stored in a local durable queue. Either way the master acknowledges the event
to the device only after ``deliver`` returns, so nothing accepted is lost.

Wiring (in-process)::

    bridge = Bridge(buses, devices)
    bridge.connect(InMemoryLink(handler))
    await bridge.start()
    bridge.apply_desired("bus1", 3, [ShowTextRequest(text="请A001号到3号窗口")])
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from firmware_bridge.constants import DeviceClass
from firmware_bridge.errors import BridgeError
from firmware_bridge.master import Alarm, AlarmKind, BusMaster, DeviceEvent, Priority
from firmware_bridge.messages import (
    IndicateRequest,
    Reply,
    Request,
    SetAddressRequest,
    decode_request,
)
from firmware_bridge.transport import Backoff, LinkDownError, SerialLink, SerialOptions

_LOGGER = logging.getLogger(__name__)

# How often the registry (health, last seen, counters) is reported upstream.
REPORT_INTERVAL_S = 2.0
# The error beep a refused key press gets (INDICATE: beep + fast LED blink for 0.5 s).
ERROR_BEEP = IndicateRequest(IndicateRequest.BEEP | IndicateRequest.LED_BLINK_200, 5)


# What each kind of device is for decides how urgent its desired-state updates are.
_DESIRED_PRIORITY: dict[DeviceClass, Priority] = {
    DeviceClass.STRIP: Priority.CALL,  # the citizen watches the window strip for the call
    # The clerk's keypad display answers a key press; it follows the strip's call, which the
    # citizen waits for (one device, one priority: its own commands stay in order).
    DeviceClass.CALLER: Priority.KEYPAD,
    DeviceClass.KIOSK: Priority.CALL,
    DeviceClass.PAD: Priority.RATING,
    DeviceClass.SCREEN: Priority.DISPLAY,
}


# --- configuration --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BusSpec:
    """One serial bus: a tty path or a ``socket://`` / ``rfc2217://`` URL.

    The timing fields are the config's ``[buses.options]`` (None: the spec's value, see
    :class:`~firmware_bridge.master.BusMaster`); ``timezone`` is the hall's IANA zone, whose
    offset SET_TIME carries (None: this machine's zone).
    """

    name: str
    url: str
    baud: int = 9600
    poll_interactive_s: float | None = None
    poll_display_s: float | None = None
    reply_timeout_s: float | None = None
    offline_after_failures: int | None = None
    offline_probe_s: float | None = None
    timezone: str | None = None

    def clock(self) -> Callable[[], tuple[int, int]] | None:
        """(unix seconds, minutes east of UTC) in the bus's time zone, for SET_TIME."""
        if self.timezone is None:
            return None
        zone = ZoneInfo(self.timezone)

        def now() -> tuple[int, int]:
            at = datetime.now(zone)
            offset = at.utcoffset()
            return int(at.timestamp()), int(offset.total_seconds() // 60) if offset else 0

        return now


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """One HB/1 device the bridge polls; ``uid`` (from the label) is checked against INFO."""

    bus: str
    address: int
    device_class: DeviceClass
    uid: bytes | None = None


# --- what crosses the link --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UpEvent:
    """A device event on its way to the server; (uid, boot_id, evt_seq) is its key (§8.3)."""

    bus: str
    address: int
    device_class: int
    uid: str  # 16 hex digits
    boot_id: int
    evt_seq: int
    evt_type: int
    data: bytes
    at: float  # unix time the bridge received it

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["data"] = self.data.hex()
        return body

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> UpEvent:
        return cls(
            bus=str(body["bus"]),
            address=int(body["address"]),
            device_class=int(body["device_class"]),
            uid=str(body["uid"]),
            boot_id=int(body["boot_id"]),
            evt_seq=int(body["evt_seq"]),
            evt_type=int(body["evt_type"]),
            data=bytes.fromhex(str(body["data"])),
            at=float(body["at"]),
        )

    @classmethod
    def from_device_event(cls, ev: DeviceEvent) -> UpEvent:
        return cls(
            bus=ev.bus,
            address=ev.addr,
            device_class=int(ev.device_class),
            uid=ev.uid.hex(),
            boot_id=ev.boot_id,
            evt_seq=ev.evt_seq,
            evt_type=int(ev.event.evt_type),
            data=ev.event.encode(),
            at=time.time(),
        )


@dataclass(frozen=True, slots=True)
class EventResult:
    """The server's answer to one event: ``outcome`` is stored with its key."""

    outcome: str  # applied, duplicate, rejected:<code>, ignored, queued
    beep: bool = False  # refuse audibly on the device (e.g. 叫号 with an empty queue)


@dataclass(frozen=True, slots=True)
class AlarmReport:
    bus: str
    address: int
    kind: str  # AlarmKind value
    detail: str
    uid: str | None
    at: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> AlarmReport:
        uid = body.get("uid")
        return cls(
            str(body["bus"]),
            int(body["address"]),
            str(body["kind"]),
            str(body.get("detail", "")),
            None if uid is None else str(uid),
            float(body["at"]),
        )


@dataclass(frozen=True, slots=True)
class DeviceReport:
    """Registry entry of one device as the bridge sees it."""

    bus: str
    address: int
    device_class: int
    uid: str | None
    firmware: str | None
    boot_id: int | None
    health: str  # unknown / online / suspect / offline
    last_seen: float | None  # unix time of the last answered poll

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> DeviceReport:
        def opt_int(key: str) -> int | None:
            value = body.get(key)
            return None if value is None else int(value)

        def opt_str(key: str) -> str | None:
            value = body.get(key)
            return None if value is None else str(value)

        seen = body.get("last_seen")
        return cls(
            bus=str(body["bus"]),
            address=int(body["address"]),
            device_class=int(body["device_class"]),
            uid=opt_str("uid"),
            firmware=opt_str("firmware"),
            boot_id=opt_int("boot_id"),
            health=str(body["health"]),
            last_seen=None if seen is None else float(seen),
        )


@dataclass(frozen=True, slots=True)
class Report:
    devices: tuple[DeviceReport, ...]
    buses: dict[str, dict[str, float | int | None]]

    def to_json(self) -> dict[str, Any]:
        return {"devices": [d.to_json() for d in self.devices], "buses": self.buses}

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Report:
        return cls(
            tuple(DeviceReport.from_json(d) for d in body.get("devices", [])),
            dict(body.get("buses", {})),
        )


def requests_to_json(commands: Sequence[Request]) -> list[list[Any]]:
    """Desired-state commands as [cmd, payload hex] pairs (GBK text, HB/1 layout)."""
    return [[int(c.CMD), c.encode().hex()] for c in commands]


def requests_from_json(items: Sequence[Sequence[Any]]) -> tuple[Request, ...]:
    return tuple(decode_request(int(cmd), bytes.fromhex(str(hexed))) for cmd, hexed in items)


class Upstream(Protocol):
    """The bridge's side of a link to the hall server."""

    async def deliver(self, event: UpEvent) -> EventResult:
        """Return once the event is safe (committed, or durably queued); raise if not."""
        ...

    async def alarm(self, alarm: AlarmReport) -> None:
        """Hand over an alarm (durably where the link can)."""
        ...

    def report(self, report: Report) -> None:
        """Best-effort registry snapshot; never blocks."""
        ...


EventHandler = Callable[[UpEvent], Awaitable[EventResult]]
AlarmHandler = Callable[[AlarmReport], Awaitable[None]]
ReportHandler = Callable[[Report], None]


class InMemoryLink:
    """The bridge inside the server: events go straight to the server's handler."""

    def __init__(
        self,
        on_event: EventHandler,
        on_alarm: AlarmHandler,
        on_report: ReportHandler | None = None,
    ) -> None:
        self._on_event = on_event
        self._on_alarm = on_alarm
        self._on_report = on_report

    async def deliver(self, event: UpEvent) -> EventResult:
        return await self._on_event(event)

    async def alarm(self, alarm: AlarmReport) -> None:
        await self._on_alarm(alarm)

    def report(self, report: Report) -> None:
        if self._on_report is not None:
            self._on_report(report)


# --- the bridge -------------------------------------------------------------------------------


@dataclass
class _Bus:
    spec: BusSpec
    master: BusMaster
    serial: SerialLink
    dropped_bytes: int = 0  # written while the port was gone


@dataclass
class _Seen:
    polls: int = 0
    last_seen: float | None = None


@dataclass
class BridgeStats:
    events: int = 0
    event_failures: int = 0
    alarms: int = 0
    desired_updates: int = 0
    commands_sent: int = 0
    command_failures: int = 0
    beeps: int = 0
    started_at: float = field(default_factory=time.monotonic)


class Bridge:
    """Runs one :class:`BusMaster` per bus and connects them to an :class:`Upstream` link."""

    def __init__(
        self,
        buses: Sequence[BusSpec],
        devices: Sequence[DeviceSpec],
        *,
        backoff: Backoff | None = None,
        report_interval_s: float = REPORT_INTERVAL_S,
    ) -> None:
        names = [b.name for b in buses]
        if len(set(names)) != len(names):
            raise BridgeError("duplicate bus name")
        self.bus_specs = {b.name: b for b in buses}
        self.device_specs = list(devices)
        self.stats = BridgeStats()
        self._backoff = backoff or Backoff(initial_s=0.1, max_s=5.0)
        self._report_interval_s = report_interval_s
        self._link: Upstream | None = None
        self._buses: dict[str, _Bus] = {}
        self._desired: dict[tuple[str, int], tuple[Request, ...]] = {}
        self._generations: dict[tuple[str, int], int] = {}
        self._seen: dict[tuple[str, int], _Seen] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._reporter: asyncio.Task[None] | None = None
        self._started = False

    def connect(self, link: Upstream) -> None:
        """Use ``link`` for everything that goes up."""
        self._link = link

    @property
    def link(self) -> Upstream:
        if self._link is None:
            raise BridgeError("bridge has no upstream link")
        return self._link

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        for spec in self.bus_specs.values():
            self._buses[spec.name] = self._open_bus(spec)
        for dev in self.device_specs:
            bus = self._buses.get(dev.bus)
            if bus is None:
                raise BridgeError(f"device 0x{dev.address:02X} on unknown bus {dev.bus!r}")
            interval = (
                bus.spec.poll_interactive_s
                if dev.device_class.interactive
                else bus.spec.poll_display_s
            )
            bus.master.add_device(
                dev.address, dev.device_class, uid=dev.uid, poll_interval=interval
            )
            self._seen[(dev.bus, dev.address)] = _Seen()
            desired = self._desired.get((dev.bus, dev.address))
            if desired is not None:
                bus.master.set_desired_state(dev.address, desired)
        for bus in self._buses.values():
            bus.serial.start()
            bus.master.start()
        self._reporter = asyncio.get_running_loop().create_task(
            self._report_loop(), name="bridge-report"
        )

    async def stop(self) -> None:
        if self._reporter is not None:
            self._reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reporter
            self._reporter = None
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for bus in self._buses.values():
            await bus.master.stop()
            await bus.serial.close()
        self._buses.clear()

    async def __aenter__(self) -> Bridge:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _open_bus(self, spec: BusSpec) -> _Bus:
        master = BusMaster(
            name=spec.name,
            baud=spec.baud,
            on_event=self._on_event,
            on_alarm=self._on_alarm,
            offline_after_failures=spec.offline_after_failures,
            offline_probe_s=spec.offline_probe_s,
            reply_timeout_s=spec.reply_timeout_s,
            clock=spec.clock(),
        )
        serial = SerialLink(
            spec.url,
            master.link.data_received,
            options=SerialOptions(baudrate=spec.baud),
            backoff=self._backoff,
            name=f"bus {spec.name}",
        )
        bus = _Bus(spec, master, serial)

        def write(data: bytes) -> None:
            # A vanished port behaves like a cut cable: requests go nowhere, the devices stop
            # answering and go offline after three failed transactions (§8.4), which raises
            # the alarm the manager needs. The master would otherwise pause without verdict.
            try:
                serial.write(data)
            except LinkDownError:
                bus.dropped_bytes += len(data)

        master.link.attach(write)
        return bus

    # -- upward ----------------------------------------------------------------------------------

    async def _on_event(self, ev: DeviceEvent) -> None:
        """Master callback: returns only when the event is safe upstream (then it is acked)."""
        up = UpEvent.from_device_event(ev)
        try:
            result = await self.link.deliver(up)
        except Exception:
            self.stats.event_failures += 1
            raise
        self.stats.events += 1
        if result.beep:
            self.stats.beeps += 1
            self._spawn(self._beep(ev.bus, ev.addr))

    def _on_alarm(self, alarm: Alarm) -> None:
        bus = self._buses.get(alarm.bus)
        uid: str | None = None
        if bus is not None:
            with contextlib.suppress(KeyError):
                raw = bus.master.device(alarm.addr).uid
                uid = raw.hex() if raw is not None else None
        report = AlarmReport(
            alarm.bus, alarm.addr, alarm.kind.value, alarm.detail, uid, time.time()
        )
        self.stats.alarms += 1
        self._spawn(self._send_alarm(report))
        if alarm.kind in (AlarmKind.OFFLINE, AlarmKind.ONLINE, AlarmKind.REBOOTED):
            self._report_now()

    async def _send_alarm(self, report: AlarmReport) -> None:
        try:
            await self.link.alarm(report)
        except Exception:
            _LOGGER.exception("alarm not delivered: %r", report)

    def _report_now(self) -> None:
        try:
            self.link.report(self.report())
        except Exception:
            _LOGGER.exception("report failed")

    async def _report_loop(self) -> None:
        while True:
            self._report_now()
            await asyncio.sleep(self._report_interval_s)

    def report(self) -> Report:
        """Registry and bus counters now."""
        now = time.time()
        devices = []
        for name, bus in self._buses.items():
            for status in bus.master.devices():
                seen = self._seen.setdefault((name, status.addr), _Seen())
                if status.polls != seen.polls:
                    seen.polls = status.polls
                    seen.last_seen = now
                info = status.info
                devices.append(
                    DeviceReport(
                        bus=name,
                        address=status.addr,
                        device_class=int(status.device_class),
                        uid=status.uid.hex() if status.uid is not None else None,
                        firmware=".".join(map(str, info.fw)) if info is not None else None,
                        boot_id=status.boot_id,
                        health=status.health.value,
                        last_seen=seen.last_seen,
                    )
                )
        return Report(tuple(devices), self.bus_stats())

    def bus_stats(self) -> dict[str, dict[str, float | int | None]]:
        loop_now = asyncio.get_running_loop().time()
        out: dict[str, dict[str, float | int | None]] = {}
        for name, bus in self._buses.items():
            s = bus.master.stats
            counters = bus.master.link.counters
            out[name] = {
                "bad_frames": s.bad_frames,
                "bad_replies": s.bad_replies,
                "late_replies": s.late_replies,
                "timeouts": s.timeouts,
                "retries": s.retries,
                "failed_transactions": s.failed_transactions,
                "transactions": s.transactions,
                "polls": s.polls,
                "events": s.events,
                "duplicate_events": s.duplicate_events,
                "resyncs": s.resyncs,
                "utilisation": s.utilisation(loop_now),
                "poll_cycle_s": s.poll_cycle_s,
                "poll_cycle_max_s": s.poll_cycle_max_s,
                "bytes_in": counters.bytes_in,
                "bytes_out": counters.bytes_out,
                "dropped_bytes": bus.dropped_bytes,
                "connected": int(bus.serial.connected),
            }
        return out

    # -- downward --------------------------------------------------------------------------------

    def apply_desired(
        self, bus: str, address: int, commands: Sequence[Request], generation: int = 0
    ) -> int:
        """Make ``commands`` the device's desired state and send what changed; returns how many.

        Commands already sent (equal to one of the previous desired state) are not repeated,
        unless ``generation`` differs from the previous one: then all are sent again (a recall
        shows the same text, but the device must flash it again);
        the master re-sends the whole state after a reboot, a return from offline or
        host-lost. Unknown devices are ignored (the server may know more buses than we run).
        """
        key = (bus, address)
        new = tuple(commands)
        old = self._desired.get(key, ())
        if self._generations.get(key, 0) != generation:
            old = ()
        self._generations[key] = generation
        self._desired[key] = new
        self.stats.desired_updates += 1
        b = self._buses.get(bus)
        device_class = b.master.device_class(address) if b is not None else None
        if b is None or device_class is None:
            return 0
        b.master.set_desired_state(address, new)
        changed = [c for c in new if c not in old]
        # One priority per device, FIFO: commands of successive updates must reach a device in
        # the order they were decided (a CLEAR queued at a lower priority before a newer
        # SHOW_TEXT would otherwise run after it and win). The priority follows what the
        # device is for, so a call on a strip never waits behind hall-screen refreshes or
        # other devices' resyncs. Resyncs need no care here: the master reads the desired state
        # when a resync runs and holds other commands to the device while it runs. The jobs
        # are queued before this returns, in the order given: a call decided in a KEY
        # callback is on the master's queue before the callback ends, ahead of whatever
        # other work the key's commit woke.
        priority = _DESIRED_PRIORITY.get(device_class, Priority.NORMAL)
        for msg in changed:
            try:
                sent = b.master.queue_desired(address, msg, priority=priority)
            except BridgeError as exc:
                self._not_sent(bus, address, msg, exc)
                continue
            sent.add_done_callback(functools.partial(self._desired_done, bus, address, msg))
        return len(changed)

    def _desired_done(
        self, bus: str, address: int, msg: Request, sent: asyncio.Future[Reply | None]
    ) -> None:
        if sent.cancelled():
            return
        exc = sent.exception()
        if exc is None:
            if sent.result() is not None:  # None: a newer state replaced it, dropped unsent
                self.stats.commands_sent += 1
        elif isinstance(exc, BridgeError):
            self._not_sent(bus, address, msg, exc)
        else:
            _LOGGER.error("%s 0x%02X %s failed", bus, address, msg.CMD.name, exc_info=exc)

    def _not_sent(self, bus: str, address: int, msg: Request, exc: BridgeError) -> None:
        # Offline or timed out: the desired state is re-sent when the device returns.
        self.stats.command_failures += 1
        _LOGGER.info("%s 0x%02X %s not sent: %s", bus, address, msg.CMD.name, exc)

    def desired(self, bus: str, address: int) -> tuple[Request, ...]:
        return self._desired.get((bus, address), ())

    async def set_address(self, bus: str, uid: bytes, new_address: int) -> None:
        """SET_ADDRESS by UID, broadcast with NOACK (§10.1)."""
        b = self._buses.get(bus)
        if b is None:
            raise BridgeError(f"unknown bus {bus!r}")
        await b.master.broadcast(SetAddressRequest(uid, new_address))

    async def command(self, bus: str, address: int, msg: Request) -> Reply:
        """One request to one device, outside its desired state; its typed reply.

        For a use that is not state (e.g. bytes for a device's local port): the caller waits
        for the transaction. ``BridgeError`` when the bus or device is unknown, the device is
        offline, does not answer, answers with an error status, or cannot take the payload.
        """
        b = self._buses.get(bus)
        if b is None:
            raise BridgeError(f"unknown bus {bus!r}")
        reply = await b.master.request(address, msg, priority=Priority.NORMAL)
        self.stats.commands_sent += 1
        return reply

    def master(self, bus: str) -> BusMaster:
        return self._buses[bus].master

    def serial(self, bus: str) -> SerialLink:
        return self._buses[bus].serial

    async def _beep(self, bus: str, address: int) -> None:
        """The error beep of a refused key: not desired state, it always goes out."""
        b = self._buses.get(bus)
        if b is None:
            return
        try:
            await b.master.request(address, ERROR_BEEP, priority=Priority.KEYPAD, check=False)
            self.stats.commands_sent += 1
        except BridgeError as exc:
            self._not_sent(bus, address, ERROR_BEEP, exc)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
