"""HB/1 wire types: how one field of a payload is checked, written and read (spec §6.4, §7.2).

``firmware_bridge.messages`` declares every request, reply and event as a frozen dataclass whose
fields are annotated with their wire type, e.g.::

    @dataclass(frozen=True, slots=True)
    class BrightnessRequest(Request):
        CMD: ClassVar[Command] = Command.BRIGHTNESS
        level: Annotated[int, Int(1, 0, 15)]

``Struct`` derives ``validate`` (each field's range, in declaration order, then the message's own
cross-field rules in ``_validate_more``), the payload writer and the payload reader from those
annotations, so the byte layout of a message is its field list. Integers are little-endian.
A payload that runs short raises ``DecodeError`` with status BAD_LENGTH; text that does not
decode raises it with status ENCODING.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Self, get_type_hints

from firmware_bridge.constants import Status, TextEncoding
from firmware_bridge.errors import DecodeError, EncodeError, TextEncodingError

__all__ = [
    "I16",
    "MAX_BLOB",
    "U8",
    "U16",
    "U32",
    "Array",
    "Ascii",
    "Blob",
    "Code",
    "Counted",
    "Int",
    "Nested",
    "Raw",
    "Reader",
    "Rest",
    "Struct",
    "Text",
    "Trailing",
    "UntilEnd",
    "Wire",
    "check_range",
    "decode_text",
    "encode_ascii",
    "encode_text",
]

MAX_BLOB = 255


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


def check_range(value: int, lo: int, hi: int, name: str) -> None:
    """``EncodeError`` (naming the field) unless ``lo <= value <= hi``."""
    if not lo <= value <= hi:
        raise EncodeError(f"{name}={value!r} outside {lo}..{hi}", field=name)


# --- reading ----------------------------------------------------------------------------------


class Reader:
    """Cursor over a payload; running short raises DecodeError(BAD_LENGTH)."""

    __slots__ = ("_data", "_pos", "cmd")

    def __init__(self, data: bytes, cmd: int | None) -> None:
        self._data = data
        self._pos = 0
        self.cmd = cmd

    def raw(self, n: int) -> bytes:
        end = self._pos + n
        if end > len(self._data):
            raise DecodeError(
                f"payload too short: need {end} bytes, have {len(self._data)}",
                cmd=self.cmd,
                status=Status.BAD_LENGTH,
            )
        out = self._data[self._pos : end]
        self._pos = end
        return out

    def number(self, size: int, *, signed: bool = False) -> int:
        return int.from_bytes(self.raw(size), "little", signed=signed)

    def u8(self) -> int:
        return self.raw(1)[0]

    def blob(self) -> bytes:
        return self.raw(self.u8())

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
                cmd=self.cmd,
                status=Status.BAD_LENGTH,
            )


# --- wire types -------------------------------------------------------------------------------

# The fields of the message being written or read, by name (for a field whose encoding another
# field chooses, like SHOW_TEXT's ``enc``), and the device's CONFIG TEXT_ENC.
Fields = Mapping[str, Any]


class Wire:
    """How one field goes on the wire. ``check`` raises ``EncodeError`` naming the field."""

    __slots__ = ()

    def check(self, value: Any, name: str) -> None:
        """Refuse a value outside the spec's range (``encode`` runs it before writing)."""

    def put(
        self, out: bytearray, value: Any, name: str, text_enc: TextEncoding, fields: Fields
    ) -> None:
        raise NotImplementedError

    def get(self, r: Reader, text_enc: TextEncoding, fields: Fields) -> Any:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class Int(Wire):
    """An integer of ``size`` bytes, ``lo..hi`` (default: the whole unsigned range)."""

    size: int
    lo: int = 0
    hi: int | None = None
    signed: bool = False

    @property
    def top(self) -> int:
        if self.hi is not None:
            return self.hi
        bits = 8 * self.size
        return (1 << (bits - 1)) - 1 if self.signed else (1 << bits) - 1

    def check(self, value: Any, name: str) -> None:
        check_range(value, self.lo, self.top, name)

    def put(
        self, out: bytearray, value: Any, name: str, text_enc: TextEncoding, fields: Fields
    ) -> None:
        out += int(value).to_bytes(self.size, "little", signed=self.signed)

    def get(self, r: Reader, text_enc: TextEncoding, fields: Fields) -> Any:
        return r.number(self.size, signed=self.signed)


