"""Bus master against in-memory devices: whole writes, single bytes, loss, delays and echo."""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from firmware_bridge import health, timing
from firmware_bridge.codec import BROADCAST_ADDR, HOST_ADDR, Frame, FrameDecoder, FrameFlags
from firmware_bridge.constants import (
    BootReason,
    Command,
    ConfigTag,
    DeviceClass,
    DeviceState,
    DisplayMode,
    FaultCode,
    KeyCode,
    Status,
)
from firmware_bridge.errors import (
    DeviceOfflineError,
    DeviceStatusError,
    DeviceTimeoutError,
    EncodeError,
)
from firmware_bridge.health import DeviceHealth
from firmware_bridge.master import Alarm, AlarmKind, BusMaster, DeviceEvent, Priority, in_use
from firmware_bridge.messages import (
    BootEvent,
    ClearRequest,
    ConfigItem,
    ConfigReply,
    ConfigRequest,
    Event,
    FaultEvent,
    InfoReply,
    InfoRequest,
    KeyEvent,
    KeypadShowRequest,
    PadClerkRequest,
    PadRateRequest,
    PollReply,
    PollRequest,
    RatingEvent,
    Reply,
    Request,
    SetTimeRequest,
    ShowRowsRequest,
    ShowTextRequest,
    StatusReply,
    decode_request,
)

BAUD = 115200


@pytest.fixture(autouse=True)
def fast_timing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shrink every protocol time so the tests run in milliseconds, not seconds."""
    monkeypatch.setattr(timing, "INTERACTIVE_POLL_S", 0.004)
    monkeypatch.setattr(timing, "DISPLAY_POLL_S", 0.02)
    monkeypatch.setattr(timing, "IDLE_INTERACTIVE_POLL_S", 0.02)
    monkeypatch.setattr(timing, "IDLE_DISPLAY_POLL_S", 0.03)
    monkeypatch.setattr(timing, "STRIP_CHECK_S", 0.03)  # every strip heartbeat a POLL
    monkeypatch.setattr(timing, "T_RESP_S", 0.004)
    monkeypatch.setattr(timing, "REPLY_MARGIN_S", 0.004)
    monkeypatch.setattr(timing, "TURNAROUND_FLOOR_S", 0.0002)
    monkeypatch.setattr(timing, "IDLE_FLOOR_S", 0.003)
    monkeypatch.setattr(timing, "BROADCAST_GAP_S", 0.001)
    monkeypatch.setattr(timing, "RESYNC_MIN_INTERVAL_S", 0.05)
    monkeypatch.setattr(timing, "LINK_DOWN_RETRY_S", 0.01)
    monkeypatch.setattr(health, "PROBE_S", 0.03)


# --- an in-memory device ------------------------------------------------------------------------


class FakeDevice:
    """Just enough of an HB/1 device: POLL with FIFO and ack, INFO, reply cache, switches."""

    def __init__(self, addr: int, device_class: DeviceClass, *, boot_id: int = 0x1234) -> None:
        self.addr = addr
        self.device_class = device_class
        self.uid = bytes((0xA0, addr, 0, 0, 0, 0, 0, 1))
        self.boot_id = boot_id
        self.fifo: deque[tuple[int, Event]] = deque()
        self.evt_seq = 0
        self.executed: list[Request] = []
        self.requests: list[bytes] = []
        self.cache: tuple[int, int, bytes, bytes] | None = None
        self.silent = False
        self.drop_requests = 0
        self.reply_delay = 0.0
        self.state = DeviceState.NONE
        self.status_for: dict[Command, Status] = {}
        self.config: tuple[ConfigItem, ...] = ()
        self.queue(BootEvent(BootReason.POWER_ON))

    def queue(self, event: Event) -> None:
        self.evt_seq = self.evt_seq % 0xFFFF + 1
        self.fifo.append((self.evt_seq, event))

    def reboot(self) -> None:
        self.boot_id += 1
        self.fifo.clear()
        self.evt_seq = 0
        self.cache = None
        self.queue(BootEvent(BootReason.WATCHDOG))

    def handle(self, frame: Frame) -> bytes | None:
        if frame.is_reply or frame.src != HOST_ADDR:
            return None
        group = frame.dst in (BROADCAST_ADDR, self.device_class.group_address)
        if not group and frame.dst != self.addr:
            return None
        if self.silent:
            return None
        if self.drop_requests:
            self.drop_requests -= 1
            return None
        wire = frame.to_bytes()
        self.requests.append(wire)
        if group or frame.noack:
            self.execute(frame)
            return None
        crc = wire[-2:]
        if self.cache is not None and self.cache[:3] == (frame.seq, frame.cmd, crc):
            return self.cache[3]
        reply, flags = self.execute(frame)
        out = Frame(flags, HOST_ADDR, self.addr, frame.seq, frame.cmd, reply.encode()).to_bytes()
        self.cache = (frame.seq, frame.cmd, crc, out)
        return out

    def execute(self, frame: Frame) -> tuple[Reply, FrameFlags]:
        request = decode_request(frame.cmd, frame.payload)
        self.executed.append(request)
        status = self.status_for.get(request.CMD)
        if status is not None:
            return StatusReply(status), FrameFlags.RESP
        if isinstance(request, PollRequest):
            if request.ack_boot_id == self.boot_id and request.ack_evt_seq:
                while self.fifo and (request.ack_evt_seq - self.fifo[0][0]) % 65536 < 32768:
                    self.fifo.popleft()
            flags = FrameFlags.RESP | (FrameFlags.MORE if len(self.fifo) > 1 else 0)
            if not self.fifo:
                return PollReply(self.state, self.boot_id), flags
            seq, event = self.fifo[0]
            reply = PollReply.carrying(
                state=self.state,
                boot_id=self.boot_id,
                pending=len(self.fifo),
                evt_seq=seq,
                event=event,
            )
            return reply, flags
        if isinstance(request, InfoRequest):
            self.state &= ~DeviceState.CONFIG_CHANGED  # §8.2: cleared by answering INFO
            info = InfoReply(self.device_class, 0x10, (1, 0, 0), self.uid, self.boot_id)
            return info, FrameFlags.RESP
        if isinstance(request, ConfigRequest) and not request.items:
            return ConfigReply(self.config), FrameFlags.RESP
        return StatusReply(), FrameFlags.RESP

    def executed_of(self, cls: type[Request]) -> list[Request]:
        return [r for r in self.executed if isinstance(r, cls)]


# --- an in-memory bus ---------------------------------------------------------------------------


@dataclass
class BusMode:
    name: str
    bytewise: bool = False
    loss: float = 0.0
    delay: float = 0.0
    echo: bool = False


MODES = [
    BusMode("whole"),
    BusMode("bytewise", bytewise=True),
    BusMode("lossy", loss=0.1),
    BusMode("delayed", delay=0.003),
    BusMode("echo", echo=True, bytewise=True),
]


class FakeBus:
    """Moves the master's writes to the devices and their replies back, per ``mode``."""

    def __init__(self, master: BusMaster, devices: list[FakeDevice], mode: BusMode) -> None:
        self.master = master
        self.devices = devices
        self.mode = mode
        self.rng = random.Random(7)
        self.decoder = FrameDecoder()
        self.frames: list[Frame] = []
        self._waiters: list[asyncio.Future[None]] = []
        self.connected = True
        master.link.attach(self.write)

    def write(self, data: bytes) -> None:
        if not self.connected:
            self._notify()
            raise ConnectionError("unplugged")
        # Like a real half-duplex line: our echo first, then the reply, never interleaved.
        line = bytearray(data if self.mode.echo else b"")
        for frame in self.decoder.feed(data):
            self.frames.append(frame)
            if self._lost():
                continue
            for dev in self.devices:
                reply = dev.handle(frame)
                if reply is None or self._lost():
                    continue
                if dev.reply_delay:
                    self._deliver(reply, dev.reply_delay)
                else:
                    line += reply
        if line:
            self._deliver(bytes(line), self.mode.delay)
        self._notify()

    def _lost(self) -> bool:
        return self.mode.loss > 0 and self.rng.random() < self.mode.loss

    def _deliver(self, data: bytes, delay: float) -> None:
        loop = asyncio.get_running_loop()
        if self.mode.bytewise:
            loop.call_later(delay, self._drip, data)
        else:
            loop.call_later(delay, self._receive, data)

    def _receive(self, data: bytes) -> None:
        self.master.link.data_received(data)
        self._notify()

    def _drip(self, data: bytes) -> None:
        # One byte per loop iteration: call_soon keeps them in order.
        self._receive(data[:1])
        if len(data) > 1:
            asyncio.get_running_loop().call_soon(self._drip, data[1:])

    def _notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def until(self, predicate: Callable[[], bool], limit: float = 5.0) -> None:
        """Wait, woken by bus activity, until ``predicate()`` holds."""
        async with asyncio.timeout(limit):
            while not predicate():
                fut = asyncio.get_running_loop().create_future()
                self._waiters.append(fut)
                await fut


