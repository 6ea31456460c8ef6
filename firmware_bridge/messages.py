"""Typed HB/1 payloads (spec §8–§11): one frozen dataclass per request, reply and event.

Every message has ``encode(text_enc=...) -> bytes`` and ``decode(payload, text_enc=...,
strict=...)``. ``validate()`` checks the spec's ranges and is run by ``encode``; a device
(emulator) calls it after ``decode`` to answer BAD_PARAM. ``text_enc`` is the device's CONFIG
TEXT_ENC: GBK (1-byte ASCII plus 2-byte codes, never GB18030 4-byte codes) unless UTF-8.

Replies: ``decode_reply`` returns ``StatusReply`` for every reply whose status is not OK, and for
OK replies of commands without reply data. Trailing bytes in replies are ignored (§7.2);
``strict=True`` (used for requests) rejects them with status BAD_LENGTH.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import ClassVar, Self

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

MAX_BLOB = 255
MAX_MODEL_CHARS = 32
MAX_KEYPAD_TICKET = 8
MAX_REASON_LABEL = 32
MAX_REASON_INDEX = 15
MAX_PASSTHRU_RX = 64
MAX_PASSTHRU_PORT = 3
RATING_LEVELS = 5
UID_LEN = 8
NO_WAITING = 0xFFFF  # KEYPAD_SHOW ``waiting`` value that hides the count


# --- text -------------------------------------------------------------------------------------


def _check_gbk(data: bytes) -> None:
    # Python's gbk codec also takes 0x80 (euro sign) as one byte; HB/1 GBK is strictly 1-byte
    # ASCII plus 2-byte codes (lead 0x81-0xFE, trail 0x40-0x7E or 0x80-0xFE).
    i = 0
    n = len(data)
    while i < n:
        b = data[i]
        if b < 0x80:
            i += 1
            continue
        if not 0x81 <= b <= 0xFE or i + 1 >= n:
            raise ValueError(f"invalid GBK lead byte 0x{b:02X} at {i}")
        t = data[i + 1]
        if not (0x40 <= t <= 0x7E or 0x80 <= t <= 0xFE):
            raise ValueError(f"invalid GBK trail byte 0x{t:02X} at {i + 1}")
        i += 2


def encode_text(text: str, enc: TextEncoding = TextEncoding.GBK, *, field: str = "text") -> bytes:
    """Encode ``text`` for the wire; raises ``TextEncodingError`` or ``EncodeError`` (> 255)."""
    if enc == TextEncoding.UTF8:
        data = text.encode("utf-8")
    elif enc == TextEncoding.GBK:
        try:
            data = text.encode("gbk")
            _check_gbk(data)
        except (UnicodeEncodeError, ValueError) as exc:
            raise TextEncodingError(
                f"{field}: {text!r} is not encodable in GBK", field=field
            ) from exc
    else:
        raise TextEncodingError(f"{field}: unsupported text encoding {enc!r}", field=field)
    if len(data) > MAX_BLOB:
        raise EncodeError(f"{field}: {len(data)} bytes exceed {MAX_BLOB}", field=field)
    return data


def decode_text(
    data: bytes, enc: TextEncoding = TextEncoding.GBK, *, cmd: int | None = None
) -> str:
    """Decode wire text; raises ``DecodeError`` with status ENCODING."""
    try:
        if enc == TextEncoding.UTF8:
            return data.decode("utf-8")
        if enc == TextEncoding.GBK:
            _check_gbk(data)
            return data.decode("gbk")
    except (UnicodeDecodeError, ValueError) as exc:
        raise DecodeError(
            f"text not decodable as {enc.name}: {data.hex(' ')}", cmd=cmd, status=Status.ENCODING
        ) from exc
    raise DecodeError(f"unsupported text encoding {enc!r}", cmd=cmd, status=Status.ENCODING)


def encode_ascii(text: str, *, field: str, max_chars: int = MAX_BLOB) -> bytes:
    """Encode a ``text(ASCII)`` field (bytes 0x20–0x7E only)."""
    if len(text) > max_chars:
        raise EncodeError(f"{field}: {len(text)} characters exceed {max_chars}", field=field)
    if not all(0x20 <= ord(c) <= 0x7E for c in text):
        raise TextEncodingError(f"{field}: {text!r} is not printable ASCII", field=field)
    return text.encode("ascii")


def _decode_ascii(data: bytes, cmd: int | None) -> str:
    if not all(0x20 <= b <= 0x7E for b in data):
        raise DecodeError(f"not printable ASCII: {data.hex(' ')}", cmd=cmd, status=Status.ENCODING)
    return data.decode("ascii")


# --- byte helpers -----------------------------------------------------------------------------


def _check(value: int, lo: int, hi: int, name: str) -> None:
    if not lo <= value <= hi:
        raise EncodeError(f"{name}={value!r} outside {lo}..{hi}", field=name)


def _check_blob(data: bytes, name: str, max_len: int = MAX_BLOB) -> None:
    if len(data) > max_len:
        raise EncodeError(f"{name}: {len(data)} bytes exceed {max_len}", field=name)


def _blob(data: bytes) -> bytes:
    return bytes((len(data),)) + data


class _Reader:
    """Cursor over a payload; running short raises DecodeError(BAD_LENGTH)."""

    __slots__ = ("_cmd", "_data", "_pos")

    def __init__(self, data: bytes, cmd: int | None) -> None:
        self._data = data
        self._pos = 0
        self._cmd = cmd

    def raw(self, n: int) -> bytes:
        end = self._pos + n
        if end > len(self._data):
            raise DecodeError(
                f"payload too short: need {end} bytes, have {len(self._data)}",
                cmd=self._cmd,
                status=Status.BAD_LENGTH,
            )
        out = self._data[self._pos : end]
        self._pos = end
        return out

    def u8(self) -> int:
        return self.raw(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.raw(2), "little")

    def i16(self) -> int:
        return int.from_bytes(self.raw(2), "little", signed=True)

    def u32(self) -> int:
        return int.from_bytes(self.raw(4), "little")

    def blob(self) -> bytes:
        return self.raw(self.u8())

    def text(self, enc: TextEncoding) -> str:
        return decode_text(self.blob(), enc, cmd=self._cmd)

    def ascii(self) -> str:
        return _decode_ascii(self.blob(), self._cmd)

    def rest(self) -> bytes:
        out = self._data[self._pos :]
        self._pos = len(self._data)
        return out

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def done(self, strict: bool) -> None:
        if strict and self._pos != len(self._data):
            raise DecodeError(
                f"{len(self._data) - self._pos} trailing bytes",
                cmd=self._cmd,
                status=Status.BAD_LENGTH,
            )


_GBK = TextEncoding.GBK


class Message:
    """Base of requests and replies: ``CMD`` names the command they belong to."""

    __slots__ = ()
    CMD: ClassVar[Command]

    def validate(self) -> None:
        """Raise ``EncodeError`` if a field is outside the spec's range."""

    def encode(self, text_enc: TextEncoding = _GBK) -> bytes:
        """Payload bytes."""
        raise NotImplementedError

    @classmethod
    def decode(cls, payload: bytes, text_enc: TextEncoding = _GBK, *, strict: bool = False) -> Self:
        """Parse a payload; raises ``DecodeError``."""
        raise NotImplementedError


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
    ack_evt_seq: int = 0
    ack_boot_id: int = 0

    def validate(self) -> None:
        _check(self.ack_evt_seq, 0, 0xFFFF, "ack_evt_seq")
        _check(self.ack_boot_id, 0, 0xFFFF, "ack_boot_id")

    def encode(self, text_enc: TextEncoding = _GBK) -> bytes:
        self.validate()
        return struct.pack("<HH", self.ack_evt_seq, self.ack_boot_id)

    @classmethod
    def decode(cls, payload: bytes, text_enc: TextEncoding = _GBK, *, strict: bool = False) -> Self:
        r = _Reader(payload, cls.CMD)
        out = cls(ack_evt_seq=r.u16(), ack_boot_id=r.u16())
        r.done(strict)
        return out