@dataclass(frozen=True, slots=True)
class Code(Wire):
    """A code or flag set (``enum``) of ``size`` bytes; unknown codes decode tolerantly.

    ``reserved`` names the error raised for a code the spec reserves (``is_known`` false),
    where the host must not send one; ``hi`` narrows the range (POLL ``state`` bit 7).
    """

    enum: Callable[[int], Any]
    size: int = 1
    hi: int | None = None
    reserved: type[EncodeError] | None = None

    def check(self, value: Any, name: str) -> None:
        check_range(
            int(value), 0, self.hi if self.hi is not None else (1 << 8 * self.size) - 1, name
        )
        if self.reserved is not None and not self.enum(int(value)).is_known:
            raise self.reserved(f"{name} {int(value)} reserved", field=name)

    def put(
        self, out: bytearray, value: Any, name: str, text_enc: TextEncoding, fields: Fields
    ) -> None:
        out += int(value).to_bytes(self.size, "little")

    def get(self, r: Reader, text_enc: TextEncoding, fields: Fields) -> Any:
        return self.enum(r.number(self.size))


@dataclass(frozen=True, slots=True)
class Raw(Wire):
    """Exactly ``n`` bytes (a UID)."""

    n: int

    def check(self, value: Any, name: str) -> None:
        if len(value) != self.n:
            raise EncodeError(f"{name} must be {self.n} bytes", field=name)

    def put(
        self, out: bytearray, value: Any, name: str, text_enc: TextEncoding, fields: Fields
    ) -> None:
        out += value

    def get(self, r: Reader, text_enc: TextEncoding, fields: Fields) -> Any:
        return r.raw(self.n)


@dataclass(frozen=True, slots=True)
class Blob(Wire):
    """``blob``: a length byte and up to ``max_len`` bytes."""

    max_len: int = MAX_BLOB

    def check(self, value: Any, name: str) -> None:
        if len(value) > self.max_len:
            raise EncodeError(f"{name}: {len(value)} bytes exceed {self.max_len}", field=name)

    def put(
        self, out: bytearray, value: Any, name: str, text_enc: TextEncoding, fields: Fields
    ) -> None:
        out.append(len(value))
        out += value

    def get(self, r: Reader, text_enc: TextEncoding, fields: Fields) -> Any:
        return r.blob()


@dataclass(frozen=True, slots=True)
class Rest(Wire):
    """The rest of the payload, ``lo..hi`` bytes (a bitmap chunk, pass-through data)."""

    lo: int = 0
    hi: int | None = None

    def check(self, value: Any, name: str) -> None:
        if len(value) < self.lo or (self.hi is not None and len(value) > self.hi):
            top = "" if self.hi is None else str(self.hi)
            raise EncodeError(f"{name}: {len(value)} bytes, must be {self.lo}..{top}", field=name)

    def put(
        self, out: bytearray, value: Any, name: str, text_enc: TextEncoding, fields: Fields
    ) -> None:
        out += value

    def get(self, r: Reader, text_enc: TextEncoding, fields: Fields) -> Any:
        return r.rest()


@dataclass(frozen=True, slots=True)
class Text(Wire):
    """``blob`` of text in the device's TEXT_ENC, or in the encoding field ``enc_from`` names.

    ``label`` is the field name reported in errors when it differs from the attribute.
    """

    enc_from: str | None = None
    label: str | None = None

    def _enc(self, text_enc: TextEncoding, fields: Fields) -> TextEncoding:
        return text_enc if self.enc_from is None else TextEncoding(fields[self.enc_from])

    def put(
        self, out: bytearray, value: Any, name: str, text_enc: TextEncoding, fields: Fields
    ) -> None:
        data = encode_text(value, self._enc(text_enc, fields), field=self.label or name)
        out.append(len(data))
        out += data

    def get(self, r: Reader, text_enc: TextEncoding, fields: Fields) -> Any:
        return decode_text(r.blob(), self._enc(text_enc, fields), cmd=r.cmd)


@dataclass(frozen=True, slots=True)
class Ascii(Wire):
    """``blob`` of printable ASCII (0x20–0x7E), at most ``max_chars``."""

    max_chars: int = MAX_BLOB

    def check(self, value: Any, name: str) -> None:
        encode_ascii(value, field=name, max_chars=self.max_chars)

    def put(
        self, out: bytearray, value: Any, name: str, text_enc: TextEncoding, fields: Fields
    ) -> None:
        data = encode_ascii(value, field=name, max_chars=self.max_chars)
        out.append(len(data))
        out += data

    def get(self, r: Reader, text_enc: TextEncoding, fields: Fields) -> Any:
        return _decode_ascii(r.blob(), r.cmd)


@dataclass(frozen=True, slots=True)
class Array(Wire):
    """Exactly ``n`` items of one wire type, as a tuple (the firmware version)."""

    item: Wire
    n: int

    def check(self, value: Any, name: str) -> None:
        if len(value) != self.n:
            raise EncodeError(f"{name} must have {self.n} parts", field=name)
        for v in value:
            self.item.check(v, name)

    def put(
        self, out: bytearray, value: Any, name: str, text_enc: TextEncoding, fields: Fields
    ) -> None:
        for v in value:
            self.item.put(out, v, name, text_enc, fields)

    def get(self, r: Reader, text_enc: TextEncoding, fields: Fields) -> Any:
        return tuple(self.item.get(r, text_enc, fields) for _ in range(self.n))


