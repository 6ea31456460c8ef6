"""HB/1 bus master: one task owns one bus (spec §7, §8).

The master polls every registered device (interactive ones about every 250 ms, displays every
few seconds), runs application commands from a priority queue, keeps one transaction in flight,
retries byte for byte with the same SEQ, tracks each device's health, delivers device events to
the application and acknowledges them only after the application has committed them, and
re-sends each device's desired state when it comes back, reboots or reports host-lost.

A resync reads the desired state when it starts to run, not when it is scheduled, and while it
runs no other command to that device goes out, so a live change can neither be overwritten by
an older resync nor interleaved with one: keep the desired state current (set it before you
send the change) and the device ends with the newest content. What happens when the serial
port itself is gone is described in one place, :class:`BusMaster` ("Link down").

Wiring::

    master = BusMaster(name="bus1", baud=9600, on_event=handle_event, on_alarm=alarm)
    serial = SerialLink(url, on_data=master.link.data_received)   # or an asyncio transport
    master.link.attach(serial.write)
    master.add_device(0x05, DeviceClass.PAD)
    master.set_desired_state(0x05, [PadClerkRequest("3号窗口", "1024", "张三")])
    master.start()
    await master.request(0x03, ShowTextRequest(...), priority=Priority.CALL)
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import heapq
import itertools
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from firmware_bridge import attention, health, timing
from firmware_bridge.codec import BROADCAST_ADDR, HOST_ADDR, Frame, FrameFlags
from firmware_bridge.constants import (
    GROUP_COMMANDS,
    PERSISTENT_COMMANDS,
    Caps,
    Command,
    DeviceClass,
    DeviceState,
    DisplayMode,
    EventType,
    Status,
    TextEncoding,
)
from firmware_bridge.errors import (
    BridgeError,
    BusClosedError,
    DecodeError,
    DeviceOfflineError,
    DeviceStatusError,
    DeviceTimeoutError,
    EncodeError,
)
from firmware_bridge.health import DeviceHealth, HealthTracker
from firmware_bridge.link import FrameLink
from firmware_bridge.messages import (
    AttnRequest,
    ConfigItem,
    ConfigReply,
    ConfigRequest,
    Event,
    InfoReply,
    InfoRequest,
    KeypadShowRequest,
    PadClerkRequest,
    PadRateRequest,
    PadServiceRequest,
    PollReply,
    PollRequest,
    Reply,
    Request,
    SetTimeRequest,
    ShowTextRequest,
    StatusReply,
    UnknownEvent,
    decode_reply,
    max_reply_payload,
)

_LOGGER = logging.getLogger(__name__)


class Priority(enum.IntEnum):
    """Order of queued commands; lower runs first."""

    CALL = 0  # a citizen is looking at the strip: the window strips' calls
    KEYPAD = 1  # the clerk's keypad display answering a key press: right after the call
    RATING = 2  # PAD_SERVICE / PAD_RATE_REQ / PAD_CANCEL: the citizen stands at the pad
    NORMAL = 3
    RESYNC = 4  # desired state re-sent after a recovery or a reboot
    DISPLAY = 5  # hall-screen rows, idle texts, brightness


class AlarmKind(enum.Enum):
    """Why the master raised an alarm."""

    OFFLINE = "offline"
    ONLINE = "online"  # back from offline
    UID_CHANGED = "uid_changed"
    DUPLICATE_UID = "duplicate_uid"
    REBOOTED = "rebooted"
    EVENT_OVERFLOW = "event_overflow"


@dataclass(frozen=True, slots=True)
class Alarm:
    """Something the manager console should show."""

    kind: AlarmKind
    bus: str
    addr: int
    detail: str = ""


@dataclass(frozen=True, slots=True)
class DeviceEvent:
    """A device event handed to the application; ``key`` is its exactly-once key (§8.3)."""

    bus: str
    addr: int
    device_class: DeviceClass
    uid: bytes
    boot_id: int
    evt_seq: int
    event: Event
    state: DeviceState

    @property
    def key(self) -> tuple[bytes, int, int]:
        """(uid, boot_id, evt_seq): store it under a unique constraint with the event's effect."""
        return (self.uid, self.boot_id, self.evt_seq)


# A resync command answered BUSY is tried again this many times (new SEQ each, §7.3).
RESYNC_BUSY_RETRIES = 2


@dataclass(slots=True)
class _Resync:
    """One device's resync: pending until its first step reads the desired state, then running.

    A single step job per device is queued (or waiting out a pause) while it exists; each step
    sends one command. While running it holds the device's other jobs back (``_held``).
    """

    reason: str
    commands: tuple[Request, ...] | None = None  # read by the first step, not at scheduling
    index: int = 0  # next step; the step after the last command is the SET_TIME (§10.1)
    busy_left: int = RESYNC_BUSY_RETRIES

    @property
    def running(self) -> bool:
        return self.commands is not None


@dataclass(slots=True)
class _KeyHold:
    """After a KEY: no poll starts until the commands it caused have gone out (``key_hold_s``).

    ``order``: taken before the event callback ran, so commands queued inside the callback
    and after it are the key's; ``served``: one has run, so the hold ends as soon as none is
    left; ``until``: the wait for the next one ends then.
    """

    until: float
    order: int
    served: bool = False


# A reply deadline whose timer ran this late means the event loop was stalled: the reply may
# be in the OS's buffers already (a pty hands bytes to its reader through a kernel work item,
# a USB adapter polls every millisecond), so the master waits this long for the link to read
# it before it calls the transaction a timeout. Any late deadline first lets the loop read
# the line _READ_PASSES times (no wait), which is all a reply already in the buffer needs.
_STALLED_S = 0.005
_READ_GRACE_S = 0.005
_READ_PASSES = 2


async def _read_past_deadline(
    done: Callable[[], bool],
    arrived: Callable[[], Awaitable[object]],
    deadline: float,
    *,
    may_wait: Callable[[], bool] = lambda: True,
) -> None:
    """After a wait's ``deadline`` passed without ``done()``: read what the OS already holds.

    Timers due in a loop pass run before that pass reads the line (uvloop does so), so bytes
    in the buffer when the deadline's timer runs late by a millisecond would count as
    missing: the loop reads first. After a stall of the loop (the timer _STALLED_S or more
    late) the link may not have read them even then, so, if ``may_wait()``, ``arrived()`` gets
    _READ_GRACE_S more. The caller looks at ``done()`` afterwards.
    """
    for _ in range(_READ_PASSES):
        if done():
            return
        await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    if not done() and may_wait() and loop.time() - deadline >= _STALLED_S:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(arrived(), _READ_GRACE_S)


# Returned by _execute for a job that went back to the queue after BUSY.
_REQUEUED: Reply = StatusReply(Status.BUSY)

DesiredState = Sequence[Request] | Callable[[], Sequence[Request]]
EventCallback = Callable[[DeviceEvent], Awaitable[None]]
AlarmCallback = Callable[[Alarm], None]


@dataclass(slots=True)
class _Device:
    addr: int
    device_class: DeviceClass
    poll_interval: float
    text_enc: TextEncoding
    seq: int
    uid: bytes | None = None
    info: InfoReply | None = None
    boot_id: int | None = None
    ack_boot_id: int = 0
    ack_evt_seq: int = 0
    health: HealthTracker = field(default_factory=HealthTracker)
    desired: DesiredState = ()
    next_poll_at: float = 0.0
    next_probe_at: float = 0.0
    last_poll_at: float | None = None
    poll_period: float | None = None
    polls: int = 0
    last_resync_at: float | None = None
    resyncs: int = 0
    resync: _Resync | None = None  # pending or running
    active: bool = True  # in use (clerk signed in, a call shown): polled most (see _period)
    needs_info: bool = True
    needs_config: bool = False  # state bit 3 seen: CONFIG to be re-read (§8.2)
    config: tuple[ConfigItem, ...] | None = None  # the last CONFIG read
    recovering: bool = True  # first contact or back from offline: INFO, then full resync
    overflow: bool = False
    next_round_at: float = 0.0  # §17: latest time it is listed in an attention round again
    next_check_at: float = 0.0  # a strip: its next heartbeat is a POLL from then on
    marks: int = 0  # attention marks it sent

    @property
    def has_attention(self) -> bool:
        """INFO says the device has the optional attention poll (docs/protocol.md §17)."""
        return self.info is not None and bool(self.info.caps & Caps.ATTENTION)

    @property
    def max_payload(self) -> int:
        return self.info.max_payload if self.info is not None else 128

    @property
    def busy_s(self) -> float | None:
        return self.info.t_busy_ms / 1000 if self.info is not None else timing.T_BUSY_MAX_S


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """Read-only view of one device for the application and tests."""

    addr: int
    device_class: DeviceClass
    health: DeviceHealth
    failures: int
    uid: bytes | None
    boot_id: int | None
    info: InfoReply | None
    ack: tuple[int, int]
    polls: int
    poll_period: float | None
    resyncs: int
    resyncing: bool = False  # a resync is pending or running
    config: tuple[ConfigItem, ...] | None = None  # CONFIG as last read (after state bit 3)
    active: bool = True  # polled at the in-use rate (see BusMaster.set_active)
    period: float = 0.0  # longest gap between two of its polls now (by class and use)
    attention: bool = False  # polled through attention rounds (docs/protocol.md §17)
    marks: int = 0


