"""Typed HB/1 payloads (spec §8–§11), declared once: one frozen dataclass per request, reply
and event, each field annotated with its wire type and range (``firmware_bridge.wire``).

The field list of a message is its byte layout. From it, every message gets ``validate()``
(the spec's ranges, run by ``encode``; a device (emulator) calls it after ``decode`` to answer
BAD_PARAM), ``encode(text_enc=...) -> bytes`` and ``decode(payload, text_enc=..., strict=...)``.
Rules a field's own type cannot say (SET_IDLE's ``hold_s`` must be 0, a BITMAP chunk must fit
its image, …) are each message's ``_validate_more``. ``text_enc`` is the device's CONFIG
TEXT_ENC: GBK (1-byte ASCII plus 2-byte codes, never GB18030 4-byte codes) unless UTF-8.

Replies: ``decode_reply`` returns ``StatusReply`` for every reply whose status is not OK, and for
OK replies of commands without reply data. Replies with data start with the status byte OK.
Trailing bytes in replies are ignored (§7.2); ``strict=True`` (used for requests) rejects them
with status BAD_LENGTH. Events (POLL ``evt_data``) ignore trailing bytes too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, ClassVar, Self

from firmware_bridge.constants import (
    BAUD_RATES,
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
from firmware_bridge.errors import DecodeError, EncodeError, TextEncodingError
from firmware_bridge.wire import (
    I16,
    MAX_BLOB,
    U8,
    U16,
    U32,
    Array,
    Ascii,
    Blob,
    Code,
    Counted,
    Int,
    Nested,
    Raw,
    Reader,
    Rest,
    Struct,
    Text,
    Trailing,
    UntilEnd,
    check_range,
)

# The text codecs are part of this module's interface (emulators and tests use them).
from firmware_bridge.wire import decode_text as decode_text
from firmware_bridge.wire import encode_ascii as encode_ascii
from firmware_bridge.wire import encode_text as encode_text

MAX_MODEL_CHARS = 32
MAX_KEYPAD_TICKET = 8
MAX_REASON_LABEL = 32
MAX_REASON_INDEX = 15
MAX_PASSTHRU_RX = 64
MAX_PASSTHRU_PORT = 3
RATING_LEVELS = 5
UID_LEN = 8
NO_WAITING = 0xFFFF  # KEYPAD_SHOW ``waiting`` value that hides the count

_GBK = TextEncoding.GBK

# Wire types used by several messages.
_Session = Annotated[int, Int(4, 1)]  # a pad session id; 0 is never a session
_Region = U8
_Port = Annotated[int, Int(1, 0, MAX_PASSTHRU_PORT)]
_Uid = Annotated[bytes, Raw(UID_LEN)]


class Message(Struct):
    """Base of requests and replies: ``CMD`` names the command they belong to."""

    __slots__ = ()
    CMD: ClassVar[Command]
    # Replies with data start with status OK (decoding anything else is an error).
    STATUS_OK: ClassVar[bool] = False

    def encode(self, text_enc: TextEncoding = _GBK) -> bytes:
        """Payload bytes; raises ``EncodeError`` for a value outside the spec's range."""
        out = bytearray((Status.OK,)) if self.STATUS_OK else bytearray()
        self.write(out, text_enc)
        return bytes(out)

    @classmethod
    def decode(cls, payload: bytes, text_enc: TextEncoding = _GBK, *, strict: bool = False) -> Self:
        """Parse a payload; raises ``DecodeError``."""
        r = Reader(payload, cls.CMD)
        if cls.STATUS_OK:
            status = r.u8()
            if status != Status.OK:
                raise DecodeError(
                    f"{cls.CMD.name} reply has status {status}", cmd=cls.CMD, status=status
                )
        out = cls.read(r, text_enc)
        r.done(strict)
        return out


class Request(Message):
    """A host → device payload."""

    __slots__ = ()


class Reply(Message):
    """A device → host payload (starts with ``status``)."""

    __slots__ = ()