@dataclass(frozen=True, slots=True)
class _EmptyRequest(Request):
    def encode(self, text_enc: TextEncoding = _GBK) -> bytes:
        return b""

    @classmethod
    def decode(cls, payload: bytes, text_enc: TextEncoding = _GBK, *, strict: bool = False) -> Self:
        _Reader(payload, cls.CMD).done(strict)
        return cls()


@dataclass(frozen=True, slots=True)
class InfoRequest(_EmptyRequest):
    """INFO: read identity and capabilities."""

    CMD: ClassVar[Command] = Command.INFO


@dataclass(frozen=True, slots=True)
class SetAddressRequest(Request):
    """SET_ADDRESS: the device with ``uid`` takes ``new_addr``."""

    CMD: ClassVar[Command] = Command.SET_ADDRESS
    uid: bytes
    new_addr: int

    def validate(self) -> None:
        if len(self.uid) != UID_LEN:
            raise EncodeError(f"uid must be {UID_LEN} bytes", field="uid")
        if not (0x01 <= self.new_addr <= 0xEF or self.new_addr == 0xF0):
            raise EncodeError(f"new_addr 0x{self.new_addr:02X} invalid", field="new_addr")

    def encode(self, text_enc: TextEncoding = _GBK) -> bytes:
        self.validate()
        return bytes(self.uid) + bytes((self.new_addr,))

    @classmethod
    def decode(cls, payload: bytes, text_enc: TextEncoding = _GBK, *, strict: bool = False) -> Self:
        r = _Reader(payload, cls.CMD)
        out = cls(uid=r.raw(UID_LEN), new_addr=r.u8())
        r.done(strict)
        return out


