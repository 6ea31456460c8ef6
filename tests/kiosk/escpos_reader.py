"""A small, strict ESC/POS reader for the golden tests: it knows only what a ticket may use.

Independent of kiosk.escpos and of the printer emulator; any other command fails the test.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class UnexpectedCommand(AssertionError):
    pass


@dataclass(frozen=True)
class Line:
    text: str
    width: int
    height: int
    bold: bool
    align: int


@dataclass
class Page:
    lines: list[Line] = field(default_factory=list)
    qr: list[str] = field(default_factory=list)
    qr_module: list[int] = field(default_factory=list)
    cuts: list[str] = field(default_factory=list)
    feeds: int = 0
    chinese: bool = False
    initialised: bool = False

    @property
    def texts(self) -> list[str]:
        return [line.text for line in self.lines]


def read(data: bytes, encoding: str = "gbk") -> Page:
    page = Page()
    i = 0
    width = height = 1
    bold = False
    align = 0
    text = bytearray()
    qr_store = b""
    while i < len(data):
        b = data[i]
        if b == 0x1B:
            cmd = data[i + 1]
            if cmd == ord("@"):
                page.initialised, width, height, bold, align = True, 1, 1, False, 0
                i += 2
            elif cmd == ord("a"):
                align = data[i + 2]
                i += 3
            elif cmd == ord("E"):
                bold = bool(data[i + 2] & 1)
                i += 3
            elif cmd == ord("d"):
                page.feeds += data[i + 2]
                i += 3
            else:
                raise UnexpectedCommand(f"ESC {cmd:#x} at {i}")
        elif b == 0x1C:
            cmd = data[i + 1]
            if cmd == ord("&"):
                page.chinese = True
                i += 2
            elif cmd == ord("!"):
                i += 3  # hanzi double bits; GS ! follows and decides
            else:
                raise UnexpectedCommand(f"FS {cmd:#x} at {i}")
        elif b == 0x1D:
            cmd = data[i + 1]
            if cmd == ord("!"):
                n = data[i + 2]
                width, height = (n >> 4) + 1, (n & 0x0F) + 1
                i += 3
            elif cmd == ord("V"):
                page.cuts.append("partial" if data[i + 2] in (1, 49) else "full")
                i += 3
            elif cmd == ord("(") and data[i + 2] == ord("k"):
                length = data[i + 3] | data[i + 4] << 8
                body = data[i + 5 : i + 5 + length]
                if body[:1] != b"1":
                    raise UnexpectedCommand("GS ( k for a symbol other than QR")
                fn = body[1]
                if fn == ord("C"):
                    page.qr_module.append(body[2])
                elif fn == ord("P"):
                    qr_store = body[3:]
                elif fn == ord("Q"):
                    page.qr.append(qr_store.decode("utf-8"))
                i += 5 + length
            else:
                raise UnexpectedCommand(f"GS {cmd:#x} at {i}")
        elif b == 0x0A:
            if not page.chinese and any(c >= 0x80 for c in text):
                raise UnexpectedCommand("non-ASCII text outside Chinese mode")
            page.lines.append(Line(text.decode(encoding), width, height, bold, align))
            text.clear()
            i += 1
        elif b < 0x20:
            raise UnexpectedCommand(f"control byte {b:#x} at {i}")
        else:
            text.append(b)
            i += 1
    if text:
        raise UnexpectedCommand(f"text without a line feed at the end: {bytes(text)!r}")
    return page
