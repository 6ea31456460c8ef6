"""Device use cases: device events in (exactly once), desired device state out, registry.

Every device event runs in one unit of work: its key (uid, boot_id, evt_seq) is inserted under
a unique constraint, then its effect (a counter action, a ticket, a rating) is applied in the
same transaction, then it commits. Only after the commit does the bridge hear "ok" and
acknowledge the event to the device (docs/protocol.md §8.3). A key already stored is a duplicate: no
effect, but still "ok". A refused effect (叫号 with an empty queue) rolls its transaction back,
key included; the key is then stored with the refusal in one statement of its own, so a
re-delivery does not try it again later (refusals are rare; this keeps the common path at
BEGIN, the key, the effect's statements, COMMIT: a caller's key locks and reads its counter
in the key's statement, and the counter actions and the render after the commit decide on
that and on what their own writes left, docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from firmware_bridge.bridge import AlarmReport, EventResult, Report, UpEvent
from firmware_bridge.constants import DeviceClass as WireClass
from firmware_bridge.constants import EventType as WireEvent
from firmware_bridge.errors import DecodeError
from firmware_bridge.messages import (
    Event,
    FaultEvent,
    KeyEvent,
    LoginEvent,
    LogoutEvent,
    Request,
    decode_event,
)
from hall.config.models import Bus, Device, DeviceClass, HallConfig
from hall.domain.errors import HallError, NotFound
from hall.domain.tickets import CounterStatus
from hall.ports import Clock
from hall.services.device_roles import (
    DeviceContext,
    DeviceEvent,
    DeviceRole,
    RecentCall,
    Scene,
    roles_by_class,
)
from hall.services.directory import Directory
from hall.services.queue import QueueService
from hall.storage import devices_repo
from hall.storage.commit_notices import will_tell
from hall.storage.db import CONNECTION_ERRORS
from hall.storage.devices_repo import AlarmRow, DeviceRow
from hall.storage.sequencer import LogPosition
from hall.storage.uow import UnitOfWork, acquire, run_in_transaction

log = logging.getLogger(__name__)

# Alarms the master raises that the registry check raises itself, once and across restarts.
_REGISTRY_ALARMS = frozenset({"uid_changed", "duplicate_uid"})
# A key press that waited longer than this in an edge bridge's outbox (server unreachable) is
# stored but has no effect: a 叫号 or a ticket minutes late would confuse the hall (HB/1 §8.4
# makes callers refuse keys while host-lost for the same reason).
KEY_MAX_AGE_S = 30.0
# Events a watcher (DeviceService.watch) may leave unread before newer ones are dropped.
WATCH_QUEUE = 256
# Calls read for hall screens (before filtering by the screen's counters).
RECENT_CALLS = 50

_CLASS_OF_WIRE = {
    WireClass.STRIP: DeviceClass.STRIP,
    WireClass.SCREEN: DeviceClass.SCREEN,
    WireClass.PAD: DeviceClass.PAD,
    WireClass.CALLER: DeviceClass.CALLER,
    WireClass.KIOSK: DeviceClass.KIOSK,
}
WIRE_CLASS = {v: k for k, v in _CLASS_OF_WIRE.items()}
_KNOWN_EVENTS = frozenset(int(e) for e in WireEvent)


@dataclass(frozen=True)
class Wiring:
    """Buses and devices of the config, by name and by (bus, address)."""

    buses: dict[str, Bus]
    devices: dict[tuple[str, int], Device]

    @classmethod
    def from_config(cls, config: HallConfig) -> Wiring:
        return cls(
            {b.name: b for b in config.buses},
            {(d.bus, d.address): d for d in config.devices},
        )

    def hall_of_bus(self, bus: str) -> str:
        found = self.buses.get(bus)
        if found is None:
            raise NotFound(f"总线 {bus} 未配置", bus=bus)
        return found.hall

    def of_hall(self, hall_id: str) -> list[Device]:
        return [d for d in self.devices.values() if self.hall_of_bus(d.bus) == hall_id]

    def buses_of_hall(self, hall_id: str) -> list[Bus]:
        return [b for b in self.buses.values() if b.hall == hall_id]


_APPLIED = "applied"


class _Refused(Exception):
    """A device event's effect was refused (a ``HallError``): its transaction rolls back."""

    def __init__(self, error: HallError) -> None:
        super().__init__(error)
        self.error = error


