"""ESC/POS ticket printer emulator (HB/1 §13: printers are not HB/1 devices).

It parses the byte stream the kiosk sends (``ESC @``, text style commands, ``FS &``/``FS .``
Chinese mode with GBK text, ``GS ( k`` native QR, ``GS k`` barcodes, ``GS V`` cut), answers
``DLE EOT n`` real-time status requests with the bytes an Epson-compatible printer sends, and
records every finished job (text lines, QR payloads, barcodes, cut) for tests.

Status bytes (DLE EOT n; bits 1 and 4 are always 1, bit 0 and bit 7 always 0, hence 0x12):

====  ==========================================================================
n=1   bit 3 offline (paper out, cover open or an error stops printing)
n=2   bit 2 cover open; bit 5 printing stopped by paper end; bit 6 error occurred
n=3   bit 3 autocutter error
n=4   bits 2-3 roll paper near end; bits 5-6 roll paper end
====  ==========================================================================

So a healthy printer answers ``12 12 12 12``, near end ``12 12 12 1e``, paper out
``1a 32 12 7e`` (the near-end sensor is uncovered too), cover open ``1a 16 12 12``.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace

_LOGGER = logging.getLogger(__name__)

ESC, GS, FS, DLE = 0x1B, 0x1D, 0x1C, 0x10
LF, CR, HT, FF, EOT, ENQ, DC4, NUL = 0x0A, 0x0D, 0x09, 0x0C, 0x04, 0x05, 0x14, 0x00

_STATUS_FIXED = 0x12  # bits 1 and 4 are fixed to 1 in every DLE EOT answer

# Code pages selectable with ESC t n, for text outside Chinese mode.
_CODEPAGES = {
    0: "cp437",
    2: "cp850",
    3: "cp860",
    4: "cp863",
    5: "cp865",
    16: "cp1252",
    17: "cp866",
    18: "cp852",
    19: "cp858",
}

# Commands with a fixed number of parameter bytes after the two command bytes.
_ESC_ARGS = {
    ord("!"): 1, ord("E"): 1, ord("-"): 1, ord("a"): 1, ord("d"): 1, ord("J"): 1,
    ord("e"): 1, ord("G"): 1, ord("M"): 1, ord("t"): 1, ord("R"): 1, ord("V"): 1,
    ord("{"): 1, ord("2"): 0, ord("3"): 1, ord(" "): 1, ord("$"): 2, ord("\\"): 2,
    ord("p"): 3, ord("="): 1, ord("r"): 1, ord("U"): 1, ord("L"): 0, ord("S"): 0,
    ord("T"): 1, ord("W"): 8, ord("%"): 1, ord("?"): 1, ord("<"): 0, ord("@"): 0,
    ord("i"): 0, ord("m"): 0, ord("c"): 2,
}  # fmt: skip
_GS_ARGS = {
    ord("!"): 1, ord("B"): 1, ord("H"): 1, ord("f"): 1, ord("h"): 1, ord("w"): 1,
    ord("L"): 2, ord("W"): 2, ord("P"): 2, ord("a"): 1, ord("r"): 1, ord("I"): 1,
    ord("b"): 1, ord("/"): 1, ord("$"): 2, ord("\\"): 2, ord("T"): 1, ord("^"): 3,
    ord(":"): 0, ord("c"): 0, ord("g"): 3,
}  # fmt: skip
_FS_ARGS = {
    ord("&"): 0, ord("."): 0, ord("!"): 1, ord("-"): 1, ord("S"): 2, ord("W"): 1,
    ord("C"): 1, ord("p"): 2, ord("2"): 74,
}  # fmt: skip


class PaperLevel(enum.Enum):
    """Roll paper sensor reading."""

    ADEQUATE = "adequate"
    NEAR_END = "near_end"
    OUT = "out"


class CutKind(enum.Enum):
    FULL = "full"
    PARTIAL = "partial"


class Align(enum.Enum):
    LEFT = "left"
    CENTER = "center"
    RIGHT = "right"


@dataclass(frozen=True, slots=True)
class PrinterCondition:
    """The printer's physical condition; the DLE EOT answers follow from it."""

    paper: PaperLevel = PaperLevel.ADEQUATE
    cover_open: bool = False
    cutter_error: bool = False
    # No answer at all (TX wire broken, printer without status support, powered off).
    silent: bool = False

    @property
    def offline(self) -> bool:
        return self.paper is PaperLevel.OUT or self.cover_open or self.cutter_error

    def status_byte(self, n: int) -> int | None:
        """Answer to ``DLE EOT n``; None when the printer stays silent or n is invalid."""
        if self.silent:
            return None
        value = _STATUS_FIXED
        if n == 1:
            if self.offline:
                value |= 0x08
        elif n == 2:
            if self.cover_open:
                value |= 0x04
            if self.paper is PaperLevel.OUT:
                value |= 0x20
            if self.cutter_error:
                value |= 0x40
        elif n == 3:
            if self.cutter_error:
                value |= 0x08
        elif n == 4:
            if self.paper is not PaperLevel.ADEQUATE:
                value |= 0x0C
            if self.paper is PaperLevel.OUT:
                value |= 0x60
        else:
            return None
        return value


