"""What a waiting ticket's holder is told about their wait: one rule for the printed ticket, the
kiosk's on-screen ticket and the citizen's page (/t/{token}).

``standing`` is pure; ``read`` adds the one database read it needs. "People ahead" and a
wait range are only said when they mean something for this ticket:

- a ticket transferred to one window waits for that window: when it is closed or paused the
  ticket says so ("5号窗口尚未开放") instead of "0 people ahead, 0 s";
- an appointment (预约) ticket is called by its slot, not behind the walk-in queue: it shows
  the slot and the rule that applies to it;
- when no open window serves the service at all, it says which windows do and that none is
  open (with the people ahead, when there are any), not a wait that would be a guess.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

import asyncpg

from hall.domain.tickets import TicketState
from hall.services.directory import HallRules
from hall.services.queue import TicketView
from kiosk import repo
from kiosk.layout import wait_range

OPEN_STATES = frozenset({"idle", "calling", "serving"})
"""Counter states in which a window calls tickets (the kernel's counter states)."""
NAMED_WINDOWS = 3
"""Up to this many windows are named ("3、4号窗口"); more are "办理此业务的窗口"."""


@dataclass(frozen=True, slots=True)
class Waiting:
    """A waiting ticket's facts, as the kernel's ticket view and the hall's counters give them."""

    people_ahead: int | None
    estimated_wait_s: float | None
    """None when no open window serves the ticket's service."""
    wait_low_s: float | None = None
    wait_high_s: float | None = None
    target_counter: int | None = None
    """The one window the ticket was transferred to, if any."""
    target_state: str | None = None
    """That window's state ("idle", "serving", "paused", "closed"…); None: unknown (closed)."""
    appointment_start: datetime | None = None
    appointment_end: datetime | None = None
    serving_counters: Sequence[int] = ()
    """The windows that serve the ticket's service (named when none is open)."""


@dataclass(frozen=True, slots=True)
class Standing:
    people_ahead: int | None
    """Shown as "您前面还有 N 人" only when not None."""
    wait_text: str
    note: str | None = None


def windows(numbers: Sequence[int]) -> str:
    if not numbers or len(numbers) > NAMED_WINDOWS:
        return "办理此业务的窗口"
    return "、".join(str(n) for n in sorted(numbers)) + "号窗口"


def slot_text(start: datetime, end: datetime | None, tz: tzinfo) -> str:
    a = start.astimezone(tz)
    if end is None:
        return f"预约时段 {a:%H:%M}"
    return f"预约时段 {a:%H:%M}-{end.astimezone(tz):%H:%M}"


def standing(w: Waiting, *, now: datetime, tz: tzinfo, early: timedelta) -> Standing:
    """What to tell the holder of waiting ticket ``w`` (``early``: how long before its slot
    an appointment may be called)."""
    if w.target_counter is not None:
        n = w.target_counter
        moved = f"您的号码已转到{n}号窗口"
        if w.target_state in OPEN_STATES:
            return Standing(None, f"请留意{n}号窗口叫号", moved + "，请留意叫号")
        if w.target_state == "paused":
            return Standing(None, f"{n}号窗口暂停服务，恢复后将为您叫号", moved)
        return Standing(None, f"{n}号窗口尚未开放，开放后将为您叫号", moved)
    if w.appointment_start is not None:
        slot = slot_text(w.appointment_start, w.appointment_end, tz)
        if w.estimated_wait_s is None:
            rule = f"{windows(w.serving_counters)}尚未开放，开放后预约号优先叫号"
        elif now < w.appointment_start - early:
            start = w.appointment_start.astimezone(tz)
            rule = f"预约号在预约时段优先叫号，请于 {start:%H:%M} 前到场"
        else:
            rule = "预约号优先叫号，请留意叫号"
        return Standing(None, slot, rule)
    if w.estimated_wait_s is None and w.people_ahead is not None:
        # Their place is true and worth knowing (but "0 ahead" would read as "your turn");
        # a wait would be a guess.
        return Standing(w.people_ahead or None, f"{windows(w.serving_counters)}尚未开放，请稍候")
    return Standing(
        w.people_ahead,
        wait_range(w.estimated_wait_s, w.people_ahead, w.wait_low_s, w.wait_high_s),
    )


def of_view(
    view: TicketView, rules: HallRules, *, target_state: str | None, now: datetime
) -> Standing:
    """The standing of a waiting ticket from the kernel's view of it."""
    t = view.ticket
    policy = rules.hall.call_policy
    return standing(
        Waiting(
            people_ahead=view.people_ahead,
            estimated_wait_s=view.estimated_wait_s,
            wait_low_s=view.wait_low_s,
            wait_high_s=view.wait_high_s,
            target_counter=t.target_counter,
            target_state=target_state,
            appointment_start=t.appointment_start,
            appointment_end=t.appointment_end,
            serving_counters=rules.counters_serving(t.service_code),
        ),
        now=now,
        tz=rules.tz,
        early=timedelta(minutes=policy.appointment_early_minutes),
    )


async def read(
    conn: asyncpg.Connection | asyncpg.Pool, rules: HallRules, view: TicketView, now: datetime
) -> Standing | None:
    """The standing of ``view``'s ticket if it waits (reads its target window's state)."""
    t = view.ticket
    if t.state is not TicketState.WAITING:
        return None
    state = None
    if t.target_counter is not None:
        state = await repo.counter_state(conn, t.hall_id, t.target_counter)
    return of_view(view, rules, target_state=state, now=now)