@dataclass(frozen=True, slots=True)
class _Committed:
    """What a device event's transaction leaves behind: its result, its counter as the
    transaction left it (for the key's own render) and whether the connection's release
    tells the commit notices' listeners of the hall."""

    result: EventResult
    counter: devices_repo.CounterRead | None = None
    noticed: bool = False


@dataclass(frozen=True, slots=True)
class Desired:
    """A device's desired state; a new ``generation`` re-sends it even when unchanged."""

    commands: tuple[Request, ...]
    generation: int = 0


_NOTHING = Desired(())


@dataclass(frozen=True, slots=True)
class ReadPoint:
    """Which committed transactions a render was made from: those its read's snapshot saw
    (``pg_current_snapshot()``: below ``xmin``, or below ``xmax`` and not in ``xip``), and for
    a render read inside a device event's transaction, that transaction itself (``own``).
    Transaction ids are PostgreSQL's 64-bit xid8, so they never wrap."""

    xmin: int
    xmax: int
    xip: frozenset[int]
    own: int | None = None
    locked: bool = False
    """A device event's render whose transaction held its counter's row lock from before
    its read until its commit."""

    @classmethod
    def parse(cls, snapshot: str, own: int | None = None, *, locked: bool = False) -> ReadPoint:
        xmin, xmax, xip = snapshot.split(":")
        xips = frozenset(int(x) for x in xip.split(",") if x)
        return cls(int(xmin), int(xmax), xips, own, locked)

    def includes(self, xid: int) -> bool:
        """Whether the read saw the (committed) transaction ``xid``."""
        return xid == self.own or xid < self.xmin or (xid < self.xmax and xid not in self.xip)

    def newer_than(self, shown: ReadPoint | None) -> bool:
        """Whether a render made at this point may replace one made at ``shown``.

        A full pass's read replaces another pass's (passes run one after the other) and a
        device event's render if it saw that event's transaction; a device event's render
        replaces whatever was made without seeing its transaction. Two device events that
        changed the same counter are ordered by its lock: the later one's read saw the
        earlier one's commit. Of two device events' renders that did not see each other's
        transaction, the one made under the counter's lock (``locked``) stands: the other
        transaction cannot have changed the counter (that takes the lock, which would have
        ordered the two), so its read only lacks the locked one's change."""
        if shown is None:
            return True
        if self.own is None:
            return shown.own is None or self.includes(shown.own)
        if shown.own is None or not self.includes(shown.own):
            return not shown.includes(self.own) and not shown.locked
        return True


_UNKNOWN_POINT = ReadPoint(0, 0, frozenset())


@dataclass(frozen=True, slots=True)
class DesiredPass:
    """One desired-state pass of a hall: every configured device's state, and the position in
    the hall's event log its read saw (which sequencer notices it already covers)."""

    states: dict[tuple[str, int], Desired]
    position: LogPosition
    point: ReadPoint = _UNKNOWN_POINT
    """The transactions its read saw (which device events' renders it may replace)."""


@dataclass(frozen=True, slots=True)
class CounterRender:
    """The devices of one counter rendered from a device event's own transaction, right after
    its commit, ahead of the hall's next full pass (``DeviceService.on_render``)."""

    hall_id: str
    states: dict[tuple[str, int], Desired]
    point: ReadPoint


@dataclass(frozen=True, slots=True)
class Registry:
    devices: list[DeviceRow]
    alarms: list[AlarmRow]


