"""Window LED strip (窗口条屏) text from a counter's state (domain.md §7.2)."""

from __future__ import annotations

from dataclasses import dataclass

from firmware_bridge.constants import Color, DisplayMode
from firmware_bridge.messages import Request, ShowTextRequest


@dataclass(frozen=True, slots=True)
class StripText:
    text: str
    flash: bool = False
    color: int = Color.DEFAULT


def strip_text(counter: int, state: str, ticket_number: str | None) -> StripText:
    """What the strip above counter ``counter`` says now."""
    if state == "calling" and ticket_number:
        return StripText(f"请{ticket_number}号到{counter}号窗口", flash=True, color=Color.RED)
    if state == "serving" and ticket_number:
        return StripText(f"正在办理 {ticket_number}", color=Color.GREEN)
    if state in ("paused", "closed"):
        return StripText("暂停服务", color=Color.RED)
    return StripText(f"{counter}号窗口 欢迎光临", color=Color.GREEN)


def strip_requests(counter: int, state: str, ticket_number: str | None) -> tuple[Request, ...]:
    """The strip's desired state: one SHOW_TEXT on the main line, held until replaced."""
    shown = strip_text(counter, state, ticket_number)
    mode = DisplayMode.FLASH if shown.flash else DisplayMode.STATIC
    return (ShowTextRequest(region=0, mode=mode, color=int(shown.color), text=shown.text),)