OK = PrinterCondition()
PAPER_NEAR_END = PrinterCondition(paper=PaperLevel.NEAR_END)
PAPER_OUT = PrinterCondition(paper=PaperLevel.OUT)
COVER_OPEN = PrinterCondition(cover_open=True)
CUTTER_ERROR = PrinterCondition(cutter_error=True)
SILENT = PrinterCondition(silent=True)


@dataclass(frozen=True, slots=True)
class TextStyle:
    bold: bool = False
    underline: bool = False
    width: int = 1  # character magnification, 1-8
    height: int = 1
    align: Align = Align.LEFT
    reverse: bool = False


@dataclass(frozen=True, slots=True)
class PrintedLine:
    """One printed line with the style in effect when its first character arrived."""

    text: str
    style: TextStyle = TextStyle()


@dataclass(frozen=True, slots=True)
class QrCode:
    """A native QR code printed with GS ( k."""

    data: bytes
    module_size: int = 3
    ec_level: str = "L"
    model: int = 2

    @property
    def text(self) -> str:
        try:
            return self.data.decode("utf-8")
        except UnicodeDecodeError:
            return self.data.decode("gbk", errors="replace")


@dataclass(frozen=True, slots=True)
class Barcode:
    """A 1D barcode printed with GS k; ``system`` is the m byte (73 = CODE128)."""

    system: int
    data: bytes

    @property
    def text(self) -> str:
        # CODE128 data starts with a code-set selector such as "{B".
        raw = self.data[2:] if self.system == 73 and self.data[:1] == b"{" else self.data
        return raw.decode("ascii", errors="replace")


@dataclass(frozen=True, slots=True)
class PrintJob:
    """Everything printed up to and including a cut."""

    lines: tuple[PrintedLine, ...]
    qr_codes: tuple[QrCode, ...]
    barcodes: tuple[Barcode, ...]
    cut: CutKind | None
    condition: PrinterCondition  # what the printer was like when the job ended
    raw: bytes

    @property
    def text_lines(self) -> tuple[str, ...]:
        """Printed text, blank feed lines removed."""
        return tuple(line.text for line in self.lines if line.text.strip())

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)


@dataclass(slots=True)
class _JobBuilder:
    lines: list[PrintedLine] = field(default_factory=list)
    qr_codes: list[QrCode] = field(default_factory=list)
    barcodes: list[Barcode] = field(default_factory=list)
    raw: bytearray = field(default_factory=bytearray)

    def empty(self) -> bool:
        return not (self.lines or self.qr_codes or self.barcodes)


