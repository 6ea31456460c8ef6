"""Window LED strip (窗口条屏) text from a counter's state (domain.md §7.2, HB/1 §10.2, §12).

The strip's desired state is two commands: SET_IDLE (what it falls back to after a call's hold
time, at boot and while the host is lost) and SHOW_TEXT (what it shows now). A call flashes for
``hold_s`` seconds and then shows the idle text; a text wider than the strip scrolls; nothing is
ever cut in the middle of a character.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from firmware_bridge.constants import Color, DisplayMode
from firmware_bridge.messages import SetIdleRequest, ShowTextRequest
from hall.config.models import DisplayText

MAX_TEXT_BYTES = 255  # SHOW_TEXT's text is a u8 length + bytes (HB/1 §10.2), GBK on the wire


@dataclass(frozen=True, slots=True)
class StripText:
    text: str
    flash: bool = False
    color: int = Color.DEFAULT
    hold_s: int = 0


def text_width(text: str) -> int:
    """Width in half-width cells: CJK and full-width characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def clip_bytes(text: str, limit: int = MAX_TEXT_BYTES, encoding: str = "gbk") -> str:
    """The longest prefix of whole characters whose encoding fits in ``limit`` bytes."""
    try:
        if len(text.encode(encoding)) <= limit:
            return text  # the usual case: every render of a strip, a key's included
    except UnicodeEncodeError:
        pass
    out: list[str] = []
    used = 0
    for ch in text:
        try:
            size = len(ch.encode(encoding))
        except UnicodeEncodeError:
            size = len(ch.encode("utf-8"))
        if used + size > limit:
            break
        out.append(ch)
        used += size
    return "".join(out)


def fill(template: str, number: str | None, counter: int) -> str:
    return template.replace("{number}", number or "").replace("{counter}", str(counter))


def idle_text(texts: DisplayText, counter: int, state: str) -> StripText:
    """The strip's resting content for the counter's state."""
    if state == "closed":
        return StripText(texts.closed_text, color=Color.RED)
    if state == "paused":
        return StripText(texts.paused_text, color=Color.RED)
    return StripText(fill(texts.idle_text, None, counter), color=Color.GREEN)


def strip_text(
    counter: int, state: str, ticket_number: str | None, texts: DisplayText | None = None
) -> StripText:
    """What the strip above counter ``counter`` says now."""
    texts = texts or DisplayText()
    if state == "calling" and ticket_number:
        return StripText(
            fill(texts.call_text, ticket_number, counter),
            flash=True,
            color=Color.RED,
            hold_s=texts.hold_s,
        )
    if state == "serving" and ticket_number:
        return StripText(fill(texts.serving_text, ticket_number, counter), color=Color.GREEN)
    return idle_text(texts, counter, state)


def _mode(shown: StripText, chars: int) -> DisplayMode:
    if text_width(shown.text) > 2 * chars:
        return DisplayMode.SCROLL  # wider than the strip: scroll rather than cut
    return DisplayMode.FLASH if shown.flash else DisplayMode.STATIC


def strip_requests(
    counter: int, state: str, ticket_number: str | None, texts: DisplayText | None = None
) -> tuple[SetIdleRequest, ShowTextRequest]:
    """The strip's desired state: its idle content, then what it shows now."""
    texts = texts or DisplayText()
    rest = idle_text(texts, counter, state)
    shown = strip_text(counter, state, ticket_number, texts)
    return (
        SetIdleRequest(
            region=0,
            mode=_mode(StripText(rest.text), texts.strip_chars),
            color=int(rest.color),
            text=clip_bytes(rest.text),
        ),
        ShowTextRequest(
            region=0,
            mode=_mode(shown, texts.strip_chars),
            color=int(shown.color),
            hold_s=shown.hold_s,
            text=clip_bytes(shown.text),
        ),
    )