@dataclass(slots=True)
class BusStats:
    """Counters of one bus; ``utilisation`` is busy line time over wall time."""

    started_at: float = 0.0
    transactions: int = 0
    polls: int = 0
    attempts: int = 0
    retries: int = 0
    timeouts: int = 0
    failed_transactions: int = 0
    status_errors: int = 0
    late_replies: int = 0
    bad_replies: int = 0
    events: int = 0
    duplicate_events: int = 0
    event_callback_errors: int = 0
    resyncs: int = 0
    busy_s: float = 0.0
    bad_frames: int = 0
    poll_cycle_s: float | None = None  # mean time between two polls of an interactive device
    poll_cycle_max_s: float | None = None
    attention_rounds: int = 0  # §17 rounds run
    marks_missing: int = 0  # listed devices whose slot brought no valid mark
    mark_noise: int = 0  # bytes during rounds that were no mark of the round
    superseded: int = 0  # desired-state commands dropped unsent: a newer state replaced them
    keepalives: int = 0  # strip heartbeats sent as a NOACK unicast SET_TIME instead of a POLL

    def utilisation(self, now: float) -> float:
        """Fraction of wall time the line carried our frames or replies."""
        wall = now - self.started_at
        return self.busy_s / wall if wall > 0 else 0.0


@dataclass(order=True, slots=True)
class _Job:
    priority: int
    order: int
    addr: int = field(compare=False)
    msg: Request | None = field(compare=False)  # None: the next step of addr's resync
    noack: bool = field(compare=False, default=False)
    future: asyncio.Future[Reply | None] | None = field(compare=False, default=None)
    attempts: int = field(compare=False, default=0)
    check: bool = field(compare=False, default=False)
    busy_retries: int = field(compare=False, default=0)
    desired: bool = field(compare=False, default=False)  # part of the device's desired state


