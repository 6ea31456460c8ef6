"""Hall screen (综合屏) rows: the latest calls of the screen's own windows and services,
newest on top (domain.md §7.2)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from firmware_bridge.constants import Color
from firmware_bridge.messages import Request, Row, ShowRowsRequest
from hall.config.models import Screen
from hall.services.device_roles import RecentCall

FLASH = 0x08  # SHOW_ROWS attr bit 3: flash for FLASH_S, then steady


def shown_calls(screen: Screen, calls: Iterable[RecentCall]) -> list[RecentCall]:
    """The calls of the screen's counters and services (all when the list is empty)."""
    return [
        c
        for c in calls
        if (not screen.counters or c.counter in screen.counters)
        and (not screen.services or c.service in screen.services)
    ]


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


def screen_requests(calls: Sequence[RecentCall], rows: int) -> tuple[Request, ...]:
    """The screen's desired state: all call rows in one SHOW_ROWS."""
    return (ShowRowsRequest(0, call_rows(((c.number, c.counter) for c in calls), rows)),)
