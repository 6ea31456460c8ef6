"""The optional attention poll (docs/protocol.md §17): frames, marks, emulators, master."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import AsyncIterator, Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge import attention, timing
from firmware_bridge.codec import BROADCAST_ADDR, Frame, FrameDecoder
from firmware_bridge.constants import Caps, Command, DeviceClass, EventType, KeyCode, Status
from firmware_bridge.emulators.base import Hb1Device, RequestLog
from firmware_bridge.emulators.bus import Hb1Bus, start_bus_on_pty
from firmware_bridge.emulators.display import StripEmulator
from firmware_bridge.emulators.keypad import CallerEmulator
from firmware_bridge.emulators.line import LineEndpoint
from firmware_bridge.errors import DecodeError, EncodeError
from firmware_bridge.master import BusMaster, DeviceEvent, Priority
from firmware_bridge.messages import (
    AttnRequest,
    KeyEvent,
    KeypadShowRequest,
    PollRequest,
    decode_request,
)
from firmware_bridge.pty import PtyPair
from firmware_bridge.transport import open_serial
from tests.firmware_bridge.emu_helpers import TIMEOUT, FakeClock, message, request

# Golden vectors of the extension (docs/protocol.md §17.7), byte for byte.
# A1: ATTN broadcast, SEQ 0x31, 2-character slots, callers 0x41-0x48 (base 0x41, bitmap 0xFF).
A1_ATTN = bytes.fromhex("eb 90 12 ff 00 31 08 03 00 02 41 ff 21 f7")
# A2: ATTN broadcast, SEQ 0x32, 3-character slots, addresses 0x05, 0x07, 0x0C: base 0x05,
# bitmap 0x85 (bits 0, 2, 7).
A2_ATTN = bytes.fromhex("eb 90 12 ff 00 32 08 03 00 03 05 85 f1 d4")
# A3: the marks answering A1 when 0x43 (slot 2) has an event and the others have none.
A3_MARKS = bytes.fromhex("80 81 c2 83 84 85 86 87")


def test_attn_vectors_encode_byte_for_byte() -> None:
    listing = AttnRequest.listing(list(range(0x41, 0x49)), 2)
    a1 = message(BROADCAST_ADDR, listing, seq=0x31, noack=True)
    assert a1.to_bytes() == A1_ATTN
    a2 = message(BROADCAST_ADDR, AttnRequest.listing([0x05, 0x07, 0x0C], 3), seq=0x32, noack=True)
    assert a2.to_bytes() == A2_ATTN
    assert bytes(attention.mark(k, k == 2) for k in range(8)) == A3_MARKS


def test_attn_vectors_decode() -> None:
    (f1,) = FrameDecoder().feed(A1_ATTN)
    assert (f1.dst, f1.cmd, f1.noack) == (BROADCAST_ADDR, Command.ATTN, True)
    req = decode_request(f1.cmd, f1.payload)
    assert isinstance(req, AttnRequest)
    assert req.addresses() == tuple(range(0x41, 0x49))
    assert [req.slot_of(a) for a in (0x41, 0x44, 0x48, 0x40, 0x49)] == [0, 3, 7, None, None]
    (f2,) = FrameDecoder().feed(A2_ATTN)
    req2 = decode_request(f2.cmd, f2.payload)
    assert isinstance(req2, AttnRequest)
    assert req2.addresses() == (0x05, 0x07, 0x0C)
    assert attention.read_marks(A3_MARKS, 8).marks == (False,) * 2 + (True,) + (False,) * 5


def test_marks_never_start_a_frame() -> None:
    marks = {attention.mark(k, a) for k in range(attention.MAX_SLOTS) for a in (False, True)}
    assert 0xEB not in marks
    assert len(marks) == 2 * attention.MAX_SLOTS
    assert FrameDecoder().feed(bytes(sorted(marks)) * 3) == []


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"\x02\x41", "no bitmap"),
        (b"\x01\x41\xff", "slot shorter than 2 characters"),
        (b"\x11\x41\xff", "slot longer than 16 characters"),
        (b"\x02\x00\xff", "base 0"),
        (b"\x02\x41\x00", "nobody listed"),
        (b"\x02\xe8\xff\x01", "lists an address above 0xEF"),
        (b"\x02\x41\xff\xff\xff\xff\x01", "bitmap longer than 4 bytes"),
    ],
)
def test_bad_attn_payloads_are_refused(payload: bytes, why: str) -> None:
    with pytest.raises((DecodeError, EncodeError)):
        decode_request(Command.ATTN, payload).validate()


@given(st.binary(max_size=12))
def test_attn_decoder_never_crashes(payload: bytes) -> None:
    try:
        req = decode_request(Command.ATTN, payload)
        req.validate()
    except (DecodeError, EncodeError):
        return
    assert isinstance(req, AttnRequest)
    assert req.encode() == payload  # whatever decodes re-encodes to the same bytes
    addresses = req.addresses()
    assert [req.slot_of(a) for a in addresses] == list(range(len(addresses)))


@given(
    st.tuples(st.integers(0x01, 0xEF), st.sets(st.integers(0, 31), min_size=1)).map(
        lambda t: {t[0] + o for o in t[1] if t[0] + o <= 0xEF} or {t[0]}
    ),
    st.integers(2, 16),
)
def test_listing_round_trips(addresses: set[int], chars: int) -> None:
    req = AttnRequest.listing(sorted(addresses), chars)
    again = AttnRequest.decode(req.encode(), strict=True)
    assert again == req
    assert again.addresses() == tuple(sorted(addresses))


@given(st.binary(max_size=40), st.integers(1, attention.MAX_SLOTS))
def test_read_marks_takes_any_bytes(data: bytes, slots: int) -> None:
    result = attention.read_marks(data, slots)
    assert len(result.marks) == slots
    assert result.noise <= len(data)


def test_a_doubled_slot_reads_as_attention() -> None:
    # Two devices at one address (or noise) in slot 1: the host must look, so it polls it.
    result = attention.read_marks(bytes([0x80, 0x81, 0xC1]), 2)
    assert result.marks == (False, True)


def test_slot_length_per_speed() -> None:
    assert [attention.slot_chars(b) for b in (9600, 19200, 38400, 115200)] == [2, 2, 3, 7]


# -- the emulated devices -------------------------------------------------------------------


def attn(addresses: list[int], seq: int = 1) -> Frame:
    return message(BROADCAST_ADDR, AttnRequest.listing(addresses, 2), seq=seq, noack=True)


def test_extension_device_marks_its_slot_and_a_plain_one_stays_silent() -> None:
    clock = FakeClock()
    ext = CallerEmulator(0x42, clock=clock, attention=True)
    plain = CallerEmulator(0x41, clock=clock)
    assert ext.info().caps & Caps.ATTENTION
    assert not plain.info().caps & Caps.ATTENTION
    frame = attn([0x41, 0x42])
    assert plain.handle(frame) is None  # plain HB/1: not a group command, ignored
    # BOOT is pending after power-on: attention in slot 1.
    assert ext.handle(frame) == bytes([attention.mark(1, True)])
    ext.handle(message(0x42, PollRequest(1, ext.boot_id)))  # acknowledges BOOT
    assert ext.handle(frame) == bytes([attention.mark(1, False)])
    assert ext.press_key(KeyCode.CALL_NEXT)
    assert ext.handle(frame) == bytes([attention.mark(1, True)])
    # Once a POLL reply has carried the KEY the mark is idle again, acknowledged or not;
    # a second key asks again, and the POLL for it acknowledges the first.
    ext.handle(message(0x42, PollRequest(1, ext.boot_id), seq=2))
    assert ext.handle(frame) == bytes([attention.mark(1, False)])
    assert ext.press_key(KeyCode.RECALL)
    assert ext.handle(frame) == bytes([attention.mark(1, True)])
    ext.handle(message(0x42, PollRequest(2, ext.boot_id), seq=3))
    assert [e.evt_seq for e in ext.pending_events] == [3]
    # Not listed: no mark. Unicast ATTN: plain status UNKNOWN_CMD from both.
    assert ext.handle(attn([0x41])) is None
    reply = ext.handle(request(0x42, Command.ATTN, b"\x02\x42\x01"))
    assert reply is not None and FrameDecoder().feed(reply)[0].payload == bytes(
        [Status.UNKNOWN_CMD]
    )


def test_being_listed_keeps_a_device_out_of_host_lost_and_news_ask_for_attention() -> None:
    clock = FakeClock()
    ext = StripEmulator(0x05, clock=clock, attention=True)
    ext.handle(message(0x05, PollRequest(1, ext.boot_id)))
    for _ in range(5):
        clock.advance(8)
        assert ext.handle(attn([0x05])) == bytes([attention.mark(0, False)])
    assert not ext.host_lost
    clock.advance(11)
    assert ext.host_lost
    # The latched host-lost bit is news: one attention until the host has POLLed it.
    assert ext.handle(attn([0x05])) == bytes([attention.mark(0, True)])
    assert not ext.host_lost
    ext.handle(message(0x05, PollRequest(1, ext.boot_id), seq=2))
    assert ext.handle(attn([0x05])) == bytes([attention.mark(0, False)])


def test_emulated_bus_puts_marks_in_slot_order_and_collides_doubles() -> None:
    devices = [CallerEmulator(a, attention=True) for a in (0x43, 0x41, 0x42)]
    bus = Hb1Bus([*devices, CallerEmulator(0x44)])
    out = bus.feed(attn([0x41, 0x42, 0x43, 0x44]).to_bytes())
    # Everyone has BOOT pending; the plain 0x44 leaves its slot empty.
    assert out == bytes(attention.mark(k, True) for k in range(3))
    twin = Hb1Bus([CallerEmulator(0x41, attention=True), CallerEmulator(0x41, attention=True)])
    twin.devices[1].handle(message(0x41, PollRequest(1, twin.devices[1].boot_id)))
    assert twin.feed(attn([0x41]).to_bytes()) == bytes([0xC0])
    assert twin.collisions == 1


# -- the master on a mixed bus ----------------------------------------------------------------


class MixedBus:
    """Two callers and a strip with the extension, a caller and a strip without, on a pty."""

    def __init__(self) -> None:
        self.ext_callers = [
            CallerEmulator(0x41, attention=True),
            CallerEmulator(0x42, attention=True),
        ]
        self.plain_caller = CallerEmulator(0x43)
        self.ext_strip = StripEmulator(0x01, attention=True)
        self.plain_strip = StripEmulator(0x02)
        self.events: asyncio.Queue[DeviceEvent] = asyncio.Queue()
        self.master = BusMaster(name="mix", on_event=self._on_event, rng=random.Random(3))
        self.endpoint: LineEndpoint | None = None
        self.pair: PtyPair | None = None

    @property
    def devices(self) -> list[CallerEmulator | StripEmulator]:
        return [*self.ext_callers, self.plain_caller, self.ext_strip, self.plain_strip]

    async def _on_event(self, event: DeviceEvent) -> None:
        await self.events.put(event)

    async def next_key(self) -> DeviceEvent:
        async with asyncio.timeout(TIMEOUT):
            while True:
                event = await self.events.get()
                if event.event.evt_type == EventType.KEY:
                    return event


@pytest.fixture
async def mixed() -> AsyncIterator[MixedBus]:
    m = MixedBus()
    _, m.endpoint, m.pair = await start_bus_on_pty(*m.devices, reply_delay_s=0.002)
    transport, _ = await open_serial(m.pair.slave_path, lambda: m.master.link)
    for dev in m.devices:
        cls = DeviceClass.CALLER if isinstance(dev, CallerEmulator) else DeviceClass.STRIP
        m.master.add_device(dev.address, cls)
    m.master.start()
    yield m
    await m.master.stop()
    transport.close()
    await m.endpoint.close()


async def eventually(check: Callable[[], bool]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while not check():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.005)


async def test_mixed_bus_finds_keys_on_devices_with_and_without_the_extension(
    mixed: MixedBus,
) -> None:
    master = mixed.master
    await eventually(lambda: all(master.device(a).attention for a in (0x41, 0x42, 0x01)))
    assert not master.device(0x43).attention and not master.device(0x02).attention
    await eventually(lambda: master.stats.attention_rounds >= 5)
    for caller, key in (
        (mixed.ext_callers[1], KeyCode.CALL_NEXT),
        (mixed.plain_caller, KeyCode.RECALL),
        (mixed.ext_callers[0], KeyCode.FINISH),
    ):
        assert caller.press_key(key)
        got = await mixed.next_key()
        assert (got.addr, got.event) == (caller.address, KeyEvent(key))
    # Every key arrived once, the extension callers' marks went back to idle (their last
    # events wait for the ack in their next POLL) and the plain devices never saw anything
    # but plain HB/1.
    await eventually(lambda: not any(c.wants_attention() for c in mixed.ext_callers))
    assert master.stats.duplicate_events == 0
    for plain in (mixed.plain_caller, mixed.plain_strip):
        assert all(e.frame.cmd != Command.ATTN for e in plain.log)
        assert any(e.frame.cmd == Command.POLL for e in plain.log)
    # Devices with the extension are not POLLed one by one while idle: rounds find them.
    # (The ack's POLL may still be on its way back when the emulator has applied it.)
    rounds_before = master.stats.attention_rounds
    await eventually(lambda: master.stats.attention_rounds >= rounds_before + 3)
    polls_before = master.device(0x41).polls
    missing_before = master.stats.marks_missing
    rounds_before = master.stats.attention_rounds
    await eventually(lambda: master.stats.attention_rounds >= rounds_before + 20)
    # Only a mark lost to a stalled test machine (late past the round) causes a POLL.
    missed = master.stats.marks_missing - missing_before
    assert master.device(0x41).polls - polls_before <= missed < 10
    assert master.device(0x41).marks > 0


async def test_a_silent_extension_device_goes_offline_through_its_polls(mixed: MixedBus) -> None:
    master = mixed.master
    await eventually(lambda: master.device(0x42).attention and not master.device(0x42).resyncing)
    await eventually(lambda: not mixed.ext_callers[1].wants_attention())
    rounds = master.stats.attention_rounds
    await eventually(lambda: master.stats.attention_rounds >= rounds + 3)
    mixed.ext_callers[1].switches.silent = True
    # A missing mark makes the master POLL it; failed POLLs count as for any device.
    await eventually(lambda: master.device(0x42).health.value == "offline")
    assert master.stats.marks_missing >= 1
    assert not master.device(0x42).attention
    # The others keep working.
    assert mixed.ext_callers[0].press_key(KeyCode.CALL_NEXT)
    got = await mixed.next_key()
    assert got.addr == 0x41


async def test_attention_can_be_switched_off_on_the_host(mixed: MixedBus) -> None:
    master = mixed.master
    await eventually(lambda: master.device(0x41).attention)
    master.attention = False
    rounds = master.stats.attention_rounds
    assert mixed.ext_callers[0].press_key(KeyCode.RECALL)
    got = await mixed.next_key()
    assert got.addr == 0x41
    assert master.stats.attention_rounds <= rounds + 1  # at most the round already on the line


async def test_an_event_the_application_could_not_store_is_fetched_again(
    mixed: MixedBus,
) -> None:
    master = mixed.master
    caller = mixed.ext_callers[0]
    await eventually(lambda: master.device(0x41).attention and not caller.wants_attention())
    failures = 0
    deliver = mixed._on_event

    async def flaky(event: DeviceEvent) -> None:
        nonlocal failures
        if event.event.evt_type == EventType.KEY and failures == 0:
            failures += 1
            raise RuntimeError("database down")
        await deliver(event)

    master._on_event = flaky
    assert caller.press_key(KeyCode.CALL_NEXT)
    # The POLL carried it once and its mark went idle; the master asks again by itself.
    got = await mixed.next_key()
    assert (got.addr, got.event, failures) == (0x41, KeyEvent(KeyCode.CALL_NEXT), 1)
    assert master.stats.event_callback_errors == 1


async def test_marks_in_before_a_stalled_loop_checks_the_round_are_not_missing(
    mixed: MixedBus,
) -> None:
    # The devices send their marks 2 ms after the ATTN request; then the event loop stalls
    # past the round's deadline. When it runs again the marks are there (as they would be in a
    # real port's buffer) and the deadline has passed: they count, no device is POLLed for a
    # missing mark (each such POLL delays the next round by a POLL exchange).
    master = mixed.master
    await eventually(lambda: all(master.device(a).attention for a in (0x41, 0x42, 0x01)))
    await eventually(lambda: not any(c.wants_attention() for c in mixed.ext_callers))
    loop = asyncio.get_running_loop()
    stall = 0.3
    assert stall > attention.round_s(9600, 3, attention.slot_chars(9600)) + 0.1
    stalls: list[float] = []
    caller = mixed.ext_callers[0]
    logged = caller.on_log

    def on_log(device: Hb1Device, entry: RequestLog) -> None:
        if entry.frame.cmd == Command.ATTN and len(stalls) < 3:
            stalls.append(loop.time())
            loop.call_soon(time.sleep, stall)  # after the request, before the marks' timers
        if logged is not None:
            logged(device, entry)

    caller.on_log = on_log
    missing = master.stats.marks_missing
    rounds = master.stats.attention_rounds
    await eventually(lambda: len(stalls) == 3 and master.stats.attention_rounds >= rounds + 5)
    assert master.stats.marks_missing == missing


def test_idle_strips_hear_the_host_before_host_lost() -> None:
    from firmware_bridge import timing

    for baud in (9600, 19200, 38400, 115200):
        master = BusMaster(name="t", baud=baud, on_event=_ignore)
        period = master.idle_display_poll_s
        failed = timing.MAX_ATTEMPTS * (timing.frame_time(baud, 4) + timing.reply_timeout(baud, 10))
        assert period == 9.0
        assert period + failed < timing.HOST_LOST_DEFAULT_S - 0.5 + 1e-9
        master.add_device(0x01, DeviceClass.STRIP)
        master.set_desired_state(0x01, [])  # no call shown: idle
        assert master.device(0x01).period == 9.0


async def _ignore(event: DeviceEvent) -> None:
    return None


def test_emulator_cli_runs_devices_with_or_without_the_extension() -> None:
    from firmware_bridge.emulators.cli import Session, build_parser

    for flags, caps in (([], 0), (["--attention"], Caps.ATTENTION)):
        args = build_parser().parse_args(["caller", "--address", "65", *flags])
        app = Session(args, lambda _line: None)
        (device,) = app.devices
        assert device.info().caps & Caps.ATTENTION == caps


def test_frames_among_the_marks_are_not_marks() -> None:
    from tests.firmware_bridge.vectors import V3_POLL_REPLY

    # An echoing adapter returns the request first; a late reply may land between marks.
    # V3 holds bytes that would read as marks (0x90 is slot 16's idle mark): all skipped.
    data = A1_ATTN + A3_MARKS[:3] + V3_POLL_REPLY + A3_MARKS[3:]
    assert attention.without_frames(data) == A3_MARKS
    result = attention.read_marks(attention.without_frames(data), 8)
    assert result.complete and result.noise == 0
    # A frame cut short at the end of the round is dropped as far as it goes.
    assert attention.without_frames(A3_MARKS + V3_POLL_REPLY[:5]) == A3_MARKS
    assert attention.without_frames(A3_MARKS + b"\xeb") == A3_MARKS


# -- strips and callers more than 32 addresses apart ------------------------------------------

# Heartbeat of the strips in these tests (instead of 9 s).
STRIP_HEARTBEAT_S = 1.6


class SplitPlan:
    """Callers 0x41-0x42 and strips 0x01-0x02, all with the extension: no round can list
    both (a round spans 32 addresses), as in a hall numbered strips 1-8, callers 0x41-0x48.
    The application answers each KEY with a KEYPAD_SHOW to its caller, queued while the key
    is being stored, as the server does."""

    def __init__(self) -> None:
        self.callers = [CallerEmulator(a, attention=True) for a in (0x41, 0x42)]
        self.strips = [StripEmulator(a, attention=True) for a in (0x01, 0x02)]
        self.master = BusMaster(name="split", on_event=self._on_event, rng=random.Random(5))
        self.keys: asyncio.Queue[DeviceEvent] = asyncio.Queue()
        self.shown = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def _on_event(self, event: DeviceEvent) -> None:
        if event.event.evt_type != EventType.KEY:
            return
        task = asyncio.ensure_future(self._show(event.addr))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        await self.keys.put(event)

    async def _show(self, addr: int) -> None:
        await self.master.request(addr, KeypadShowRequest("A001"), priority=Priority.KEYPAD)
        self.shown += 1

    def rounds(self, device: Hb1Device, since: float = 0.0) -> list[float]:
        """When ``device`` heard an ATTN listing it, since ``since``."""
        return [e.at for e in device.log if e.frame.cmd == Command.ATTN and e.at >= since]


@pytest.fixture
async def split(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[SplitPlan]:
    monkeypatch.setattr(timing, "DISPLAY_POLL_S", 0.5)
    monkeypatch.setattr(timing, "IDLE_DISPLAY_POLL_S", STRIP_HEARTBEAT_S)
    s = SplitPlan()
    devices = [*s.callers, *s.strips]
    _, endpoint, pair = await start_bus_on_pty(*devices, reply_delay_s=0.002)
    transport, _ = await open_serial(pair.slave_path, lambda: s.master.link)
    for dev in devices:
        cls = DeviceClass.CALLER if isinstance(dev, CallerEmulator) else DeviceClass.STRIP
        s.master.add_device(dev.address, cls)
    s.master.start()
    await eventually(
        lambda: all(
            s.master.device(d.address).attention and not s.master.device(d.address).resyncing
            for d in devices
        )
    )
    await eventually(lambda: not any(c.wants_attention() for c in s.callers))
    yield s
    await s.master.stop()
    transport.close()
    await endpoint.close()


async def test_strips_hear_a_round_every_heartbeat_while_keys_keep_coming(
    split: SplitPlan,
) -> None:
    # Host-lost must never happen: whether keys come or not, no strip waits longer than its
    # heartbeat period for a round.
    loop = asyncio.get_running_loop()
    start = loop.time()
    end = start + 2.2 * STRIP_HEARTBEAT_S
    presses = 0
    quiet_done = False
    quiet_until = 0.0

    def quiet_over() -> bool:
        return loop.time() >= quiet_until

    while loop.time() < end:
        caller = split.callers[presses % 2]
        assert caller.press_key(KeyCode.CALL_NEXT)
        async with asyncio.timeout(TIMEOUT):
            await split.keys.get()
        presses += 1
        if presses == 6 and not quiet_done:
            # Keys stop for more than a heartbeat period once: a round when due.
            quiet_done = True
            quiet_until = loop.time() + STRIP_HEARTBEAT_S + 0.1
            await eventually(quiet_over)
    assert presses >= 10
    for strip in split.strips:
        heard = [start, *split.rounds(strip, start), loop.time()]
        gaps = [b - a for a, b in itertools.pairwise(heard)]
        # The period, plus the exchange on the line when it came due.
        assert max(gaps) < STRIP_HEARTBEAT_S + 0.15, gaps