class BusMaster:
    """Owns one HB/1 bus: the only task that transmits on it.

    Link down. When the write callable attached to ``link`` raises ``OSError`` (for example
    ``LinkDownError`` from ``SerialLink.write`` after the port vanished), or no write callable
    is attached (``BusClosedError``), nothing reached the line, so the master gives no verdict
    on any device: it counts no failed transaction, health stays as it was (no OFFLINE, no
    alarm), and a poll that hits the dead link pauses the bus for ``LINK_DOWN_RETRY_S``. An
    application request fails at once with that error. A resync is kept: it starts over,
    reading the desired state again, once writes get through. All of this is decided in
    :meth:`_link_down` and :func:`_is_link_down`.

    An owner that wants a lost port to count like a cut cable (devices OFFLINE after three
    failed transactions, §8.4, and the alarm raised) attaches a write callable that swallows
    the error instead, as ``firmware_bridge.bridge.Bridge`` does: then requests go nowhere and
    every transaction simply times out.
    """

    def __init__(
        self,
        *,
        on_event: EventCallback,
        on_alarm: AlarmCallback | None = None,
        name: str = "hb1",
        baud: int = 9600,
        rng: random.Random | None = None,
        offline_after_failures: int | None = None,
        offline_probe_s: float | None = None,
        reply_timeout_s: float | None = None,
        clock: Callable[[], tuple[int, int]] | None = None,
        set_time_interval_s: float | None = None,
        set_time_after_resync: bool = True,
        eager_polling: bool = True,
        attention: bool = True,
    ) -> None:
        """``offline_after_failures``, ``offline_probe_s`` and ``reply_timeout_s`` are the bus
        options of the same names (None: the spec's 3 failures, a probe every 5 s, and the
        timeout computed per command from the baud rate, §7.1, §8.4). ``clock`` gives
        (unix seconds, minutes east of UTC) for SET_TIME (default: this machine's clock and
        zone); ``set_time_interval_s`` is the period of the SET_TIME broadcast (§10.1: hourly,
        ``timing.SET_TIME_INTERVAL_S``) and ``set_time_after_resync`` ends every resync with a
        SET_TIME to the resynced device. With ``eager_polling`` the line never idles while an
        active interactive device exists: such devices are polled round-robin whenever
        nothing else is due (see :meth:`_due_poll`). With ``attention`` devices whose INFO
        announces the optional attention poll (docs/protocol.md §17) are found through
        attention rounds instead of one POLL each; every other device is polled as before.
        """
        self.name = name
        self.baud = baud
        self.offline_after_failures = (
            health.OFFLINE_AFTER_FAILURES
            if offline_after_failures is None
            else offline_after_failures
        )
        if self.offline_after_failures < 1:
            raise ValueError("offline_after_failures must be at least 1")
        self._offline_probe_s = offline_probe_s
        self.reply_timeout_s = reply_timeout_s
        self._clock = clock or _local_clock
        self._set_time_interval_s = set_time_interval_s
        self.set_time_after_resync = set_time_after_resync
        self.eager_polling = eager_polling
        self.attention = attention
        self._round_last_at = 0.0  # when the last round of the active members started
        self._clock_task: asyncio.Task[None] | None = None
        self.link = FrameLink(self._on_frame, baud=baud, name=name)
        self._stats = BusStats()
        self._on_event = on_event
        self._on_alarm = on_alarm
        self._rng = rng or random.Random()
        self._devices: dict[int, _Device] = {}
        self._group_seq: dict[int, int] = {}
        self._queue: list[_Job] = []
        # Jobs waiting out a BUSY before they re-enter the queue, by their order number.
        self._delayed_jobs: dict[int, _Job] = {}
        self._order = itertools.count()
        self._pending: dict[tuple[int, int], tuple[int, asyncio.Future[Frame]]] = {}
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._line_free_at = 0.0
        self._last_was_poll = False
        # (until, order): after a KEY, no poll starts before a command queued after the key
        # (order above ``order``) has run, or ``until`` has passed. See ``key_hold_s``.
        self._key_hold: _KeyHold | None = None
        self._closed = False

    @property
    def stats(self) -> BusStats:
        """Live counters of this bus (bad frames come from the link's decoder)."""
        self._stats.bad_frames = self.link.decoder.stats.bad_frames
        return self._stats

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the bus task (idempotent)."""
        if self._closed:
            raise BusClosedError(f"{self.name}: stopped")
        if self._task is None:
            loop = asyncio.get_running_loop()
            self._stats.started_at = loop.time()
            self._task = loop.create_task(self._run(), name=f"hb1-bus {self.name}")
            self._clock_task = loop.create_task(self._clock_loop(), name=f"hb1-clock {self.name}")

    async def stop(self) -> None:
        """Stop the bus task and fail every queued command with ``BusClosedError``."""
        self._closed = True
        for task in (self._clock_task, self._task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._clock_task = None
        for job in [*self._queue, *self._delayed_jobs.values()]:
            if job.future is not None and not job.future.done():
                job.future.set_exception(BusClosedError(f"{self.name}: stopped"))
        self._queue.clear()
        self._delayed_jobs.clear()

    async def __aenter__(self) -> BusMaster:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- devices and desired state ----------------------------------------------------------------

    def add_device(
        self,
        addr: int,
        device_class: DeviceClass,
        *,
        uid: bytes | None = None,
        poll_interval: float | None = None,
        text_enc: TextEncoding = TextEncoding.GBK,
    ) -> None:
        """Register a device; ``uid`` (from the registry) is checked against INFO."""
        if not 0x01 <= addr <= 0xEF:
            raise ValueError(f"device address 0x{addr:02X} outside 0x01..0xEF")
        if poll_interval is None:
            interactive = device_class.interactive
            poll_interval = timing.INTERACTIVE_POLL_S if interactive else timing.DISPLAY_POLL_S
        # §7.3: one SEQ counter per address, starting at a random value.
        self._devices[addr] = _Device(
            addr,
            device_class,
            poll_interval,
            text_enc,
            seq=self._rng.randrange(256),
            uid=uid,
            health=HealthTracker(offline_after=self.offline_after_failures),
        )
        self._wakeup.set()

    def remove_device(self, addr: int) -> None:
        """Stop polling ``addr``."""
        self._devices.pop(addr, None)

    def devices(self) -> list[DeviceStatus]:
        """Status of every registered device."""
        return [self.device(addr) for addr in sorted(self._devices)]

    def device_class(self, addr: int) -> DeviceClass | None:
        """The class ``addr`` was registered with; None for an address not on this bus.

        Cheap, unlike ``device``: the bridge asks it for every desired-state update.
        """
        dev = self._devices.get(addr)
        return dev.device_class if dev is not None else None

    def device(self, addr: int) -> DeviceStatus:
        """Status of one device."""
        d = self._devices[addr]
        return DeviceStatus(
            addr=d.addr,
            device_class=d.device_class,
            health=d.health.state,
            failures=d.health.failures,
            uid=d.uid,
            boot_id=d.boot_id,
            info=d.info,
            ack=(d.ack_boot_id, d.ack_evt_seq),
            polls=d.polls,
            poll_period=d.poll_period,
            resyncs=d.resyncs,
            resyncing=d.resync is not None,
            config=d.config,
            active=d.active,
            period=self._period(d),
            attention=self._member(d),
            marks=d.marks,
        )

    def set_desired_state(self, addr: int, commands: DesiredState) -> None:
        """Commands that make the device show what it should now, re-sent on every resync.

        A resync reads this when it starts to run, not when it is scheduled; pass a callable
        to compute the commands then (e.g. a rating request with the remaining time). Setting
        it does not send anything: send live changes with ``request`` as usual, after setting
        the new state, so that a resync still waiting in the queue sends the new state too.
        """
        dev = self._devices[addr]
        if callable(commands):
            dev.desired = commands
            return
        dev.desired = tuple(commands)
        self.set_active(addr, in_use(dev.device_class, dev.desired))

    def set_active(self, addr: int, active: bool) -> None:
        """Whether ``addr`` is in use now, which decides how often it is polled.

        ``set_desired_state`` derives it from the commands (:func:`in_use`); call this after
        it to override. Active interactive devices are polled most (round-robin whenever the
        line is free, at most ``poll_interval`` apart); idle ones once a second; hall screens
        every ``poll_interval``; window strips, with or without a call, every
        ``idle_display_poll_s`` (see ``_heartbeat``).
        """
        dev = self._devices[addr]
        if dev.active == active:
            return
        dev.active = active
        if dev.last_poll_at is not None:
            dev.next_poll_at = dev.last_poll_at + self._period(dev)
        self._wakeup.set()

    def _period(self, dev: _Device) -> float:
        """Longest gap between two polls of ``dev`` (§8.4), by class and use.

        A device found through attention rounds (§17) is polled when its mark asks for it and
        otherwise only every ``timing.ATTENTION_POLL_S``: its marks show it alive.
        """
        if self._member(dev):
            return timing.ATTENTION_POLL_S
        return self._heartbeat(dev)

    def _heartbeat(self, dev: _Device) -> float:
        """Longest gap between two requests ``dev`` hears: POLLs, or rounds listing it.

        A window strip is polled at the idle strips' period whether it shows a call or not
        (docs/protocol.md §15.2): its POLL carries only BOOT or FAULT, and a call it lost to a
        reboot would be over (its hold, 10 s by default) by about the time a faster poll
        restored it, while every strip poll delays the callers' polls that carry key presses.
        """
        if dev.device_class is DeviceClass.STRIP:
            return max(dev.poll_interval, self.idle_display_poll_s)
        if dev.active:
            return dev.poll_interval
        if dev.device_class.interactive:
            return max(dev.poll_interval, timing.IDLE_INTERACTIVE_POLL_S)
        return max(dev.poll_interval, self.idle_display_poll_s)

    @property
    def idle_display_poll_s(self) -> float:
        """Heartbeat period of a strip without a call (docs/protocol.md §15.2).

        Such a strip's POLL carries only BOOT or FAULT, and a command to it is its heartbeat
        too; it only must hear a unicast request before its host-lost time (HOST_LOST_S,
        10 s by default) runs out, with room for one failed transaction (every attempt
        timed out) and half a second of scheduling slack: every 9 s.
        """
        failed = timing.MAX_ATTEMPTS * (
            timing.frame_time(self.baud, 4) + timing.reply_timeout(self.baud, 9 + 1)
        )
        return min(timing.IDLE_DISPLAY_POLL_S, timing.HOST_LOST_DEFAULT_S - failed - 0.5)

    def _member(self, dev: _Device) -> bool:
        """Whether ``dev`` is listed in attention rounds now instead of being polled."""
        return (
            self.attention
            and dev.has_attention
            and not dev.needs_info
            and not dev.recovering
            and dev.health.state is DeviceHealth.ONLINE
        )

    def desired_state(self, addr: int) -> tuple[Request, ...]:
        """The commands a resync of ``addr`` would send now."""
        return self._read_desired(self._devices[addr])

    @staticmethod
    def _read_desired(dev: _Device) -> tuple[Request, ...]:
        desired = dev.desired
        return tuple(desired() if callable(desired) else desired)

    def resync(self, addr: int) -> None:
        """Re-send the desired state of ``addr`` (read when the resync runs)."""
        self._schedule_resync(self._devices[addr], "requested")

    # -- commands ------------------------------------------------------------------------------

    async def request(
        self,
        addr: int,
        msg: Request,
        *,
        priority: Priority = Priority.NORMAL,
        check: bool = True,
        attempts: int | None = None,
        busy_retries: int = 0,
    ) -> Reply:
        """Run one transaction with ``addr`` and return its typed reply.

        Raises ``DeviceStatusError`` for a status other than OK (unless ``check`` is false),
        ``DeviceTimeoutError`` when every attempt failed, ``DeviceOfflineError`` at once for
        an offline device, ``EncodeError`` for a payload the device cannot take. A BUSY reply
        is tried again as a new transaction (new SEQ) after ``BUSY_RETRY_S``, ``busy_retries``
        times (§7.3).
        """
        self._admit(addr, msg)
        reply = await self._enqueue(
            addr,
            msg,
            priority,
            noack=False,
            attempts=attempts or 0,
            check=check,
            busy_retries=busy_retries,
        )
        assert reply is not None
        return reply

    def _admit(self, addr: int, msg: Request) -> None:
        """Refuse at once a request the device cannot take: unknown, offline, or too long."""
        dev = self._devices.get(addr)
        if dev is None:
            raise BridgeError(f"{self.name}: no device at 0x{addr:02X}")
        if dev.health.state is DeviceHealth.OFFLINE:
            raise DeviceOfflineError(addr=addr)
        payload = msg.encode(dev.text_enc)
        if len(payload) > dev.max_payload:
            raise EncodeError(
                f"{msg.CMD.name}: {len(payload)} bytes exceed max_payload {dev.max_payload} "
                f"of device 0x{addr:02X}",
                field="payload",
            )

    async def send_noack(
        self, addr: int, msg: Request, *, priority: Priority = Priority.NORMAL
    ) -> None:
        """Send ``msg`` with NOACK: unicast to ``addr``, or to a group / 0xFF (§6)."""
        if addr > 0xEF and msg.CMD not in GROUP_COMMANDS:
            raise EncodeError(f"{msg.CMD.name} may not be sent to a group", field="cmd")
        msg.encode()
        await self._enqueue(addr, msg, priority, noack=True, attempts=1, check=False)

    async def broadcast(
        self,
        msg: Request,
        *,
        group: DeviceClass | None = None,
        priority: Priority = Priority.NORMAL,
    ) -> None:
        """Send ``msg`` to every device, or to one class's group address."""
        addr = group.group_address if group is not None else BROADCAST_ADDR
        await self.send_noack(addr, msg, priority=priority)

    async def send_desired(self, addr: int, msg: Request, *, priority: Priority) -> bool:
        """Send one command of the device's desired state (``set_desired_state``); False when
        it was dropped unsent because a newer desired state no longer holds it.

        Without this, a call queued behind a busy line would still go out after the next call
        replaced it, spending the line on text nobody should see. Errors as ``request`` (the
        device's status is not checked: the desired state is re-sent on every resync).
        """
        return await self.queue_desired(addr, msg, priority=priority) is not None

    def queue_desired(
        self, addr: int, msg: Request, *, priority: Priority
    ) -> asyncio.Future[Reply | None]:
        """``send_desired`` queued now, before this call returns: its future (None: dropped).

        A command decided in the KEY callback (the strip's call, rendered from the key's own
        commit) is then in the queue when the callback returns, so the master sends it next,
        before the tasks the commit woke (the hall's desired-state pass, the live feed) run.
        Refusals (unknown, offline, too long) are raised here, as ``request`` does.
        """
        self._admit(addr, msg)
        return self._enqueue(
            addr, msg, priority, noack=False, attempts=0, check=False, desired=True
        )

    def _enqueue(
        self,
        addr: int,
        msg: Request,
        priority: Priority,
        *,
        noack: bool,
        attempts: int,
        check: bool,
        busy_retries: int = 0,
        desired: bool = False,
    ) -> asyncio.Future[Reply | None]:
        """Put a job on the queue now; its future resolves once the bus task has run it."""
        if self._closed:
            raise BusClosedError(f"{self.name}: stopped")
        fut: asyncio.Future[Reply | None] = asyncio.get_running_loop().create_future()
        heapq.heappush(
            self._queue,
            _Job(
                priority,
                next(self._order),
                addr,
                msg,
                noack,
                fut,
                attempts,
                check,
                busy_retries,
                desired,
            ),
        )
        self._wakeup.set()
        return fut

    # -- the bus task ----------------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._wakeup.clear()
            now = loop.time()
            hold = self._key_hold
            if hold is not None and now >= hold.until:
                hold = self._key_hold = None
            poll_dev, overdue = self._due_poll(now)
            round_devs: list[_Device] | None = None
            if not overdue:
                round_devs = self._due_round(now, poll_dev)
                if round_devs is not None:
                    poll_dev = None
            due = poll_dev is not None or round_devs is not None
            job = self._pop_job()
            if job is None and hold is not None and hold.served:
                hold = self._key_hold = None  # everything the key caused has gone out
            late = poll_dev is not None and overdue and self._a_period_late(poll_dev, now)
            try:
                if job is not None and self._job_first(job, due, overdue, hold, late=late):
                    self._last_was_poll = False
                    await self._run_job(job)
                    if hold is not None and job.order > hold.order:
                        # What the key caused is going out: the commands queued with it (the
                        # strip's call, the keypad display, the pad) follow before any poll.
                        hold.served = True
                        hold.until = loop.time() + self.key_hold_s
                elif due and hold is None:
                    if job is not None:
                        heapq.heappush(self._queue, job)
                    self._last_was_poll = True
                    if round_devs is not None:
                        await self._attention_round(round_devs)
                    elif poll_dev is not None and self._keepalive_will_do(poll_dev, now):
                        await self._keepalive(poll_dev)
                    elif poll_dev is not None:
                        await self._poll(poll_dev)
                elif due and hold is not None:
                    await self._sleep_until(hold.until)  # woken early by the command
                else:
                    await self._sleep_until(self._next_due())
            except Exception:
                # One bad reply or a bug in one device's handling must not silence the bus.
                _LOGGER.exception("%s: bus step failed", self.name)
                await asyncio.sleep(timing.LINK_DOWN_RETRY_S)

    def _pop_job(self) -> _Job | None:
        """Take the first job in priority order that may run now (see ``_held``).

        A resync step runs at the priority of the most urgent command it holds back: a call
        for a strip whose resync is running must not wait behind the polls that a resync at
        its own low priority alternates with. The returned job carries that priority.
        """
        self._queue = [j for j in self._queue if j.future is None or not j.future.done()]
        held: dict[int, int] = {}
        for job in self._queue:
            if self._held(job):
                held[job.addr] = min(held.get(job.addr, job.priority), job.priority)
        found: _Job | None = None
        for job in self._queue:
            if job.msg is not None and job.addr in held:
                continue
            if job.msg is None and job.addr in held and held[job.addr] < job.priority:
                job.priority = held[job.addr]
            if found is None or job < found:
                found = job
        if found is not None:
            self._queue.remove(found)
        heapq.heapify(self._queue)
        return found

    def _held(self, job: _Job) -> bool:
        """A command to a device whose resync is running waits until the resync is done.

        The resync sends the state read when it started; a command the application queued
        since is at least as new, so it goes last, whatever its priority.
        """
        if job.msg is None:
            return False
        dev = self._devices.get(job.addr)
        return dev is not None and dev.resync is not None and dev.resync.running

    def _job_first(
        self,
        job: _Job,
        poll_due: bool,
        overdue: bool,
        hold: _KeyHold | None,
        *,
        late: bool = False,
    ) -> bool:
        """Whether the queued ``job`` goes before the due poll (or attention round).

        Commands go ahead of polls. An urgent command (a call, a keypad display, a pad
        request, a plain request) runs back to back with the next one until the poll waiting
        longest is a whole period late (``late``: its deadline passed a period ago); from then
        on commands and polls take turns, so a burst of commands never starves the polls that
        carry key presses. A resync step or a hall-screen refresh takes turns with every poll.
        A key hold lets commands go first.
        """
        if not poll_due or hold is not None or self._last_was_poll:
            return True
        if job.priority <= Priority.NORMAL:
            return not (overdue and late)
        return False

    def _a_period_late(self, dev: _Device, now: float) -> bool:
        """Whether the due poll of ``dev`` is late by a whole period or more."""
        if dev.health.state is DeviceHealth.OFFLINE:
            return now - dev.next_probe_at >= self.offline_probe_s
        return now - dev.next_poll_at >= self._period(dev)

    def _due_poll(self, now: float) -> tuple[_Device | None, bool]:
        """The device to poll next and whether its poll is overdue.

        Overdue first, the oldest deadline first (probes of offline devices included). With
        nothing overdue and ``eager_polling``, the active interactive device polled longest
        ago: the line carries key presses rather than idling.
        """
        best: _Device | None = None
        best_at = now
        for dev in self._devices.values():
            at = dev.next_probe_at if dev.health.state is DeviceHealth.OFFLINE else dev.next_poll_at
            if at <= best_at:
                best, best_at = dev, at
        if best is not None:
            return best, True
        if not self.eager_polling:
            return None, False
        for dev in self._devices.values():
            if (
                not self._member(dev)
                and dev.active
                and dev.device_class.interactive
                and dev.health.state is not DeviceHealth.OFFLINE
                and (best is None or (dev.last_poll_at or 0.0) < (best.last_poll_at or 0.0))
            ):
                best = dev
        return best, False

    def _due_round(self, now: float, eager: _Device | None) -> list[_Device] | None:
        """The devices to list in an attention round now (docs/protocol.md §17), if any.

        A round is due when a member's heartbeat period has passed (it lists every member
        due within half its period, and the active interactive ones, which cost one slot
        each); otherwise, with ``eager_polling``, the active interactive members are listed
        whenever the line is free, taking turns with the eager POLL of a plain device
        (``eager``), the one waiting longest first. A round lists at most 32 slots over a
        span of 32 addresses; the rest wait for the next one.
        """
        if not self.attention:
            return None
        members = [d for d in self._devices.values() if self._member(d)]
        if not members:
            return None
        fast = [d for d in members if d.active and d.device_class.interactive]
        due = [d for d in members if d.next_round_at <= now]
        if due:
            soon = [d for d in members if d.next_round_at <= now + self._heartbeat(d) / 2]
            listed = {d.addr: d for d in [*due, *soon, *fast]}
        elif fast and self.eager_polling:
            if eager is not None and (eager.last_poll_at or 0.0) < self._round_last_at:
                return None
            listed = {d.addr: d for d in fast}
        else:
            return None
        # The first-due device's 32-address window; members outside it wait their turn.
        first = min((d for d in listed.values()), key=lambda d: (d.next_round_at, d.addr))
        window = [d for d in listed.values() if first.addr <= d.addr < first.addr + 32]
        return sorted(window, key=lambda d: d.addr)

    def _next_due(self) -> float:
        times = [
            d.next_probe_at if d.health.state is DeviceHealth.OFFLINE else d.next_poll_at
            for d in self._devices.values()
        ]
        times += [d.next_round_at for d in self._devices.values() if self._member(d)]
        return min(times, default=asyncio.get_running_loop().time() + 3600.0)

    async def _sleep_until(self, when: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(when):
                await self._wakeup.wait()

    def _requeue_later(self, job: _Job) -> None:
        job.busy_retries -= 1

        def push() -> None:
            if not self._closed:
                heapq.heappush(self._queue, job)
                self._wakeup.set()

        # §7.3: after BUSY only a new transaction (new SEQ), no earlier than 100 ms.
        asyncio.get_running_loop().call_later(timing.BUSY_RETRY_S, push)
        self._delayed_jobs[job.order] = job

    async def _run_job(self, job: _Job) -> None:
        self._delayed_jobs.pop(job.order, None)
        if job.msg is None:
            await self._run_resync_step(job.addr)
            return
        assert job.future is not None
        if job.desired and not self._still_desired(job):
            self.stats.superseded += 1
            if not job.future.done():
                job.future.set_result(None)
            return
        try:
            reply = await self._execute(job)
            if reply is _REQUEUED:
                return
        except asyncio.CancelledError:
            if not job.future.done():
                job.future.set_exception(BusClosedError(f"{self.name}: stopped"))
            raise
        except Exception as exc:
            if not job.future.done():
                job.future.set_exception(exc)
        else:
            if not job.future.done():
                job.future.set_result(reply)

    def _still_desired(self, job: _Job) -> bool:
        dev = self._devices.get(job.addr)
        if dev is None or callable(dev.desired):
            return True  # computed when a resync runs: it cannot tell, so send it
        return job.msg in dev.desired

    async def _execute(self, job: _Job) -> Reply | None:
        assert job.msg is not None
        if job.noack:
            await self._send_noack(job.addr, job.msg)
            return None
        dev = self._devices.get(job.addr)
        if dev is None:
            raise BridgeError(f"{self.name}: no device at 0x{job.addr:02X}")
        if dev.health.state is DeviceHealth.OFFLINE:
            raise DeviceOfflineError(addr=dev.addr)
        reply, seq = await self._device_transaction(dev, job.msg, attempts=job.attempts)
        self._answered(dev)
        if isinstance(reply, StatusReply) and reply.status == Status.BUSY and job.busy_retries:
            self._requeue_later(job)
            return _REQUEUED
        if job.check and isinstance(reply, StatusReply) and reply.status != Status.OK:
            raise DeviceStatusError(addr=dev.addr, cmd=job.msg.CMD, seq=seq, status=reply.status)
        return reply

    def _answered(self, dev: _Device) -> None:
        """A display that answered a command is alive and out of host-lost: that is its
        heartbeat, and its next POLL (which only carries BOOT or FAULT) can wait a period."""
        if dev.device_class.interactive or dev.last_poll_at is None:
            return
        now = asyncio.get_running_loop().time()
        dev.next_poll_at = max(dev.next_poll_at, now + self._period(dev))
        if self._member(dev):
            dev.next_round_at = max(dev.next_round_at, now + self._heartbeat(dev))

    async def _send_noack(self, addr: int, msg: Request) -> None:
        dev = self._devices.get(addr)
        enc = dev.text_enc if dev is not None else TextEncoding.GBK
        seq = self._next_seq(addr)
        frame = Frame(FrameFlags.NOACK, addr, HOST_ADDR, seq, msg.CMD, msg.encode(enc))
        await self._wait_line_free()
        tx_end = self._transmit(frame)
        self._stats.transactions += 1
        if addr > 0xEF:
            # §7.1: nobody answers a group request; give the devices time to execute it.
            gap = timing.BROADCAST_GAP_S
            if msg.CMD in PERSISTENT_COMMANDS:
                gap = max(
                    [d.busy_s or timing.T_BUSY_MAX_S for d in self._devices.values()]
                    or [timing.T_BUSY_MAX_S]
                )
            self._line_free_at = tx_end + gap
        else:
            self._line_free_at = tx_end + timing.turnaround(self.baud)

    def _next_seq(self, addr: int) -> int:
        dev = self._devices.get(addr)
        if dev is not None:
            dev.seq = (dev.seq + 1) & 0xFF
            return dev.seq
        seq = (self._group_seq.get(addr, self._rng.randrange(256)) + 1) & 0xFF
        self._group_seq[addr] = seq
        return seq

    async def _wait_line_free(self) -> None:
        loop = asyncio.get_running_loop()
        if self._line_free_at > loop.time():
            await asyncio.sleep(self._line_free_at - loop.time())

    def _transmit(self, frame: Frame) -> float:
        tx_end = self.link.send(frame)
        self._stats.busy_s += timing.frame_time(self.baud, len(frame.payload))
        self._stats.attempts += 1
        return tx_end

    async def _device_transaction(
        self, dev: _Device, msg: Request, *, attempts: int = 0
    ) -> tuple[Reply, int]:
        """One transaction with health accounting; returns (reply, seq)."""
        try:
            reply, seq = await self._transact(dev, msg, attempts or timing.MAX_ATTEMPTS)
        except DeviceTimeoutError:
            self._record_failure(dev)
            raise
        await self._record_success(dev)
        if isinstance(reply, StatusReply) and reply.status != Status.OK:
            self._stats.status_errors += 1
        return reply, seq

    async def _transact(self, dev: _Device, msg: Request, attempts: int) -> tuple[Reply, int]:
        loop = asyncio.get_running_loop()
        cmd = msg.CMD
        seq = self._next_seq(dev.addr)
        # Built once: a retry repeats the request byte for byte (§7.3).
        frame = Frame(FrameFlags.NONE, dev.addr, HOST_ADDR, seq, cmd, msg.encode(dev.text_enc))
        timeout = self.reply_timeout(cmd, dev)
        self._stats.transactions += 1
        key = (dev.addr, seq)
        for attempt in range(attempts):
            if attempt:
                self._stats.retries += 1
            fut: asyncio.Future[Frame] = loop.create_future()
            # Registered before the write: a fast reply must find its future.
            self._pending[key] = (cmd, fut)
            try:
                await self._wait_line_free()
                tx_end = self._transmit(frame)
                try:
                    reply_frame = await self._await_reply(fut, tx_end + timeout)
                except TimeoutError:
                    self._stats.timeouts += 1
                    self._line_free_at = loop.time() + timing.turnaround(self.baud)
                    _LOGGER.debug(
                        "%s: 0x%02X %s seq 0x%02X attempt %d timed out",
                        self.name,
                        dev.addr,
                        cmd.name,
                        seq,
                        attempt + 1,
                    )
                    continue
            finally:
                self._pending.pop(key, None)
            reply_time = timing.frame_time(self.baud, len(reply_frame.payload))
            self._stats.busy_s += reply_time
            # A reply cannot have ended before our request, the device's least turnaround and
            # its own length; on a real line it never does, on a pty or TCP link this keeps the
            # bus paced as the wire would. The §7.1 gap counts from when the link read the
            # reply's last byte (the wire has been quiet since), not from when this task got
            # round to it: a busy event loop does not add its own delay to every exchange.
            gap = timing.turnaround(self.baud)
            self._line_free_at = max(self._reply_in_at(), tx_end + gap + reply_time) + gap
            try:
                return decode_reply(cmd, reply_frame.payload, dev.text_enc), seq
            except DecodeError as exc:
                # CRC-valid but malformed: treated like a corrupt frame and retried.
                self._stats.bad_replies += 1
                _LOGGER.warning(
                    "%s: bad %s reply from 0x%02X: %s", self.name, cmd.name, dev.addr, exc
                )
        self._stats.failed_transactions += 1
        raise DeviceTimeoutError(addr=dev.addr, cmd=cmd, seq=seq, attempts=attempts)

    def _reply_in_at(self) -> float:
        """When the reply just received was in: the link's last read, never in the future."""
        now = asyncio.get_running_loop().time()
        rx = self.link.last_rx_at
        return now if rx is None else min(rx, now)

    async def _await_reply(self, fut: asyncio.Future[Frame], deadline: float) -> Frame:
        loop = asyncio.get_running_loop()
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    # Shielded so a timeout does not cancel the future we may keep waiting on.
                    return await asyncio.shield(fut)
            except TimeoutError:
                # (While reply bytes are arriving the deadline is extended below instead.)
                await _read_past_deadline(
                    fut.done,
                    lambda: asyncio.shield(fut),
                    deadline,
                    may_wait=lambda: not self.link.receiving(),
                )
                if fut.done():
                    return fut.result()
                # §7.1: while reply bytes keep arriving the host keeps receiving.
                if not self.link.receiving():
                    raise
                deadline = loop.time() + timing.t_idle(self.baud)

    def _on_frame(self, frame: Frame) -> None:
        entry = self._pending.get((frame.src, frame.seq))
        if entry is None or entry[1].done() or entry[0] != frame.cmd:
            self._stats.late_replies += 1
            _LOGGER.info(
                "%s: dropped late or unexpected reply from 0x%02X seq 0x%02X cmd 0x%02X",
                self.name,
                frame.src,
                frame.seq,
                frame.cmd,
            )
            return
        entry[1].set_result(frame)

    # -- health ----------------------------------------------------------------------------------

    def _record_failure(self, dev: _Device) -> None:
        old = dev.health.failure()
        loop = asyncio.get_running_loop()
        if dev.health.state is DeviceHealth.OFFLINE:
            dev.next_probe_at = loop.time() + self.offline_probe_s
            if old is not DeviceHealth.OFFLINE:
                dev.needs_info = dev.recovering = True
                _LOGGER.warning("%s: device 0x%02X offline", self.name, dev.addr)
                self._alarm(AlarmKind.OFFLINE, dev, f"{dev.health.failures} failed transactions")
        elif old is not dev.health.state:
            _LOGGER.info("%s: device 0x%02X %s", self.name, dev.addr, dev.health.state.value)

    async def _record_success(self, dev: _Device) -> None:
        old = dev.health.success()
        if old is DeviceHealth.OFFLINE:
            _LOGGER.warning("%s: device 0x%02X back online", self.name, dev.addr)
            self._alarm(AlarmKind.ONLINE, dev)

    def _alarm(self, kind: AlarmKind, dev: _Device, detail: str = "") -> None:
        if self._on_alarm is None:
            return
        try:
            self._on_alarm(Alarm(kind, self.name, dev.addr, detail))
        except Exception:
            _LOGGER.exception("%s: alarm callback failed", self.name)

    # -- polling, INFO, resync, events ------------------------------------------------------------

    def _keepalive_will_do(self, dev: _Device, now: float) -> bool:
        """Whether the heartbeat due for ``dev`` may be a keep-alive instead of a POLL.

        Only for a window strip that is ONLINE with nothing to read, and only between its
        POLLs every ``STRIP_CHECK_S``: its POLL carries only BOOT or FAULT, and all it needs
        in between is a unicast request before its host-lost time runs out (§8.4).
        """
        return (
            dev.device_class is DeviceClass.STRIP
            and not self._member(dev)
            and dev.health.state is DeviceHealth.ONLINE
            and not (dev.needs_info or dev.needs_config or dev.recovering)
            and now < dev.next_check_at
        )

    async def _keepalive(self, dev: _Device) -> None:
        """A unicast SET_TIME with NOACK (§6, §10.1): the device hears a unicast request, which
        keeps it out of host-lost, for 17 bytes and a gap instead of a 35-byte exchange."""
        dev.next_poll_at = asyncio.get_running_loop().time() + self._period(dev)
        try:
            await self._send_noack(dev.addr, self.set_time_request())
        except (BusClosedError, OSError) as exc:
            await self._link_down(exc)
            return
        self._stats.keepalives += 1

    async def _poll(self, dev: _Device) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        offline = dev.health.state is DeviceHealth.OFFLINE
        if dev.last_poll_at is not None and not offline:
            dev.poll_period = start - dev.last_poll_at
            self._update_cycle_stats()
        dev.last_poll_at = start
        dev.next_poll_at = start + self._period(dev)
        dev.next_check_at = start + timing.STRIP_CHECK_S
        msg = PollRequest(ack_evt_seq=dev.ack_evt_seq, ack_boot_id=dev.ack_boot_id)
        try:
            # An offline device gets a single probe: retry bursts at a dead address waste the bus.
            reply, _ = await self._device_transaction(dev, msg, attempts=1 if offline else 0)
        except DeviceTimeoutError:
            return
        except (BusClosedError, OSError) as exc:
            await self._link_down(exc)
            return
        self._stats.polls += 1
        dev.polls += 1
        if not isinstance(reply, PollReply):
            return  # an error status to a POLL: nothing to process
        info_read = dev.needs_info
        if dev.needs_info:
            if not await self._read_info(dev):
                return
            if dev.recovering:
                dev.recovering = False
                self._schedule_resync(dev, "contact")
        if dev.needs_config and not await self._read_config(dev):
            return
        await self._handle_poll_reply(dev, reply, info_read=info_read)

    async def _attention_round(self, devs: list[_Device]) -> None:
        """One attention round (docs/protocol.md §17): ATTN, then one slot per listed device.

        A device whose mark asks for attention is POLLed next, and so is one whose slot
        brought no valid mark (that POLL, with its retries, decides about its health). The
        round takes the line until the end of its last slot, however early the marks came.
        """
        loop = asyncio.get_running_loop()
        start = loop.time()
        chars = attention.slot_chars(self.baud)
        request = AttnRequest.listing([d.addr for d in devs], chars)
        frame = Frame(
            FrameFlags.NOACK,
            BROADCAST_ADDR,
            HOST_ADDR,
            self._next_seq(BROADCAST_ADDR),
            Command.ATTN,
            request.encode(),
        )
        slots = len(devs)
        received = bytearray()
        complete = asyncio.Event()

        def marks_of(data: bytes) -> bytes:
            # Our own request (adapters that echo) and any late reply are frames, not marks.
            return attention.without_frames(data)

        def sink(data: bytes) -> None:
            received.extend(data)
            if attention.read_marks(marks_of(bytes(received)), slots).complete:
                complete.set()

        for dev in devs:
            dev.next_round_at = start + self._heartbeat(dev)
        if any(d.active and d.device_class.interactive for d in devs):
            self._round_last_at = start
        await self._wait_line_free()
        self.link.raw_sink = sink
        try:
            try:
                tx_end = self._transmit(frame)
            except (BusClosedError, OSError) as exc:
                await self._link_down(exc)
                return
            self._stats.transactions += 1
            end = tx_end + attention.round_s(self.baud, slots, chars)
            # Marks are in by ``end`` on a real line; a pty or a serial server may hand them
            # over later, and a late mark costs less than the POLL its absence causes.
            await self._await_marks(
                complete, end + timing.REPLY_MARGIN_S + timing.t_idle(self.baud)
            )
        finally:
            self.link.raw_sink = None
        # The round's wire end, or the last mark read if one came later (a pty, a serial server).
        last = self._reply_in_at() if received else end
        self._line_free_at = max(last, end) + timing.turnaround(self.baud)
        result = attention.read_marks(marks_of(bytes(received)), slots)
        self._stats.attention_rounds += 1
        self._stats.mark_noise += result.noise
        self._stats.busy_s += sum(m is not None for m in result.marks) * timing.t_char(self.baud)
        now = loop.time()
        for dev, wanted in zip(devs, result.marks, strict=True):
            if wanted is None:
                self._stats.marks_missing += 1
                dev.next_poll_at = now  # a POLL with retries finds out what is there
                continue
            dev.marks += 1
            await self._record_success(dev)
            if wanted:
                dev.next_poll_at = now

    async def _await_marks(self, complete: asyncio.Event, deadline: float) -> None:
        """Wait until a round's marks are all in, or the deadline, read past it as a reply's
        is (:func:`_read_past_deadline`). Without that, a stall past the round's end made
        every mark of the round missing, and each missing mark costs its device a POLL
        (45.8 ms at 9600 baud) before the next round."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(deadline):
                await complete.wait()
                return
        await _read_past_deadline(complete.is_set, complete.wait, deadline)

    def _update_cycle_stats(self) -> None:
        periods = [
            d.poll_period
            for d in self._devices.values()
            if d.poll_period is not None
            and d.device_class.interactive
            and d.active
            and d.health.state is not DeviceHealth.OFFLINE
        ]
        if periods:
            self._stats.poll_cycle_s = sum(periods) / len(periods)
            self._stats.poll_cycle_max_s = max(periods)

    async def _read_info(self, dev: _Device) -> bool:
        try:
            reply, _ = await self._device_transaction(dev, InfoRequest())
        except (DeviceTimeoutError, BusClosedError, OSError):
            return False  # a dead link is met (and paused for) by the next poll
        if not isinstance(reply, InfoReply):
            _LOGGER.warning("%s: INFO of 0x%02X failed: %r", self.name, dev.addr, reply)
            return False
        dev.info = reply
        dev.needs_info = False
        if reply.device_class != dev.device_class:
            _LOGGER.warning(
                "%s: 0x%02X reports class %s, registered as %s",
                self.name,
                dev.addr,
                reply.device_class.name,
                dev.device_class.name,
            )
        if dev.uid is not None and dev.uid != reply.uid:
            self._alarm(AlarmKind.UID_CHANGED, dev, f"{dev.uid.hex()} -> {reply.uid.hex()}")
        for other in self._devices.values():
            if other is not dev and other.uid == reply.uid:
                self._alarm(
                    AlarmKind.DUPLICATE_UID,
                    dev,
                    f"uid {reply.uid.hex()} also at 0x{other.addr:02X}",
                )
        dev.uid = reply.uid
        self._note_boot(dev, reply.boot_id)
        return True

    async def _read_config(self, dev: _Device) -> bool:
        """CONFIG read (empty request): every tag's value now in effect on the device."""
        try:
            reply, _ = await self._device_transaction(dev, ConfigRequest())
        except (DeviceTimeoutError, BusClosedError, OSError):
            return False
        if isinstance(reply, StatusReply):
            # A device without CONFIG (status 2) or a refusal: nothing more to read.
            _LOGGER.warning("%s: CONFIG read of 0x%02X: %s", self.name, dev.addr, reply.status)
            dev.needs_config = False
            return True
        if isinstance(reply, ConfigReply):
            if dev.config is not None and dev.config != reply.items:
                _LOGGER.warning(
                    "%s: configuration of 0x%02X changed on the device: %s",
                    self.name,
                    dev.addr,
                    ", ".join(f"{i.tag.name}={i.value.hex()}" for i in reply.items),
                )
            dev.config = reply.items
        dev.needs_config = False
        return True

    def _note_boot(self, dev: _Device, boot_id: int) -> bool:
        """Track boot_id; returns True when it changed from a known value."""
        if dev.boot_id == boot_id:
            return False
        rebooted = dev.boot_id is not None
        dev.boot_id = boot_id
        # §8.3: the ack restarts in the new boot; an old boot's ack would be ignored anyway.
        dev.ack_boot_id, dev.ack_evt_seq = boot_id, 0
        if rebooted:
            _LOGGER.warning("%s: device 0x%02X rebooted (boot_id %d)", self.name, dev.addr, boot_id)
            self._alarm(AlarmKind.REBOOTED, dev, f"boot_id {boot_id}")
        return rebooted

    async def _handle_poll_reply(
        self, dev: _Device, reply: PollReply, *, info_read: bool = False
    ) -> None:
        """Process a POLL reply; ``info_read``: INFO (and CONFIG) were read after this reply
        was sent, so its config-changed bit is already answered."""
        if self._note_boot(dev, reply.boot_id):
            self._schedule_resync(dev, "reboot")
            if dev.has_attention:
                # New firmware may lack the extension: read INFO before listing it again.
                dev.needs_info = True
                dev.next_poll_at = asyncio.get_running_loop().time()
        if reply.state & DeviceState.HOST_LOST:
            self._schedule_resync(dev, "host-lost", rate_limited=True)
        overflow = bool(reply.state & DeviceState.OVERFLOW)
        if overflow and not dev.overflow:
            self._alarm(AlarmKind.EVENT_OVERFLOW, dev)
        dev.overflow = overflow
        if reply.state & DeviceState.CONFIG_CHANGED and not info_read:
            # §8.2: changed on the device's own menu: re-read INFO (which clears the bit) and
            # CONFIG before the next poll's reply is processed.
            dev.needs_info = dev.needs_config = True
        if reply.has_event:
            committed = await self._deliver_event(dev, reply)
            if self._member(dev) and not committed:
                # §17.4: its mark does not ask again for an event already carried; fetch it
                # again ourselves once the application may take it.
                dev.next_poll_at = asyncio.get_running_loop().time() + timing.ATTENTION_RETRY_S
        if reply.has_event:
            # A strip's next heartbeat is a POLL, not a keep-alive: it carries the ack.
            dev.next_check_at = 0.0
        if reply.pending > 1:
            # MORE: drain the FIFO, the next poll also carries the ack of this event.
            dev.next_poll_at = asyncio.get_running_loop().time()

    async def _deliver_event(self, dev: _Device, reply: PollReply) -> bool:
        """Hand the event to the application; True once it is committed (or a duplicate)."""
        if (
            dev.ack_boot_id == reply.boot_id
            and dev.ack_evt_seq != 0
            and (dev.ack_evt_seq - reply.evt_seq) % 65536 < 32768
        ):
            # Already committed: the device did not get our ack yet. The next poll carries it.
            self._stats.duplicate_events += 1
            return True
        try:
            event = reply.event()
        except DecodeError as exc:
            _LOGGER.warning(
                "%s: malformed %s event from 0x%02X: %s",
                self.name,
                reply.evt_type.name,
                dev.addr,
                exc,
            )
            event = UnknownEvent(reply.evt_type, reply.evt_data)
        assert event is not None
        assert dev.uid is not None
        if isinstance(event, UnknownEvent):
            _LOGGER.warning(
                "%s: unknown event 0x%02X from 0x%02X", self.name, event.type_code, dev.addr
            )
        device_event = DeviceEvent(
            bus=self.name,
            addr=dev.addr,
            device_class=dev.device_class,
            uid=dev.uid,
            boot_id=reply.boot_id,
            evt_seq=reply.evt_seq,
            event=event,
            state=reply.state,
        )
        self._stats.events += 1
        # The key hold's order is taken before the callback: commands the application queues
        # inside it (``queue_desired``) are the key's, as are those queued after it returns.
        order = next(self._order)
        try:
            async with asyncio.timeout(timing.EVENT_CALLBACK_TIMEOUT_S):
                await self._on_event(device_event)
        except Exception:
            # Not committed: no ack, the device sends the same event again.
            self._stats.event_callback_errors += 1
            _LOGGER.exception("%s: event callback failed for %r", self.name, device_event)
            return False
        dev.ack_boot_id, dev.ack_evt_seq = reply.boot_id, reply.evt_seq
        if reply.evt_type is EventType.KEY:
            now = asyncio.get_running_loop().time()
            self._key_hold = _KeyHold(now + self.key_hold_s, order)
        return True

    @property
    def key_hold_s(self) -> float:
        """How long the line waits, after a KEY is committed, for the command it causes.

        The application decides that command (the strip's call, the caller's display) after
        its commit: inside the callback (``queue_desired``, the in-process bridge: the command
        is queued when the callback returns) or later, in its own task (an edge bridge's
        desired state arrives over the link); meanwhile the master would start another
        device's POLL
        and the call would wait for that exchange (up to 43.75 ms at 9600 baud) besides the
        time the server took. So after a KEY no poll starts until a command queued since has
        run, waiting for it at most ``KEY_HOLD_MAX_S``; then the other commands queued with it
        (the keypad display, the pad) go out too, before any poll. The line idles only while
        the server decides, once per key press (keys are rare next to polls); every §7.1 gap
        is kept.
        """
        return timing.KEY_HOLD_MAX_S

    def _schedule_resync(self, dev: _Device, reason: str, *, rate_limited: bool = False) -> None:
        """Queue a resync of ``dev``; the desired state is read when it starts to run.

        A pending resync absorbs a new request (it will read the newest state anyway). A
        running one starts over for a reboot, a contact or an explicit request (the device
        may have lost what was sent so far); a host-lost bit does not restart it, since the
        running resync re-sends everything already.
        """
        now = asyncio.get_running_loop().time()
        if (
            rate_limited
            and dev.last_resync_at is not None
            and now - dev.last_resync_at < timing.RESYNC_MIN_INTERVAL_S
        ):
            return
        dev.last_resync_at = now
        current = dev.resync
        if current is not None and (not current.running or rate_limited):
            return
        dev.resyncs += 1
        self._stats.resyncs += 1
        _LOGGER.info("%s: resync 0x%02X (%s) scheduled", self.name, dev.addr, reason)
        dev.resync = _Resync(reason)
        if current is None:
            # Otherwise the step job of the running resync exists already and carries on
            # with the new one.
            self._push_resync_step(dev, 0.0)

    def _push_resync_step(self, dev: _Device, delay: float) -> None:
        job = _Job(Priority.RESYNC, next(self._order), dev.addr, None)
        if delay <= 0:
            heapq.heappush(self._queue, job)
            self._wakeup.set()
            return

        def push() -> None:
            if not self._closed:
                heapq.heappush(self._queue, job)
                self._wakeup.set()

        asyncio.get_running_loop().call_later(delay, push)

    async def _run_resync_step(self, addr: int) -> None:
        """Run one step of ``addr``'s resync and queue the next; never leaves it stranded."""
        dev = self._devices.get(addr)
        if dev is None or dev.resync is None:
            return
        rs = dev.resync
        after: float | None
        try:
            after = await self._resync_step(dev, rs)
        except Exception:
            _LOGGER.exception("%s: resync of 0x%02X failed", self.name, addr)
            after = None
        if self._devices.get(addr) is not dev:
            return  # removed meanwhile
        if dev.resync is not rs:
            # Restarted while this step was on the line: the new one needs its first step.
            after = 0.0
        if after is None:
            dev.resync = None
            self._wakeup.set()  # commands held back for the resync may go now
        else:
            self._push_resync_step(dev, after)

    async def _resync_step(self, dev: _Device, rs: _Resync) -> float | None:
        """Send the next command of ``rs``; returns the delay of the next step, None when done."""
        if dev.health.state is DeviceHealth.OFFLINE:
            return None  # its return from offline schedules a full resync
        if rs.commands is None:
            rs.commands = self._read_desired(dev)
            rs.index = 0
            _LOGGER.info(
                "%s: resync 0x%02X (%s): %d command(s)",
                self.name,
                dev.addr,
                rs.reason,
                len(rs.commands),
            )
        steps = len(rs.commands) + (1 if self.set_time_after_resync else 0)
        if rs.index >= steps:
            return None
        # §10.1: SET_TIME after every resync, with the time at the moment it is sent.
        msg = rs.commands[rs.index] if rs.index < len(rs.commands) else self.set_time_request()
        reply: Reply | None = None
        try:
            reply, _ = await self._device_transaction(dev, msg)
            self._answered(dev)
        except DeviceTimeoutError as exc:  # before OSError: it is a TimeoutError
            _LOGGER.warning("%s: resync command failed: %s", self.name, exc)
        except (BusClosedError, OSError) as exc:
            if not _is_link_down(exc):
                raise
            _LOGGER.warning("%s: write failed: %s", self.name, exc)
            # Nothing was sent. Start over, reading the state anew, once the link is back;
            # meanwhile the device's other commands are not held back.
            rs.commands, rs.index, rs.busy_left = None, 0, RESYNC_BUSY_RETRIES
            return timing.LINK_DOWN_RETRY_S
        except BridgeError as exc:  # e.g. a command too long for this device: skip it
            _LOGGER.warning("%s: resync command not sent: %s", self.name, exc)
        if isinstance(reply, StatusReply) and reply.status != Status.OK:
            if reply.status == Status.BUSY and rs.busy_left:
                rs.busy_left -= 1
                # §7.3: after BUSY only a new transaction (new SEQ), no earlier than 100 ms.
                return timing.BUSY_RETRY_S
            _LOGGER.warning(
                "%s: resync %s of 0x%02X answered %s",
                self.name,
                msg.CMD.name,
                dev.addr,
                reply.status.name,
            )
        rs.index += 1
        rs.busy_left = RESYNC_BUSY_RETRIES
        return 0.0 if rs.index < steps else None

    # -- device clocks ---------------------------------------------------------------------------

    @property
    def set_time_interval_s(self) -> float:
        """Period of the SET_TIME broadcast (§10.1: hourly)."""
        if self._set_time_interval_s is None:
            return timing.SET_TIME_INTERVAL_S
        return self._set_time_interval_s

    def set_time_request(self) -> SetTimeRequest:
        """SET_TIME with the time of now (unix seconds, minutes east of UTC)."""
        unix, tz_min = self._clock()
        return SetTimeRequest(unix & 0xFFFFFFFF, tz_min)

    async def _clock_loop(self) -> None:
        """Broadcast SET_TIME every ``set_time_interval_s`` (§10.1).

        Every device also gets SET_TIME at the end of each of its resyncs, the first contact
        included, so the first broadcast waits a whole interval.
        """
        while True:
            await asyncio.sleep(self.set_time_interval_s)
            try:
                await self.broadcast(self.set_time_request(), priority=Priority.NORMAL)
            except BusClosedError:
                return
            except Exception:
                _LOGGER.exception("%s: SET_TIME broadcast failed", self.name)

    # -- link down -------------------------------------------------------------------------------

    async def _link_down(self, exc: BaseException) -> None:
        """A write found no line (see "Link down" in the class doc): no verdict, pause."""
        _LOGGER.warning("%s: write failed: %s", self.name, exc)
        await asyncio.sleep(timing.LINK_DOWN_RETRY_S)

    # -- timing helpers for callers and tests ------------------------------------------------------

    @property
    def offline_probe_s(self) -> float:
        """Period of the single-POLL probes of an OFFLINE device (§8.4: 5 s)."""
        return health.PROBE_S if self._offline_probe_s is None else self._offline_probe_s

    def reply_timeout(self, cmd: Command, dev: _Device) -> float:
        """Reply timeout of ``cmd`` to ``dev``, from the end of the request's transmission.

        Computed from the baud rate and the longest reply ``cmd`` may get (§7.1), unless the
        bus option ``reply_timeout_ms`` sets it; a persistent command (SET_IDLE, CONFIG, ...)
        then gets the device's ``t_busy_ms`` beyond T_RESP on top, since the device may start
        its reply that much later.
        """
        persistent = cmd in PERSISTENT_COMMANDS
        if self.reply_timeout_s is not None:
            extra = 0.0
            if persistent:
                extra = max(0.0, min(dev.busy_s or 0.0, timing.T_BUSY_MAX_S) - timing.T_RESP_S)
            return self.reply_timeout_s + extra
        return timing.reply_timeout(
            self.baud,
            max_reply_payload(cmd, dev.device_class),
            busy_s=dev.busy_s if persistent else None,
        )

    def min_transaction_s(self, request_payload: int, reply_payload: int) -> float:
        """Least line time of one request/reply exchange at this baud rate (§7.1)."""
        return (
            timing.frame_time(self.baud, request_payload)
            + timing.turnaround(self.baud)  # the device's earliest reply start
            + timing.frame_time(self.baud, reply_payload)
            + timing.turnaround(self.baud)  # our own gap before the next request
        )


def in_use(device_class: DeviceClass, commands: Sequence[Request]) -> bool:
    """Whether a device showing ``commands`` is in use, i.e. polled at the higher rate.

    A caller is idle when it shows no ticket with its LED off (counter closed or paused); a
    pad when it shows no clerk and has no service or rating open; a strip when it shows no
    call (no flashing text). Kiosk boards and hall screens are always in use.
    """
    if device_class is DeviceClass.CALLER:
        return not any(
            isinstance(c, KeypadShowRequest) and c.led == 0 and not c.ticket.strip("- ")
            for c in commands
        )
    if device_class is DeviceClass.PAD:
        return any(
            isinstance(c, PadServiceRequest | PadRateRequest)
            or (isinstance(c, PadClerkRequest) and c.name)
            for c in commands
        )
    if device_class is DeviceClass.STRIP:
        return any(isinstance(c, ShowTextRequest) and c.mode == DisplayMode.FLASH for c in commands)
    return True


def _local_clock() -> tuple[int, int]:
    """This machine's time and UTC offset (minutes east), for SET_TIME."""
    now = time.time()
    return int(now), (time.localtime(now).tm_gmtoff or 0) // 60


def _is_link_down(exc: BaseException) -> bool:
    """Whether ``exc`` means the write found no line (a timeout is an OSError too: excluded)."""
    return isinstance(exc, (BusClosedError, OSError)) and not isinstance(exc, TimeoutError)
