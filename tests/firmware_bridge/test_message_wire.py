"""Every HB/1 message type on the wire, byte for byte, and fuzzed decoders.

The §14 vectors (test_messages.py) cover eleven frames; this table pins one or two examples of
every request, reply and event type with non-default field values, so a change in the
declarations of ``firmware_bridge.messages`` that moves a byte fails here. The bytes were taken
from the hand-written codecs the declarations replaced.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.constants import (
    Bauds,
    BootReason,
    Caps,
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
    Status,
    TextEncoding,
)
from firmware_bridge.errors import DecodeError, EncodeError
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
)

REQUESTS = [
    (PollRequest(0x1234, 0xBEEF), "34 12 ef be"),
    (InfoRequest(), ""),
    (SetAddressRequest(bytes(range(1, 9)), 0x21), "01 02 03 04 05 06 07 08 21"),
    (SetAddressRequest(bytes(8), 0xF0), "00 00 00 00 00 00 00 00 f0"),
    (SetTimeRequest(1716166800, -300), "90 a0 4a 66 d4 fe"),
    (AttnRequest(2, 0x41, b"\xff"), "02 41 ff"),
    (AttnRequest(7, 0x01, bytes((0x01, 0x00, 0x00, 0x80))), "07 01 01 00 00 80"),
    (ResetRequest(ResetMode(1)), "01"),
    (IndicateRequest(0x1B, 30), "1b 1e"),
    (
        ConfigRequest(
            (
                ConfigItem.baud(38400),
                ConfigItem.u8(ConfigTag.BRIGHTNESS, 9),
                ConfigItem.reason(2, "等太久"),
            )
        ),
        "01 04 00 96 00 00 02 01 09 10 07 02 b5 c8 cc ab be c3",
    ),
    (ConfigRequest(), ""),
    (
        ShowTextRequest(1, DisplayMode(2), 3, 600, TextEncoding.GBK, "请A001号到3号窗口"),
        "01 02 03 58 02 00 11 c7 eb 41 30 30 31 ba c5 b5 bd 33 ba c5 b4 b0 bf da",
    ),
    (
        ShowTextRequest(0, DisplayMode(0), 0, 0, TextEncoding.UTF8, "€ ok"),
        "00 00 00 00 00 01 06 e2 82 ac 20 6f 6b",
    ),
    (ClearRequest(2), "02"),
    (
        SetIdleRequest(0, DisplayMode(1), 2, 0, TextEncoding.GBK, "欢迎"),
        "00 01 02 00 00 00 04 bb b6 d3 ad",
    ),
    (BrightnessRequest(12), "0c"),
    (
        ShowRowsRequest(3, (Row(0x09, "A001 → 3号"), Row(2, ""))),
        "03 02 09 0b 41 30 30 31 20 a1 fa 20 33 ba c5 02 00",
    ),
    (
        BitmapRequest(1, 2, 3, 16, 4, 2, b"\xff\x00\xaa"),
        "01 02 00 03 00 10 00 04 00 02 00 ff 00 aa",
    ),
    (
        PadClerkRequest("3号窗口", "0815", "张三", 1),
        "07 33 ba c5 b4 b0 bf da 04 30 38 31 35 04 d5 c5 c8 fd 01",
    ),
    (
        PadServiceRequest(0xCAFEBABE, "A001", "社保卡补办"),
        "be ba fe ca 04 41 30 30 31 0a c9 e7 b1 a3 bf a8 b2 b9 b0 ec",
    ),
    (PadRateRequest(0xCAFEBABE, 45, 5, 5, 0), "be ba fe ca 2d 05 05 00"),
    (PadCancelRequest(7), "07 00 00 00"),
    (KeypadShowRequest("A001", 12, 2), "04 41 30 30 31 0c 00 02"),
    (KeypadShowRequest(""), "00 ff ff 00"),
    (PassthruTxRequest(2, b"\x1b@hello"), "02 1b 40 68 65 6c 6c 6f"),
]
REPLIES = [
    (StatusReply(Status(4)), "04"),
    (StatusReply(), "00"),
    (
        PollReply(DeviceState(0x48), 0x1234, 3, 17, EventType.KEY, b"\x01\x00"),
        "00 48 34 12 03 11 00 45 02 01 00",
    ),
    (
        PollReply.carrying(
            state=DeviceState(0), boot_id=2, pending=0, evt_seq=1, event=RatingEvent(5, 5, 3, (1,))
        ),
        "00 00 02 00 00 01 00 41 09 05 00 00 00 05 03 00 01 01",
    ),
    (
        InfoReply(
            DeviceClass(4),
            0x10,
            (1, 2, 3),
            bytes(range(8)),
            0x77,
            Caps(0x0013),
            256,
            Fonts(3),
            Bauds(0x1F),
            2,
            40,
            32,
            4,
            8,
            128,
            32,
            "HB1-CALLER",
        ),
        "00 04 10 01 02 03 00 01 02 03 04 05 06 07 77 00 13 00 00 01 03 1f 02 28 20 04 08 80"
        " 00 20 00 0a 48 42 31 2d 43 41 4c 4c 45 52",
    ),
    (
        ConfigReply(
            (ConfigItem.u8(ConfigTag.HOST_LOST_S, 10), ConfigItem(ConfigTag(0x85), b"\x01"))
        ),
        "00 03 01 0a 85 01 01",
    ),
]
EVENTS = [
    (BootEvent(BootReason(2)), "02"),
    (RatingEvent(0xCAFEBABE, 4, 0x0105, (5, 3, 1)), "be ba fe ca 04 05 01 03 05 03 01"),
    (RatingEvent(9, 1), "09 00 00 00 01 00 00"),
    (RatingEvent(9, 2, 0, ()), "09 00 00 00 02 00 00 00"),
    (RatingTimeoutEvent(0x01020304), "04 03 02 01"),
    (LoginEvent(LoginMethod(1), b"\x04\xa2\x3b\x91"), "01 04 04 a2 3b 91"),
    (LogoutEvent(), ""),
    (KeyEvent(KeyCode.CALL_SPECIFIC, "A017"), "08 04 41 30 31 37"),
    (KeyEvent(KeyCode(0x85)), "85 00"),
    (FaultEvent(FaultCode(3)), "03"),
    (PassthruRxEvent(1, b"\x10\x04\x01"), "01 10 04 01"),
    (UnknownEvent(0x60, b"\x01\x02"), "01 02"),
]


def test_the_table_has_every_type() -> None:
    assert {type(m) for m, _ in REQUESTS} == set(REQUEST_TYPES.values())
    assert {type(m) for m, _ in REPLIES} == {StatusReply, PollReply, InfoReply, ConfigReply}
    assert {type(e) for e, _ in EVENTS} == {
        BootEvent,
        RatingEvent,
        RatingTimeoutEvent,
        LoginEvent,
        LogoutEvent,
        KeyEvent,
        FaultEvent,
        PassthruRxEvent,
        UnknownEvent,
    }


@pytest.mark.parametrize(
    "cls",
    [
        *REQUEST_TYPES.values(),
        *EVENT_TYPES.values(),
        StatusReply,
        PollReply,
        InfoReply,
        ConfigReply,
        Row,
        ConfigItem,
    ],
    ids=lambda c: c.__name__,
)
def test_every_field_has_one_wire_type(cls: type[Any]) -> None:
    # A field added without its wire type would be neither written nor read.
    names = [name for name, _ in cls.layout()]
    assert names == [f.name for f in dataclasses.fields(cls)]


@pytest.mark.parametrize(("msg", "wire"), REQUESTS, ids=lambda v: type(v).__name__)
def test_request_bytes(msg: Request, wire: str) -> None:
    assert msg.encode().hex(" ") == wire
    assert decode_request(msg.CMD, bytes.fromhex(wire)) == msg


@pytest.mark.parametrize(("msg", "wire"), REPLIES, ids=lambda v: type(v).__name__)
def test_reply_bytes(msg: Reply, wire: str) -> None:
    assert msg.encode().hex(" ") == wire
    cmd = Command.SHOW_TEXT if isinstance(msg, StatusReply) else msg.CMD
    assert decode_reply(cmd, bytes.fromhex(wire)) == msg


@pytest.mark.parametrize(("event", "wire"), EVENTS, ids=lambda v: type(v).__name__)
def test_event_bytes(event: Event, wire: str) -> None:
    assert event.encode().hex(" ") == wire
    assert decode_event(event.evt_type, bytes.fromhex(wire)) == event


# --- fuzz: any bytes decode to a message or a DecodeError, never anything else -----------------


@given(st.sampled_from(sorted(REQUEST_TYPES)), st.binary(max_size=80), st.booleans())
def test_any_request_payload_decodes_or_is_refused(
    cmd: Command, payload: bytes, utf8: bool
) -> None:
    enc = TextEncoding.UTF8 if utf8 else TextEncoding.GBK
    try:
        msg = decode_request(cmd, payload, enc)
    except DecodeError as exc:
        status = exc.status
        msg = None
    if msg is None:
        assert status in (Status.BAD_LENGTH, Status.ENCODING)
        return
    assert type(msg) is REQUEST_TYPES[cmd]
    try:
        msg.validate()
        wire = msg.encode(enc)
    except EncodeError:
        return  # decodable but out of range: a device answers BAD_PARAM
    assert decode_request(cmd, wire, enc) == msg


@given(
    st.sampled_from([Command.POLL, Command.INFO, Command.CONFIG, Command.SHOW_TEXT]),
    st.binary(max_size=80),
)
def test_any_reply_payload_decodes_or_is_refused(cmd: Command, payload: bytes) -> None:
    try:
        reply = decode_reply(cmd, payload)
    except DecodeError:
        return
    assert isinstance(reply, Reply)
    if payload[0] != Status.OK:
        assert reply == StatusReply(Status(payload[0]))


@given(st.integers(0, 0xFF), st.binary(max_size=40))
def test_any_event_data_decodes_or_is_refused(evt_type: int, data: bytes) -> None:
    try:
        event = decode_event(evt_type, data)
    except DecodeError:
        return
    assert event.evt_type == evt_type
    assert isinstance(event, Event)
