"""HB/1 device emulators: golden replies (§14), device-side semantics, and a shared pty bus."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from firmware_bridge.codec import Frame, FrameDecoder
from firmware_bridge.constants import (
    BootReason,
    Command,
    ConfigTag,
    DeviceState,
    DisplayMode,
    EventType,
    KeyCode,
    LoginMethod,
    Status,
)
from firmware_bridge.emulators.bus import Hb1Bus
from firmware_bridge.emulators.display import ScreenEmulator, StripEmulator
from firmware_bridge.emulators.keypad import CallerEmulator, KioskEmulator
from firmware_bridge.emulators.line import LineEndpoint
from firmware_bridge.emulators.pad import MAINTENANCE, THANKS, PadEmulator
from firmware_bridge.emulators.printer import PAPER_NEAR_END, EscPosPrinter
from firmware_bridge.messages import (
    BitmapRequest,
    BootEvent,
    BrightnessRequest,
    ConfigItem,
    ConfigReply,
    ConfigRequest,
    InfoReply,
    InfoRequest,
    KeyEvent,
    KeypadShowRequest,
    PadCancelRequest,
    PadClerkRequest,
    PadRateRequest,
    PadServiceRequest,
    PassthruTxRequest,
    PollReply,
    PollRequest,
    ResetRequest,
    SetAddressRequest,
    SetIdleRequest,
    SetTimeRequest,
    ShowTextRequest,
    decode_reply,
)
from firmware_bridge.transport import Backoff
from tests.firmware_bridge.emu_helpers import (
    TIMEOUT,
    FakeClock,
    HostLine,
    PtyBus,
    message,
    reply_of,
    request,
    status_of,
)
from tests.firmware_bridge.vectors import (
    V2_POLL,
    V3_POLL_REPLY,
    V4_SHOW_TEXT,
    V5_SHOW_TEXT_REPLY,
    V6_PAD_RATE_REQ,
    V7_POLL_REPLY_RATING,
    V8_SET_TIME,
    V9_INFO_REPLY,
    V10_POLL_REPLY_KEY,
    V11_POLL_REPLY_LOGIN,
    V12_SHOW_ROWS,
    V13_PAD_CLERK,
)

PtyBusFactory = Callable[..., Awaitable[PtyBus]]


UID = bytes(range(1, 9))
CALL_TEXT = "请A001号到3号窗口"


def vec(wire: bytes) -> Frame:
    """The single frame in a golden vector."""
    (f,) = FrameDecoder().feed(wire)
    return f


def pad_0x05(clock: FakeClock) -> PadEmulator:
    # boot counter 0x1233 + this boot = boot_id 0x1234, as in the vectors.
    return PadEmulator(0x05, UID, clock=clock, boot_counter=0x1233, fw=(1, 2, 3))


def poll(device: PadEmulator | CallerEmulator | KioskEmulator, ack: int, *, seq: int) -> PollReply:
    reply = reply_of(device, message(device.address, PollRequest(ack, device.boot_id), seq=seq))
    decoded = decode_reply(Command.POLL, reply.payload)
    assert isinstance(decoded, PollReply)
    return decoded


# -- golden vectors --------------------------------------------------------------------------


def test_strip_answers_v4_with_v5_and_shows_the_call(fake_clock: FakeClock) -> None:
    strip = StripEmulator(0x03, clock=fake_clock)
    assert strip.handle(vec(V4_SHOW_TEXT)) == V5_SHOW_TEXT_REPLY
    assert strip.text == CALL_TEXT
    assert strip.flashing()
    fake_clock.advance(3)  # FLASH_S default 3 s: then steady
    assert not strip.flashing()
    assert strip.text == CALL_TEXT
    fake_clock.advance(7)  # hold 10 s ended: back to idle content (none set)
    assert strip.text == ""


def test_pad_info_is_v9(fake_clock: FakeClock) -> None:
    pad = pad_0x05(fake_clock)
    assert pad.handle(request(0x05, Command.INFO, seq=0x26)) == V9_INFO_REPLY


def test_pad_poll_v2_acks_boot_and_answers_v3(fake_clock: FakeClock) -> None:
    pad = pad_0x05(fake_clock)
    assert [q.event for q in pad.pending_events] == [BootEvent(BootReason.POWER_ON)]
    assert pad.handle(vec(V2_POLL)) == V3_POLL_REPLY
    assert pad.pending_events == ()


def test_pad_rating_flow_reproduces_v6_v7_and_v13(fake_clock: FakeClock) -> None:
    pad = pad_0x05(fake_clock)
    for _ in range(5):  # evt_seq 2..6, so that the rating becomes evt_seq 7 as in V7
        assert pad.login(LoginMethod.KEYS, b"1024")
    assert pad.handle(vec(V2_POLL)) == V3_POLL_REPLY  # acks 1..6

    assert status_of(pad, vec(V6_PAD_RATE_REQ)) == Status.OK
    assert pad.screen[0] == "请您对本次服务进行评价"
    assert pad.voice_prompts == ["请对我的服务进行评价"]
    assert pad.rate(5)
    assert list(pad.screen) == [THANKS]
    poll_v7 = message(0x05, PollRequest(6, 0x1234), seq=0x24)
    assert pad.handle(poll_v7) == V7_POLL_REPLY_RATING

    assert status_of(pad, vec(V13_PAD_CLERK)) == Status.OK
    fake_clock.advance(3)  # THANKS_S over: the clerk card
    assert pad.screen == ("窗口：3号窗口", "工号：1024", "姓名：张三")


def test_caller_key_and_login_events_are_v10_and_v11(fake_clock: FakeClock) -> None:
    caller = CallerEmulator(0x07, clock=fake_clock, boot_counter=0x0101)
    assert caller.boot_id == 0x0102
    assert caller.press_key(KeyCode.CALL_NEXT)  # evt 2
    poll(caller, 2, seq=0x3F)  # acks BOOT and CALL_NEXT
    assert caller.press_key(KeyCode.CALL_SPECIFIC, "A012")  # evt 3
    assert caller.login(LoginMethod.KEYS, b"1024*3721")  # evt 4
    assert caller.handle(message(0x07, PollRequest(2, 0x0102), seq=0x40)) == V10_POLL_REPLY_KEY
    assert caller.handle(message(0x07, PollRequest(3, 0x0102), seq=0x41)) == V11_POLL_REPLY_LOGIN


def test_screen_shows_v12_rows(fake_clock: FakeClock) -> None:
    screen = ScreenEmulator(0x20, clock=fake_clock)
    assert status_of(screen, vec(V12_SHOW_ROWS)) == Status.OK
    assert screen.lines[:3] == ("A001 3号窗口", "B015 7号窗口", "")
    row0 = screen.row(0)
    assert row0 is not None and row0.attr == 0x09


def test_set_time_broadcast_v8_gets_no_reply_from_anyone(fake_clock: FakeClock) -> None:
    devices = [
        StripEmulator(0x03, clock=fake_clock),
        pad_0x05(fake_clock),
        CallerEmulator(0x07, clock=fake_clock),
    ]
    bus = Hb1Bus(devices, clock=fake_clock)
    assert bus.feed(V8_SET_TIME) == b""
    assert all(d.time_offset == 1716166800 - fake_clock.now for d in devices)


# -- reply cache, failure switches -----------------------------------------------------------


def test_retry_is_answered_from_cache_without_executing_again(fake_clock: FakeClock) -> None:
    caller = CallerEmulator(0x07, clock=fake_clock)
    caller.press_key(KeyCode.CALL_NEXT)
    req = message(0x07, PollRequest(0, 0), seq=9)
    first = caller.handle(req)
    caller.press_key(KeyCode.RECALL)  # the FIFO changes between the attempts
    assert caller.handle(req) == first  # byte for byte, pending still shows 2 not 3
    fresh = poll(caller, 0, seq=10)  # a new SEQ executes again
    assert fresh.pending == 3


def test_lost_reply_then_retry_gets_the_cached_answer(fake_clock: FakeClock) -> None:
    strip = StripEmulator(0x03, clock=fake_clock)
    strip.switches.drop_next = 1
    assert strip.handle(vec(V4_SHOW_TEXT)) is None  # executed, reply lost on the wire
    assert strip.text == CALL_TEXT
    assert strip.handle(vec(V4_SHOW_TEXT)) == V5_SHOW_TEXT_REPLY


def test_busy_is_cached_and_not_executed(fake_clock: FakeClock) -> None:
    strip = StripEmulator(0x03, clock=fake_clock)
    strip.switches.busy = True
    assert status_of(strip, vec(V4_SHOW_TEXT)) == Status.BUSY
    strip.switches.busy = False
    assert strip.text == ""
    assert status_of(strip, vec(V4_SHOW_TEXT)) == Status.BUSY  # same SEQ: cached BUSY (§7.3)
    new = message(0x03, ShowTextRequest(text=CALL_TEXT), seq=0x23)
    assert status_of(strip, new) == Status.OK
    assert strip.text == CALL_TEXT


def test_corrupt_replies_fail_the_crc_and_silence_answers_nothing(fake_clock: FakeClock) -> None:
    strip = StripEmulator(0x03, clock=fake_clock)
    strip.switches.corrupt = True
    raw = strip.handle(vec(V4_SHOW_TEXT))
    assert raw is not None and len(raw) == len(V5_SHOW_TEXT_REPLY)
    decoder = FrameDecoder()
    assert decoder.feed(raw) == [] and decoder.stats.crc_errors == 1

    strip2 = StripEmulator(0x03, clock=fake_clock)
    strip2.switches.silent = True
    assert strip2.handle(vec(V4_SHOW_TEXT)) is None
    assert strip2.text == ""  # a silent device does not execute either


def test_reboot_gives_new_boot_id_and_old_acks_do_not_delete_new_events(
    fake_clock: FakeClock,
) -> None:
    caller = CallerEmulator(0x07, clock=fake_clock, boot_counter=0xFFFE)
    assert caller.boot_id == 0xFFFF
    caller.press_key(KeyCode.CALL_NEXT)
    old_boot = caller.boot_id
    caller.reboot()
    assert caller.boot_id == 0x0001  # 0xFFFF is followed by 1
    assert [(q.evt_seq, q.event) for q in caller.pending_events] == [
        (1, BootEvent(BootReason.WATCHDOG))
    ]
    stale = message(0x07, PollRequest(5, old_boot), seq=1)
    reply = decode_reply(Command.POLL, reply_of(caller, stale).payload)
    assert isinstance(reply, PollReply)
    assert (reply.boot_id, reply.evt_seq, reply.evt_type) == (1, 1, EventType.BOOT)


def test_more_flag_and_pending_count(fake_clock: FakeClock) -> None:
    caller = CallerEmulator(0x07, clock=fake_clock)
    caller.press_key(KeyCode.CALL_NEXT)
    r1 = reply_of(caller, message(0x07, PollRequest(0, 0), seq=1))
    assert r1.more
    r2 = reply_of(caller, message(0x07, PollRequest(1, caller.boot_id), seq=2))
    assert not r2.more
    assert decode_reply(Command.POLL, r2.payload) == PollReply(
        DeviceState.NONE, caller.boot_id, 1, 2, EventType.KEY, KeyEvent(KeyCode.CALL_NEXT).encode()
    )


def test_full_fifo_refuses_keys_with_an_error_beep(fake_clock: FakeClock) -> None:
    caller = CallerEmulator(0x07, clock=fake_clock)
    for _ in range(15):  # BOOT + 15 = 16
        assert caller.press_key(KeyCode.CALL_NEXT)
    assert not caller.press_key(KeyCode.CALL_NEXT)
    assert caller.error_beeps == 1
    assert len(caller.pending_events) == 16


def test_keys_with_missing_argument_are_refused(fake_clock: FakeClock) -> None:
    caller = CallerEmulator(0x07, clock=fake_clock)
    assert not caller.press_key(KeyCode.TRANSFER)
    assert not caller.press_key(KeyCode.CALL_SPECIFIC, "")
    assert caller.press_key(KeyCode.TRANSFER, "12")
    assert caller.error_beeps == 2


# -- status codes ----------------------------------------------------------------------------


def test_status_codes(fake_clock: FakeClock) -> None:
    strip = StripEmulator(0x03, clock=fake_clock)
    assert status_of(strip, request(0x03, 0x99, seq=1)) == Status.UNKNOWN_CMD
    clerk = PadClerkRequest("3号窗口", "1024", "张三")
    assert status_of(strip, message(0x03, clerk, seq=2)) == Status.UNKNOWN_CMD
    assert status_of(strip, request(0x03, Command.INFO, b"\x00", seq=3)) == Status.BAD_LENGTH
    region5 = ShowTextRequest(region=5, text="x")
    assert status_of(strip, message(0x03, region5, seq=4)) == Status.BAD_PARAM
    bad_gbk = bytes.fromhex("00 00 00 00 00 00 02 ff ff")  # 0xFF is no GBK lead byte
    assert status_of(strip, request(0x03, Command.SHOW_TEXT, bad_gbk, seq=5)) == Status.ENCODING
    utf8 = bytes.fromhex("00 00 00 00 00 01 01 41")  # enc 1 on a GBK-only strip
    assert status_of(strip, request(0x03, Command.SHOW_TEXT, utf8, seq=6)) == Status.ENCODING
    assert strip.text == ""  # nothing was shown by any failed request


# -- displays --------------------------------------------------------------------------------


def test_strip_idle_content_hold_and_clear(fake_clock: FakeClock) -> None:
    strip = StripEmulator(0x03, clock=fake_clock)
    idle = SetIdleRequest(text="欢迎光临 热情服务")
    assert status_of(strip, message(0x03, idle, seq=1)) == Status.OK
    assert strip.text == "欢迎光临 热情服务"
    show = ShowTextRequest(mode=DisplayMode.FLASH, color=1, hold_s=10, text=CALL_TEXT)
    assert status_of(strip, message(0x03, show, seq=2)) == Status.OK
    assert strip.text == CALL_TEXT
    state = poll_state(strip, seq=3)
    assert state & DeviceState.CLASS_BIT5  # content other than idle is active
    fake_clock.advance(10)
    assert strip.text == "欢迎光临 热情服务"
    assert status_of(strip, message(0x03, ShowTextRequest(text="暂停服务"), seq=4)) == Status.OK
    assert status_of(strip, request(0x03, Command.CLEAR, b"\xff", seq=5)) == Status.OK
    assert strip.text == "欢迎光临 热情服务"
    strip.reboot()
    assert strip.text == "欢迎光临 热情服务"  # idle text is non-volatile


def poll_state(device: StripEmulator, *, seq: int) -> DeviceState:
    reply = decode_reply(
        Command.POLL, reply_of(device, message(device.address, PollRequest(), seq=seq)).payload
    )
    assert isinstance(reply, PollReply)
    return reply.state


def test_group_show_text_reaches_every_strip_and_nobody_answers(fake_clock: FakeClock) -> None:
    strips = [StripEmulator(a, clock=fake_clock) for a in (0x03, 0x04)]
    screen = ScreenEmulator(0x20, clock=fake_clock)
    bus = Hb1Bus([*strips, screen], clock=fake_clock)
    group = message(0xF1, ShowTextRequest(text="暂停服务"), seq=1, noack=True)
    assert bus.feed(group.to_bytes()) == b""
    assert [s.text for s in strips] == ["暂停服务", "暂停服务"]
    assert screen.shown(0) == ""
    # PAD_CLERK is not a group command: a pad ignores it sent to its group.
    pad = bus.add(PadEmulator(0x05, clock=fake_clock))
    clerk = message(0xF3, PadClerkRequest("3号窗口", "1024", "张三"), seq=2, noack=True)
    assert bus.feed(clerk.to_bytes()) == b""
    assert isinstance(pad, PadEmulator) and pad.clerk is None


# -- host-lost -------------------------------------------------------------------------------


def test_caller_host_lost_shows_dashes_refuses_keys_and_latches_bit(fake_clock: FakeClock) -> None:
    caller = CallerEmulator(0x07, clock=fake_clock)
    show = KeypadShowRequest("A001", 5, 1)
    assert status_of(caller, message(0x07, show, seq=1)) == Status.OK
    assert caller.text == "A001 等候5"
    fake_clock.advance(10)  # HOST_LOST_S default
    assert caller.display.ticket == "----"
    assert not caller.press_key(KeyCode.CALL_NEXT)
    assert not caller.login(LoginMethod.KEYS, b"1024")
    assert all(q.event.evt_type == EventType.BOOT for q in caller.pending_events)

    first = poll(caller, 0, seq=2)  # any unicast ends host-lost ...
    assert first.state & DeviceState.HOST_LOST  # ... but bit 2 stays until content arrives
    assert caller.display.ticket == "A001"
    assert caller.press_key(KeyCode.CALL_NEXT)
    assert poll(caller, 0, seq=3).state & DeviceState.HOST_LOST
    assert status_of(caller, message(0x07, show, seq=4)) == Status.OK
    assert not poll(caller, 0, seq=5).state & DeviceState.HOST_LOST


def test_a_unicast_noack_set_time_keeps_a_strip_out_of_host_lost(fake_clock: FakeClock) -> None:
    # The host's keep-alive between a strip's POLLs (docs/protocol.md §15.2): no reply, and
    # the strip's host-lost time starts again.
    strip = StripEmulator(0x03, clock=fake_clock)
    keepalive = message(0x03, SetTimeRequest(1716166800, 480), seq=1, noack=True)
    for _ in range(5):
        fake_clock.advance(9)
        assert strip.handle(keepalive) is None
        assert not strip.host_lost
    fake_clock.advance(10)  # nothing heard for HOST_LOST_S
    assert strip.host_lost


def test_pad_finishes_rating_while_host_lost_then_shows_maintenance(fake_clock: FakeClock) -> None:
    pad = PadEmulator(0x05, clock=fake_clock)
    assert status_of(pad, message(0x05, PadRateRequest(77, timeout_s=30), seq=1)) == Status.OK
    fake_clock.advance(12)  # host-lost after 10 s, session still open
    assert pad.host_lost
    assert pad.screen[0] == "请您对本次服务进行评价"
    assert pad.rate(4)
    fake_clock.advance(3)
    assert pad.screen == (MAINTENANCE,)
    assert [q.event.evt_type for q in pad.pending_events][-1] == EventType.RATING


# -- pad flow (§10.3, §12) -------------------------------------------------------------------


def test_pad_session_rules(fake_clock: FakeClock) -> None:
    pad = PadEmulator(0x05, clock=fake_clock)
    pad.handle(message(0x05, PadClerkRequest("3号窗口", "1024", "张三"), seq=1))
    service = PadServiceRequest(0xCAFEBABE, "A001", "不动产登记")
    assert status_of(pad, message(0x05, service, seq=2)) == Status.OK
    assert pad.screen[0] == "正在为 A001 办理：不动产登记"
    rate_req = PadRateRequest(0xCAFEBABE, timeout_s=30, dims_mask=0b101)
    assert status_of(pad, message(0x05, rate_req, seq=3)) == Status.OK
    assert pad.screen[2:] == ("服务效率", "服务态度")
    fake_clock.advance(20)
    # Same session again: OK, and the 30 s timer is not restarted.
    assert status_of(pad, message(0x05, rate_req, seq=4)) == Status.OK
    fake_clock.advance(10)
    assert pad.rating is None
    last = pad.pending_events[-1]
    assert last.event.evt_type == EventType.RATING_TIMEOUT
    # Ended by timeout: a new rate request or a cancel for it answers STATE_CONFLICT.
    assert status_of(pad, message(0x05, rate_req, seq=5)) == Status.STATE_CONFLICT
    cancel = PadCancelRequest(0xCAFEBABE)
    assert status_of(pad, message(0x05, cancel, seq=6)) == Status.STATE_CONFLICT
    assert pad.screen == ("窗口：3号窗口", "工号：1024", "姓名：张三")


def test_pad_cancel_before_and_after_rating(fake_clock: FakeClock) -> None:
    pad = PadEmulator(0x05, clock=fake_clock)
    assert status_of(pad, message(0x05, PadRateRequest(1), seq=1)) == Status.OK
    assert status_of(pad, message(0x05, PadCancelRequest(2), seq=2)) == Status.STATE_CONFLICT
    assert status_of(pad, message(0x05, PadCancelRequest(1), seq=3)) == Status.OK
    assert not pad.rate(5)  # nothing open any more
    assert status_of(pad, message(0x05, PadRateRequest(3, dims_mask=1), seq=4)) == Status.OK
    assert pad.rate(1, reasons=0b11, dims=(2,))
    # A rating pressed just before the cancel is not lost: status 5, event in the FIFO.
    assert status_of(pad, message(0x05, PadCancelRequest(3), seq=5)) == Status.STATE_CONFLICT
    rating = pad.pending_events[-1].event
    assert rating.encode() == bytes.fromhex("03 00 00 00 01 03 00 01 02")


def test_pad_clerk_logout_ends_session_without_event(fake_clock: FakeClock) -> None:
    pad = PadEmulator(0x05, clock=fake_clock)
    pad.handle(message(0x05, PadRateRequest(9), seq=1))
    before = len(pad.pending_events)
    assert status_of(pad, message(0x05, PadClerkRequest("3号窗口", "", ""), seq=2)) == Status.OK
    assert pad.screen == ("暂停服务",)
    fake_clock.advance(60)
    assert len(pad.pending_events) == before  # no RATING_TIMEOUT for the ended session


# -- common commands -------------------------------------------------------------------------


def test_set_address_by_uid_broadcast_and_reset(fake_clock: FakeClock) -> None:
    strip = StripEmulator(0xF0, uid=UID, clock=fake_clock)
    other = StripEmulator(0xF0, uid=bytes(8), clock=fake_clock)
    bus = Hb1Bus([strip, other], clock=fake_clock)
    setaddr = message(0xFF, SetAddressRequest(UID, 0x11), seq=1, noack=True)
    assert bus.feed(setaddr.to_bytes()) == b""
    assert (strip.address, other.address) == (0x11, 0xF0)
    info = reply_of(strip, message(0x11, InfoRequest(), seq=2))
    assert info.src == 0x11
    decoded = decode_reply(Command.INFO, info.payload)
    assert isinstance(decoded, InfoReply) and decoded.uid == UID

    boot_before = strip.boot_id
    reset = reply_of(strip, message(0x11, ResetRequest(), seq=3))
    assert reset.payload == b"\x00"  # the reply leaves before the reboot
    assert strip.boot_id == boot_before + 1
    assert strip.pending_events[0].event == BootEvent(BootReason.RESET_COMMAND)


def test_config_write_read_and_atomic_rejection(fake_clock: FakeClock) -> None:
    pad = PadEmulator(0x05, clock=fake_clock)
    items = (ConfigItem.u8(ConfigTag.HOST_LOST_S, 30), ConfigItem.reason(0, "态度不好"))
    reply = decode_reply(
        Command.CONFIG, reply_of(pad, message(0x05, ConfigRequest(items), seq=1)).payload
    )
    assert isinstance(reply, ConfigReply) and reply.items == items
    bad = (ConfigItem.u8(ConfigTag.VOLUME, 3), ConfigItem(ConfigTag(0x99), b"\x01"))
    assert status_of(pad, message(0x05, ConfigRequest(bad), seq=2)) == Status.BAD_PARAM
    assert pad.config.volume == 8  # nothing applied
    read = decode_reply(
        Command.CONFIG, reply_of(pad, message(0x05, ConfigRequest(), seq=3)).payload
    )
    assert isinstance(read, ConfigReply)
    assert ConfigItem.reason(0, "态度不好") in read.items
    assert ConfigItem.u8(ConfigTag.HOST_LOST_S, 30) in read.items
    fake_clock.advance(20)
    assert not pad.host_lost  # the new host-lost time is in effect
    strip = StripEmulator(0x03, clock=fake_clock)
    reason = (ConfigItem.reason(0, "x"),)
    assert status_of(strip, message(0x03, ConfigRequest(reason), seq=1)) == Status.BAD_PARAM


def test_local_config_change_sets_bit3_until_info(fake_clock: FakeClock) -> None:
    strip = StripEmulator(0x03, clock=fake_clock)
    strip.change_config_locally(brightness=3)
    assert poll_state(strip, seq=1) & DeviceState.CONFIG_CHANGED
    reply_of(strip, message(0x03, InfoRequest(), seq=2))
    assert not poll_state(strip, seq=3) & DeviceState.CONFIG_CHANGED


# -- kiosk MCU with a printer behind it (§13 tunnel) -----------------------------------------


def test_kiosk_tunnels_escpos_to_its_printer(fake_clock: FakeClock) -> None:
    kiosk = KioskEmulator(0x30, clock=fake_clock)
    printer = EscPosPrinter()
    printer.set_condition(PAPER_NEAR_END)
    kiosk.attach_local(0, printer.feed)
    query = PassthruTxRequest(0, b"\x10\x04\x04")
    assert status_of(kiosk, message(0x30, query, seq=1)) == Status.OK
    rx = kiosk.pending_events[-1].event
    assert rx.encode() == b"\x00\x1e"  # port 0, near-end status byte
    job = "\x1b@\x1c&请A001号到3号窗口\n".encode("gbk") + b"\x1dV\x00"
    for i, chunk_start in enumerate(range(0, len(job), 8)):
        tx = PassthruTxRequest(0, job[chunk_start : chunk_start + 8])
        assert status_of(kiosk, message(0x30, tx, seq=2 + i)) == Status.OK
    assert printer.jobs[0].text_lines == (CALL_TEXT,)
    assert kiosk.press_key(0x80, "")  # a site-defined kiosk key


# -- over a real pty: one bus, several devices -----------------------------------------------


async def test_emulators_answer_golden_requests_over_a_pty(pty_bus: PtyBusFactory) -> None:
    line = await pty_bus(StripEmulator(0x03), pad_0x05_real())
    await line.host.send(V4_SHOW_TEXT)
    await line.host.next_frame()
    await line.host.send(V2_POLL)
    await line.host.next_frame()
    assert bytes(line.host.received) == V5_SHOW_TEXT_REPLY + V3_POLL_REPLY


def pad_0x05_real() -> PadEmulator:
    return PadEmulator(0x05, UID, boot_counter=0x1233, fw=(1, 2, 3))


async def test_each_device_on_the_bus_answers_only_its_address(pty_bus: PtyBusFactory) -> None:
    devices = {
        0x03: StripEmulator(0x03),
        0x05: PadEmulator(0x05),
        0x07: CallerEmulator(0x07),
        0x20: ScreenEmulator(0x20),
        0x30: KioskEmulator(0x30),
    }
    line = await pty_bus(*devices.values())
    for seq, (addr, device) in enumerate(devices.items(), start=1):
        reply = await line.host.transact(message(addr, InfoRequest(), seq=seq))
        assert (reply.src, reply.seq, reply.is_reply) == (addr, seq, True)
        info = decode_reply(Command.INFO, reply.payload)
        assert isinstance(info, InfoReply)
        assert info.device_class == device.device_class
    # Nobody at 0x09: silence; the next request still gets exactly its own reply.
    await line.host.expect_silence(message(0x09, InfoRequest(), seq=10))
    reply = await line.host.transact(message(0x07, PollRequest(), seq=11))
    assert reply.src == 0x07
    # A request sent one byte at a time is still one frame to the devices.
    show = message(0x03, ShowTextRequest(text=CALL_TEXT), seq=12)
    reply = await line.host.transact(show, bytewise=True)
    assert (reply.src, reply.payload) == (0x03, b"\x00")
    assert isinstance(devices[0x03], StripEmulator) and devices[0x03].text == CALL_TEXT


async def test_duplicate_address_collides_into_crc_errors(pty_bus: PtyBusFactory) -> None:
    line = await pty_bus(StripEmulator(0x03, uid=b"A" * 8), StripEmulator(0x03, uid=b"B" * 8))
    info = message(0x03, InfoRequest(), seq=1)
    await line.host.send(info.to_bytes())
    single = StripEmulator(0x03).handle(info)
    assert single is not None
    garbled = await line.host.read_exactly(len(single))
    assert line.host.decoder.feed(garbled) == []
    assert line.host.decoder.stats.crc_errors >= 1
    assert line.bus.collisions == 1


async def test_false_sof_is_recovered_after_line_idle_over_a_pty(pty_bus: PtyBusFactory) -> None:
    # §14 R2: a plausible header with LEN 511 in front of V4. The strip can only find V4
    # once the line has been idle for T_IDLE (§5 rule 5), which the endpoint's timer provides.
    line = await pty_bus(StripEmulator(0x03))
    await line.host.send(bytes.fromhex("eb 90 10 00 00 00 00 ff 01") + V4_SHOW_TEXT)
    reply = await line.host.next_frame()
    assert reply.to_bytes() == V5_SHOW_TEXT_REPLY


async def test_bus_served_over_tcp_like_a_serial_server() -> None:
    strip = StripEmulator(0x03)
    async with LineEndpoint(Hb1Bus([strip])) as endpoint:
        port = await endpoint.serve_tcp("127.0.0.1", 0)
        host = await HostLine.open(f"socket://127.0.0.1:{port}")
        try:
            reply = await host.transact(vec(V4_SHOW_TEXT))
            assert reply.to_bytes() == V5_SHOW_TEXT_REPLY
            assert strip.text == CALL_TEXT
        finally:
            host.close()


async def test_emulator_attached_to_a_socket_url_reconnects_like_a_cable() -> None:
    # The host side listens here (as a serial server would for its port); the emulator dials
    # in with the same supervised opener the bridge uses.
    clients: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

    async def on_client(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await clients.put((r, w))

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    fast = Backoff(initial_s=0.01, max_s=0.02, jitter=0.0)
    try:
        async with LineEndpoint(Hb1Bus([StripEmulator(0x03)])) as endpoint:
            link = await endpoint.attach_url(f"socket://127.0.0.1:{port}", backoff=fast)
            for _ in range(2):  # the second round follows a dropped connection
                async with asyncio.timeout(TIMEOUT):
                    reader, writer = await clients.get()
                host = HostLine(reader, writer)
                assert (await host.transact(vec(V4_SHOW_TEXT))).to_bytes() == V5_SHOW_TEXT_REPLY
                writer.close()
            assert link.stats.connects == 2
    finally:
        server.close()
        await server.wait_closed()


def test_evt_seq_wraps_from_ffff_to_1_and_acks_follow_the_wrap(fake_clock: FakeClock) -> None:
    kiosk = KioskEmulator(0x30, clock=fake_clock, fifo_size=32)
    seq = 1
    acked = 0
    # Drive 65 534 events through the FIFO in batches, acknowledging each batch.
    while acked < 0xFFF0:
        for _ in range(30):
            kiosk.queue_event(KeyEvent(KeyCode(0x80)))
        acked = kiosk.pending_events[-1].evt_seq
        seq = seq % 255 + 1
        poll(kiosk, acked, seq=seq)
    while not kiosk.pending_events or kiosk.pending_events[-1].evt_seq != 2:
        kiosk.queue_event(KeyEvent(KeyCode(0x80)))
    tail = [q.evt_seq for q in kiosk.pending_events][-4:]
    assert tail == [0xFFFE, 0xFFFF, 1, 2]  # 0 is never used
    # An ack of 1 (after the wrap) also covers 0xFFFE and 0xFFFF.
    reply = poll(kiosk, 1, seq=seq % 255 + 1)
    assert (reply.evt_seq, reply.pending) == (2, 1)


def test_bitmap_chunks_in_order_complete_an_image(fake_clock: FakeClock) -> None:
    strip = StripEmulator(0x03, clock=fake_clock)
    w, h = 16, 2  # 2 bytes per row, 4 bytes in all
    first = BitmapRequest(0, 0, 0, w, h, 0, b"\xff\x00")
    rest = BitmapRequest(0, 0, 0, w, h, 2, b"\x0f\xf0")
    assert status_of(strip, message(0x03, rest, seq=1)) == Status.BAD_PARAM  # out of order
    assert status_of(strip, message(0x03, first, seq=2)) == Status.OK
    assert strip.bitmap(0) is None  # not drawn before the last chunk
    assert status_of(strip, message(0x03, rest, seq=3)) == Status.OK
    image = strip.bitmap(0)
    assert image is not None and image.data == b"\xff\x00\x0f\xf0"
    assert status_of(strip, message(0x03, BrightnessRequest(2), seq=4)) == Status.OK
    assert strip.brightness == 2