class Recorder:
    """Application side: event and alarm callbacks with switchable failure."""

    def __init__(self) -> None:
        self.events: list[DeviceEvent] = []
        self.alarms: list[Alarm] = []
        self.fail_next = 0
        self.calls = 0
        # Runs inside the master's event delivery, i.e. on the bus task between two steps.
        self.hook: Callable[[DeviceEvent], Awaitable[None]] | None = None

    async def on_event(self, event: DeviceEvent) -> None:
        self.calls += 1
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError("database unavailable")
        if self.hook is not None:
            await self.hook(event)
        self.events.append(event)

    def on_alarm(self, alarm: Alarm) -> None:
        self.alarms.append(alarm)

    def kinds(self, addr: int) -> list[AlarmKind]:
        return [a.kind for a in self.alarms if a.addr == addr]

    def of(self, addr: int) -> list[Event]:
        return [e.event for e in self.events if e.addr == addr]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def make_bus(
    recorder: Recorder,
) -> Iterator[Callable[..., tuple[BusMaster, FakeBus, list[FakeDevice]]]]:
    masters: list[BusMaster] = []

    def make(
        *specs: tuple[int, DeviceClass],
        mode: BusMode | None = None,
        start: bool = True,
        **options: Any,
    ) -> tuple[BusMaster, FakeBus, list[FakeDevice]]:
        master = BusMaster(
            name="t",
            baud=BAUD,
            on_event=recorder.on_event,
            on_alarm=recorder.on_alarm,
            rng=random.Random(1),
            **options,
        )
        devices = [FakeDevice(addr, cls) for addr, cls in specs]
        bus = FakeBus(master, devices, mode or BusMode("whole"))
        for dev in devices:
            master.add_device(dev.addr, dev.device_class, uid=dev.uid)
        if start:
            master.start()
        masters.append(master)
        return master, bus, devices

    yield make
    for master in masters:
        # Whatever the test did, the master must not leak pending reply futures.
        assert all(fut.done() for _, fut in master._pending.values())


PAD, CALLER, STRIP = DeviceClass.PAD, DeviceClass.CALLER, DeviceClass.STRIP


# --- tests --------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.name)
async def test_events_delivered_once_each_and_acked(
    make_bus: Callable[..., tuple[BusMaster, FakeBus, list[FakeDevice]]],
    recorder: Recorder,
    mode: BusMode,
) -> None:
    master, bus, (pad, caller, _) = make_bus((5, PAD), (7, CALLER), (3, STRIP), mode=mode)
    pad.queue(RatingEvent(0xCAFEBABE, 5))
    for key in (KeyCode.CALL_NEXT, KeyCode.RECALL, KeyCode.FINISH):
        caller.queue(KeyEvent(key))
    await bus.until(lambda: len(recorder.events) >= 7 and not any(d.fifo for d in bus.devices))
    await master.stop()
    assert recorder.of(5) == [BootEvent(BootReason.POWER_ON), RatingEvent(0xCAFEBABE, 5)]
    assert recorder.of(7) == [
        BootEvent(BootReason.POWER_ON),
        KeyEvent(KeyCode.CALL_NEXT),
        KeyEvent(KeyCode.RECALL),
        KeyEvent(KeyCode.FINISH),
    ]
    assert recorder.of(3) == [BootEvent(BootReason.POWER_ON)]
    keys = [e.key for e in recorder.events]
    assert len(set(keys)) == len(keys)
    assert {e.uid for e in recorder.events if e.addr == 7} == {caller.uid}
    assert master.device(7).ack == (0x1234, 4)
    if mode.echo:
        assert master.link.counters.echoes > 0
    if mode.loss:
        assert master.stats.retries > 0


async def test_contact_reads_info_then_resyncs_desired_state(
    make_bus: Callable[..., tuple[BusMaster, FakeBus, list[FakeDevice]]],
) -> None:
    master, bus, (pad,) = make_bus((5, PAD), start=False)
    clerk = PadClerkRequest("3号窗口", "1024", "张三")
    master.set_desired_state(5, [clerk])
    master.start()
    await bus.until(lambda: bool(pad.executed_of(PadClerkRequest)))
    kinds = [type(r).__name__ for r in pad.executed]
    assert kinds[:3] == ["PollRequest", "InfoRequest", "PadClerkRequest"]
    assert master.device(5).info is not None
    assert master.device(5).health is DeviceHealth.ONLINE


async def test_event_not_acked_when_callback_raises(
    make_bus: Callable[..., tuple[BusMaster, FakeBus, list[FakeDevice]]],
    recorder: Recorder,
) -> None:
    recorder.fail_next = 2
    master, bus, (caller,) = make_bus((7, CALLER))
    await bus.until(lambda: len(recorder.events) == 1)
    assert recorder.calls == 3  # twice refused, redelivered, then committed
    assert master.stats.event_callback_errors == 2
    assert recorder.events[0].key == (caller.uid, 0x1234, 1)
    await bus.until(lambda: not caller.fifo)
    # Every POLL before the commit carried no ack for the event.
    polls = caller.executed_of(PollRequest)
    assert polls[0] == PollRequest(0, 0)


async def test_duplicate_delivery_after_lost_ack_is_suppressed(
    make_bus: Callable[..., tuple[BusMaster, FakeBus, list[FakeDevice]]],
    recorder: Recorder,
) -> None:
    _, bus, (caller,) = make_bus((7, CALLER))
    await bus.until(lambda: len(recorder.events) == 1)
    # The POLL carrying the ack is lost: the device sends the same event again.
    caller.drop_requests = 1
    await bus.until(lambda: not caller.fifo)
    assert len(recorder.events) == 1


async def test_a_desired_command_replaced_before_it_went_out_is_dropped(
    make_bus: Callable[..., tuple[BusMaster, FakeBus, list[FakeDevice]]],
) -> None:
    master, bus, (strip,) = make_bus((3, STRIP))
    await bus.until(
        lambda: (
            master.device(3).health is DeviceHealth.ONLINE
            and not strip.fifo  # its boot event taken, and the resync it causes done
            and not master.device(3).resyncing
        )
    )
    first = ShowTextRequest(mode=DisplayMode.FLASH, color=1, hold_s=10, text="请A001号到3号窗口")
    second = ShowTextRequest(mode=DisplayMode.FLASH, color=1, hold_s=10, text="请A002号到3号窗口")
    master.set_desired_state(3, (first,))
    queued = asyncio.create_task(master.send_desired(3, first, priority=Priority.CALL))
    # The next call replaces the state before the first command reached the line.
    master.set_desired_state(3, (second,))
    sent = await master.send_desired(3, second, priority=Priority.CALL)
    assert (await queued, sent) == (False, True)
    shown = strip.executed_of(ShowTextRequest)
    assert shown == [second]
    assert master.stats.superseded == 1
    # A command still in the state goes out, even when sent again (a recall flashes again).
    assert await master.send_desired(3, second, priority=Priority.CALL)
    assert strip.executed_of(ShowTextRequest) == [*shown, second]