@dataclass(frozen=True, slots=True)
class Counted(Wire):
    """A count byte (named ``count`` in errors) and that many items, as a tuple."""

    item: Wire
    count: str = "n"
    item_name: str | None = None

    def check(self, value: Any, name: str) -> None:
        check_range(len(value), 0, 0xFF, self.count)
        for v in value:
            self.item.check(v, self.item_name or name)

    def put(
        self, out: bytearray, value: Any, name: str, text_enc: TextEncoding, fields: Fields
    ) -> None:
        out.append(len(value))
        for v in value:
            self.item.put(out, v, self.item_name or name, text_enc, fields)

    def get(self, r: Reader, text_enc: TextEncoding, fields: Fields) -> Any:
        return tuple(self.item.get(r, text_enc, fields) for _ in range(r.u8()))


@dataclass(frozen=True, slots=True)
class UntilEnd(Wire):
    """Items up to the end of the payload, as a tuple (CONFIG's TLVs)."""

    item: Wire

    def check(self, value: Any, name: str) -> None:
        for v in value:
            self.item.check(v, name)

    def put(
        self, out: bytearray, value: Any, name: str, text_enc: TextEncoding, fields: Fields
    ) -> None:
        for v in value:
            self.item.put(out, v, name, text_enc, fields)

    def get(self, r: Reader, text_enc: TextEncoding, fields: Fields) -> Any:
        items = []
        while r.remaining:
            items.append(self.item.get(r, text_enc, fields))
        return tuple(items)


@dataclass(frozen=True, slots=True)
class Trailing(Wire):
    """A trailing field: ``None`` is written as nothing, and read when the payload has ended."""

    item: Wire

    def check(self, value: Any, name: str) -> None:
        if value is not None:
            self.item.check(value, name)

    def put(
        self, out: bytearray, value: Any, name: str, text_enc: TextEncoding, fields: Fields
    ) -> None:
        if value is not None:
            self.item.put(out, value, name, text_enc, fields)

    def get(self, r: Reader, text_enc: TextEncoding, fields: Fields) -> Any:
        return self.item.get(r, text_enc, fields) if r.remaining else None


@dataclass(frozen=True, slots=True)
class Nested(Wire):
    """A ``Struct`` inside a payload (a SHOW_ROWS row, a CONFIG item)."""

    struct: type[Struct]

    def check(self, value: Any, name: str) -> None:
        value.validate()

    def put(
        self, out: bytearray, value: Any, name: str, text_enc: TextEncoding, fields: Fields
    ) -> None:
        value.write(out, text_enc)

    def get(self, r: Reader, text_enc: TextEncoding, fields: Fields) -> Any:
        return self.struct.read(r, text_enc)


U8 = Annotated[int, Int(1)]
U16 = Annotated[int, Int(2)]
U32 = Annotated[int, Int(4)]
I16 = Annotated[int, Int(2, -0x8000, signed=True)]


# --- structs ----------------------------------------------------------------------------------


class Struct:
    """Base of a dataclass whose fields are all annotated with a ``Wire``; see the module doc."""

    __slots__ = ()
    _LAYOUTS: ClassVar[dict[type, tuple[tuple[str, Wire], ...]]] = {}

    @classmethod
    def layout(cls) -> tuple[tuple[str, Wire], ...]:
        """(name, wire type) of every field, in wire order."""
        layout = Struct._LAYOUTS.get(cls)
        if layout is None:
            hints = get_type_hints(cls, include_extras=True)
            entries = []
            for f in dataclasses.fields(cls):  # type: ignore[arg-type]
                wires = [
                    m for m in getattr(hints[f.name], "__metadata__", ()) if isinstance(m, Wire)
                ]
                if len(wires) != 1:
                    raise TypeError(f"{cls.__name__}.{f.name} needs one wire type")
                entries.append((f.name, wires[0]))
            layout = Struct._LAYOUTS[cls] = tuple(entries)
        return layout

    def validate(self) -> None:
        """Raise ``EncodeError`` if a field is outside the spec's range."""
        for name, wire in self.layout():
            wire.check(getattr(self, name), name)
        self._validate_more()

    def _validate_more(self) -> None:
        """Rules beyond each field's own range (between fields, odd ranges)."""

    def write(self, out: bytearray, text_enc: TextEncoding) -> None:
        """Append the fields (validated first) to ``out``."""
        self.validate()
        fields = {name: getattr(self, name) for name, _ in self.layout()}
        for name, wire in self.layout():
            wire.put(out, fields[name], name, text_enc, fields)

    @classmethod
    def read(cls, r: Reader, text_enc: TextEncoding) -> Self:
        """Read the fields from ``r`` (ranges are not checked: a device answers BAD_PARAM)."""
        fields: dict[str, Any] = {}
        for name, wire in cls.layout():
            fields[name] = wire.get(r, text_enc, fields)
        return cls(**fields)
