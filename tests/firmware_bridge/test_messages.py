"""Typed HB/1 payloads: §14 vectors, limits, and round trips of every message and event."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.codec import Frame, FrameDecoder, FrameFlags
from firmware_bridge.constants import (
    Bauds,
    BootReason,
    Caps,
    Color,
    Command,
    ConfigTag,
    DeviceClass,
    DeviceState,
    DisplayMode,
    EventType,
    FaultCode,
    Fonts,
    KeyCode,
    LoginMethod,
    ResetMode,
    RowAttr,
    Status,
    TextEncoding,
)
from firmware_bridge.errors import DecodeError, EncodeError, TextEncodingError
from firmware_bridge.messages import (
    EVENT_TYPES,
    REQUEST_TYPES,
    AttnRequest,
    BitmapRequest,
    BootEvent,
    BrightnessRequest,
    ClearRequest,
    ConfigItem,
    ConfigReply,
    ConfigRequest,
    Event,
    FaultEvent,
    IndicateRequest,
    InfoReply,
    InfoRequest,
    KeyEvent,
    KeypadShowRequest,
    LoginEvent,
    LogoutEvent,
    PadCancelRequest,
    PadClerkRequest,
    PadRateRequest,
    PadServiceRequest,
    PassthruRxEvent,
    PassthruTxRequest,
    PollReply,
    PollRequest,
    RatingEvent,
    RatingTimeoutEvent,
    Reply,
    Request,
    ResetRequest,
    Row,
    SetAddressRequest,
    SetIdleRequest,
    SetTimeRequest,
    ShowRowsRequest,
    ShowTextRequest,
    StatusReply,
    UnknownEvent,
    decode_event,
    decode_reply,
    decode_request,
    encode_text,
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


def frame_of(wire: bytes) -> Frame:
    (frame,) = FrameDecoder().feed(wire)
    return frame


def request_frame(dst: int, seq: int, msg: Request, flags: FrameFlags = FrameFlags.NONE) -> bytes:
    return Frame(flags, dst, 0x00, seq, msg.CMD, msg.encode()).to_bytes()


def reply_frame(
    src: int, seq: int, cmd: Command, msg: Reply, flags: FrameFlags = FrameFlags.RESP
) -> bytes:
    return Frame(flags, 0x00, src, seq, cmd, msg.encode()).to_bytes()


# --- §14 vectors: build them from typed messages, and parse them back -------------------------


def test_v2_poll() -> None:
    msg = PollRequest(ack_evt_seq=6, ack_boot_id=0x1234)
    assert request_frame(0x05, 0x21, msg) == V2_POLL
    assert decode_request(Command.POLL, frame_of(V2_POLL).payload) == msg


def test_v3_poll_reply_without_event() -> None:
    msg = PollReply(DeviceState.NONE, boot_id=0x1234)
    assert reply_frame(0x05, 0x21, Command.POLL, msg) == V3_POLL_REPLY
    decoded = decode_reply(Command.POLL, frame_of(V3_POLL_REPLY).payload)
    assert decoded == msg
    assert isinstance(decoded, PollReply)
    assert decoded.event() is None


def test_v4_show_text() -> None:
    msg = ShowTextRequest(
        region=0,
        mode=DisplayMode.FLASH,
        color=Color.RED,
        hold_s=10,
        enc=TextEncoding.GBK,
        text="请A001号到3号窗口",
    )
    assert len(encode_text(msg.text)) == 17
    assert request_frame(0x03, 0x22, msg) == V4_SHOW_TEXT
    assert decode_request(Command.SHOW_TEXT, frame_of(V4_SHOW_TEXT).payload) == msg


def test_v5_status_reply() -> None:
    assert reply_frame(0x03, 0x22, Command.SHOW_TEXT, StatusReply()) == V5_SHOW_TEXT_REPLY
    assert decode_reply(Command.SHOW_TEXT, frame_of(V5_SHOW_TEXT_REPLY).payload) == StatusReply()


def test_v6_pad_rate_req() -> None:
    msg = PadRateRequest(session_id=0xCAFEBABE, timeout_s=30, levels=5, dims_mask=0, voice=1)
    assert request_frame(0x05, 0x23, msg) == V6_PAD_RATE_REQ
    assert decode_request(Command.PAD_RATE_REQ, frame_of(V6_PAD_RATE_REQ).payload) == msg


def test_v7_poll_reply_rating() -> None:
    msg = PollReply.carrying(
        state=DeviceState.NONE,
        boot_id=0x1234,
        pending=1,
        evt_seq=7,
        event=RatingEvent(session_id=0xCAFEBABE, level=5, reasons=0),
    )
    assert reply_frame(0x05, 0x24, Command.POLL, msg) == V7_POLL_REPLY_RATING
    decoded = decode_reply(Command.POLL, frame_of(V7_POLL_REPLY_RATING).payload)
    assert isinstance(decoded, PollReply)
    assert decoded.event() == RatingEvent(0xCAFEBABE, 5, 0, None)
    assert (decoded.boot_id, decoded.evt_seq, decoded.pending) == (0x1234, 7, 1)


def test_v8_set_time_broadcast() -> None:
    msg = SetTimeRequest(unix=1716166800, tz_min=480)
    assert request_frame(0xFF, 0x25, msg, FrameFlags.NOACK) == V8_SET_TIME
    assert decode_request(Command.SET_TIME, frame_of(V8_SET_TIME).payload) == msg


def test_v9_info_reply() -> None:
    msg = InfoReply(
        device_class=DeviceClass.PAD,
        proto=0x10,
        fw=(1, 2, 3),
        uid=bytes(range(1, 9)),
        boot_id=0x1234,
        caps=Caps(0x0070),
        max_payload=256,
        fonts=Fonts.GB2312 | Fonts.GBK,
        bauds=Bauds(0x1F),
        baud_now=0,
        t_busy_ms=50,
        fifo=16,
        model="HB1-PAD",
    )
    assert reply_frame(0x05, 0x26, Command.INFO, msg) == V9_INFO_REPLY
    decoded = decode_reply(Command.INFO, frame_of(V9_INFO_REPLY).payload)
    assert decoded == msg
    assert isinstance(decoded, InfoReply)
    assert decoded.baud == 9600
    assert not decoded.utf8


def test_v10_poll_reply_key_with_more() -> None:
    msg = PollReply.carrying(
        state=DeviceState.NONE,
        boot_id=0x0102,
        pending=2,
        evt_seq=3,
        event=KeyEvent(KeyCode.CALL_SPECIFIC, "A012"),
    )
    wire = reply_frame(0x07, 0x40, Command.POLL, msg, FrameFlags.RESP | FrameFlags.MORE)
    assert wire == V10_POLL_REPLY_KEY
    decoded = decode_reply(Command.POLL, frame_of(V10_POLL_REPLY_KEY).payload)
    assert isinstance(decoded, PollReply)
    assert decoded.event() == KeyEvent(KeyCode.CALL_SPECIFIC, "A012")


def test_v11_poll_reply_login() -> None:
    msg = PollReply.carrying(
        state=DeviceState.NONE,
        boot_id=0x0102,
        pending=1,
        evt_seq=4,
        event=LoginEvent(LoginMethod.KEYS, b"1024*3721"),
    )
    assert reply_frame(0x07, 0x41, Command.POLL, msg) == V11_POLL_REPLY_LOGIN
    decoded = decode_reply(Command.POLL, frame_of(V11_POLL_REPLY_LOGIN).payload)
    assert isinstance(decoded, PollReply)
    event = decoded.event()
    assert isinstance(event, LoginEvent)
    assert event.cred_text == "1024*3721"


def test_v12_show_rows() -> None:
    msg = ShowRowsRequest(
        first_row=0,
        rows=(
            Row(RowAttr.RED | RowAttr.FLASH, "A001 3号窗口"),
            Row(RowAttr.GREEN, "B015 7号窗口"),
        ),
    )
    assert request_frame(0x20, 0x50, msg) == V12_SHOW_ROWS
    assert decode_request(Command.SHOW_ROWS, frame_of(V12_SHOW_ROWS).payload) == msg


def test_v13_pad_clerk() -> None:
    msg = PadClerkRequest(window="3号窗口", staff_no="1024", name="张三", flags=0)
    assert request_frame(0x05, 0x27, msg) == V13_PAD_CLERK
    assert decode_request(Command.PAD_CLERK, frame_of(V13_PAD_CLERK).payload) == msg


# --- enums ------------------------------------------------------------------------------------


def test_unknown_codes_convert_tolerantly() -> None:
    cmd = Command(0x99)
    assert cmd == 0x99
    assert not cmd.is_known
    assert cmd.name == "UNKNOWN_0x99"
    assert Command.POLL.is_known
    assert Status(0x42).name == "UNKNOWN_0x42"
    with pytest.raises(ValueError, match="256"):
        Command(256)


def test_class_groups() -> None:
    assert DeviceClass.PAD.group_address == 0xF3
    assert DeviceClass.CALLER.interactive
    assert not DeviceClass.STRIP.interactive


# --- text and limits --------------------------------------------------------------------------


def test_gbk_refuses_characters_outside_gbk() -> None:
    with pytest.raises(TextEncodingError):
        encode_text("𠀀")  # needs a GB18030 4-byte sequence
    with pytest.raises(TextEncodingError):
        encode_text("€")


def test_utf8_text_when_selected() -> None:
    msg = ShowTextRequest(text="𠀀号", enc=TextEncoding.UTF8)
    assert decode_request(Command.SHOW_TEXT, msg.encode()) == msg
    rows = ShowRowsRequest(0, (Row(0, "𠀀"),))
    assert ShowRowsRequest.decode(rows.encode(TextEncoding.UTF8), TextEncoding.UTF8) == rows


def test_undecodable_gbk_gives_status_encoding() -> None:
    payload = bytes.fromhex("00 00 00 00 00 00 02 80 41")
    with pytest.raises(DecodeError) as info:
        decode_request(Command.SHOW_TEXT, payload)
    assert info.value.status == Status.ENCODING


def test_text_longer_than_a_blob_is_refused() -> None:
    with pytest.raises(EncodeError, match="255"):
        ShowTextRequest(text="号" * 128).encode()
    ShowTextRequest(text="号" * 127 + "A").encode()


@pytest.mark.parametrize(
    ("msg", "field"),
    [
        (KeypadShowRequest("A0123456X"), "ticket"),
        (KeypadShowRequest("号"), "ticket"),
        (SetIdleRequest(hold_s=5, text="x"), "hold_s"),
        (PadRateRequest(1, levels=3), "levels"),
        (PadRateRequest(1, timeout_s=0), "timeout_s"),
        (SetAddressRequest(bytes(8), 0xF1), "new_addr"),
        (SetAddressRequest(bytes(7), 0x01), "uid"),
        (PassthruTxRequest(0, b""), "data"),
        (PassthruTxRequest(4, b"x"), "port"),
        (BrightnessRequest(16), "level"),
        (IndicateRequest(0x20), "pattern"),
        (BitmapRequest(0, 0, 0, 8, 2, 1, b"xx"), "data"),
        (PadServiceRequest(0, "A001", ""), "session_id"),
    ],
)
def test_out_of_range_fields_are_refused(msg: Request, field: str) -> None:
    with pytest.raises(EncodeError) as info:
        msg.encode()
    assert info.value.field == field


def test_event_limits() -> None:
    with pytest.raises(EncodeError):
        PassthruRxEvent(0, bytes(65)).encode()
    with pytest.raises(EncodeError):
        LoginEvent(LoginMethod.CARD, bytes(256)).encode()
    with pytest.raises(EncodeError):
        InfoReply(DeviceClass.PAD, 0x10, (1, 0, 0), bytes(8), 1, model="M" * 33).encode()


def test_reason_label_limit() -> None:
    item = ConfigItem.reason(3, "态度不好")
    assert item.reason_label() == (3, "态度不好")
    with pytest.raises(EncodeError):
        ConfigItem.reason(3, "长" * 17)
    with pytest.raises(EncodeError):
        ConfigItem.reason(16, "x")


def test_short_and_trailing_request_payloads() -> None:
    with pytest.raises(DecodeError) as info:
        decode_request(Command.POLL, b"\x00\x00\x00")
    assert info.value.status == Status.BAD_LENGTH
    with pytest.raises(DecodeError) as info:
        decode_request(Command.POLL, b"\x00" * 5)
    assert info.value.status == Status.BAD_LENGTH
    with pytest.raises(DecodeError) as info:
        decode_request(0x40, b"")
    assert info.value.status == Status.UNKNOWN_CMD


def test_trailing_reply_bytes_are_ignored() -> None:
    payload = frame_of(V3_POLL_REPLY).payload + b"\x99\x98"
    assert decode_reply(Command.POLL, payload) == PollReply(DeviceState.NONE, 0x1234)


def test_error_status_reply() -> None:
    assert decode_reply(Command.INFO, b"\x04") == StatusReply(Status.BUSY)
    with pytest.raises(DecodeError):
        decode_reply(Command.INFO, b"")


def test_unknown_event_type_is_kept() -> None:
    event = decode_event(0x60, b"\x01\x02")
    assert event == UnknownEvent(0x60, b"\x01\x02")
    assert event.evt_type == 0x60


def test_config_typed_items() -> None:
    req = ConfigRequest(
        (
            ConfigItem.baud(19200),
            ConfigItem.u8(ConfigTag.HOST_LOST_S, 10),
            ConfigItem(ConfigTag(0x85), b""),
        )
    )
    decoded = decode_request(Command.CONFIG, req.encode())
    assert isinstance(decoded, ConfigRequest)
    assert decoded.items[0].int_value == 19200
    assert decoded.items[2].tag == 0x85
    with pytest.raises(EncodeError):
        ConfigItem.baud(4800)
    with pytest.raises(EncodeError):
        ConfigItem.u8(ConfigTag.HOST_LOST_S, 0)


# --- round trips of every type ----------------------------------------------------------------

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
session = st.integers(1, 0xFFFFFFFF)
gbk_text = st.text(
    st.characters(codec="gbk", exclude_characters="€", exclude_categories=["Cs"]), max_size=40
)
ascii_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=8)
config_item = st.builds(ConfigItem, st.builds(ConfigTag, u8), st.binary(max_size=40))

REQUEST_STRATEGIES: dict[Command, st.SearchStrategy[Any]] = {
    Command.POLL: st.builds(PollRequest, u16, u16),
    Command.INFO: st.just(InfoRequest()),
    Command.SET_ADDRESS: st.builds(
        SetAddressRequest, st.binary(min_size=8, max_size=8), st.integers(1, 0xEF)
    ),
    Command.SET_TIME: st.builds(SetTimeRequest, u32, st.integers(-0x8000, 0x7FFF)),
    Command.RESET: st.builds(ResetRequest, st.sampled_from(ResetMode)),
    Command.INDICATE: st.builds(
        IndicateRequest, st.integers(0, 3) | st.integers(0, 3).map(lambda v: v | 0x18), u8
    ),
    Command.CONFIG: st.builds(ConfigRequest, st.lists(config_item, max_size=5).map(tuple)),
    Command.ATTN: st.builds(
        lambda base, bits, chars: AttnRequest.listing(
            [base + i for i in range(32) if bits >> i & 1 and base + i <= 0xEF] or [base], chars
        ),
        st.integers(1, 0xEF),
        st.integers(1, 0xFFFFFFFF),
        st.integers(2, 16),
    ),
    Command.SHOW_TEXT: st.builds(
        ShowTextRequest,
        u8,
        st.sampled_from(DisplayMode),
        st.integers(0, 7),
        u16,
        st.just(TextEncoding.GBK),
        gbk_text,
    ),
    Command.CLEAR: st.builds(ClearRequest, u8),
    Command.SET_IDLE: st.builds(
        SetIdleRequest,
        u8,
        st.sampled_from(DisplayMode),
        st.integers(0, 7),
        st.just(0),
        st.just(TextEncoding.UTF8),
        st.text(max_size=30, alphabet=st.characters(exclude_categories=["Cs"])),
    ),
    Command.BRIGHTNESS: st.builds(BrightnessRequest, st.integers(0, 15)),
    Command.SHOW_ROWS: st.builds(
        ShowRowsRequest,
        u8,
        st.lists(st.builds(Row, st.integers(0, 15), gbk_text), max_size=4).map(tuple),
    ),
    Command.BITMAP: st.builds(
        BitmapRequest, u8, u16, u16, st.just(16), st.just(8), st.just(4), st.binary(max_size=12)
    ),
    Command.PAD_CLERK: st.builds(PadClerkRequest, gbk_text, gbk_text, gbk_text, st.integers(0, 1)),
    Command.PAD_SERVICE: st.builds(PadServiceRequest, session, gbk_text, gbk_text),
    Command.PAD_RATE_REQ: st.builds(
        PadRateRequest,
        session,
        st.integers(1, 255),
        st.just(5),
        st.integers(0, 7),
        st.integers(0, 1),
    ),
    Command.PAD_CANCEL: st.builds(PadCancelRequest, u32),
    Command.KEYPAD_SHOW: st.builds(KeypadShowRequest, ascii_text, u16, st.integers(0, 3)),
    Command.PASSTHRU_TX: st.builds(
        PassthruTxRequest, st.integers(0, 3), st.binary(min_size=1, max_size=100)
    ),
}

EVENT_STRATEGIES: dict[EventType, st.SearchStrategy[Any]] = {
    EventType.BOOT: st.builds(BootEvent, st.sampled_from(BootReason)),
    EventType.RATING: st.builds(
        RatingEvent,
        u32,
        st.integers(1, 5),
        u16,
        st.none() | st.lists(st.integers(0, 5), max_size=3).map(tuple),
    ),
    EventType.RATING_TIMEOUT: st.builds(RatingTimeoutEvent, u32),
    EventType.LOGIN: st.builds(LoginEvent, st.sampled_from(LoginMethod), st.binary(max_size=20)),
    EventType.LOGOUT: st.just(LogoutEvent()),
    EventType.KEY: st.builds(KeyEvent, st.builds(KeyCode, u8), ascii_text),
    EventType.FAULT: st.builds(FaultEvent, st.builds(FaultCode, u8)),
    EventType.PASSTHRU_RX: st.builds(
        PassthruRxEvent, st.integers(0, 3), st.binary(min_size=1, max_size=64)
    ),
}


def test_strategies_cover_every_type() -> None:
    assert set(REQUEST_STRATEGIES) == set(REQUEST_TYPES)
    assert set(EVENT_STRATEGIES) == set(EVENT_TYPES)


@given(st.one_of(*REQUEST_STRATEGIES.values()), st.integers(0, 255))
def test_request_round_trip_through_a_frame(msg: Request, seq: int) -> None:
    frame = frame_of(request_frame(0x05, seq, msg))
    assert decode_request(frame.cmd, frame.payload) == msg


@given(st.one_of(*EVENT_STRATEGIES.values()), u16, st.integers(1, 0xFFFF), st.integers(1, 255))
def test_event_round_trip_through_poll_reply(
    event: Event, boot_id: int, evt_seq: int, pending: int
) -> None:
    reply = PollReply.carrying(
        state=DeviceState.NONE, boot_id=boot_id, pending=pending, evt_seq=evt_seq, event=event
    )
    frame = frame_of(reply_frame(0x09, 1, Command.POLL, reply))
    decoded = decode_reply(frame.cmd, frame.payload)
    assert isinstance(decoded, PollReply)
    assert decoded == reply
    assert decoded.event() == event


@given(
    st.builds(
        InfoReply,
        st.builds(DeviceClass, st.integers(1, 5)),
        u8,
        st.tuples(u8, u8, u8),
        st.binary(min_size=8, max_size=8),
        u16,
        st.builds(Caps, u16),
        st.integers(128, 512),
        st.builds(Fonts, st.integers(0, 15)),
        st.builds(Bauds, st.integers(0, 31)),
        st.integers(0, 4),
        st.integers(20, 200),
        st.integers(16, 255),
        u8,
        u8,
        u16,
        u16,
        st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=32),
    )
)
def test_info_reply_round_trip(msg: InfoReply) -> None:
    assert decode_reply(Command.INFO, msg.encode()) == msg


@given(st.lists(config_item, max_size=6).map(tuple))
def test_config_reply_round_trip(items: tuple[ConfigItem, ...]) -> None:
    assert decode_reply(Command.CONFIG, ConfigReply(items).encode()) == ConfigReply(items)


@given(st.builds(Status, u8))
def test_status_reply_round_trip(status: Status) -> None:
    reply = decode_reply(Command.SHOW_TEXT, StatusReply(status).encode())
    assert reply == StatusReply(status)