async def test_retry_repeats_the_request_byte_for_byte(
    make_bus: Callable[..., tuple[BusMaster, FakeBus, list[FakeDevice]]],
) -> None:
    master, bus, (strip,) = make_bus((3, STRIP))
    await bus.until(lambda: master.device(3).health is DeviceHealth.ONLINE)
    strip.drop_requests = 2
    msg = ShowTextRequest(mode=DisplayMode.FLASH, color=1, hold_s=10, text="请A001号到3号窗口")
    reply = await master.request(3, msg, priority=Priority.CALL)
    assert reply == StatusReply()
    sent = [f for f in bus.frames if f.cmd == Command.SHOW_TEXT]
    assert len(sent) == 3
    assert len({f.to_bytes() for f in sent}) == 1
    assert master.stats.retries >= 2
    assert strip.executed_of(ShowTextRequest) == [msg]


async def test_lost_reply_is_answered_from_the_device_cache(
    make_bus: Callable[..., tuple[BusMaster, FakeBus, list[FakeDevice]]],
) -> None:
    master, bus, (strip,) = make_bus((3, STRIP))
    await bus.until(lambda: master.device(3).health is DeviceHealth.ONLINE)
    original = bus._lost
    lose = iter([False, True])  # request arrives, its reply is lost; then normal
    bus._lost = lambda: next(lose, False) or original()  # type: ignore[method-assign]
    await master.request(3, ClearRequest(0))
    assert strip.executed_of(ClearRequest) == [ClearRequest(0)]
    assert len([f for f in bus.frames if f.cmd == Command.CLEAR]) == 2


async def test_late_reply_to_an_old_seq_is_dropped(
    make_bus: Callable[..., tuple[BusMaster, FakeBus, list[FakeDevice]]],
) -> None:
    master, bus, (strip,) = make_bus((3, STRIP))
    await bus.until(lambda: master.device(3).health is DeviceHealth.ONLINE)
    strip.reply_delay = 1.0  # far beyond every attempt's timeout
    with pytest.raises(DeviceTimeoutError) as info:
        await master.request(3, ClearRequest(1))
    assert isinstance(info.value, TimeoutError)
    assert info.value.attempts == timing.MAX_ATTEMPTS
    strip.reply_delay = 0.0
    await bus.until(lambda: master.stats.late_replies >= 1, limit=3.0)
    assert master.device(3).health is not DeviceHealth.OFFLINE


async def test_offline_after_three_failures_then_probe_recovery_and_resync(
    make_bus: Callable[..., tuple[BusMaster, FakeBus, list[FakeDevice]]],
    recorder: Recorder,
) -> None:
    master, bus, (pad, _) = make_bus((5, PAD), (7, CALLER))
    master.set_desired_state(5, [PadClerkRequest("3号窗口", "1024", "张三")])
    await bus.until(lambda: bool(pad.executed_of(PadClerkRequest)))
    pad.silent = True
    await bus.until(lambda: master.device(5).health is DeviceHealth.OFFLINE)
    assert recorder.kinds(5) == [AlarmKind.OFFLINE]
    with pytest.raises(DeviceOfflineError):
        await master.request(5, PadRateRequest(1))
    # The neighbour keeps being polled while its neighbour is offline.
    polls = master.device(7).polls
    await bus.until(lambda: master.device(7).polls > polls + 5)
    # Probes back off: single POLL attempts, spaced more and more widely up to the cap.
    probes_before = len(bus.frames)
    pad.silent = False
    pad.executed.clear()
    await bus.until(lambda: master.device(5).health is DeviceHealth.ONLINE)
    assert recorder.kinds(5) == [AlarmKind.OFFLINE, AlarmKind.ONLINE]
    await bus.until(lambda: bool(pad.executed_of(PadClerkRequest)))
    names = [type(r).__name__ for r in pad.executed]
    assert names[:3] == ["PollRequest", "InfoRequest", "PadClerkRequest"]
    assert len(bus.frames) > probes_before


async def probe_gaps(master: BusMaster, bus: FakeBus, addr: int, count: int) -> list[float]:
    """Wait until ``addr`` is OFFLINE, then time ``count`` probes; returns the gaps (s)."""
    await bus.until(lambda: master.device(addr).health is DeviceHealth.OFFLINE)
    loop = asyncio.get_running_loop()
    stamps: list[float] = []
    seen = len(bus.frames)

    def probed() -> bool:
        nonlocal seen
        stamps.extend(loop.time() for frame in bus.frames[seen:] if frame.dst == addr)
        seen = len(bus.frames)
        return len(stamps) >= count

    await bus.until(probed)
    probes = [f for f in bus.frames if f.dst == addr][-count:]
    assert all(f.cmd == Command.POLL for f in probes)
    assert len({f.seq for f in probes}) == len(probes)  # one attempt each, no retry bursts
    return [b - a for a, b in itertools.pairwise(stamps)]


async def test_offline_device_is_probed_at_the_spec_period(
    make_bus: Callable[..., tuple[BusMaster, FakeBus, list[FakeDevice]]],
) -> None:
    master, bus, (strip,) = make_bus((3, STRIP))
    await bus.until(lambda: master.device(3).health is DeviceHealth.ONLINE)
    assert master.offline_probe_s == health.PROBE_S
    strip.silent = True
    gaps = await probe_gaps(master, bus, 3, 4)
    # Delays can only stretch under load, so lower bounds are safe; the upper bound catches a
    # backoff that grows (a doubling from a short first delay would fail one of the two).
    assert all(g >= health.PROBE_S for g in gaps)
    assert min(gaps) < 2 * health.PROBE_S


async def test_offline_probe_period_follows_the_bus_option(
    make_bus: Callable[..., tuple[BusMaster, FakeBus, list[FakeDevice]]],
) -> None:
    master, bus, (strip,) = make_bus((3, STRIP), offline_probe_s=0.12)
    await bus.until(lambda: master.device(3).health is DeviceHealth.ONLINE)
    strip.silent = True
    gaps = await probe_gaps(master, bus, 3, 3)
    assert all(g >= 0.12 for g in gaps)  # the spec period here is 0.03 s


@pytest.mark.parametrize("failures", [1, 5])
async def test_offline_after_the_configured_number_of_failures(
    make_bus: Callable[..., tuple[BusMaster, FakeBus, list[FakeDevice]]],
    recorder: Recorder,
    failures: int,
) -> None:
    master, bus, (strip,) = make_bus((3, STRIP), offline_after_failures=failures)
    await bus.until(lambda: master.device(3).health is DeviceHealth.ONLINE)
    seen: list[int] = [0]

    def watch() -> bool:
        status = master.device(3)
        if status.health is not DeviceHealth.OFFLINE:
            seen.append(status.failures)
        return status.health is DeviceHealth.OFFLINE

    strip.silent = True
    await bus.until(watch)
    assert master.device(3).failures == failures
    assert max(seen) == failures - 1  # still polled normally until the threshold
    assert recorder.kinds(3) == [AlarmKind.OFFLINE]
    assert recorder.alarms[-1].detail == f"{failures} failed transactions"


def test_health_tracker_threshold() -> None:
    tracker = health.HealthTracker(offline_after=2)
    tracker.success()
    states = []
    for _ in range(2):
        tracker.failure()
        states.append(tracker.state)
    assert states == [DeviceHealth.SUSPECT, DeviceHealth.OFFLINE]
    assert tracker.success() is DeviceHealth.OFFLINE
    assert (tracker.state, tracker.failures) == (DeviceHealth.ONLINE, 0)