@dataclass(frozen=True, slots=True)
class SetTimeRequest(Request):
    """SET_TIME: unix seconds and minutes east of UTC."""

    CMD: ClassVar[Command] = Command.SET_TIME
    unix: int
    tz_min: int = 480

    def validate(self) -> None:
        _check(self.unix, 0, 0xFFFFFFFF, "unix")
        _check(self.tz_min, -0x8000, 0x7FFF, "tz_min")

    def encode(self, text_enc: TextEncoding = _GBK) -> bytes:
        self.validate()
        return struct.pack("<Ih", self.unix, self.tz_min)

    @classmethod
    def decode(cls, payload: bytes, text_enc: TextEncoding = _GBK, *, strict: bool = False) -> Self:
        r = _Reader(payload, cls.CMD)
        out = cls(unix=r.u32(), tz_min=r.i16())
        r.done(strict)
        return out


@dataclass(frozen=True, slots=True)
class ResetRequest(Request):
    """RESET: reboot (0) or factory reset (1)."""

    CMD: ClassVar[Command] = Command.RESET
    mode: ResetMode = ResetMode.REBOOT

    def validate(self) -> None:
        if not self.mode.is_known:
            raise EncodeError(f"reset mode {int(self.mode)} reserved", field="mode")

    def encode(self, text_enc: TextEncoding = _GBK) -> bytes:
        self.validate()
        return bytes((self.mode,))

    @classmethod
    def decode(cls, payload: bytes, text_enc: TextEncoding = _GBK, *, strict: bool = False) -> Self:
        r = _Reader(payload, cls.CMD)
        out = cls(mode=ResetMode(r.u8()))
        r.done(strict)
        return out


@dataclass(frozen=True, slots=True)
class IndicateRequest(Request):
    """INDICATE: LED pattern (bits 0–2), beep (bit 3), blink display (bit 4) for a duration."""

    CMD: ClassVar[Command] = Command.INDICATE
    pattern: int
    dur_100ms: int = 0

    LED_OFF: ClassVar[int] = 0
    LED_STEADY: ClassVar[int] = 1
    LED_BLINK_500: ClassVar[int] = 2
    LED_BLINK_200: ClassVar[int] = 3
    BEEP: ClassVar[int] = 0x08
    BLINK_DISPLAY: ClassVar[int] = 0x10

    def validate(self) -> None:
        _check(self.pattern, 0, 0xFF, "pattern")
        if self.pattern & 0xE0 or self.pattern & 0x07 > 3:
            raise EncodeError(f"pattern 0x{self.pattern:02X} has reserved bits", field="pattern")
        _check(self.dur_100ms, 0, 0xFF, "dur_100ms")

    def encode(self, text_enc: TextEncoding = _GBK) -> bytes:
        self.validate()
        return bytes((self.pattern, self.dur_100ms))

    @classmethod
    def decode(cls, payload: bytes, text_enc: TextEncoding = _GBK, *, strict: bool = False) -> Self:
        r = _Reader(payload, cls.CMD)
        out = cls(pattern=r.u8(), dur_100ms=r.u8())
        r.done(strict)
        return out


@dataclass(frozen=True, slots=True)
class ConfigItem:
    """One CONFIG TLV; the constructors below build the defined tags."""

    tag: ConfigTag
    value: bytes

    def validate(self) -> None:
        _check(int(self.tag), 0, 0xFF, "tag")
        _check_blob(self.value, "value")

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
        _check(value, lo, hi, tag.name.lower())
        return cls(tag, bytes((value,)))

    @classmethod
    def reason(cls, index: int, label: str) -> Self:
        """REASON: pad rating reason ``index`` (0–15), GBK label ≤ 32 bytes; empty deletes it."""
        _check(index, 0, MAX_REASON_INDEX, "reason_index")
        data = encode_text(label, TextEncoding.GBK, field="reason_label")
        _check_blob(data, "reason_label", MAX_REASON_LABEL)
        return cls(ConfigTag.REASON, bytes((index,)) + data)

    def reason_label(self) -> tuple[int, str]:
        """(index, label) of a REASON item."""
        if self.tag != ConfigTag.REASON or not self.value:
            raise DecodeError("not a REASON item", cmd=Command.CONFIG, status=Status.BAD_PARAM)
        return self.value[0], decode_text(self.value[1:], TextEncoding.GBK, cmd=Command.CONFIG)


def _encode_items(items: tuple[ConfigItem, ...]) -> bytes:
    out = bytearray()
    for item in items:
        item.validate()
        out.append(item.tag)
        out += _blob(item.value)
    return bytes(out)


def _decode_items(r: _Reader) -> tuple[ConfigItem, ...]:
    items = []
    while r.remaining:
        tag = ConfigTag(r.u8())
        items.append(ConfigItem(tag, r.blob()))
    return tuple(items)