# --- requests ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PollRequest(Request):
    """POLL: acknowledge events up to (ack_boot_id, ack_evt_seq) and fetch the oldest one."""

    CMD: ClassVar[Command] = Command.POLL
    ack_evt_seq: U16 = 0
    ack_boot_id: U16 = 0


@dataclass(frozen=True, slots=True)
class InfoRequest(Request):
    """INFO: read identity and capabilities."""

    CMD: ClassVar[Command] = Command.INFO


@dataclass(frozen=True, slots=True)
class SetAddressRequest(Request):
    """SET_ADDRESS: the device with ``uid`` takes ``new_addr`` (0x01–0xEF, or 0xF0 to unset)."""

    CMD: ClassVar[Command] = Command.SET_ADDRESS
    uid: _Uid
    new_addr: U8

    def _validate_more(self) -> None:
        if not (0x01 <= self.new_addr <= 0xEF or self.new_addr == 0xF0):
            raise EncodeError(f"new_addr 0x{self.new_addr:02X} invalid", field="new_addr")


@dataclass(frozen=True, slots=True)
class SetTimeRequest(Request):
    """SET_TIME: unix seconds and minutes east of UTC."""

    CMD: ClassVar[Command] = Command.SET_TIME
    unix: U32
    tz_min: I16 = 480


@dataclass(frozen=True, slots=True)
class ResetRequest(Request):
    """RESET: reboot (0) or factory reset (1)."""

    CMD: ClassVar[Command] = Command.RESET
    mode: Annotated[ResetMode, Code(ResetMode, reserved=EncodeError)] = ResetMode.REBOOT


@dataclass(frozen=True, slots=True)
class IndicateRequest(Request):
    """INDICATE: LED pattern (bits 0–2), beep (bit 3), blink display (bit 4) for a duration."""

    CMD: ClassVar[Command] = Command.INDICATE
    pattern: U8
    dur_100ms: U8 = 0

    LED_OFF: ClassVar[int] = 0
    LED_STEADY: ClassVar[int] = 1
    LED_BLINK_500: ClassVar[int] = 2
    LED_BLINK_200: ClassVar[int] = 3
    BEEP: ClassVar[int] = 0x08
    BLINK_DISPLAY: ClassVar[int] = 0x10

    def _validate_more(self) -> None:
        if self.pattern & 0xE0 or self.pattern & 0x07 > 3:
            raise EncodeError(f"pattern 0x{self.pattern:02X} has reserved bits", field="pattern")