async def test_reply_timeout_follows_the_bus_option(
    make_bus: Callable[..., tuple[BusMaster, FakeBus, list[FakeDevice]]],
) -> None:
    # The device answers after 40 ms: far beyond the computed timeout at this speed, inside
    # the configured one. Without the option every attempt times out.
    master, bus, (strip,) = make_bus((3, STRIP), reply_timeout_s=0.2)
    await bus.until(lambda: master.device(3).info is not None)
    assert timing.reply_timeout(BAUD, 64) < 0.04
    strip.reply_delay = 0.04
    timeouts = master.stats.timeouts
    reply = await master.request(3, ClearRequest(0))
    assert reply == StatusReply()
    assert master.stats.timeouts == timeouts


async def test_reply_timeout_option_applies_to_every_attempt(
    make_bus: Callable[..., tuple[BusMaster, FakeBus, list[FakeDevice]]],
) -> None:
    master, bus, (strip,) = make_bus((3, STRIP), reply_timeout_s=0.05)
    await bus.until(lambda: master.device(3).info is not None)
    strip.silent = True
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(DeviceTimeoutError):
        await master.request(3, ClearRequest(0))
    # Three attempts, each waiting the configured 50 ms (computed here: about 9 ms).
    assert loop.time() - started >= 3 * 0.05


async def test_reboot_triggers_resync_and_resets_ack(
    make_bus: Callable[..., tuple[BusMaster, FakeBus, list[FakeDevice]]],
    recorder: Recorder,
) -> None:
    master, bus, (strip,) = make_bus((3, STRIP))
    idle = ShowTextRequest(text="欢迎光临")
    master.set_desired_state(3, lambda: [idle])
    await bus.until(lambda: len(strip.executed_of(ShowTextRequest)) == 1 and not strip.fifo)
    strip.reboot()
    await bus.until(lambda: len(strip.executed_of(ShowTextRequest)) == 2)
    assert AlarmKind.REBOOTED in recorder.kinds(3)
    await bus.until(lambda: not strip.fifo)
    assert recorder.events[-1].boot_id == 0x1235
    assert recorder.events[-1].evt_seq == 1
    assert master.device(3).ack == (0x1235, 1)


async def test_resync_sends_the_state_desired_when_it_runs_not_when_scheduled(
    make_bus: Callable[..., tuple[BusMaster, FakeBus, list[FakeDevice]]],
    recorder: Recorder,
) -> None:
    master, bus, (strip,) = make_bus((3, STRIP))
    old = ShowTextRequest(text="请A001号到3号窗口")
    new = ShowTextRequest(text="请A002号到3号窗口")
    master.set_desired_state(3, [old])
    await bus.until(lambda: strip.executed_of(ShowTextRequest) == [old] and not strip.fifo)
    sent: list[asyncio.Task[Reply]] = []

    async def next_call(event: DeviceEvent) -> None:
        # The reboot's BOOT event is delivered after the master has scheduled the resync
        # (same POLL reply) and before the resync runs: the hall calls the next ticket now.
        if event.boot_id != 0x1235 or sent:
            return
        master.set_desired_state(3, [new])
        sent.append(asyncio.create_task(master.request(3, new, priority=Priority.CALL)))
        await asyncio.sleep(0)  # yield once: the task queues its CALL job

    recorder.hook = next_call
    mark = len(strip.executed)
    strip.reboot()
    await bus.until(lambda: bool(sent) and sent[0].done())
    # The resync (queued at the lowest priority, before the call) may only follow the call.
    await bus.until(lambda: master.device(3).resyncs == 2 and master.stats.resyncs == 2)
    await bus.until(lambda: len(strip.executed_of(ShowTextRequest)) >= 3)
    polls = master.device(3).polls
    await bus.until(lambda: master.device(3).polls > polls + 3)  # let any stale job run
    shown = [r for r in strip.executed[mark:] if isinstance(r, ShowTextRequest)]
    assert old not in shown
    assert shown[-1] == new


async def test_a_command_queued_while_a_resync_runs_goes_after_it(
    make_bus: Callable[..., tuple[BusMaster, FakeBus, list[FakeDevice]]],
) -> None:
    master, bus, (strip,) = make_bus((3, STRIP))
    idle = ShowTextRequest(region=0, text="3号窗口")
    old = ShowTextRequest(region=1, text="请A001号")
    new = ShowTextRequest(region=1, text="请A002号")
    master.set_desired_state(3, [idle, old])
    await bus.until(lambda: strip.executed_of(ShowTextRequest) == [idle, old] and not strip.fifo)
    await bus.until(lambda: not master.device(3).resyncing)
    sent: list[asyncio.Task[Reply]] = []
    real_execute = strip.execute

    def execute(frame: Frame) -> tuple[Reply, FrameFlags]:
        out = real_execute(frame)
        if strip.executed[-1] == idle and not sent:
            # The resync's first command is on the line; the second (old) is still to come.
            master.set_desired_state(3, [idle, new])
            sent.append(asyncio.create_task(master.request(3, new, priority=Priority.CALL)))
        return out

    strip.execute = execute  # type: ignore[method-assign]
    mark = len(strip.executed)
    master.resync(3)
    await bus.until(lambda: bool(sent) and sent[0].done() and not master.device(3).resyncing)
    shown = [r for r in strip.executed[mark:] if isinstance(r, ShowTextRequest)]
    assert shown == [idle, old, new]


async def test_host_lost_bit_triggers_rate_limited_resync(
    make_bus: Callable[..., tuple[BusMaster, FakeBus, list[FakeDevice]]],
) -> None:
    master, bus, (caller,) = make_bus((7, CALLER))
    master.set_desired_state(7, [ClearRequest(0)])
    await bus.until(lambda: len(caller.executed_of(ClearRequest)) == 1)
    caller.state = DeviceState.HOST_LOST
    await bus.until(lambda: len(caller.executed_of(ClearRequest)) == 2)
    polls_at_resync = master.device(7).polls
    await bus.until(lambda: master.device(7).polls > polls_at_resync + 3)
    # Still latched, but resyncs are at least RESYNC_MIN_INTERVAL_S apart, not one per poll.
    assert len(caller.executed_of(ClearRequest)) <= 3


async def test_priority_order_calls_before_ratings_before_displays(
    make_bus: Callable[..., tuple[BusMaster, FakeBus, list[FakeDevice]]],
) -> None:
    master, bus, _ = make_bus((3, STRIP), (5, PAD), start=False)
    rows = ShowRowsRequest(0, ())
    rate = PadRateRequest(0x01020304)
    call = ShowTextRequest(text="请A001号")
    tasks = [
        asyncio.create_task(master.request(3, rows, priority=Priority.DISPLAY)),
        asyncio.create_task(master.request(5, rate, priority=Priority.RATING)),
        asyncio.create_task(master.request(3, call, priority=Priority.CALL)),
    ]
    await asyncio.sleep(0)  # let the three requests reach the queue before the bus starts
    master.start()
    await asyncio.gather(*tasks)
    background = (Command.POLL, Command.INFO, Command.SET_TIME)  # contact and its resync
    order = [f.cmd for f in bus.frames if f.cmd not in background]
    assert order == [Command.SHOW_TEXT, Command.PAD_RATE_REQ, Command.SHOW_ROWS]


async def test_the_call_a_key_causes_goes_out_before_another_device_is_polled(
    make_bus: Callable[..., tuple[BusMaster, FakeBus, list[FakeDevice]]],
    recorder: Recorder,
) -> None:
    # Four callers keep the poll schedule saturated: some poll is always due.
    master, bus, devices = make_bus((3, STRIP), *((a, CALLER) for a in (7, 8, 9, 10)))
    caller, strip = devices[1], devices[0]
    call = ShowTextRequest(mode=DisplayMode.FLASH, color=1, hold_s=10, text="请A001号到3号窗口")
    sent: list[asyncio.Task[Reply]] = []

    async def decide_after_commit(event: DeviceEvent) -> None:
        if isinstance(event.event, KeyEvent):
            # Like the server: the call is decided after the commit, in another task.
            sent.append(asyncio.create_task(master.request(3, call, priority=Priority.CALL)))

    recorder.hook = decide_after_commit
    # Every BOOT event delivered and acknowledged.
    await bus.until(lambda: all(master.device(d.addr).polls >= 2 for d in devices))
    caller.queue(KeyEvent(KeyCode.CALL_NEXT))
    await bus.until(lambda: bool(sent) and sent[0].done())
    assert strip.executed_of(ShowTextRequest) == [call]
    i = next(n for n, f in enumerate(bus.frames) if f.cmd == Command.SHOW_TEXT)
    before = bus.frames[i - 1]
    # Right after the POLL that fetched the key (it still acknowledges only the BOOT event).
    assert before.dst == 7
    assert decode_request(before.cmd, before.payload) == PollRequest(1, caller.boot_id)