@dataclass(frozen=True, slots=True)
class ConfigRequest(Request):
    """CONFIG: empty reads all tags, otherwise writes the given TLVs atomically."""

    CMD: ClassVar[Command] = Command.CONFIG
    items: tuple[ConfigItem, ...] = ()

    def validate(self) -> None:
        for item in self.items:
            item.validate()

    def encode(self, text_enc: TextEncoding = _GBK) -> bytes:
        return _encode_items(self.items)

    @classmethod
    def decode(cls, payload: bytes, text_enc: TextEncoding = _GBK, *, strict: bool = False) -> Self:
        return cls(items=_decode_items(_Reader(payload, cls.CMD)))


@dataclass(frozen=True, slots=True)
class _TextRequest(Request):
    region: int = 0
    mode: DisplayMode = DisplayMode.STATIC
    color: int = 0
    hold_s: int = 0
    enc: TextEncoding = TextEncoding.GBK
    text: str = ""

    def validate(self) -> None:
        _check(self.region, 0, 0xFF, "region")
        if not self.mode.is_known:
            raise EncodeError(f"display mode {int(self.mode)} reserved", field="mode")
        _check(self.color, 0, 7, "color")
        _check(self.hold_s, 0, 0xFFFF, "hold_s")
        if not self.enc.is_known:
            raise TextEncodingError(f"text encoding {int(self.enc)} reserved", field="enc")

    def encode(self, text_enc: TextEncoding = _GBK) -> bytes:
        # SHOW_TEXT/SET_IDLE carry their own ``enc``; the device's TEXT_ENC does not apply.
        self.validate()
        head = struct.pack("<BBBHB", self.region, self.mode, self.color, self.hold_s, self.enc)
        return head + _blob(encode_text(self.text, self.enc))

    @classmethod
    def decode(cls, payload: bytes, text_enc: TextEncoding = _GBK, *, strict: bool = False) -> Self:
        r = _Reader(payload, cls.CMD)
        region, mode, color, hold_s, enc = r.u8(), r.u8(), r.u8(), r.u16(), TextEncoding(r.u8())
        text = r.text(enc)
        r.done(strict)
        return cls(region, DisplayMode(mode), color, hold_s, enc, text)


@dataclass(frozen=True, slots=True)
class ShowTextRequest(_TextRequest):
    """SHOW_TEXT: show text in a region until ``hold_s`` ends (0 = until replaced)."""

    CMD: ClassVar[Command] = Command.SHOW_TEXT


@dataclass(frozen=True, slots=True)
class SetIdleRequest(_TextRequest):
    """SET_IDLE: store the region's idle content (``hold_s`` must be 0)."""

    CMD: ClassVar[Command] = Command.SET_IDLE

    def validate(self) -> None:
        _TextRequest.validate(self)
        if self.hold_s:
            raise EncodeError("SET_IDLE hold_s must be 0", field="hold_s")


@dataclass(frozen=True, slots=True)
class ClearRequest(Request):
    """CLEAR: end the content of a region (0xFF = all regions and rows)."""

    CMD: ClassVar[Command] = Command.CLEAR
    ALL: ClassVar[int] = 0xFF
    region: int = 0xFF

    def validate(self) -> None:
        _check(self.region, 0, 0xFF, "region")

    def encode(self, text_enc: TextEncoding = _GBK) -> bytes:
        self.validate()
        return bytes((self.region,))

    @classmethod
    def decode(cls, payload: bytes, text_enc: TextEncoding = _GBK, *, strict: bool = False) -> Self:
        r = _Reader(payload, cls.CMD)
        out = cls(region=r.u8())
        r.done(strict)
        return out


@dataclass(frozen=True, slots=True)
class BrightnessRequest(Request):
    """BRIGHTNESS: level 0–15, not persisted."""

    CMD: ClassVar[Command] = Command.BRIGHTNESS
    level: int

    def validate(self) -> None:
        _check(self.level, 0, 15, "level")

    def encode(self, text_enc: TextEncoding = _GBK) -> bytes:
        self.validate()
        return bytes((self.level,))

    @classmethod
    def decode(cls, payload: bytes, text_enc: TextEncoding = _GBK, *, strict: bool = False) -> Self:
        r = _Reader(payload, cls.CMD)
        out = cls(level=r.u8())
        r.done(strict)
        return out


@dataclass(frozen=True, slots=True)
class Row:
    """One SHOW_ROWS row: ``attr`` colour bits 0–2 plus flash bit 3."""

    attr: int
    text: str


