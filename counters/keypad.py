"""Caller keypad (呼叫器): what each HB/1 key does at a counter, and what its display shows.

Pure: the key map turns a key press and the counter's state into counter actions (by name,
as ``hall.services.queue.CounterAction`` values); the display is a KEYPAD_SHOW request.
"""

from __future__ import annotations

from dataclasses import dataclass

from firmware_bridge.constants import KeyCode
from firmware_bridge.messages import NO_WAITING, KeypadShowRequest, Request

# What a caller shows when its counter has no ticket (7-segment: digits, space and '-').
NO_TICKET = "----"
CLOSED_SHOWN = ""
PAUSED_SHOWN = "PAUSE"
PAUSE_REASON = "呼叫器暂停"
LED_OFF, LED_STEADY, LED_BLINK = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Step:
    """One counter action of a key press."""

    action: str
    number: str | None = None
    to_counter: int | None = None
    reason: str | None = None


class KeyRefused(ValueError):
    """The key cannot be turned into an action (bad argument, site key without meaning)."""


def plan_key(key: int, arg: str, counter_state: str) -> tuple[Step, ...]:
    """Counter actions for a key press (HB1.md §11 KEY codes) in the counter's current state.

    The keypad has no 开始办理 key: 办结 on a called ticket starts and finishes it, and 叫号
    while serving finishes the current ticket first, as clerks expect of a hardware caller.
    """
    match key:
        case KeyCode.CALL_NEXT:
            if counter_state == "serving":
                return (Step("finish"), Step("call_next"))
            return (Step("call_next"),)
        case KeyCode.RECALL:
            return (Step("recall"),)
        case KeyCode.NO_SHOW:
            return (Step("no_show"),)
        case KeyCode.PAUSE:
            return (Step("pause", reason=PAUSE_REASON),)
        case KeyCode.RESUME:
            return (Step("resume"),)
        case KeyCode.TRANSFER:
            if not arg.isdigit():
                raise KeyRefused("转移需要目标窗口号")
            return (Step("transfer", to_counter=int(arg)),)
        case KeyCode.FINISH:
            if counter_state == "calling":
                return (Step("start"), Step("finish"))
            return (Step("finish"),)
        case KeyCode.CALL_SPECIFIC:
            if not arg:
                raise KeyRefused("特呼需要号码")
            return (Step("call", number=arg.upper()),)
        case KeyCode.HOLD:
            return (Step("park"),)
        case KeyCode.CALL_BACK:
            if not arg:
                raise KeyRefused("回呼需要号码")
            return (Step("call_back", number=arg.upper()),)
    raise KeyRefused(f"未定义的按键 0x{key:02X}")


def keypad_requests(state: str, ticket_number: str | None) -> tuple[Request, ...]:
    """The caller display for a counter: current ticket (or ----) and LED.

    The waiting count stays hidden: it changes with every ticket issued or called in the hall,
    and at 9600 baud refreshing it on every caller costs a transaction (~45 ms of line time)
    per caller per change, which would delay the polls that carry key presses.
    """
    if state == "closed":  # 窗口关闭: a dark display
        return (KeypadShowRequest(CLOSED_SHOWN, NO_WAITING, LED_OFF),)
    if state == "paused":  # 暂停服务: not to be mistaken for closed, nor for "----" (host lost)
        return (KeypadShowRequest(PAUSED_SHOWN, NO_WAITING, LED_OFF),)
    shown = (ticket_number or NO_TICKET)[:8]
    led = LED_BLINK if state == "calling" else LED_STEADY
    return (KeypadShowRequest(shown, NO_WAITING, led),)