async def test_the_call_of_a_slow_server_still_goes_before_the_next_poll(
    make_bus: Callable[..., tuple[BusMaster, FakeBus, list[FakeDevice]]],
    recorder: Recorder,
) -> None:
    master, bus, devices = make_bus((3, STRIP), *((a, CALLER) for a in (7, 8, 9, 10)))
    caller = devices[1]
    call = ShowTextRequest(mode=DisplayMode.FLASH, color=1, hold_s=10, text="请A001号到3号窗口")
    sent: list[asyncio.Task[Reply]] = []

    async def decide_slowly() -> Reply:
        # A loaded server takes 50 ms after the commit to decide the call: longer than a POLL
        # exchange at any speed, well within the hold.
        await asyncio.sleep(0.05)
        return await master.request(3, call, priority=Priority.CALL)

    async def decide_after_commit(event: DeviceEvent) -> None:
        if isinstance(event.event, KeyEvent):
            sent.append(asyncio.create_task(decide_slowly()))

    recorder.hook = decide_after_commit
    await bus.until(lambda: all(master.device(d.addr).polls >= 2 for d in devices))
    caller.queue(KeyEvent(KeyCode.CALL_NEXT))
    await bus.until(lambda: bool(sent) and sent[0].done())
    i = next(n for n, f in enumerate(bus.frames) if f.cmd == Command.SHOW_TEXT)
    # No other device's poll between the POLL that fetched the key and the call.
    assert bus.frames[i - 1].dst == 7
    assert bus.frames[i - 1].cmd == Command.POLL


async def test_a_key_that_causes_no_command_does_not_stall_the_polls(
    make_bus: Callable[..., tuple[BusMaster, FakeBus, list[FakeDevice]]],
    recorder: Recorder,
) -> None:
    master, bus, devices = make_bus(*((a, CALLER) for a in (7, 8)))
    await bus.until(lambda: all(master.device(d.addr).polls >= 2 for d in devices))
    assert master.key_hold_s == timing.KEY_HOLD_MAX_S
    devices[0].queue(KeyEvent(KeyCode.RECALL))
    devices[1].queue(KeyEvent(KeyCode.PAUSE))
    await bus.until(lambda: not devices[0].fifo and not devices[1].fifo)
    assert recorder.of(7)[-1] == KeyEvent(KeyCode.RECALL)
    assert recorder.of(8)[-1] == KeyEvent(KeyCode.PAUSE)


async def test_status_error_is_raised_with_fields(
    make_bus: Callable[..., tuple[BusMaster, FakeBus, list[FakeDevice]]],
) -> None:
    master, bus, (pad,) = make_bus((5, PAD))
    pad.status_for[Command.PAD_RATE_REQ] = Status.STATE_CONFLICT
    with pytest.raises(DeviceStatusError) as info:
        await master.request(5, PadRateRequest(9))
    assert (info.value.addr, info.value.cmd, info.value.status) == (5, 0x22, 5)
    sent = [f for f in bus.frames if f.cmd == Command.PAD_RATE_REQ]
    assert info.value.seq == sent[-1].seq
    reply = await master.request(5, PadRateRequest(9), check=False)
    assert reply == StatusReply(Status.STATE_CONFLICT)
    assert master.device(5).health is DeviceHealth.ONLINE


async def test_broadcast_is_noack_and_not_answered(
    make_bus: Callable[..., tuple[BusMaster, FakeBus, list[FakeDevice]]],
) -> None:
    master, bus, devices = make_bus((3, STRIP), (5, PAD))
    await master.broadcast(SetTimeRequest(1716166800))
    (frame,) = [f for f in bus.frames if f.cmd == Command.SET_TIME]
    assert frame.dst == BROADCAST_ADDR
    assert frame.flags == FrameFlags.NOACK
    assert all(d.executed_of(SetTimeRequest) == [SetTimeRequest(1716166800)] for d in devices)
    with pytest.raises(EncodeError):
        await master.send_noack(0xF3, PadRateRequest(1))


async def test_request_longer_than_device_max_payload_is_refused(
    make_bus: Callable[..., tuple[BusMaster, FakeBus, list[FakeDevice]]],
) -> None:
    master, bus, _ = make_bus((3, STRIP), start=False)
    # Before INFO the master assumes the smallest max_payload a device may declare (128).
    with pytest.raises(EncodeError, match="max_payload"):
        async with asyncio.timeout(1):
            await master.request(3, ShowTextRequest(text="x" * 122))
    await master.stop()
    assert bus.frames == []