@dataclass(frozen=True, slots=True)
class ShowRowsRequest(Request):
    """SHOW_ROWS: replace rows ``first_row`` … on a hall screen."""

    CMD: ClassVar[Command] = Command.SHOW_ROWS
    first_row: int
    rows: tuple[Row, ...]

    def validate(self) -> None:
        _check(self.first_row, 0, 0xFF, "first_row")
        _check(len(self.rows), 0, 0xFF, "n")
        for row in self.rows:
            _check(row.attr, 0, 0x0F, "attr")

    def encode(self, text_enc: TextEncoding = _GBK) -> bytes:
        self.validate()
        out = bytearray((self.first_row, len(self.rows)))
        for row in self.rows:
            out.append(row.attr)
            out += _blob(encode_text(row.text, text_enc, field="row"))
        return bytes(out)

    @classmethod
    def decode(cls, payload: bytes, text_enc: TextEncoding = _GBK, *, strict: bool = False) -> Self:
        r = _Reader(payload, cls.CMD)
        first, n = r.u8(), r.u8()
        rows = []
        for _ in range(n):
            attr = r.u8()
            rows.append(Row(attr, r.text(text_enc)))
        r.done(strict)
        return cls(first, tuple(rows))


@dataclass(frozen=True, slots=True)
class BitmapRequest(Request):
    """BITMAP: one chunk of a 1-bpp image starting at image byte ``offset``."""

    CMD: ClassVar[Command] = Command.BITMAP
    region: int
    x: int
    y: int
    w: int
    h: int
    offset: int
    data: bytes

    @property
    def image_size(self) -> int:
        """S = ceil(w / 8) × h."""
        return (self.w + 7) // 8 * self.h

    def validate(self) -> None:
        _check(self.region, 0, 0xFF, "region")
        for name in ("x", "y", "w", "h", "offset"):
            _check(getattr(self, name), 0, 0xFFFF, name)
        _check(self.image_size, 0, 0xFFFF, "image_size")
        if self.offset + len(self.data) > self.image_size:
            raise EncodeError("chunk extends beyond the image", field="data")

    def encode(self, text_enc: TextEncoding = _GBK) -> bytes:
        self.validate()
        head = struct.pack("<BHHHHH", self.region, self.x, self.y, self.w, self.h, self.offset)
        return head + bytes(self.data)

    @classmethod
    def decode(cls, payload: bytes, text_enc: TextEncoding = _GBK, *, strict: bool = False) -> Self:
        r = _Reader(payload, cls.CMD)
        region, x, y, w, h, offset = r.u8(), r.u16(), r.u16(), r.u16(), r.u16(), r.u16()
        return cls(region, x, y, w, h, offset, r.rest())


@dataclass(frozen=True, slots=True)
class PadClerkRequest(Request):
    """PAD_CLERK: show the clerk card; empty ``name`` = nobody logged in."""

    CMD: ClassVar[Command] = Command.PAD_CLERK
    PAUSED: ClassVar[int] = 0x01
    window: str
    staff_no: str
    name: str
    flags: int = 0

    def validate(self) -> None:
        _check(self.flags, 0, 1, "flags")

    def encode(self, text_enc: TextEncoding = _GBK) -> bytes:
        self.validate()
        return (
            _blob(encode_text(self.window, text_enc, field="window"))
            + _blob(encode_text(self.staff_no, text_enc, field="staff_no"))
            + _blob(encode_text(self.name, text_enc, field="name"))
            + bytes((self.flags,))
        )

    @classmethod
    def decode(cls, payload: bytes, text_enc: TextEncoding = _GBK, *, strict: bool = False) -> Self:
        r = _Reader(payload, cls.CMD)
        out = cls(r.text(text_enc), r.text(text_enc), r.text(text_enc), r.u8())
        r.done(strict)
        return out


@dataclass(frozen=True, slots=True)
class PadServiceRequest(Request):
    """PAD_SERVICE: show the ticket being served; opens nothing yet."""

    CMD: ClassVar[Command] = Command.PAD_SERVICE
    session_id: int
    ticket: str
    matter: str

    def validate(self) -> None:
        _check(self.session_id, 1, 0xFFFFFFFF, "session_id")

    def encode(self, text_enc: TextEncoding = _GBK) -> bytes:
        self.validate()
        return (
            self.session_id.to_bytes(4, "little")
            + _blob(encode_text(self.ticket, text_enc, field="ticket"))
            + _blob(encode_text(self.matter, text_enc, field="matter"))
        )

    @classmethod
    def decode(cls, payload: bytes, text_enc: TextEncoding = _GBK, *, strict: bool = False) -> Self:
        r = _Reader(payload, cls.CMD)
        out = cls(r.u32(), r.text(text_enc), r.text(text_enc))
        r.done(strict)
        return out


