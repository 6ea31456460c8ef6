"""Hall screen (综合屏) rows: the latest calls, newest on top (domain.md §7.2)."""

from __future__ import annotations

from collections.abc import Iterable

from firmware_bridge.constants import Color
from firmware_bridge.messages import Request, Row, ShowRowsRequest

FLASH = 0x08  # SHOW_ROWS attr bit 3: flash for FLASH_S, then steady


def call_rows(calls: Iterable[tuple[str, int]], rows: int) -> tuple[Row, ...]:
    """``calls`` newest first as (ticket number, counter); a recalled number is shown once."""
    out: list[Row] = []
    seen: set[str] = set()
    for number, counter in calls:
        if number in seen:
            continue
        seen.add(number)
        attr = int(Color.RED) | FLASH if not out else int(Color.GREEN)
        out.append(Row(attr, f"{number} {counter}号窗口"))
        if len(out) == rows:
            break
    out += [Row(0, "")] * (rows - len(out))  # clear rows left from older calls
    return tuple(out)


def screen_requests(calls: Iterable[tuple[str, int]], rows: int) -> tuple[Request, ...]:
    """The screen's desired state: all call rows in one SHOW_ROWS."""
    return (ShowRowsRequest(0, call_rows(calls, rows)),)
