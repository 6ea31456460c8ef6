"""Paper ticket layout: ticket facts + the hall's template → lines for a 58 or 80 mm printer.

Pure rules, standard library only. Widths are counted in columns of the printer's Font A
(12×24 dots): 32 on 58 mm paper (384 dots), 48 on 80 mm (576 dots), as python-escpos's
capability profiles list them (POS-5890, TM-T20II). A hanzi takes two columns; a line at
size n×n takes n times as many.
"""

from __future__ import annotations

import enum
import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

COLUMNS = {58: 32, 80: 48}
NUMBER_SIZE = 3  # the ticket number, in multiples of the normal glyph
TITLE_SIZE = 2


class Align(enum.Enum):
    LEFT = 0
    CENTER = 1
    RIGHT = 2


@dataclass(frozen=True, slots=True)
class Text:
    """One printed line; ``size`` magnifies width and height alike (1-8)."""

    text: str
    size: int = 1
    bold: bool = False
    align: Align = Align.CENTER


@dataclass(frozen=True, slots=True)
class Qr:
    data: str
    module: int = 6  # dots per module: a 33×33 symbol is about 25 mm wide at 203 dpi


@dataclass(frozen=True, slots=True)
class Feed:
    lines: int = 1


@dataclass(frozen=True, slots=True)
class Cut:
    pass


Element = Text | Qr | Feed | Cut


@dataclass(frozen=True, slots=True)
class Template:
    """The hall's words around the fixed parts (hall config ``[halls.ticket]``)."""

    header: Sequence[str] = ("{hall}",)
    footer: Sequence[str] = ("请留意叫号，过号请重新取号",)
    after_qr: Sequence[str] = ("当日有效",)
    page_url: str | None = None


@dataclass(frozen=True, slots=True)
class TicketFacts:
    """What a ticket says; times are already in the hall's local time."""

    hall: str
    number: str
    service: str
    token: str
    issued_at: datetime
    zone: str | None = None
    people_ahead: int | None = None
    estimated_wait_s: float | None = None
    wait_low_s: float | None = None  # the range the estimate comes with, when it has one
    wait_high_s: float | None = None
    served_now: bool = True
    """False when no open window serves the service: the ticket says so instead of a wait."""
    reprint: bool = False
    wait_line: str | None = None
    """What the ticket says about its wait instead of the estimate (kiosk/standing.py)."""
    note: str | None = None
    """A line for this ticket's holder under it (an appointment's rule)."""


def width_of(text: str) -> int:
    """Columns ``text`` takes at size 1: wide (hanzi, fullwidth) characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def wrap(text: str, columns: int) -> list[str]:
    """Break ``text`` into lines of at most ``columns`` columns, never inside a character."""
    lines: list[str] = []
    current, used = "", 0
    for char in text:
        w = width_of(char)
        if used + w > columns and current:
            lines.append(current.rstrip())
            current, used = "", 0
            if char == " ":
                continue
        current += char
        used += w
    if current or not lines:
        lines.append(current.rstrip())
    return lines


def wait_range(
    seconds: float | None,
    people_ahead: int | None,
    low_s: float | None = None,
    high_s: float | None = None,
) -> str:
    """The estimate as a range, not a false precision: the estimator's own range when it gives
    one, else ±25 %. ``seconds`` is None when no open window serves the queue: then it says
    so instead of "0 people ahead, 0 s"."""
    if seconds is None:
        return "当前暂无窗口办理此业务，请留意叫号" if people_ahead is not None else ""
    if seconds < 60 and (high_s is None or high_s < 120):
        return "即将叫到您，请留意叫号" if people_ahead is not None else "无需等候"
    if low_s is None or high_s is None:
        low_s, high_s = seconds * 0.75, seconds * 1.25
    low = max(1, math.floor(low_s / 60))
    high = max(low + 1, math.ceil(high_s / 60))
    return f"预计等候约 {low} 至 {high} 分钟"


def service_wait_text(
    seconds: float | None, low_s: float | None = None, high_s: float | None = None
) -> str:
    """A queue's expected wait for someone taking a ticket now (kiosk buttons)."""
    if seconds is None:
        return "暂无窗口办理"
    if seconds < 60 and (high_s is None or high_s < 120):
        return "无需等候"
    return wait_range(seconds, 0, low_s, high_s).removeprefix("预计等候")


def wait_text(facts: TicketFacts) -> str:
    if facts.wait_line is not None:
        return facts.wait_line
    if not facts.served_now:
        return wait_range(None, 0)
    if facts.estimated_wait_s is None:
        return "等候时间暂无法估计"
    return wait_range(
        facts.estimated_wait_s, facts.people_ahead or 0, facts.wait_low_s, facts.wait_high_s
    )


def _fill(line: str, facts: TicketFacts) -> str:
    values = {
        "hall": facts.hall,
        "service": facts.service,
        "zone": facts.zone or "",
        "date": facts.issued_at.strftime("%Y-%m-%d"),
    }
    return line.format_map(values).strip(" ·")


def _texts(text: str, columns: int, *, size: int = 1, bold: bool = False) -> list[Text]:
    """``text`` at ``size`` if it fits on one line, else wrapped at a size that lets it."""
    while size > 1 and width_of(text) * size > columns:
        size -= 1
    return [Text(part, size=size, bold=bold) for part in wrap(text, columns // size)]


def ticket_lines(facts: TicketFacts, template: Template, paper_mm: int = 80) -> list[Element]:
    """The ticket as printer-independent elements, ending with a cut."""
    columns = COLUMNS[paper_mm]
    out: list[Element] = []
    for i, line in enumerate(template.header):
        filled = _fill(line, facts)
        if filled:
            out += _texts(filled, columns, size=TITLE_SIZE if i == 0 else 1, bold=i == 0)
    service = facts.service + (f" · {facts.zone}" if facts.zone else "")
    out += _texts(service, columns)
    if facts.reprint:
        out += _texts("（补打）", columns)
    out.append(Feed(1))
    out += _texts(facts.number, columns, size=NUMBER_SIZE, bold=True)
    out.append(Feed(1))
    if facts.people_ahead is not None and facts.served_now:
        out += _texts(f"您前面还有 {facts.people_ahead} 人在等候", columns)
    said = wait_text(facts)
    if said:
        out += _texts(said, columns)
    if facts.note:
        out += _texts(facts.note, columns)
    out += _texts(f"取号时间 {facts.issued_at:%Y-%m-%d %H:%M}", columns)
    for line in template.footer:
        filled = _fill(line, facts)
        if filled:
            out += _texts(filled, columns)
    if template.page_url:
        out.append(Qr(template.page_url.replace("{token}", facts.token)))
    for line in template.after_qr:
        filled = _fill(line, facts)
        if filled:
            out += _texts(filled, columns)
    out.append(Feed(3))
    out.append(Cut())
    return out
