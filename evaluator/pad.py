"""Rating pad (评价器) screen from a counter's state (HB1.md §12, domain.md §4, §7.3).

A rating session is bound to one ticket (one service visit): its ``session_id`` is the
ticket's id, so a RATING is tied to the visit without host-side session memory that a
restart could lose, and a second rating of the same visit is refused by the ratings table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from firmware_bridge.messages import (
    PadClerkRequest,
    PadRateRequest,
    PadServiceRequest,
    Request,
)

RATING_TIMEOUT_S = 30  # domain.md §7.3: 30–60 s, then "not rated"


@dataclass(frozen=True, slots=True)
class PadView:
    counter: int
    state: str
    clerk_no: str | None
    clerk_name: str | None
    ticket_id: int | None
    ticket_number: str | None
    matter: str | None
    last_done_id: int | None
    last_done_at: datetime | None
    last_done_rated: bool


def session_id(ticket_id: int) -> int:
    """The HB/1 rating session of a ticket (non-zero u32)."""
    return ticket_id & 0xFFFFFFFF or 1


def ticket_of_session(session: int) -> int:
    return session


def pad_requests(view: PadView, now: datetime) -> tuple[Request, ...]:
    """Clerk card, then the service in progress or the open rating request, if any."""
    window = f"{view.counter}号窗口"
    if view.clerk_no is None or view.state == "closed":
        return (PadClerkRequest(window, "", ""),)
    paused = PadClerkRequest.PAUSED if view.state == "paused" else 0
    out: list[Request] = [
        PadClerkRequest(window, view.clerk_no, view.clerk_name or view.clerk_no, paused)
    ]
    if view.ticket_id is not None and view.state in ("calling", "serving"):
        out.append(
            PadServiceRequest(
                session_id(view.ticket_id), view.ticket_number or "", view.matter or ""
            )
        )
    elif view.last_done_id is not None and not view.last_done_rated and view.last_done_at:
        left = RATING_TIMEOUT_S - (now - view.last_done_at).total_seconds()
        if left >= 1:
            out.append(PadRateRequest(session_id(view.last_done_id), timeout_s=int(left)))
    return tuple(out)
