"""ESC/POS, sans-I/O: layout elements → bytes in the printer's Chinese mode; status bytes → state.

Text only, never a raster image: a ticket is ~300 bytes and prints at once over 9600 baud.
Chinese text goes out as GBK (or GB18030) after ``FS &`` (Chinese character mode), which
printers sold in China understand; python-escpos's text path encodes through code pages and
never enters that mode, so this encoder is ours. Sizes are set with ``GS !`` (ASCII and, on
these printers, hanzi) and ``FS !`` (the hanzi double width/height bits) together. The QR
code is the printer's own (``GS ( k``, model 2), the same bytes python-escpos sends for
``qr(native=True)``.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from kiosk.layout import Align, Cut, Element, Feed, Qr, Text

ESC, GS, FS, DLE, EOT, LF = 0x1B, 0x1D, 0x1C, 0x10, 0x04, 0x0A

INIT = bytes([ESC, ord("@")])
CHINESE_ON = bytes([FS, ord("&")])
PARTIAL_CUT = bytes([GS, ord("V"), 1])
MAX_QR_DATA = 300  # far more than a ticket URL; bounds the GS ( k length field


class Encoding(enum.StrEnum):
    GBK = "gbk"
    GB18030 = "gb18030"


def _qr_fn(fn: int, params: bytes) -> bytes:
    body = bytes([49, fn]) + params  # cn 49 = QR code
    return bytes([GS, ord("("), ord("k"), len(body) & 0xFF, len(body) >> 8]) + body


def qr_bytes(data: str, module: int = 6, ec: str = "L") -> bytes:
    """Native QR: model 2, module size, error correction, store the data, print it."""
    raw = data.encode("utf-8")
    if not raw or len(raw) > MAX_QR_DATA:
        raise ValueError(f"QR data must be 1-{MAX_QR_DATA} bytes")
    if not 1 <= module <= 16:
        raise ValueError("QR module size must be 1-16")
    level = {"L": 48, "M": 49, "Q": 50, "H": 51}[ec]
    return (
        _qr_fn(65, bytes([50, 0]))
        + _qr_fn(67, bytes([module]))
        + _qr_fn(69, bytes([level]))
        + _qr_fn(80, b"0" + raw)
        + _qr_fn(81, b"0")
    )


def gs_size(size: int) -> bytes:
    """``GS !`` alone: character size for ASCII (and, on most printers, hanzi too)."""
    if not 1 <= size <= 8:
        raise ValueError("size must be 1-8")
    n = size - 1
    return bytes([GS, ord("!"), n << 4 | n])


def size_bytes(size: int) -> bytes:
    """``FS !`` double bits for hanzi in Chinese mode, then ``GS !`` (ASCII and, on most
    printers, hanzi too): a printer that applies both ends with the ``GS !`` size."""
    if not 1 <= size <= 8:
        raise ValueError("size must be 1-8")
    n = size - 1
    fs = 0x0C if size >= 2 else 0x00
    return bytes([FS, ord("!"), fs, GS, ord("!"), n << 4 | n])


def encode(elements: Sequence[Element], encoding: Encoding = Encoding.GBK) -> bytes:
    """The whole ticket: reset, Chinese mode, lines, QR, feed, cut.

    A character the encoding lacks is printed as ``?`` rather than failing the ticket.
    """
    out = bytearray(INIT + CHINESE_ON)
    align, size, hanzi_size, bold = Align.LEFT, 1, 1, False
    for element in elements:
        if isinstance(element, Text):
            if element.align is not align:
                align = element.align
                out += bytes([ESC, ord("a"), align.value])
            # ``FS !`` only matters for hanzi: a line of ASCII (the number) leaves it as it is,
            # which saves 3 bytes each way at 9600 baud.
            if not element.text.isascii() and element.size != hanzi_size:
                size = hanzi_size = element.size
                out += size_bytes(size)  # GS ! after FS !, as a printer applying both wants
            elif element.size != size:
                size = element.size
                out += gs_size(size)
            if element.bold != bold:
                bold = element.bold
                out += bytes([ESC, ord("E"), int(bold)])
            out += element.text.encode(encoding.value, errors="replace") + bytes([LF])
        elif isinstance(element, Qr):
            if align is not Align.CENTER:
                align = Align.CENTER
                out += bytes([ESC, ord("a"), align.value])
            out += qr_bytes(element.data, element.module)
            out.append(LF)
        elif isinstance(element, Feed):
            out += bytes([ESC, ord("d"), max(0, min(element.lines, 255))])
        elif isinstance(element, Cut):
            out += PARTIAL_CUT
    return bytes(out)


# --- status ----------------------------------------------------------------------------------

STATUS_QUERIES = (1, 2, 3, 4)
"""DLE EOT n asked before each job (HB1.md §13): printer (online), offline cause (cover, paper),
error cause (autocutter), roll sensor."""


def status_request(n: int) -> bytes:
    return bytes([DLE, EOT, n])


class StatusError(ValueError):
    """A byte that cannot be a DLE EOT answer (bits 1 and 4 set, bits 0 and 7 clear)."""


@dataclass(frozen=True, slots=True)
class PrinterStatus:
    """What the DLE EOT 1, 2, 3 and 4 answers say."""

    offline: bool = False
    cover_open: bool = False
    paper_out: bool = False
    near_end: bool = False
    error: bool = False

    @property
    def can_print(self) -> bool:
        return not (self.offline or self.cover_open or self.paper_out or self.error)

    @property
    def problem(self) -> str | None:
        """The reason a job is held, most specific first; None when it can print."""
        if self.paper_out:
            return "paper_out"
        if self.cover_open:
            return "cover_open"
        if self.error:
            return "error"
        if self.offline:
            return "offline"
        return None


def _check(byte: int) -> int:
    if byte & 0x93 != 0x12:
        raise StatusError(f"not a DLE EOT answer: {byte:#04x}")
    return byte


def decode_status(answers: dict[int, int]) -> PrinterStatus:
    """Combine the answers to DLE EOT n (n → byte) into one status."""
    s1 = _check(answers.get(1, 0x12))
    s2 = _check(answers.get(2, 0x12))
    s3 = _check(answers.get(3, 0x12))
    s4 = _check(answers.get(4, 0x12))
    return PrinterStatus(
        offline=bool(s1 & 0x08),
        cover_open=bool(s2 & 0x04),
        paper_out=bool(s2 & 0x20) or (s4 & 0x60) == 0x60,
        error=bool(s2 & 0x40) or bool(s3 & 0x08),
        near_end=(s4 & 0x0C) == 0x0C,
    )