@dataclass(frozen=True, slots=True)
class PadRateRequest(Request):
    """PAD_RATE_REQ: open the rating screen for ``session_id``."""

    CMD: ClassVar[Command] = Command.PAD_RATE_REQ
    session_id: int
    timeout_s: int = 30
    levels: int = RATING_LEVELS
    dims_mask: int = 0
    voice: int = 1

    def validate(self) -> None:
        _check(self.session_id, 1, 0xFFFFFFFF, "session_id")
        _check(self.timeout_s, 1, 255, "timeout_s")
        _check(self.levels, RATING_LEVELS, RATING_LEVELS, "levels")
        _check(self.dims_mask, 0, 7, "dims_mask")
        _check(self.voice, 0, 1, "voice")

    def encode(self, text_enc: TextEncoding = _GBK) -> bytes:
        self.validate()
        return struct.pack(
            "<IBBBB", self.session_id, self.timeout_s, self.levels, self.dims_mask, self.voice
        )

    @classmethod
    def decode(cls, payload: bytes, text_enc: TextEncoding = _GBK, *, strict: bool = False) -> Self:
        r = _Reader(payload, cls.CMD)
        out = cls(r.u32(), r.u8(), r.u8(), r.u8(), r.u8())
        r.done(strict)
        return out


@dataclass(frozen=True, slots=True)
class PadCancelRequest(Request):
    """PAD_CANCEL: end an open, unrated session without an event."""

    CMD: ClassVar[Command] = Command.PAD_CANCEL
    session_id: int

    def validate(self) -> None:
        _check(self.session_id, 0, 0xFFFFFFFF, "session_id")

    def encode(self, text_enc: TextEncoding = _GBK) -> bytes:
        self.validate()
        return self.session_id.to_bytes(4, "little")

    @classmethod
    def decode(cls, payload: bytes, text_enc: TextEncoding = _GBK, *, strict: bool = False) -> Self:
        r = _Reader(payload, cls.CMD)
        out = cls(r.u32())
        r.done(strict)
        return out


@dataclass(frozen=True, slots=True)
class KeypadShowRequest(Request):
    """KEYPAD_SHOW: caller display (ticket ≤ 8 ASCII chars, waiting count, LED)."""

    CMD: ClassVar[Command] = Command.KEYPAD_SHOW
    ticket: str
    waiting: int = NO_WAITING
    led: int = 0

    def validate(self) -> None:
        encode_ascii(self.ticket, field="ticket", max_chars=MAX_KEYPAD_TICKET)
        _check(self.waiting, 0, 0xFFFF, "waiting")
        _check(self.led, 0, 3, "led")

    def encode(self, text_enc: TextEncoding = _GBK) -> bytes:
        self.validate()
        ticket = encode_ascii(self.ticket, field="ticket", max_chars=MAX_KEYPAD_TICKET)
        return _blob(ticket) + struct.pack("<HB", self.waiting, self.led)

    @classmethod
    def decode(cls, payload: bytes, text_enc: TextEncoding = _GBK, *, strict: bool = False) -> Self:
        r = _Reader(payload, cls.CMD)
        out = cls(r.ascii(), r.u16(), r.u8())
        r.done(strict)
        return out


@dataclass(frozen=True, slots=True)
class PassthruTxRequest(Request):
    """PASSTHRU_TX: append bytes unchanged to local UART ``port``."""

    CMD: ClassVar[Command] = Command.PASSTHRU_TX
    port: int
    data: bytes

    def validate(self) -> None:
        _check(self.port, 0, MAX_PASSTHRU_PORT, "port")
        if not self.data:
            raise EncodeError("PASSTHRU_TX needs at least one byte", field="data")

    def encode(self, text_enc: TextEncoding = _GBK) -> bytes:
        self.validate()
        return bytes((self.port,)) + bytes(self.data)

    @classmethod
    def decode(cls, payload: bytes, text_enc: TextEncoding = _GBK, *, strict: bool = False) -> Self:
        r = _Reader(payload, cls.CMD)
        return cls(r.u8(), r.rest())


# --- events -----------------------------------------------------------------------------------


class Event:
    """Base of event data carried by a POLL reply; ``EVT`` is its type."""

    __slots__ = ()
    EVT: ClassVar[EventType]

    def encode(self) -> bytes:
        """Event data (``evt_data``)."""
        raise NotImplementedError

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """Parse event data; raises ``DecodeError``."""
        raise NotImplementedError

    @property
    def evt_type(self) -> EventType:
        """Wire type of this event."""
        return self.EVT


@dataclass(frozen=True, slots=True)
class BootEvent(Event):
    """BOOT: first event of every boot."""

    EVT: ClassVar[EventType] = EventType.BOOT
    reason: BootReason = BootReason.POWER_ON

    def encode(self) -> bytes:
        return bytes((self.reason,))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        return cls(BootReason(_Reader(data, None).u8()))


@dataclass(frozen=True, slots=True)
class RatingEvent(Event):
    """RATING: level 1–5, reasons bitmap, dimension levels if the request asked for them."""

    EVT: ClassVar[EventType] = EventType.RATING
    session_id: int
    level: int
    reasons: int = 0
    dims: tuple[int, ...] | None = None

    def encode(self) -> bytes:
        _check(self.session_id, 0, 0xFFFFFFFF, "session_id")
        _check(self.level, 1, RATING_LEVELS, "level")
        _check(self.reasons, 0, 0xFFFF, "reasons")
        out = struct.pack("<IBH", self.session_id, self.level, self.reasons)
        if self.dims is not None:
            _check(len(self.dims), 0, 0xFF, "n")
            for d in self.dims:
                _check(d, 0, RATING_LEVELS, "dim")
            out += bytes((len(self.dims), *self.dims))
        return out

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = _Reader(data, None)
        session_id, level, reasons = r.u32(), r.u8(), r.u16()
        dims = tuple(r.raw(r.u8())) if r.remaining else None
        return cls(session_id, level, reasons, dims)