async def test_keeps_receiving_past_timeout_while_bytes_arrive(
    make_bus: Callable[..., tuple[BusMaster, FakeBus, list[FakeDevice]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A generous idle gap: the 2 ms drip below must not be mistaken for a dead line when a
    # loaded machine delays a timer callback; the reply timeout does not depend on it.
    monkeypatch.setattr(timing, "IDLE_FLOOR_S", 0.250)
    master, bus, (strip,) = make_bus((3, STRIP), mode=BusMode("bytewise", bytewise=True))
    await bus.until(lambda: master.device(3).info is not None)
    # Stretch the reply: bytes 2 ms apart (below T_IDLE), the whole reply ~100 ms, far longer
    # than the computed reply timeout. The first attempt must still get it.
    loop = asyncio.get_running_loop()

    def slow_drip(data: bytes) -> None:
        bus._receive(data[:1])
        if len(data) > 1:
            loop.call_later(0.002, slow_drip, data[1:])

    monkeypatch.setattr(bus, "_drip", slow_drip)
    assert timing.reply_timeout(BAUD, 64) < 0.040
    retries = master.stats.retries
    reply = await master.request(3, InfoRequest())
    assert isinstance(reply, InfoReply)
    assert reply.uid == strip.uid
    assert master.stats.retries == retries


async def test_cancelled_caller_stays_cancelled(
    make_bus: Callable[..., tuple[BusMaster, FakeBus, list[FakeDevice]]],
) -> None:
    master, bus, (strip,) = make_bus((3, STRIP))
    strip.silent = True
    task = asyncio.create_task(master.request(3, ClearRequest(0)))
    await bus.until(lambda: any(f.cmd == Command.CLEAR for f in bus.frames))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await master.stop()
    assert not master._pending


async def test_stop_fails_queued_requests(
    make_bus: Callable[..., tuple[BusMaster, FakeBus, list[FakeDevice]]],
) -> None:
    master, _, _ = make_bus((3, STRIP), start=False)
    task = asyncio.create_task(master.request(3, ClearRequest(0)))
    await asyncio.sleep(0)  # the request reaches the queue
    await master.stop()
    with pytest.raises(Exception, match="stopped"):
        await task


async def test_link_down_does_not_mark_devices_offline(
    make_bus: Callable[..., tuple[BusMaster, FakeBus, list[FakeDevice]]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    master, bus, _ = make_bus((3, STRIP), (5, PAD))
    await bus.until(lambda: master.device(5).health is DeviceHealth.ONLINE)
    caplog.set_level(logging.WARNING)
    bus.connected = False
    await bus.until(lambda: caplog.text.count("write failed") >= 3)
    assert "write failed" in caplog.text
    assert master.device(5).health is not DeviceHealth.OFFLINE
    bus.connected = True
    polls = master.device(5).polls
    await bus.until(lambda: master.device(5).polls > polls)


async def test_stats_utilisation_and_cycle(
    make_bus: Callable[..., tuple[BusMaster, FakeBus, list[FakeDevice]]],
) -> None:
    master, bus, _ = make_bus((5, PAD), (7, CALLER), (3, STRIP))
    await bus.until(lambda: master.device(7).polls > 20)
    stats = master.stats
    now = asyncio.get_running_loop().time()
    assert 0.0 < stats.utilisation(now) <= 1.0
    assert stats.poll_cycle_s is not None
    assert stats.poll_cycle_s >= timing.INTERACTIVE_POLL_S * 0.9
    assert stats.bad_frames == 0
    assert stats.polls > 40


class _BusyOnce(dict[Command, Status]):
    """A pad that answers BUSY once per entry, then serves normally."""

    def get(self, key: Command, default: Status | None = None) -> Status | None:  # type: ignore[override]
        return self.pop(key, default)


async def test_busy_is_retried_as_a_new_transaction_after_the_pause(
    make_bus: Callable[..., tuple[BusMaster, FakeBus, list[FakeDevice]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(timing, "BUSY_RETRY_S", 0.02)
    master, bus, (pad,) = make_bus((5, PAD))
    await bus.until(lambda: master.device(5).info is not None)
    pad.status_for = _BusyOnce({Command.PAD_RATE_REQ: Status.BUSY})  # then it frees up
    reply = await master.request(5, PadRateRequest(77), busy_retries=3)
    assert reply == StatusReply()
    sent = [f for f in bus.frames if f.cmd == Command.PAD_RATE_REQ]
    assert len(sent) >= 2
    assert len({f.seq for f in sent}) == len(sent)  # BUSY is cached: only a new SEQ helps
    pad.status_for = {Command.PAD_RATE_REQ: Status.BUSY}  # busy for good this time
    with pytest.raises(DeviceStatusError) as info:
        await master.request(5, PadRateRequest(78), busy_retries=1)
    assert info.value.status == Status.BUSY


async def test_uid_change_at_an_address_raises_an_alarm(
    make_bus: Callable[..., tuple[BusMaster, FakeBus, list[FakeDevice]]],
    recorder: Recorder,
) -> None:
    master, bus, (strip,) = make_bus((3, STRIP), start=False)
    master.add_device(3, STRIP, uid=bytes(8))  # the registry expects another unit here
    master.start()
    await bus.until(lambda: master.device(3).info is not None)
    assert recorder.kinds(3) == [AlarmKind.UID_CHANGED]
    assert master.device(3).uid == strip.uid


async def test_config_changed_locally_rereads_info_and_config_without_resync(
    make_bus: Callable[..., tuple[BusMaster, FakeBus, list[FakeDevice]]],
) -> None:
    master, bus, (strip,) = make_bus((3, STRIP))
    await bus.until(lambda: master.device(3).resyncs == 1 and not strip.fifo)
    assert master.device(3).config is None  # not read without a reason
    infos = len(strip.executed_of(InfoRequest))
    strip.config = (ConfigItem(ConfigTag.BRIGHTNESS, b"\x0c"),)  # set on the device's menu
    strip.state = DeviceState.CONFIG_CHANGED
    await bus.until(lambda: master.device(3).config is not None)
    assert not strip.state & DeviceState.CONFIG_CHANGED
    assert len(strip.executed_of(InfoRequest)) > infos
    assert strip.executed_of(ConfigRequest)[0] == ConfigRequest()  # a read: no TLVs
    assert master.device(3).config == strip.config
    polls = master.device(3).polls
    await bus.until(lambda: master.device(3).polls > polls + 2)
    assert master.device(3).resyncs == 1
    assert len(strip.executed_of(ConfigRequest)) == 1  # once per flag, not on every poll


async def test_resync_ends_with_set_time(
    make_bus: Callable[..., tuple[BusMaster, FakeBus, list[FakeDevice]]],
) -> None:
    clock = [1716166800]
    master, bus, (pad,) = make_bus((5, PAD), start=False, clock=lambda: (clock[0], 480))
    master.set_desired_state(5, [PadClerkRequest("3号窗口", "1024", "张三")])
    master.start()
    await bus.until(lambda: bool(pad.executed_of(SetTimeRequest)))
    names = [type(r).__name__ for r in pad.executed if not isinstance(r, PollRequest)]
    assert names[:3] == ["InfoRequest", "PadClerkRequest", "SetTimeRequest"]
    assert pad.executed_of(SetTimeRequest) == [SetTimeRequest(1716166800, 480)]
    # Every later resync (here a reboot) ends with SET_TIME too, with the time of then.
    clock[0] += 3000
    pad.reboot()
    await bus.until(lambda: len(pad.executed_of(SetTimeRequest)) == 2)
    assert pad.executed_of(SetTimeRequest)[-1] == SetTimeRequest(1716169800, 480)
    assert isinstance(
        [r for r in pad.executed if not isinstance(r, PollRequest)][-2], PadClerkRequest
    )


async def test_set_time_is_broadcast_every_interval(
    make_bus: Callable[..., tuple[BusMaster, FakeBus, list[FakeDevice]]],
) -> None:
    master, bus, _ = make_bus(
        (3, STRIP), (5, PAD), set_time_interval_s=0.05, clock=lambda: (1716166800, 480)
    )

    def broadcasts() -> list[Frame]:
        return [f for f in bus.frames if f.cmd == Command.SET_TIME and f.dst == BROADCAST_ADDR]

    loop = asyncio.get_running_loop()
    started = loop.time()
    await bus.until(lambda: len(broadcasts()) >= 2)
    assert loop.time() - started >= 0.1
    assert all(f.flags == FrameFlags.NOACK for f in broadcasts())
    assert decode_request(Command.SET_TIME, broadcasts()[0].payload) == SetTimeRequest(
        1716166800, 480
    )
    await master.stop()
    count = len(broadcasts())
    await asyncio.sleep(0.12)  # nothing is awaited here: a stopped bus must stay silent
    assert len(broadcasts()) == count


def test_default_clock_is_this_machines_time() -> None:
    master = BusMaster(on_event=Recorder().on_event)
    before = int(time.time())
    request = master.set_time_request()
    assert before <= request.unix <= int(time.time()) + 1
    assert request.tz_min == (time.localtime().tm_gmtoff or 0) // 60
    assert master.set_time_interval_s == 3600.0


async def test_a_failing_step_does_not_stop_the_bus(
    make_bus: Callable[..., tuple[BusMaster, FakeBus, list[FakeDevice]]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    master, bus, (strip, _) = make_bus((3, STRIP), (7, CALLER), start=False)
    real = master._handle_poll_reply
    broken = {3}

    async def flaky(dev: Any, reply: PollReply, **kwargs: Any) -> None:
        if dev.addr in broken:
            broken.clear()
            raise RuntimeError("bug in a handler")
        await real(dev, reply, **kwargs)

    monkeypatch.setattr(master, "_handle_poll_reply", flaky)
    master.start()
    await bus.until(lambda: not broken and master.device(7).polls > 3)
    assert "bus step failed" in caplog.text
    await bus.until(lambda: not strip.fifo)  # the strip's event is processed on a later poll


# --- the poll scheduler ---------------------------------------------------------------------------

IDLE_CALLER = KeypadShowRequest("----", led=0)  # counter closed or paused
BUSY_CALLER = KeypadShowRequest("A001", led=2)


def test_in_use_follows_what_the_device_shows() -> None:
    assert not in_use(CALLER, [IDLE_CALLER])
    assert in_use(CALLER, [KeypadShowRequest("----", led=1)])  # open, nobody called yet
    assert in_use(CALLER, [BUSY_CALLER])
    assert not in_use(PAD, [PadClerkRequest("3号窗口", "", "")])
    assert in_use(PAD, [PadClerkRequest("3号窗口", "1024", "张三")])
    assert in_use(PAD, [PadClerkRequest("3号窗口", "", ""), PadRateRequest(7)])
    assert not in_use(STRIP, [ShowTextRequest(text="3号窗口 欢迎光临")])
    assert in_use(STRIP, [ShowTextRequest(mode=DisplayMode.FLASH, text="请A001号到3号窗口")])
    assert in_use(DeviceClass.KIOSK, [])
    assert in_use(DeviceClass.SCREEN, [])


async def test_devices_in_use_are_polled_most(
    make_bus: Callable[..., tuple[BusMaster, FakeBus, list[FakeDevice]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(timing, "IDLE_INTERACTIVE_POLL_S", 0.1)
    master, bus, devices = make_bus((7, CALLER), (8, CALLER), (3, STRIP), (4, STRIP), start=False)
    master.set_desired_state(7, [BUSY_CALLER])
    master.set_desired_state(8, [IDLE_CALLER])
    master.set_desired_state(3, [ShowTextRequest(mode=DisplayMode.FLASH, text="请A001号")])
    master.set_desired_state(4, [ShowTextRequest(text="4号窗口 欢迎光临")])
    assert [master.device(a).active for a in (7, 8, 3, 4)] == [True, False, True, False]
    master.start()
    await bus.until(lambda: all(not d.fifo for d in devices) and master.device(8).polls >= 2)
    counts = {a: master.device(a).polls for a in (7, 8, 3, 4)}
    await bus.until(lambda: master.device(8).polls >= counts[8] + 4, limit=10)
    done = {a: master.device(a).polls - counts[a] for a in (7, 8, 3, 4)}
    # The idle caller once per IDLE_INTERACTIVE_POLL_S; the busy one whenever the line is free.
    assert done[7] > 3 * done[8]
    # Window strips, showing a call or not, at the idle strips' period (0.03 s here, not the
    # displays' 0.02 s): a strip's POLL only carries BOOT or FAULT (protocol.md §15.2).
    assert master.device(3).period == master.device(4).period == master.idle_display_poll_s
    assert master.idle_display_poll_s > timing.DISPLAY_POLL_S
    assert abs(done[3] - done[4]) <= 2
    # The clerk signs in: the caller is polled as much as the other one from now on.
    master.set_desired_state(8, [KeypadShowRequest("----", led=1)])
    counts = {a: master.device(a).polls for a in (7, 8)}
    await bus.until(lambda: master.device(7).polls >= counts[7] + 20)
    assert master.device(8).polls - counts[8] >= 15


async def test_commands_go_ahead_of_polls(
    make_bus: Callable[..., tuple[BusMaster, FakeBus, list[FakeDevice]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The spec's periods: no poll is overdue while the line is this fast.
    monkeypatch.setattr(timing, "INTERACTIVE_POLL_S", 0.25)
    monkeypatch.setattr(timing, "DISPLAY_POLL_S", 3.0)
    master, bus, devices = make_bus((3, STRIP), *((a, CALLER) for a in (7, 8, 9, 10)))
    await bus.until(lambda: all(not d.fifo for d in devices) and not master.device(3).resyncing)
    calls = [ShowTextRequest(region=n, mode=DisplayMode.FLASH, text="请A001号") for n in range(4)]
    mark = len(bus.frames)
    await asyncio.gather(*(master.request(3, c, priority=Priority.CALL) for c in calls))
    sent = bus.frames[mark:]
    shows = [n for n, f in enumerate(sent) if f.cmd == Command.SHOW_TEXT]
    # At most the exchange already on the line when they were queued goes first, and the
    # callers' polls (none of them overdue) wait for all four; commands and polls taking
    # turns would put three polls between them.
    assert shows[0] <= 1
    assert shows[-1] - shows[0] == 3


@pytest.mark.parametrize(("held_s", "back_to_back"), [(0.25, True), (0.45, False)])
async def test_calls_run_back_to_back_until_a_poll_is_a_whole_period_late(
    make_bus: Callable[..., tuple[BusMaster, FakeBus, list[FakeDevice]]],
    monkeypatch: pytest.MonkeyPatch,
    recorder: Recorder,
    held_s: float,
    back_to_back: bool,
) -> None:
    # Four callers in use, each to be polled at least every 0.2 s; the strip's own heartbeat
    # does not come due during the test.
    monkeypatch.setattr(timing, "INTERACTIVE_POLL_S", 0.2)
    monkeypatch.setattr(timing, "IDLE_DISPLAY_POLL_S", 5.0)
    master, bus, devices = make_bus((3, STRIP), *((a, CALLER) for a in (7, 8, 9, 10)))
    # Every BOOT event stored (the strip's ack waits for its next poll) and the resyncs done.
    await bus.until(
        lambda: (
            len(recorder.events) == 5 and not any(master.device(d.addr).resyncing for d in devices)
        )
    )
    await bus.until(lambda: all(master.device(a).polls >= 2 for a in (7, 8, 9, 10)))
    calls = [ShowTextRequest(region=n, mode=DisplayMode.FLASH, text="请A001号") for n in range(4)]
    sent: list[asyncio.Task[Reply]] = []

    async def slow_commit(event: DeviceEvent) -> None:
        if isinstance(event.event, FaultEvent) and not sent:
            # A slow database holds the bus task (events are delivered on it) while four
            # calls are queued: every caller's poll falls due meanwhile. Held 0.25 s, each
            # is then overdue by less than its period; held 0.45 s, by more.
            sent.extend(
                asyncio.create_task(master.request(3, c, priority=Priority.CALL)) for c in calls
            )
            await asyncio.sleep(held_s)

    recorder.hook = slow_commit
    mark = len(bus.frames)
    devices[1].queue(FaultEvent(FaultCode.KEY_STUCK))
    await bus.until(lambda: len(sent) == 4 and all(t.done() for t in sent))
    after = bus.frames[mark:]
    shows = [n for n, f in enumerate(after) if f.cmd == Command.SHOW_TEXT]
    between = [f for f in after[shows[0] : shows[-1]] if f.cmd == Command.POLL]
    if back_to_back:
        # No caller is a whole period late: the four calls go back to back (taking turns with
        # every overdue poll would have put three polls between them).
        assert between == []
    else:
        # Polls a whole period late take turns with the calls: a burst never starves them.
        assert len(between) == 3


async def test_a_strip_resync_holding_back_a_call_runs_at_the_call_priority(
    make_bus: Callable[..., tuple[BusMaster, FakeBus, list[FakeDevice]]],
    monkeypatch: pytest.MonkeyPatch,
    recorder: Recorder,
) -> None:
    # The spec's periods: the callers are polled whenever the line is free, none overdue;
    # the strip's own heartbeat does not come due during the test.
    monkeypatch.setattr(timing, "INTERACTIVE_POLL_S", 0.25)
    monkeypatch.setattr(timing, "IDLE_DISPLAY_POLL_S", 5.0)
    master, bus, devices = make_bus((3, STRIP), *((a, CALLER) for a in (7, 8, 9, 10)))
    strip = devices[0]
    state = [ShowTextRequest(region=n, text=f"区域{n}") for n in range(6)]
    master.set_desired_state(3, state)
    # Every BOOT event stored (the strip's ack waits for its next poll) and the resyncs done.
    await bus.until(
        lambda: (
            len(recorder.events) == 5 and not any(master.device(d.addr).resyncing for d in devices)
        )
    )
    call = ShowTextRequest(region=0, mode=DisplayMode.FLASH, text="请A001号到3号窗口")
    sent: list[asyncio.Task[Reply]] = []
    real_execute = strip.execute

    def execute(frame: Frame) -> tuple[Reply, FrameFlags]:
        out = real_execute(frame)
        if strip.executed[-1] == state[0] and not sent:
            # The resync's first command is on the line: a call for this strip comes in.
            master.set_desired_state(3, [call, *state[1:]])
            sent.append(asyncio.create_task(master.request(3, call, priority=Priority.CALL)))
        return out

    strip.execute = execute  # type: ignore[method-assign]
    mark = len(bus.frames)
    master.resync(3)
    await bus.until(lambda: bool(sent) and sent[0].done())
    frames = bus.frames[mark:]
    first = next(n for n, f in enumerate(frames) if f.payload == state[0].encode())
    shown = next(n for n, f in enumerate(frames) if f.payload == call.encode())
    polls = [f for f in frames[first:shown] if f.cmd == Command.POLL]
    # The rest of the resync (five texts and SET_TIME) and then the call, with at most the
    # POLL that was on the line when the call came; at the resync's own priority every step
    # would have taken turns with a caller's poll.
    assert len(polls) <= 1
    assert [f.cmd for f in frames[first:shown] if f.dst == 3] == [Command.SHOW_TEXT] * 6 + [
        Command.SET_TIME
    ]


async def test_screen_refreshes_alternate_with_the_polls_of_callers(
    make_bus: Callable[..., tuple[BusMaster, FakeBus, list[FakeDevice]]],
) -> None:
    master, bus, devices = make_bus((0x20, DeviceClass.SCREEN), (7, CALLER))
    await bus.until(lambda: all(master.device(d.addr).polls >= 3 for d in devices))
    mark = len(bus.frames)
    rows = [ShowRowsRequest(n, ()) for n in range(8)]
    await asyncio.gather(*(master.request(0x20, r, priority=Priority.DISPLAY) for r in rows))
    sent = bus.frames[mark:]
    shows = [n for n, f in enumerate(sent) if f.cmd == Command.SHOW_ROWS]
    # Between two refreshes a POLL got the line (the caller's, or the screen's own when its
    # period was up), so the caller waits at most two refreshes for the POLL carrying its key.
    gaps = [sent[a + 1 : b] for a, b in itertools.pairwise(shows)]
    assert all(any(f.cmd == Command.POLL for f in gap) for gap in gaps)
    caller_polls = [any(f.dst == 7 for f in gap) for gap in gaps]
    assert not any(a == b is False for a, b in itertools.pairwise(caller_polls))


async def test_every_command_a_key_causes_goes_out_before_the_next_poll(
    make_bus: Callable[..., tuple[BusMaster, FakeBus, list[FakeDevice]]],
    recorder: Recorder,
) -> None:
    # Four callers polled every 4 ms: their polls are always overdue.
    master, bus, devices = make_bus((3, STRIP), (5, PAD), *((a, CALLER) for a in (7, 8, 9, 10)))
    caller = devices[2]
    call = ShowTextRequest(mode=DisplayMode.FLASH, color=1, hold_s=10, text="请A001号到3号窗口")
    caused = [
        (7, KeypadShowRequest("A001", led=2)),
        (3, call),
        (5, PadClerkRequest("3号窗口", "1", "张三")),
    ]
    sent: list[asyncio.Task[Reply]] = []

    async def decide_after_commit(event: DeviceEvent) -> None:
        if isinstance(event.event, KeyEvent):
            sent.extend(
                asyncio.create_task(master.request(a, m, priority=Priority.CALL)) for a, m in caused
            )

    recorder.hook = decide_after_commit
    await bus.until(lambda: all(master.device(d.addr).polls >= 2 for d in devices))
    await bus.until(lambda: not any(master.device(d.addr).resyncing for d in devices))
    caller.queue(KeyEvent(KeyCode.CALL_NEXT))
    await bus.until(lambda: len(sent) == 3 and all(t.done() for t in sent))
    i = next(n for n, f in enumerate(bus.frames) if f.dst == 7 and f.cmd == Command.KEYPAD_SHOW)
    assert [(f.dst, f.cmd) for f in bus.frames[i : i + 3]] == [
        (7, Command.KEYPAD_SHOW),
        (3, Command.SHOW_TEXT),
        (5, Command.PAD_CLERK),
    ]


async def test_a_display_that_answers_commands_needs_no_heartbeat_poll(
    make_bus: Callable[..., tuple[BusMaster, FakeBus, list[FakeDevice]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(timing, "DISPLAY_POLL_S", 0.1)
    master, bus, _ = make_bus((3, STRIP), (7, CALLER))
    master.set_active(3, True)
    await bus.until(lambda: master.device(3).polls >= 2 and not master.device(3).resyncing)
    polls = master.device(3).polls
    loop = asyncio.get_running_loop()
    end = loop.time() + 0.35
    while loop.time() < end:
        await master.request(3, ClearRequest(0), priority=Priority.CALL)
        await asyncio.sleep(0.02)
    # Answered commands every ~20 ms are its heartbeat: its 0.1 s poll never came due.
    assert master.device(3).polls == polls
    await bus.until(lambda: master.device(3).polls > polls)  # and polls resume afterwards


async def test_a_strip_is_kept_alive_by_noack_set_time_between_its_polls(
    make_bus: Callable[..., tuple[BusMaster, FakeBus, list[FakeDevice]]],
    monkeypatch: pytest.MonkeyPatch,
    recorder: Recorder,
) -> None:
    # Strips' heartbeat every 30 ms here, their POLL only every 0.3 s.
    monkeypatch.setattr(timing, "STRIP_CHECK_S", 0.3)
    master, bus, (strip, _caller) = make_bus((3, STRIP), (7, CALLER))
    await bus.until(lambda: len(recorder.events) == 2 and not master.device(3).resyncing)
    mark, polls, keepalives = len(bus.frames), master.device(3).polls, master.stats.keepalives
    await bus.until(lambda: master.stats.keepalives >= keepalives + 10)
    to_strip = [f for f in bus.frames[mark:] if f.dst == 3]
    alive = [f for f in to_strip if f.cmd == Command.SET_TIME]
    # Unicast, NOACK, a valid SET_TIME: the strip hears a unicast request (no host-lost) and
    # nothing answers; a POLL at most every 0.3 s still fetches BOOT or FAULT.
    assert all(f.flags & FrameFlags.NOACK for f in alive)
    assert all(isinstance(decode_request(f.cmd, f.payload), SetTimeRequest) for f in alive)
    assert master.device(3).polls - polls <= 2
    assert master.device(3).health is DeviceHealth.ONLINE
    # A reboot is found by the next POLL, and the strip is resynced; the heartbeat after the
    # POLL that carried the BOOT event is a POLL again, which acknowledges it.
    strip.reboot()
    await bus.until(lambda: AlarmKind.REBOOTED in recorder.kinds(3), limit=3)
    seen = len(bus.frames)

    def heartbeats() -> list[Frame]:
        return [
            f
            for f in bus.frames[seen:]
            if f.dst == 3
            and (
                f.cmd == Command.POLL or (f.cmd == Command.SET_TIME and f.flags & FrameFlags.NOACK)
            )
        ]

    await bus.until(lambda: bool(heartbeats()))
    assert heartbeats()[0].cmd == Command.POLL
    await bus.until(lambda: not master.device(3).resyncing and not strip.fifo)
    # The caller, interactive, is always POLLed.
    assert not [f for f in bus.frames[mark:] if f.dst == 7 and f.cmd != Command.POLL]


async def test_poll_periods_follow_the_options_when_the_line_is_not_eager(
    make_bus: Callable[..., tuple[BusMaster, FakeBus, list[FakeDevice]]],
) -> None:
    master, bus, (caller,) = make_bus((7, CALLER), start=False, eager_polling=False)
    master.add_device(7, CALLER, uid=caller.uid, poll_interval=0.06)
    master.start()
    await bus.until(lambda: master.device(7).polls >= 2 and not caller.fifo)
    loop = asyncio.get_running_loop()
    polls, started = master.device(7).polls, loop.time()
    await bus.until(lambda: master.device(7).polls >= polls + 4)
    # 4 polls at least 60 ms apart (the test's default period is 4 ms).
    assert loop.time() - started >= 4 * 0.06 * 0.95
    assert master.device(7).period == 0.06