class EscPosPrinter:
    """Sans-I/O ESC/POS printer: ``feed(bytes) -> bytes`` returns status answers.

    Commands are parsed from the head of an internal buffer; an incomplete command waits for
    more bytes. Unknown ``ESC x``/``GS x``/``FS x`` commands are skipped as two bytes and
    counted in ``unknown_commands``. DLE EOT is answered when it is reached in the stream,
    which is how the host uses it (between jobs, HB/1 §13).
    """

    idle_gap_s: float | None = None

    def __init__(
        self,
        *,
        chinese_default: bool = True,
        on_job: Callable[[PrintJob], None] | None = None,
        on_command: Callable[[str], None] | None = None,
    ) -> None:
        # Printers sold in China power up in Chinese mode; FS . switches to a code page.
        self.chinese_default = chinese_default
        self.condition = OK
        self.jobs: list[PrintJob] = []
        self.status_requests: list[int] = []
        self.unknown_commands: list[bytes] = []
        self.on_job = on_job
        self.on_command = on_command  # human-readable log of parsed commands (CLI)
        self._buf = bytearray()
        self._job = _JobBuilder()
        self._line = bytearray()
        self._line_style: TextStyle | None = None
        self._pending_cut: CutKind | None = None
        self._reset_modes()

    def _reset_modes(self) -> None:
        self.style = TextStyle()
        self.chinese = self.chinese_default
        self.codepage = 0
        self._qr_data = b""
        self._qr_module = 3
        self._qr_ec = "L"
        self._qr_model = 2

    # -- public ----------------------------------------------------------------------------

    def set_condition(self, condition: PrinterCondition) -> None:
        self.condition = condition

    @property
    def current_lines(self) -> tuple[str, ...]:
        """Lines of the job in progress (not yet cut)."""
        return tuple(line.text for line in self._job.lines)

    def idle(self) -> bytes:
        return b""

    def feed(self, data: bytes) -> bytes:
        self._buf += data
        out = bytearray()
        pos = 0
        while pos < len(self._buf):
            used = self._step(pos, out)
            if used == 0:
                break
            self._job.raw += self._buf[pos : pos + used]
            pos += used
            if self._pending_cut is not None:
                kind, self._pending_cut = self._pending_cut, None
                self.finish_job(cut=kind)
        del self._buf[:pos]
        return bytes(out)

    def finish_job(self, cut: CutKind | None = None) -> PrintJob | None:
        """End the job in progress (done automatically by a cut); None if nothing printed."""
        self._flush_line(force=False)
        if self._job.empty() and cut is None:
            return None
        job = PrintJob(
            lines=tuple(self._job.lines),
            qr_codes=tuple(self._job.qr_codes),
            barcodes=tuple(self._job.barcodes),
            cut=cut,
            condition=self.condition,
            raw=bytes(self._job.raw),
        )
        self._job = _JobBuilder()
        self.jobs.append(job)
        self._log(f"job done: {len(job.lines)} lines, {len(job.qr_codes)} QR, cut={cut}")
        if self.on_job is not None:
            self.on_job(job)
        return job

    # -- parsing ---------------------------------------------------------------------------

    def _log(self, text: str) -> None:
        if self.on_command is not None:
            self.on_command(text)

    def _step(self, pos: int, out: bytearray) -> int:
        """Consume one command or character at ``pos``; 0 = incomplete, wait for more."""
        buf = self._buf
        avail = len(buf) - pos
        b = buf[pos]
        if b == ESC:
            return self._escape(pos, avail, _ESC_ARGS, self._esc)
        if b == GS:
            return self._gs(pos, avail)
        if b == FS:
            return self._escape(pos, avail, _FS_ARGS, self._fs)
        if b == DLE:
            return self._dle(pos, avail, out)
        if b == LF:
            self._flush_line(force=True)
            return 1
        if b == HT:
            self._put_text("\t")
            return 1
        if b == FF:
            self._flush_line(force=False)
            return 1
        if b < 0x20 or b == 0x7F:
            return 1  # CR (no auto line feed), BEL, CAN and other controls print nothing
        if b >= 0x80 and self.chinese:
            if avail < 2:
                return 0
            pair = bytes(buf[pos : pos + 2])
            self._put_text(pair.decode("gbk", errors="replace"))
            return 2
        if b >= 0x80:
            self._put_text(bytes([b]).decode(_CODEPAGES.get(self.codepage, "cp437")))
            return 1
        self._put_text(chr(b))
        return 1

    def _escape(
        self,
        pos: int,
        avail: int,
        table: dict[int, int],
        handler: Callable[[int, bytes], None],
    ) -> int:
        if avail < 2:
            return 0
        cmd = self._buf[pos + 1]
        nargs = table.get(cmd)
        if nargs is None:
            return self._variable_escape(pos, avail)
        if avail < 2 + nargs:
            return 0
        handler(cmd, bytes(self._buf[pos + 2 : pos + 2 + nargs]))
        return 2 + nargs

    def _variable_escape(self, pos: int, avail: int) -> int:
        buf = self._buf
        lead, cmd = buf[pos], buf[pos + 1]
        if lead == ESC and cmd == ord("D"):  # tab stops, NUL terminated
            end = buf.find(NUL, pos + 2)
            return 0 if end < 0 else end - pos + 1
        if lead == ESC and cmd == ord("*"):  # bit image: m nL nH data
            if avail < 5:
                return 0
            m, n = buf[pos + 2], buf[pos + 3] | buf[pos + 4] << 8
            size = 5 + (n if m in (0, 1) else 3 * n)
            return 0 if avail < size else size
        self.unknown_commands.append(bytes(buf[pos : pos + 2]))
        return 2

    def _esc(self, cmd: int, args: bytes) -> None:
        c = chr(cmd)
        if c == "@":
            self._flush_line(force=False)
            self._reset_modes()
            self._log("ESC @ init")
        elif c == "!":
            n = args[0]
            self._set_style(
                bold=bool(n & 0x08),
                height=2 if n & 0x10 else 1,
                width=2 if n & 0x20 else 1,
                underline=bool(n & 0x80),
            )
        elif c == "E":
            self._set_style(bold=bool(args[0] & 1))
        elif c == "-":
            self._set_style(underline=args[0] in (1, 2, 49, 50))
        elif c == "a":
            self._set_style(align=(Align.LEFT, Align.CENTER, Align.RIGHT)[args[0] % 48 % 3])
        elif c == "d":
            self._feed_lines(args[0])
        elif c == "J":
            self._flush_line(force=False)
        elif c == "t":
            self.codepage = args[0]
        elif c in "im":
            self._cut(CutKind.FULL if c == "i" else CutKind.PARTIAL)

    def _fs(self, cmd: int, args: bytes) -> None:
        c = chr(cmd)
        if c == "&":
            self.chinese = True
            self._log("FS & Chinese mode on")
        elif c == ".":
            self.chinese = False
            self._log("FS . Chinese mode off")
        elif c == "!":
            n = args[0]
            self._set_style(
                width=2 if n & 0x04 else 1,
                height=2 if n & 0x08 else 1,
                underline=bool(n & 0x80),
            )
        elif c == "W":
            size = 2 if args[0] & 1 else 1
            self._set_style(width=size, height=size)

    def _gs(self, pos: int, avail: int) -> int:
        buf = self._buf
        if avail < 2:
            return 0
        cmd = buf[pos + 1]
        c = chr(cmd)
        if c == "V":  # cut: m, or m n for m 65/66/97/98/103/104
            if avail < 3:
                return 0
            m = buf[pos + 2]
            size = 4 if m in (65, 66, 97, 98, 103, 104) else 3
            if avail < size:
                return 0
            self._cut(CutKind.FULL if m in (0, 48, 65, 97, 103) else CutKind.PARTIAL)
            return size
        if c == "(":  # GS ( X pL pH data
            if avail < 5:
                return 0
            length = buf[pos + 3] | buf[pos + 4] << 8
            if avail < 5 + length:
                return 0
            if buf[pos + 2] == ord("k"):
                self._gs_k2d(bytes(buf[pos + 5 : pos + 5 + length]))
            return 5 + length
        if c == "k":
            return self._barcode(pos, avail)
        if c == "v":  # GS v 0 m xL xH yL yH raster data
            if avail < 8:
                return 0
            x = buf[pos + 4] | buf[pos + 5] << 8
            y = buf[pos + 6] | buf[pos + 7] << 8
            size = 8 + x * y
            return 0 if avail < size else size
        if c == "8":  # GS 8 L p1 p2 p3 p4 data (graphics with a 32-bit length)
            if avail < 7:
                return 0
            length = int.from_bytes(buf[pos + 3 : pos + 7], "little")
            return 0 if avail < 7 + length else 7 + length
        if c == "*":  # GS * x y data (downloaded bit image)
            if avail < 4:
                return 0
            size = 4 + buf[pos + 2] * buf[pos + 3] * 8
            return 0 if avail < size else size
        nargs = _GS_ARGS.get(cmd)
        if nargs is None:
            self.unknown_commands.append(bytes(buf[pos : pos + 2]))
            return 2
        if avail < 2 + nargs:
            return 0
        args = bytes(buf[pos + 2 : pos + 2 + nargs])
        if c == "!":
            self._set_style(width=(args[0] >> 4 & 7) + 1, height=(args[0] & 7) + 1)
        elif c == "B":
            self._set_style(reverse=bool(args[0] & 1))
        return 2 + nargs

    def _gs_k2d(self, body: bytes) -> None:
        """GS ( k: 2D symbols. Only QR (cn 49) is recorded."""
        if len(body) < 2 or body[0] != 49:
            return
        fn, params = body[1], body[2:]
        if fn == 65 and params:  # select model
            self._qr_model = params[0] - 48
        elif fn == 67 and params:  # module size
            self._qr_module = params[0]
        elif fn == 69 and params:  # error correction level
            self._qr_ec = {48: "L", 49: "M", 50: "Q", 51: "H"}.get(params[0], "?")
        elif fn == 80 and params:  # store data (after m = 48)
            self._qr_data = params[1:]
        elif fn == 81:  # print the stored symbol
            self._flush_line(force=False)
            qr = QrCode(self._qr_data, self._qr_module, self._qr_ec, self._qr_model)
            self._job.qr_codes.append(qr)
            self._log(f"QR ({qr.ec_level}, module {qr.module_size}): {qr.text}")

    def _barcode(self, pos: int, avail: int) -> int:
        buf = self._buf
        if avail < 3:
            return 0
        m = buf[pos + 2]
        if m <= 6:  # data terminated by NUL
            end = buf.find(NUL, pos + 3)
            if end < 0:
                return 0
            data, size = bytes(buf[pos + 3 : end]), end - pos + 1
        else:  # m 65-79: length byte then data
            if avail < 4:
                return 0
            n = buf[pos + 3]
            if avail < 4 + n:
                return 0
            data, size = bytes(buf[pos + 4 : pos + 4 + n]), 4 + n
        self._flush_line(force=False)
        code = Barcode(m, data)
        self._job.barcodes.append(code)
        self._log(f"barcode {m}: {code.text}")
        return size

    def _dle(self, pos: int, avail: int, out: bytearray) -> int:
        if avail < 2:
            return 0
        fn = self._buf[pos + 1]
        if fn in (EOT, ENQ):
            if avail < 3:
                return 0
            n = self._buf[pos + 2]
            if fn == EOT:
                self.status_requests.append(n)
                answer = self.condition.status_byte(n)
                if answer is not None:
                    out.append(answer)
                self._log(f"DLE EOT {n} -> {'silent' if answer is None else f'{answer:02x}'}")
            return 3
        if fn == DC4:  # DLE DC4 fn a b: pulse, power-off, clear buffer
            return 0 if avail < 5 else 5
        return 1  # a lone DLE is just a control byte

    # -- text ------------------------------------------------------------------------------

    def _set_style(self, **changes: object) -> None:
        self.style = replace(self.style, **changes)  # type: ignore[arg-type]

    def _put_text(self, text: str) -> None:
        if self._line_style is None:
            self._line_style = self.style
        self._line += text.encode("utf-8")

    def _flush_line(self, *, force: bool) -> None:
        """Print the line buffer; ``force`` prints an empty line too (LF on its own)."""
        if not self._line and not force:
            return
        text = self._line.decode("utf-8")
        line = PrintedLine(text, self._line_style or self.style)
        self._job.lines.append(line)
        if text:
            self._log(f"text: {text}")
        self._line.clear()
        self._line_style = None

    def _feed_lines(self, n: int) -> None:
        self._flush_line(force=False)
        self._job.lines.extend(PrintedLine("", self.style) for _ in range(max(0, n - 1)))

    def _cut(self, kind: CutKind) -> None:
        self._log(f"cut ({kind.value})")
        # The job ends after feed() has added the cut's own bytes to its raw record.
        self._pending_cut = kind