@dataclass(frozen=True, slots=True)
class RatingTimeoutEvent(Event):
    """RATING_TIMEOUT: the citizen did not rate in time (``not_rated``)."""

    EVT: ClassVar[EventType] = EventType.RATING_TIMEOUT
    session_id: int

    def encode(self) -> bytes:
        _check(self.session_id, 0, 0xFFFFFFFF, "session_id")
        return self.session_id.to_bytes(4, "little")

    @classmethod
    def decode(cls, data: bytes) -> Self:
        return cls(_Reader(data, None).u32())


@dataclass(frozen=True, slots=True)
class LoginEvent(Event):
    """LOGIN: a clerk presented a card, typed a number or scanned a badge."""

    EVT: ClassVar[EventType] = EventType.LOGIN
    method: LoginMethod
    cred: bytes

    def encode(self) -> bytes:
        _check_blob(self.cred, "cred")
        return bytes((self.method,)) + _blob(self.cred)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = _Reader(data, None)
        return cls(LoginMethod(r.u8()), r.blob())

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

    def encode(self) -> bytes:
        return b""

    @classmethod
    def decode(cls, data: bytes) -> Self:
        return cls()


@dataclass(frozen=True, slots=True)
class KeyEvent(Event):
    """KEY: one key press on a caller, with its ASCII argument (may be empty)."""

    EVT: ClassVar[EventType] = EventType.KEY
    key: KeyCode
    arg: str = ""

    def encode(self) -> bytes:
        return bytes((self.key,)) + _blob(encode_ascii(self.arg, field="arg"))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = _Reader(data, None)
        return cls(KeyCode(r.u8()), r.ascii())


@dataclass(frozen=True, slots=True)
class FaultEvent(Event):
    """FAULT: a hardware fault was detected."""

    EVT: ClassVar[EventType] = EventType.FAULT
    code: FaultCode

    def encode(self) -> bytes:
        return bytes((self.code,))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        return cls(FaultCode(_Reader(data, None).u8()))


@dataclass(frozen=True, slots=True)
class PassthruRxEvent(Event):
    """PASSTHRU_RX: 1–64 bytes received on a local UART."""

    EVT: ClassVar[EventType] = EventType.PASSTHRU_RX
    port: int
    data: bytes

    def encode(self) -> bytes:
        _check(self.port, 0, MAX_PASSTHRU_PORT, "port")
        if not 1 <= len(self.data) <= MAX_PASSTHRU_RX:
            raise EncodeError(f"PASSTHRU_RX carries 1..{MAX_PASSTHRU_RX} bytes", field="data")
        return bytes((self.port,)) + bytes(self.data)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = _Reader(data, None)
        return cls(r.u8(), r.rest())


@dataclass(frozen=True, slots=True)
class UnknownEvent(Event):
    """An event type this host does not know (logged and acknowledged, §8.3)."""

    EVT: ClassVar[EventType] = EventType.NONE
    type_code: int
    data: bytes

    @property
    def evt_type(self) -> EventType:
        return EventType(self.type_code)

    def encode(self) -> bytes:
        _check_blob(self.data, "evt_data")
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
    status: Status = Status.OK

    def encode(self, text_enc: TextEncoding = _GBK) -> bytes:
        return bytes((self.status,))

    @classmethod
    def decode(cls, payload: bytes, text_enc: TextEncoding = _GBK, *, strict: bool = False) -> Self:
        r = _Reader(payload, None)
        return cls(Status(r.u8()))


def _expect_ok(r: _Reader, cmd: Command) -> None:
    status = r.u8()
    if status != Status.OK:
        raise DecodeError(f"{cmd.name} reply has status {status}", cmd=cmd, status=status)