class DeviceService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        directory: Directory,
        queue: QueueService,
        clock: Clock,
        roles: Sequence[DeviceRole] = (),
    ) -> None:
        self.pool = pool
        self.directory = directory
        self.queue = queue
        self.clock = clock
        self.roles = roles_by_class(roles)
        sign_ins = [r.sign_in for r in roles if r.sign_in is not None]
        if len(sign_ins) > 1:
            raise ValueError("two device roles handle sign-in")
        self.sign_in = sign_ins[0] if sign_ins else None
        self.context = DeviceContext(directory, queue, clock)
        self.wiring = Wiring.from_config(directory.config)
        self._staff = {s.job_no: s.name for s in directory.config.staff}
        # Called with a hall id after a committed device event changed what devices show and
        # wrote no event of the hall (its connection's release tells CommitNotices of those).
        self.on_change: Callable[[str], None] | None = None
        # Called, before on_change, with the devices of the event's counter rendered from the
        # event's own transaction (only set by a user that orders it against the full passes).
        self.on_render: Callable[[CounterRender], None] | None = None
        # Devices rendered from their counter alone (no role load, no list of calls).
        self._of_counter: dict[tuple[str, int], list[Device]] = {}
        for d in directory.config.devices:
            role = self.roles.get(d.device_class)
            if (
                d.counter is not None
                and role is not None
                and role.render is not None
                and role.load is None
                and not role.shows_calls
                and d.bus in self.wiring.buses
            ):
                key = (self.wiring.hall_of_bus(d.bus), d.counter)
                self._of_counter.setdefault(key, []).append(d)
        self._watchers: dict[tuple[str, int], set[asyncio.Queue[Event]]] = {}
        # Each device's last render and the role's inputs it was made from (DeviceRole.inputs).
        self._rendered: dict[tuple[str, int], tuple[object, Desired]] = {}
        self._releasing: set[asyncio.Task[None]] = set()

    @property
    def releasing(self) -> bool:
        """Whether connections of this service's committed work are still on their way back
        to the pool (the commit notices of their release not told yet)."""
        return bool(self._releasing)

    # --- watchers: a use that reads a device's events as they come --------------------------

    @contextlib.contextmanager
    def watch(self, bus: str, address: int) -> Iterator[asyncio.Queue[Event]]:
        """The events of device (bus, address), each once, after it is stored (a duplicate
        delivery is not repeated), for as long as the block runs. Events that arrive faster
        than the queue is read beyond ``WATCH_QUEUE`` are dropped for this watcher (logged)."""
        queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=WATCH_QUEUE)
        watchers = self._watchers.setdefault((bus, address), set())
        watchers.add(queue)
        try:
            yield queue
        finally:
            watchers.discard(queue)
            if not watchers:
                self._watchers.pop((bus, address), None)

    def _tell_watchers(self, ev: UpEvent) -> None:
        watchers = self._watchers.get((ev.bus, ev.address))
        if not watchers:
            return
        try:
            event = decode_event(ev.evt_type, ev.data)
        except (DecodeError, ValueError):
            return
        for queue in list(watchers):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                log.warning("watcher of %s/%d too slow; event dropped", ev.bus, ev.address)

    # --- registry ---------------------------------------------------------------------------

    async def sync_registry(self) -> None:
        """List every configured device in the registry, with its assignment."""
        rows = [
            DeviceRow(
                hall_id=self.wiring.hall_of_bus(d.bus),
                bus=d.bus,
                address=d.address,
                uid=d.uid.lower() if d.uid else None,
                device_class=str(d.device_class),
                firmware=None,
                boot_id=None,
                counter_number=d.counter,
                kiosk=d.kiosk,
                screen=d.screen,
                state="unknown",
                state_since=self.clock.now(),
                last_seen=None,
            )
            for d in self.wiring.devices.values()
        ]
        async with self.pool.acquire() as conn:
            await devices_repo.sync_configured(conn, rows)

    async def registry(self, hall_id: str) -> Registry:
        self.directory.hall(hall_id)
        async with self.pool.acquire() as conn:
            return Registry(
                await devices_repo.devices_of_hall(conn, hall_id),
                await devices_repo.alarms_of_hall(conn, hall_id),
            )

    async def record_alarm(self, alarm: AlarmReport, hall_id: str | None = None) -> None:
        """Store a device alarm (its hall is its bus's), or with ``hall_id`` an alarm of an
        edge bridge itself."""
        if alarm.kind in _REGISTRY_ALARMS:
            return  # raised by record_report from the stored registry, exactly once
        hall_id = hall_id or self.wiring.hall_of_bus(alarm.bus)
        at = datetime.fromtimestamp(alarm.at, UTC)
        await devices_repo.add_alarm(
            self.pool,
            hall_id=hall_id,
            bus=alarm.bus,
            address=alarm.address,
            uid=alarm.uid,
            kind=alarm.kind,
            detail=alarm.detail,
            at=at,
        )

    async def record_report(self, report: Report) -> None:
        """Store what the bridge sees; a new UID at an address or a UID at two addresses
        raises an alarm (docs/protocol.md §6), once, when the UID at that address changes."""
        now = self.clock.now()

        async def work(uow: UnitOfWork) -> None:
            conn = uow.conn
            for d in report.devices:
                hall_id = self.wiring.buses[d.bus].hall if d.bus in self.wiring.buses else None
                if hall_id is None:
                    continue
                row = await devices_repo.device(conn, d.bus, d.address, for_update=True)
                if row is None:
                    continue
                if d.uid is not None and row.uid != d.uid:
                    if row.uid is not None:
                        await devices_repo.add_alarm(
                            conn,
                            hall_id=hall_id,
                            bus=d.bus,
                            address=d.address,
                            uid=d.uid,
                            kind="uid_changed",
                            detail=f"{row.uid} -> {d.uid}",
                            at=now,
                        )
                    for other in await devices_repo.addresses_with_uid(
                        conn, d.uid, d.bus, d.address
                    ):
                        await devices_repo.add_alarm(
                            conn,
                            hall_id=hall_id,
                            bus=d.bus,
                            address=d.address,
                            uid=d.uid,
                            kind="duplicate_uid",
                            detail=f"uid {d.uid} also at {other.bus}/{other.address}",
                            at=now,
                        )
                await devices_repo.update_seen(
                    conn,
                    d.bus,
                    d.address,
                    uid=d.uid,
                    firmware=d.firmware,
                    boot_id=d.boot_id,
                    state=d.health,
                    last_seen=None
                    if d.last_seen is None
                    else datetime.fromtimestamp(d.last_seen, UTC),
                    now=now,
                )

        await run_in_transaction(self.pool, work)

    # --- events -----------------------------------------------------------------------------

    async def handle_event(self, ev: UpEvent, age_s: float = 0.0) -> EventResult:
        """Store the event's key and its effect in one transaction; "ok" only after commit.

        ``age_s`` is how long the event waited at an edge bridge before it was sent.
        """
        hall_id = self.wiring.hall_of_bus(ev.bus)
        device = self.wiring.devices.get((ev.bus, ev.address))
        now = self.clock.now()
        if not (1 <= ev.boot_id <= 0xFFFF and 1 <= ev.evt_seq <= 0xFFFF):
            # §8.1 never uses 0; such an event cannot be keyed. Acknowledge it (and log) so a
            # firmware bug does not block the device's FIFO forever.
            log.warning("unkeyable event from %s/%d: %r", ev.bus, ev.address, ev)
            return EventResult("ignored")

        async def claim(conn: asyncpg.Connection, outcome: str) -> bool:
            return await devices_repo.claim_event(
                conn,
                bus=ev.bus,
                address=ev.address,
                uid=ev.uid,
                boot_id=ev.boot_id,
                evt_seq=ev.evt_seq,
                hall_id=hall_id,
                evt_type=ev.evt_type,
                outcome=outcome,
                now=now,
            )

        counter_devices = (
            self._of_counter.get((hall_id, device.counter))
            if device is not None and device.counter is not None and self.on_render is not None
            else None
        )
        role = self.roles.get(device.device_class) if device is not None else None
        lock = device.counter if device is not None and role and role.locks_counter else None

        async def work(uow: UnitOfWork) -> _Committed:
            # The key goes in first, with the outcome most events have: a second delivery of
            # it waits at this statement until this transaction ends. A role that acts on the
            # device's counter under its lock gets it in the same statement.
            locked: devices_repo.LockedCounter | None = None
            if lock is None:
                claimed = await claim(uow.conn, _APPLIED)
            else:
                claimed, locked = await devices_repo.claim_event_locking_counter(
                    uow.conn,
                    bus=ev.bus,
                    address=ev.address,
                    uid=ev.uid,
                    boot_id=ev.boot_id,
                    evt_seq=ev.evt_seq,
                    hall_id=hall_id,
                    evt_type=ev.evt_type,
                    outcome=_APPLIED,
                    now=now,
                    counter=lock,
                )
                if locked is not None and locked.read is not None:
                    # The counter action decides on it without reading the counter again.
                    uow.counters[(hall_id, lock)] = locked.read
            if not claimed:
                return _Committed(EventResult("duplicate"))
            status = None if locked is None else locked.status
            try:
                result = await self._effect(uow, hall_id, device, ev, now, age_s, status)
            except HallError as exc:
                raise _Refused(exc) from None
            read = None
            if result.outcome != _APPLIED:
                await devices_repo.set_outcome(
                    uow.conn, ev.uid, ev.boot_id, ev.evt_seq, result.outcome
                )
            elif counter_devices:
                # The counter as this transaction leaves it: its strip and caller can be
                # queued the moment it commits, without waiting for the hall's next pass.
                assert device is not None and device.counter is not None
                held = uow.counters.get((hall_id, device.counter))
                if locked is not None and held is not None and locked.xid is not None:
                    # As the effect's last write left it (or as locked, when it wrote none),
                    # seen from the lock on: no statement of its own.
                    view = devices_repo.device_view(held)
                    read = devices_repo.CounterRead(view, locked.xid, locked.snapshot, True)
                else:
                    read = await devices_repo.counter_in_transaction(
                        uow.conn, hall_id, device.counter
                    )
            # Whether the connection's release tells the commit notices' listeners of the hall.
            noticed = will_tell(uow.conn, hall_id) or any(h == hall_id for h, _ in uow.events)
            return _Committed(result, read, noticed)

        try:
            # The connection goes back to the pool in the background (its release tells the
            # commit notices' listeners): the key's render below and the answer to the bridge,
            # whose bus waits for it, do not wait for that.
            committed, _ = await run_in_transaction(self.pool, work, releasing=self._releasing)
        except _Refused as refused:
            # The effect and its key were rolled back together; the key is stored again with
            # the refusal in a statement of its own, so that a re-delivery is a duplicate
            # rather than a late effect. A delivery that claimed the key in between (it waited
            # for the rollback) applied or refused the event itself: this one is its duplicate.
            rejected = EventResult(f"rejected:{refused.error.code}", beep=True)
            async with acquire(self.pool) as conn:
                stored = await claim(conn, rejected.outcome)
            committed = _Committed(rejected if stored else EventResult("duplicate"))
        result = committed.result
        if result.outcome != "duplicate":
            self._tell_watchers(ev)
        if result.outcome == _APPLIED:
            read = committed.counter
            if read is not None and counter_devices and self.on_render is not None:
                self.on_render(self._render_counter(hall_id, read, counter_devices))
            if self.on_change is not None and not committed.noticed:
                # (An effect that wrote events was told to the listeners by its release.)
                self.on_change(hall_id)
        return result

    def _render_counter(
        self, hall_id: str, read: devices_repo.CounterRead, devices: list[Device]
    ) -> CounterRender:
        scene = Scene(
            self.directory.hall(hall_id),
            {read.view.number: read.view},
            [],
            self._staff,
            self.clock.now(),
        )
        states = {(d.bus, d.address): self._render(scene, d, False) for d in devices}
        point = ReadPoint.parse(read.snapshot, read.xid, locked=read.locked)
        return CounterRender(hall_id, states, point)

    async def _effect(
        self,
        uow: UnitOfWork,
        hall_id: str,
        device: Device | None,
        ev: UpEvent,
        now: datetime,
        age_s: float,
        locked: CounterStatus | None = None,
    ) -> EventResult:
        try:
            event = decode_event(ev.evt_type, ev.data)
        except (DecodeError, ValueError):
            log.warning("malformed event 0x%02X from %s/%d", ev.evt_type, ev.bus, ev.address)
            return EventResult("ignored")
        if device is None:
            log.warning("event from unconfigured device %s/%d", ev.bus, ev.address)
            return EventResult("ignored")
        actor = f"device:{ev.bus}/{ev.address}"
        if isinstance(event, KeyEvent) and age_s > KEY_MAX_AGE_S:
            log.warning("key from %s/%d waited %.0f s; ignored", ev.bus, ev.address, age_s)
            return EventResult("rejected:stale")
        if isinstance(event, FaultEvent):
            await devices_repo.add_alarm(
                uow.conn,
                hall_id=hall_id,
                bus=ev.bus,
                address=ev.address,
                uid=ev.uid,
                kind="fault",
                detail=getattr(event.code, "name", str(event.code)),
                at=now,
            )
            return EventResult("applied")
        role = self.roles.get(device.device_class)
        if role is not None and role.handle is not None:
            result = await role.handle(
                self.context,
                uow,
                DeviceEvent(hall_id, device, event, ev.uid, actor, now, locked),
            )
            if result is not None:
                return result
        if (
            self.sign_in is not None
            and device.counter is not None
            and isinstance(event, LoginEvent | LogoutEvent)
        ):
            result = await self.sign_in(
                self.context, uow, DeviceEvent(hall_id, device, event, ev.uid, actor, now, locked)
            )
            if result is not None:
                return result
        if ev.evt_type not in _KNOWN_EVENTS:
            log.warning("unknown event type 0x%02X from %s/%d", ev.evt_type, ev.bus, ev.address)
        return EventResult("ignored")

    # --- desired state ----------------------------------------------------------------------

    async def desired(self, hall_id: str) -> dict[tuple[str, int], tuple[Request, ...]]:
        """What every configured device of the hall should show now."""
        return {key: d.commands for key, d in (await self.desired_state(hall_id)).items()}

    async def desired_state(self, hall_id: str) -> dict[tuple[str, int], Desired]:
        """What every configured device of the hall should show now, with its generation."""
        return (await self.desired_pass(hall_id)).states

    async def desired_pass(
        self, hall_id: str, *, fresh: bool = False, reading: Callable[[], None] | None = None
    ) -> DesiredPass:
        """What every configured device of the hall should show now, and how far in the
        hall's event log the read behind it reached.

        One statement reads the kernel's part of the scene (counters, recent calls, clerks'
        names, the log position), then each role's ``load`` its own. A device whose role
        declares ``inputs`` is rendered again only when those changed since its last render
        (a call re-renders the calling counter's strip and caller, and the hall screens whose
        rows it changes); ``fresh`` renders every device anew (for comparing). ``reading`` is
        called right before the read is sent: every commit finished by then is in it."""
        rules = self.directory.hall(hall_id)
        devices = self.wiring.of_hall(hall_id)
        shows_calls = any(self._shows_calls(d) for d in devices)
        conn: asyncpg.Connection = await self.pool.acquire()
        try:
            if reading is not None:
                reading()
            read = await devices_repo.hall_scene(conn, hall_id, RECENT_CALLS if shows_calls else 0)
            extras: dict[DeviceClass, object] = {}
            for cls in {d.device_class for d in devices}:
                role = self.roles.get(cls)
                if role is not None and role.load is not None:
                    extras[cls] = await role.load(conn, hall_id)
        except BaseException:
            await self._release(conn)
            raise
        # The devices need not wait for the connection's way back to the pool (a task and a
        # few turns of the event loop: up to tens of ms on a busy machine).
        task = asyncio.create_task(self._release(conn), name="desired-release")
        self._releasing.add(task)
        task.add_done_callback(self._releasing.discard)
        names = self._staff
        if any(clerk not in names for clerk in read.staff_names):
            # Staff added with `hall user add` rather than in the config.
            names = {**read.staff_names, **names}
        scene = Scene(
            rules,
            {v.number: v for v in read.counters},
            [RecentCall(*c) for c in read.calls],
            names,
            self.clock.now(),
            extras,
        )
        out: dict[tuple[str, int], Desired] = {}
        for dev in devices:
            out[(dev.bus, dev.address)] = self._render(scene, dev, fresh)
        return DesiredPass(
            out, LogPosition(read.last_seq, read.unnumbered), ReadPoint.parse(read.snapshot)
        )

    async def _release(self, conn: asyncpg.Connection) -> None:
        with contextlib.suppress(*CONNECTION_ERRORS):
            await self.pool.release(conn)

    def _render(self, scene: Scene, dev: Device, fresh: bool) -> Desired:
        role = self.roles.get(dev.device_class)
        if role is None or role.render is None:
            return _NOTHING
        key = (dev.bus, dev.address)
        inputs: object = None
        if role.inputs is not None:
            inputs = role.inputs(scene, dev)
            cached = self._rendered.get(key)
            if not fresh and cached is not None and cached[0] == inputs:
                return cached[1]
        generation = role.generation(scene, dev) if role.generation is not None else 0
        state = Desired(role.render(scene, dev), generation)
        if role.inputs is not None:
            self._rendered[key] = (inputs, state)
        return state

    def _shows_calls(self, device: Device) -> bool:
        role = self.roles.get(device.device_class)
        return role is not None and role.shows_calls
