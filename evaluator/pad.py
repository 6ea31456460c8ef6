"""Rating pad (评价器) screen from a counter's state and its rating session (HB1.md §10.3, §12).

A call at a counter opens a pad session with a random non-zero u32 id (a trigger of migration
0050 draws it and stores the binding to ticket, window and clerk); the case is bound when the
rating is stored. The pad shows the visit under that id while it is served, and is asked to
rate it once the ticket is finished there, until the timeout (then the pad reports
RATING_TIMEOUT and the visit is stored as not rated).
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

DEFAULT_TIMEOUT_S = 30  # domain.md §7.3: 30–60 s, then "not rated"


@dataclass(slots=True)
class PadSettings:
    """Set from the config (``evaluation.rating_timeout_s``) when the app starts."""

    timeout_s: int = DEFAULT_TIMEOUT_S
    dims_mask: int = 0
    """``evaluation.dimensions`` as PAD_RATE_REQ's bitmap (0: levels only)."""


SETTINGS = PadSettings()


@dataclass(frozen=True, slots=True)
class PadView:
    counter: int
    state: str
    clerk_no: str | None
    clerk_name: str | None
    ticket_id: int | None
    ticket_number: str | None
    matter: str | None
    session_id: int | None
    """The counter's newest pad session."""
    session_ticket: int | None
    session_finished_at: datetime | None
    session_rated: bool


def pad_requests(view: PadView, now: datetime, timeout_s: int) -> tuple[Request, ...]:
    """Clerk card, then the service in progress or the open rating request, if any."""
    window = f"{view.counter}号窗口"
    if view.clerk_no is None or view.state == "closed":
        return (PadClerkRequest(window, "", ""),)
    paused = PadClerkRequest.PAUSED if view.state == "paused" else 0
    out: list[Request] = [
        PadClerkRequest(window, view.clerk_no, view.clerk_name or view.clerk_no, paused)
    ]
    if view.session_id is None:
        return tuple(out)
    if (
        view.ticket_id is not None
        and view.ticket_id == view.session_ticket
        and view.state in ("calling", "serving")
    ):
        out.append(PadServiceRequest(view.session_id, view.ticket_number or "", view.matter or ""))
    elif view.session_finished_at is not None and not view.session_rated:
        left = timeout_s - (now - view.session_finished_at).total_seconds()
        if left >= 1:
            out.append(
                PadRateRequest(
                    view.session_id, timeout_s=min(255, int(left)), dims_mask=SETTINGS.dims_mask
                )
            )
    return tuple(out)