@dataclass(frozen=True, slots=True)
class PollReply(Reply):
    """POLL reply: device state, boot and the oldest unacknowledged event (if any)."""

    CMD: ClassVar[Command] = Command.POLL
    state: DeviceState
    boot_id: int
    pending: int = 0
    evt_seq: int = 0
    evt_type: EventType = EventType.NONE
    evt_data: bytes = b""

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

    def validate(self) -> None:
        _check(int(self.state), 0, 0x7F, "state")
        _check(self.boot_id, 0, 0xFFFF, "boot_id")
        _check(self.pending, 0, 0xFF, "pending")
        _check(self.evt_seq, 0, 0xFFFF, "evt_seq")
        _check_blob(self.evt_data, "evt_data")

    def encode(self, text_enc: TextEncoding = _GBK) -> bytes:
        self.validate()
        head = struct.pack(
            "<BBHBHBB",
            Status.OK,
            self.state,
            self.boot_id,
            self.pending,
            self.evt_seq,
            self.evt_type,
            len(self.evt_data),
        )
        return head + bytes(self.evt_data)

    @classmethod
    def decode(cls, payload: bytes, text_enc: TextEncoding = _GBK, *, strict: bool = False) -> Self:
        r = _Reader(payload, cls.CMD)
        _expect_ok(r, cls.CMD)
        state, boot_id, pending, evt_seq, evt_type = r.u8(), r.u16(), r.u8(), r.u16(), r.u8()
        data = r.blob()
        r.done(strict)
        return cls(DeviceState(state), boot_id, pending, evt_seq, EventType(evt_type), data)


@dataclass(frozen=True, slots=True)
class InfoReply(Reply):
    """INFO reply: identity, capabilities and limits of the device."""

    CMD: ClassVar[Command] = Command.INFO
    device_class: DeviceClass
    proto: int
    fw: tuple[int, int, int]
    uid: bytes
    boot_id: int
    caps: Caps = Caps.NONE
    max_payload: int = 128
    fonts: Fonts = Fonts.GBK
    bauds: Bauds = Bauds.B9600
    baud_now: int = 0
    t_busy_ms: int = 50
    fifo: int = 16
    regions: int = 0
    rows: int = 0
    width_px: int = 0
    height_px: int = 0
    model: str = ""

    @property
    def baud(self) -> int:
        """Current speed in baud."""
        return BAUD_RATES[self.baud_now] if self.baud_now < len(BAUD_RATES) else 0

    @property
    def utf8(self) -> bool:
        """The device accepts UTF-8 text."""
        return bool(self.fonts & Fonts.UTF8)

    def validate(self) -> None:
        if len(self.uid) != UID_LEN:
            raise EncodeError(f"uid must be {UID_LEN} bytes", field="uid")
        for name, hi in (
            ("proto", 0xFF),
            ("boot_id", 0xFFFF),
            ("max_payload", 0xFFFF),
            ("baud_now", 0xFF),
            ("t_busy_ms", 0xFF),
            ("fifo", 0xFF),
            ("regions", 0xFF),
            ("rows", 0xFF),
            ("width_px", 0xFFFF),
            ("height_px", 0xFFFF),
        ):
            _check(getattr(self, name), 0, hi, name)
        for part in self.fw:
            _check(part, 0, 0xFF, "fw")

    def encode(self, text_enc: TextEncoding = _GBK) -> bytes:
        self.validate()
        model = encode_ascii(self.model, field="model", max_chars=MAX_MODEL_CHARS)
        head = struct.pack(
            "<BBB3s8sHHHBBBBBBBHH",
            Status.OK,
            self.device_class,
            self.proto,
            bytes(self.fw),
            bytes(self.uid),
            self.boot_id,
            self.caps,
            self.max_payload,
            self.fonts,
            self.bauds,
            self.baud_now,
            self.t_busy_ms,
            self.fifo,
            self.regions,
            self.rows,
            self.width_px,
            self.height_px,
        )
        return head + _blob(model)

    @classmethod
    def decode(cls, payload: bytes, text_enc: TextEncoding = _GBK, *, strict: bool = False) -> Self:
        r = _Reader(payload, cls.CMD)
        _expect_ok(r, cls.CMD)
        device_class, proto = DeviceClass(r.u8()), r.u8()
        fw = tuple(r.raw(3))
        out = cls(
            device_class=device_class,
            proto=proto,
            fw=(fw[0], fw[1], fw[2]),
            uid=r.raw(UID_LEN),
            boot_id=r.u16(),
            caps=Caps(r.u16()),
            max_payload=r.u16(),
            fonts=Fonts(r.u8()),
            bauds=Bauds(r.u8()),
            baud_now=r.u8(),
            t_busy_ms=r.u8(),
            fifo=r.u8(),
            regions=r.u8(),
            rows=r.u8(),
            width_px=r.u16(),
            height_px=r.u16(),
            model=r.ascii(),
        )
        r.done(strict)
        return out


@dataclass(frozen=True, slots=True)
class ConfigReply(Reply):
    """CONFIG reply: the values in effect (all tags for a read, request order for a write)."""

    CMD: ClassVar[Command] = Command.CONFIG
    items: tuple[ConfigItem, ...] = field(default=())

    def encode(self, text_enc: TextEncoding = _GBK) -> bytes:
        return bytes((Status.OK,)) + _encode_items(self.items)

    @classmethod
    def decode(cls, payload: bytes, text_enc: TextEncoding = _GBK, *, strict: bool = False) -> Self:
        r = _Reader(payload, cls.CMD)
        _expect_ok(r, cls.CMD)
        return cls(items=_decode_items(r))


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