@dataclass(frozen=True, slots=True)
class AttnRequest(Request):
    """ATTN (optional extension, docs/protocol.md §17): every listed device marks its slot.

    Always broadcast with NOACK. ``bitmap`` bit i of byte j lists address ``base + 8j + i``;
    a listed device's slot is the number of listed addresses below its own.
    """

    CMD: ClassVar[Command] = Command.ATTN
    slot_chars: Annotated[int, Int(1, 2, 16)]
    base: Annotated[int, Int(1, 0x01, 0xEF)]
    bitmap: Annotated[bytes, Rest(1, 4)]

    def _validate_more(self) -> None:
        addresses = self.addresses()
        if not addresses:
            raise EncodeError("bitmap lists no address", field="bitmap")
        if addresses[-1] > 0xEF:
            raise EncodeError(f"address 0x{addresses[-1]:02X} listed", field="bitmap")

    def addresses(self) -> tuple[int, ...]:
        """The listed addresses in slot order (ascending)."""
        return tuple(
            self.base + 8 * j + i
            for j, byte in enumerate(self.bitmap)
            for i in range(8)
            if byte >> i & 1
        )

    def slot_of(self, address: int) -> int | None:
        """The slot index of ``address``, or None if it is not listed."""
        offset = address - self.base
        if not 0 <= offset < 8 * len(self.bitmap) or not self.bitmap[offset // 8] >> offset % 8 & 1:
            return None
        return sum(1 for o in range(offset) if self.bitmap[o // 8] >> o % 8 & 1)

    @classmethod
    def listing(cls, addresses: list[int] | tuple[int, ...], slot_chars: int) -> AttnRequest:
        """The request listing ``addresses`` (span of at most 32 addresses)."""
        if not addresses:
            raise EncodeError("no address to list", field="bitmap")
        base = min(addresses)
        span = max(addresses) - base + 1
        if span > 32:
            raise EncodeError(f"addresses span {span} > 32", field="bitmap")
        bitmap = bytearray((span + 7) // 8)
        for a in addresses:
            bitmap[(a - base) // 8] |= 1 << (a - base) % 8
        return cls(slot_chars, base, bytes(bitmap))


@dataclass(frozen=True, slots=True)
class ConfigItem(Struct):
    """One CONFIG TLV; the constructors below build the defined tags."""

    tag: Annotated[ConfigTag, Code(ConfigTag)]
    value: Annotated[bytes, Blob()]

    @property
    def int_value(self) -> int:
        """The value as a little-endian unsigned integer (BAUD is u32, the rest u8)."""
        return int.from_bytes(self.value, "little")

    @classmethod
    def baud(cls, rate: int) -> Self:
        """BAUD (must be broadcast on a multi-drop bus)."""
        if rate not in BAUD_RATES:
            raise EncodeError(f"baud {rate} not one of {BAUD_RATES}", field="baud")
        return cls(ConfigTag.BAUD, rate.to_bytes(4, "little"))

    @classmethod
    def u8(cls, tag: ConfigTag, value: int) -> Self:
        """Any of the one-byte tags (BRIGHTNESS, HOST_LOST_S, TEXT_ENC, FLASH_S, …)."""
        limits = {
            ConfigTag.BRIGHTNESS: (0, 15),
            ConfigTag.HOST_LOST_S: (1, 255),
            ConfigTag.TEXT_ENC: (0, 1),
            ConfigTag.VOLUME: (0, 15),
        }
        lo, hi = limits.get(tag, (0, 255))
        check_range(value, lo, hi, tag.name.lower())
        return cls(tag, bytes((value,)))

    @classmethod
    def reason(cls, index: int, label: str) -> Self:
        """REASON: pad rating reason ``index`` (0–15), GBK label ≤ 32 bytes; empty deletes it."""
        check_range(index, 0, MAX_REASON_INDEX, "reason_index")
        data = encode_text(label, TextEncoding.GBK, field="reason_label")
        Blob(MAX_REASON_LABEL).check(data, "reason_label")
        return cls(ConfigTag.REASON, bytes((index,)) + data)

    def reason_label(self) -> tuple[int, str]:
        """(index, label) of a REASON item."""
        if self.tag != ConfigTag.REASON or not self.value:
            raise DecodeError("not a REASON item", cmd=Command.CONFIG, status=Status.BAD_PARAM)
        return self.value[0], decode_text(self.value[1:], TextEncoding.GBK, cmd=Command.CONFIG)


_ConfigItems = Annotated[tuple[ConfigItem, ...], UntilEnd(Nested(ConfigItem))]


@dataclass(frozen=True, slots=True)
class ConfigRequest(Request):
    """CONFIG: empty reads all tags, otherwise writes the given TLVs atomically."""

    CMD: ClassVar[Command] = Command.CONFIG
    items: _ConfigItems = ()


@dataclass(frozen=True, slots=True)
class _TextRequest(Request):
    # SHOW_TEXT/SET_IDLE carry their own ``enc``; the device's TEXT_ENC does not apply.
    region: _Region = 0
    mode: Annotated[DisplayMode, Code(DisplayMode, reserved=EncodeError)] = DisplayMode.STATIC
    color: Annotated[int, Int(1, 0, 7)] = 0
    hold_s: U16 = 0
    enc: Annotated[TextEncoding, Code(TextEncoding, reserved=TextEncodingError)] = TextEncoding.GBK
    text: Annotated[str, Text(enc_from="enc")] = ""


@dataclass(frozen=True, slots=True)
class ShowTextRequest(_TextRequest):
    """SHOW_TEXT: show text in a region until ``hold_s`` ends (0 = until replaced)."""

    CMD: ClassVar[Command] = Command.SHOW_TEXT


@dataclass(frozen=True, slots=True)
class SetIdleRequest(_TextRequest):
    """SET_IDLE: store the region's idle content (``hold_s`` must be 0)."""

    CMD: ClassVar[Command] = Command.SET_IDLE

    def _validate_more(self) -> None:
        if self.hold_s:
            raise EncodeError("SET_IDLE hold_s must be 0", field="hold_s")


@dataclass(frozen=True, slots=True)
class ClearRequest(Request):
    """CLEAR: end the content of a region (0xFF = all regions and rows)."""

    CMD: ClassVar[Command] = Command.CLEAR
    ALL: ClassVar[int] = 0xFF
    region: _Region = 0xFF


@dataclass(frozen=True, slots=True)
class BrightnessRequest(Request):
    """BRIGHTNESS: level 0–15, not persisted."""

    CMD: ClassVar[Command] = Command.BRIGHTNESS
    level: Annotated[int, Int(1, 0, 15)]


@dataclass(frozen=True, slots=True)
class Row(Struct):
    """One SHOW_ROWS row: ``attr`` colour bits 0–2 plus flash bit 3; text in TEXT_ENC."""

    attr: Annotated[int, Int(1, 0, 0x0F)]
    text: Annotated[str, Text(label="row")]


@dataclass(frozen=True, slots=True)
class ShowRowsRequest(Request):
    """SHOW_ROWS: replace rows ``first_row`` … on a hall screen."""

    CMD: ClassVar[Command] = Command.SHOW_ROWS
    first_row: U8
    rows: Annotated[tuple[Row, ...], Counted(Nested(Row))]


@dataclass(frozen=True, slots=True)
class BitmapRequest(Request):
    """BITMAP: one chunk of a 1-bpp image starting at image byte ``offset``."""

    CMD: ClassVar[Command] = Command.BITMAP
    region: _Region
    x: U16
    y: U16
    w: U16
    h: U16
    offset: U16
    data: Annotated[bytes, Rest()]

    @property
    def image_size(self) -> int:
        """S = ceil(w / 8) × h."""
        return (self.w + 7) // 8 * self.h

    def _validate_more(self) -> None:
        check_range(self.image_size, 0, 0xFFFF, "image_size")
        if self.offset + len(self.data) > self.image_size:
            raise EncodeError("chunk extends beyond the image", field="data")


@dataclass(frozen=True, slots=True)
class PadClerkRequest(Request):
    """PAD_CLERK: show the clerk card; empty ``name`` = nobody logged in."""

    CMD: ClassVar[Command] = Command.PAD_CLERK
    PAUSED: ClassVar[int] = 0x01
    window: Annotated[str, Text()]
    staff_no: Annotated[str, Text()]
    name: Annotated[str, Text()]
    flags: Annotated[int, Int(1, 0, 1)] = 0


@dataclass(frozen=True, slots=True)
class PadServiceRequest(Request):
    """PAD_SERVICE: show the ticket being served; opens nothing yet."""

    CMD: ClassVar[Command] = Command.PAD_SERVICE
    session_id: _Session
    ticket: Annotated[str, Text()]
    matter: Annotated[str, Text()]


@dataclass(frozen=True, slots=True)
class PadRateRequest(Request):
    """PAD_RATE_REQ: open the rating screen for ``session_id``."""

    CMD: ClassVar[Command] = Command.PAD_RATE_REQ
    session_id: _Session
    timeout_s: Annotated[int, Int(1, 1, 255)] = 30
    levels: Annotated[int, Int(1, RATING_LEVELS, RATING_LEVELS)] = RATING_LEVELS
    dims_mask: Annotated[int, Int(1, 0, 7)] = 0
    voice: Annotated[int, Int(1, 0, 1)] = 1


@dataclass(frozen=True, slots=True)
class PadCancelRequest(Request):
    """PAD_CANCEL: end an open, unrated session without an event."""

    CMD: ClassVar[Command] = Command.PAD_CANCEL
    session_id: U32


@dataclass(frozen=True, slots=True)
class KeypadShowRequest(Request):
    """KEYPAD_SHOW: caller display (ticket ≤ 8 ASCII chars, waiting count, LED)."""

    CMD: ClassVar[Command] = Command.KEYPAD_SHOW
    ticket: Annotated[str, Ascii(MAX_KEYPAD_TICKET)]
    waiting: U16 = NO_WAITING
    led: Annotated[int, Int(1, 0, 3)] = 0


@dataclass(frozen=True, slots=True)
class PassthruTxRequest(Request):
    """PASSTHRU_TX: append bytes (at least one) unchanged to local UART ``port``."""

    CMD: ClassVar[Command] = Command.PASSTHRU_TX
    port: _Port
    data: Annotated[bytes, Rest(1)]


# --- events -----------------------------------------------------------------------------------


class Event(Struct):
    """Base of event data carried by a POLL reply; ``EVT`` is its type."""

    __slots__ = ()
    EVT: ClassVar[EventType]

    def encode(self) -> bytes:
        """Event data (``evt_data``); raises ``EncodeError`` for a value outside its range."""
        out = bytearray()
        self.write(out, _GBK)
        return bytes(out)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """Parse event data (trailing bytes ignored); raises ``DecodeError``."""
        return cls.read(Reader(data, None), _GBK)

    @property
    def evt_type(self) -> EventType:
        """Wire type of this event."""
        return self.EVT


@dataclass(frozen=True, slots=True)
class BootEvent(Event):
    """BOOT: first event of every boot."""

    EVT: ClassVar[EventType] = EventType.BOOT
    reason: Annotated[BootReason, Code(BootReason)] = BootReason.POWER_ON


@dataclass(frozen=True, slots=True)
class RatingEvent(Event):
    """RATING: level 1–5, reasons bitmap, dimension levels if the request asked for them."""

    EVT: ClassVar[EventType] = EventType.RATING
    session_id: U32
    level: Annotated[int, Int(1, 1, RATING_LEVELS)]
    reasons: U16 = 0
    dims: Annotated[
        tuple[int, ...] | None,
        Trailing(Counted(Int(1, 0, RATING_LEVELS), item_name="dim")),
    ] = None


@dataclass(frozen=True, slots=True)
class RatingTimeoutEvent(Event):
    """RATING_TIMEOUT: the citizen did not rate in time (``not_rated``)."""

    EVT: ClassVar[EventType] = EventType.RATING_TIMEOUT
    session_id: U32


@dataclass(frozen=True, slots=True)
class LoginEvent(Event):
    """LOGIN: a clerk presented a card, typed a number or scanned a badge."""

    EVT: ClassVar[EventType] = EventType.LOGIN
    method: Annotated[LoginMethod, Code(LoginMethod)]
    cred: Annotated[bytes, Blob()]

    @property
    def cred_text(self) -> str:
        """Card serials as upper-case hex, key and scan credentials as text."""
        if self.method == LoginMethod.CARD:
            return self.cred.hex().upper()
        return self.cred.decode("ascii", errors="replace")


@dataclass(frozen=True, slots=True)
class LogoutEvent(Event):
    """LOGOUT: the clerk logged out on the device."""

    EVT: ClassVar[EventType] = EventType.LOGOUT


@dataclass(frozen=True, slots=True)
class KeyEvent(Event):
    """KEY: one key press on a caller, with its ASCII argument (may be empty)."""

    EVT: ClassVar[EventType] = EventType.KEY
    key: Annotated[KeyCode, Code(KeyCode)]
    arg: Annotated[str, Ascii()] = ""


@dataclass(frozen=True, slots=True)
class FaultEvent(Event):
    """FAULT: a hardware fault was detected."""

    EVT: ClassVar[EventType] = EventType.FAULT
    code: Annotated[FaultCode, Code(FaultCode)]


@dataclass(frozen=True, slots=True)
class PassthruRxEvent(Event):
    """PASSTHRU_RX: 1–64 bytes received on a local UART."""

    EVT: ClassVar[EventType] = EventType.PASSTHRU_RX
    port: _Port
    data: Annotated[bytes, Rest(1, MAX_PASSTHRU_RX)]


@dataclass(frozen=True, slots=True)
class UnknownEvent(Event):
    """An event type this host does not know (logged and acknowledged, §8.3)."""

    EVT: ClassVar[EventType] = EventType.NONE
    type_code: int
    data: bytes

    @property
    def evt_type(self) -> EventType:
        return EventType(self.type_code)

    def validate(self) -> None:
        Blob().check(self.data, "evt_data")

    def encode(self) -> bytes:
        self.validate()
        return bytes(self.data)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        raise DecodeError("UnknownEvent needs its type; use decode_event()")


EVENT_TYPES: dict[EventType, type[Event]] = {
    cls.EVT: cls
    for cls in (
        BootEvent,
        RatingEvent,
        RatingTimeoutEvent,
        LoginEvent,
        LogoutEvent,
        KeyEvent,
        FaultEvent,
        PassthruRxEvent,
    )
}


def decode_event(evt_type: int, data: bytes) -> Event:
    """Typed event for ``evt_type``; unknown types become ``UnknownEvent``."""
    cls = EVENT_TYPES.get(EventType(evt_type))
    if cls is None:
        return UnknownEvent(evt_type, bytes(data))
    return cls.decode(data)


# --- replies ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatusReply(Reply):
    """A reply that is only a status byte (every error reply, and OK without data)."""

    CMD: ClassVar[Command] = Command.POLL  # not meaningful: shared by every command
    status: Annotated[Status, Code(Status)] = Status.OK


@dataclass(frozen=True, slots=True)
class PollReply(Reply):
    """POLL reply: device state, boot and the oldest unacknowledged event (if any)."""

    CMD: ClassVar[Command] = Command.POLL
    STATUS_OK: ClassVar[bool] = True
    state: Annotated[DeviceState, Code(DeviceState, hi=0x7F)]
    boot_id: U16
    pending: U8 = 0
    evt_seq: U16 = 0
    evt_type: Annotated[EventType, Code(EventType)] = EventType.NONE
    evt_data: Annotated[bytes, Blob()] = b""

    @classmethod
    def carrying(
        cls, *, state: DeviceState, boot_id: int, pending: int, evt_seq: int, event: Event
    ) -> Self:
        """A reply carrying a typed event."""
        return cls(state, boot_id, pending, evt_seq, event.evt_type, event.encode())

    @property
    def has_event(self) -> bool:
        """An event is carried."""
        return self.evt_type != EventType.NONE and self.evt_seq != 0

    def event(self) -> Event | None:
        """The carried event, typed; ``None`` if there is none."""
        if not self.has_event:
            return None
        return decode_event(self.evt_type, self.evt_data)


@dataclass(frozen=True, slots=True)
class InfoReply(Reply):
    """INFO reply: identity, capabilities and limits of the device."""

    CMD: ClassVar[Command] = Command.INFO
    STATUS_OK: ClassVar[bool] = True
    device_class: Annotated[DeviceClass, Code(DeviceClass)]
    proto: U8
    fw: Annotated[tuple[int, int, int], Array(Int(1), 3)]
    uid: _Uid
    boot_id: U16
    caps: Annotated[Caps, Code(Caps, size=2)] = Caps.NONE
    max_payload: U16 = 128
    fonts: Annotated[Fonts, Code(Fonts)] = Fonts.GBK
    bauds: Annotated[Bauds, Code(Bauds)] = Bauds.B9600
    baud_now: U8 = 0
    t_busy_ms: U8 = 50
    fifo: U8 = 16
    regions: U8 = 0
    rows: U8 = 0
    width_px: U16 = 0
    height_px: U16 = 0
    model: Annotated[str, Ascii(MAX_MODEL_CHARS)] = ""

    @property
    def baud(self) -> int:
        """Current speed in baud."""
        return BAUD_RATES[self.baud_now] if self.baud_now < len(BAUD_RATES) else 0

    @property
    def utf8(self) -> bool:
        """The device accepts UTF-8 text."""
        return bool(self.fonts & Fonts.UTF8)


@dataclass(frozen=True, slots=True)
class ConfigReply(Reply):
    """CONFIG reply: the values in effect (all tags for a read, request order for a write)."""

    CMD: ClassVar[Command] = Command.CONFIG
    STATUS_OK: ClassVar[bool] = True
    items: _ConfigItems = field(default=())


# --- registries -------------------------------------------------------------------------------

REQUEST_TYPES: dict[Command, type[Request]] = {
    cls.CMD: cls
    for cls in (
        PollRequest,
        InfoRequest,
        SetAddressRequest,
        SetTimeRequest,
        ResetRequest,
        IndicateRequest,
        ConfigRequest,
        AttnRequest,
        ShowTextRequest,
        ClearRequest,
        SetIdleRequest,
        BrightnessRequest,
        ShowRowsRequest,
        BitmapRequest,
        PadClerkRequest,
        PadServiceRequest,
        PadRateRequest,
        PadCancelRequest,
        KeypadShowRequest,
        PassthruTxRequest,
    )
}

REPLY_TYPES: dict[Command, type[Reply]] = {
    Command.POLL: PollReply,
    Command.INFO: InfoReply,
    Command.CONFIG: ConfigReply,
}

# §7.1: the largest reply payload expected, for the host reply timeout. Event data is at most
# 255 bytes; POLL replies are 9 + evt_len (callers send short KEY events, pads RATING with dims).
MAX_REPLY_PAYLOAD: dict[Command, int] = {
    Command.POLL: 9 + MAX_BLOB,
    Command.INFO: 32 + MAX_MODEL_CHARS,
    Command.CONFIG: 512,
}
# §7.1 "for POLL: 9 + the largest event the device class sends". Credentials are taken as at
# most 32 bytes (card serials are 4–10, staff numbers and badge codes short); a longer reply is
# still received in full because the host keeps receiving while bytes arrive (§7.1).
MAX_CREDENTIAL = 32
MAX_EVENT_DATA: dict[DeviceClass, int] = {
    DeviceClass.STRIP: 1,  # BOOT, FAULT
    DeviceClass.SCREEN: 1,
    DeviceClass.PAD: 2 + MAX_CREDENTIAL,  # LOGIN; RATING with all dimensions is 11
    DeviceClass.CALLER: 2 + MAX_CREDENTIAL,  # LOGIN; KEY with an argument is shorter
    DeviceClass.KIOSK: 1 + MAX_PASSTHRU_RX,  # PASSTHRU_RX
}


def max_reply_payload(cmd: Command, device_class: DeviceClass | None = None) -> int:
    """Largest reply payload a device may send for ``cmd`` (§7.1 N_max)."""
    if cmd == Command.POLL:
        evt = MAX_EVENT_DATA.get(device_class, MAX_BLOB) if device_class else MAX_BLOB
        return 9 + evt
    return MAX_REPLY_PAYLOAD.get(cmd, 1)


def decode_request(
    cmd: int, payload: bytes, text_enc: TextEncoding = _GBK, *, strict: bool = True
) -> Request:
    """Typed request; unknown commands raise ``DecodeError`` with status UNKNOWN_CMD."""
    cls = REQUEST_TYPES.get(Command(cmd))
    if cls is None:
        raise DecodeError(f"unknown command 0x{cmd:02X}", cmd=cmd, status=Status.UNKNOWN_CMD)
    return cls.decode(payload, text_enc, strict=strict)


def decode_reply(cmd: int, payload: bytes, text_enc: TextEncoding = _GBK) -> Reply:
    """Typed reply; any status other than OK gives ``StatusReply``."""
    if not payload:
        raise DecodeError("empty reply payload", cmd=cmd, status=Status.BAD_LENGTH)
    if payload[0] != Status.OK:
        return StatusReply(Status(payload[0]))
    cls = REPLY_TYPES.get(Command(cmd), StatusReply)
    return cls.decode(payload, text_enc)
