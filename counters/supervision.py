"""Electronic supervision (电子监察): alarms at counters, per-clerk day figures, deductions.

``conditions`` is pure: from a hall's counters as read now it names every alarm condition that
holds (kind, counter). ``tick`` reads the hall, raises the alarms that are new (a row in
``supervision_alarms`` and a ``supervision.alarm`` event in the hall's log, which the live feed
carries to the dashboard channel only) and clears the ones whose condition ended
(``supervision.cleared``). A task runs ``tick`` for every hall every ``TICK_S`` seconds; tests
call it with an injected clock. Thresholds and points are in the hall config
(``halls[].supervision``).

Alarm kinds:

- ``idle_with_queue``: open and idle for ``idle_with_queue_minutes`` while its queues wait;
- ``long_service``: one service running over ``service_over_minutes``;
- ``unattended``: in business hours, closed or paused for ``unattended_minutes``;
- ``no_shows``: the last ``no_shows_in_row`` tickets the counter ended today were no-shows;
- ``late_sign_in``: not opened by a business period's start plus ``sign_in_grace_minutes``
  (cleared when it opens; the record stays, with its points).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg
from aiohttp import web

from hall.config.models import Supervision
from hall.domain.calendar import business_day, is_open
from hall.domain.tickets import Event, EventType
from hall.ports import Clock
from hall.services.directory import Directory, HallRules
from hall.storage.uow import UnitOfWork, run_in_transaction
from hall.web.state import CLOCK, DIRECTORY, POOL

log = logging.getLogger(__name__)

TICK_S = 30.0  # how often the task looks; alarms are about minutes
KINDS = {
    "idle_with_queue": "窗口空闲但有群众等候",
    "long_service": "单笔办理超时",
    "unattended": "办公时间窗口无人",
    "no_shows": "连续过号",
    "late_sign_in": "迟到未登录",
}


@dataclass(frozen=True, slots=True)
class CounterNow:
    """One counter as supervision sees it."""

    number: int
    state: str
    state_since: datetime
    clerk: str | None
    ticket_id: int | None
    serve_started_at: datetime | None
    waiting: int  # tickets waiting that this counter may call
    no_show_streak: int  # no-shows in a row among the tickets it ended today
    opened_today_at: datetime | None  # first opening of the business day


@dataclass(frozen=True, slots=True)
class Condition:
    kind: str
    counter: int
    clerk: str | None
    ticket_id: int | None
    detail: str


def _minutes(delta: timedelta) -> int:
    return int(delta.total_seconds() // 60)


def period_starts(rules: HallRules, day: date) -> list[datetime]:
    """The hall's business period openings on ``day`` (local), as aware datetimes."""
    return [datetime.combine(day, start, rules.tz) for start, _ in rules.periods()]


def conditions(
    now: datetime, rules: HallRules, counters: Iterable[CounterNow], cfg: Supervision
) -> list[Condition]:
    """Every alarm condition that holds now."""
    tz = rules.tz
    open_now = is_open(now, tz, rules.periods(), rules.calendar)
    local_day = now.astimezone(tz).date()
    starts = [s for s in period_starts(rules, local_day) if s <= now]
    current_start = max(starts) if starts else None
    first_start = min(starts) if starts else None
    out: list[Condition] = []
    for c in counters:
        name = f"{c.number}号窗口"
        held = now - c.state_since
        if (
            c.state == "idle"
            and c.waiting
            and held >= timedelta(minutes=cfg.idle_with_queue_minutes)
        ):
            out.append(Condition(
                "idle_with_queue", c.number, c.clerk, None,
                f"{name}空闲 {_minutes(held)} 分钟，有 {c.waiting} 人等候",
            ))  # fmt: skip
        if c.state == "serving" and c.serve_started_at is not None:
            serving = now - c.serve_started_at
            if serving >= timedelta(minutes=cfg.service_over_minutes):
                out.append(Condition(
                    "long_service", c.number, c.clerk, c.ticket_id,
                    f"{name}单笔办理已 {_minutes(serving)} 分钟",
                ))  # fmt: skip
        if open_now and current_start is not None and c.state in ("closed", "paused"):
            away = now - max(c.state_since, current_start)
            if away >= timedelta(minutes=cfg.unattended_minutes):
                label = "窗口关闭" if c.state == "closed" else "暂停服务"
                out.append(Condition(
                    "unattended", c.number, c.clerk, None,
                    f"{name}办公时间{label}已 {_minutes(away)} 分钟",
                ))  # fmt: skip
        if c.no_show_streak >= cfg.no_shows_in_row:
            out.append(Condition(
                "no_shows", c.number, c.clerk, None,
                f"{name}连续 {c.no_show_streak} 个号码过号",
            ))  # fmt: skip
        if open_now and first_start is not None and c.opened_today_at is None:
            deadline = first_start + timedelta(minutes=cfg.sign_in_grace_minutes)
            if now >= deadline:
                out.append(Condition(
                    "late_sign_in", c.number, None, None,
                    f"{name}超过 {deadline.astimezone(tz):%H:%M} 仍未登录开窗",
                ))  # fmt: skip
    return out


# --- storage ----------------------------------------------------------------------------------


async def read_counters(
    conn: asyncpg.Connection, rules: HallRules, now: datetime, cfg: Supervision
) -> list[CounterNow]:
    hall_id = rules.hall.id
    day = business_day(now, rules.tz, rules.hall.day_boundary)
    day_start = datetime.combine(day, rules.hall.day_boundary, rules.tz)
    rows = await conn.fetch(
        """SELECT c.number, c.state::text AS state, c.state_since, c.clerk,
                  t.id AS ticket_id, t.serve_started_at
           FROM counters c
           LEFT JOIN tickets t ON t.hall_id = c.hall_id AND t.counter_number = c.number
           WHERE c.hall_id = $1 AND c.active""",
        hall_id,
    )
    waiting = {
        r["service_code"]: r["n"]
        for r in await conn.fetch(
            "SELECT service_code, count(*) AS n FROM tickets WHERE hall_id = $1"
            " AND state = 'waiting' AND target_counter IS NULL GROUP BY 1",
            hall_id,
        )
    }
    sent = {
        r["target_counter"]: r["n"]
        for r in await conn.fetch(
            "SELECT target_counter, count(*) AS n FROM tickets WHERE hall_id = $1"
            " AND state = 'waiting' AND target_counter IS NOT NULL GROUP BY 1",
            hall_id,
        )
    }
    endings = await conn.fetch(
        """SELECT counter_number, type FROM (
               SELECT counter_number, type,
                      row_number() OVER (PARTITION BY counter_number ORDER BY id DESC) AS rn
               FROM events
               WHERE hall_id = $1 AND at >= $2
                 AND type IN ('ticket.finished', 'ticket.no_show', 'ticket.transferred',
                              'ticket.parked')) e
           WHERE rn <= $3 ORDER BY counter_number, rn""",
        hall_id,
        day_start,
        cfg.no_shows_in_row,
    )
    streak: dict[int, int] = {}
    broken: set[int] = set()
    for r in endings:
        n = r["counter_number"]
        if n in broken:
            continue
        if r["type"] == "ticket.no_show":
            streak[n] = streak.get(n, 0) + 1
        else:
            broken.add(n)
    opened = {
        r["counter_number"]: r["first"]
        for r in await conn.fetch(
            "SELECT counter_number, min(at) AS first FROM events WHERE hall_id = $1"
            " AND type = 'counter.opened' AND at >= $2 GROUP BY 1",
            hall_id,
            day_start,
        )
    }
    out = []
    for r in rows:
        config = next((c for c in rules.hall.counters if c.number == r["number"]), None)
        if config is None:
            continue
        eligible = sum(waiting.get(s.code, 0) for s in config.services) + sent.get(r["number"], 0)
        out.append(
            CounterNow(
                number=r["number"],
                state=r["state"],
                state_since=r["state_since"],
                clerk=r["clerk"],
                ticket_id=r["ticket_id"],
                serve_started_at=r["serve_started_at"],
                waiting=eligible,
                no_show_streak=streak.get(r["number"], 0),
                opened_today_at=opened.get(r["number"]),
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class Change:
    raised: list[Condition]
    cleared: list[tuple[str, int]]


async def tick(pool: asyncpg.Pool, directory: Directory, clock: Clock, hall_id: str) -> Change:
    """Raise new alarms and clear ended ones for one hall, in one transaction."""
    rules = directory.hall(hall_id)
    cfg = rules.hall.supervision
    now = clock.now()

    async def work(uow: UnitOfWork) -> Change:
        conn = uow.conn
        # One supervisor at a time per hall (several server processes run the task).
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('supervision:' || $1))", hall_id)
        held = conditions(now, rules, await read_counters(conn, rules, now, cfg), cfg)
        holding = {(c.kind, c.counter): c for c in held}
        open_rows = await conn.fetch(
            "SELECT id, kind, counter_number FROM supervision_alarms"
            " WHERE hall_id = $1 AND cleared_at IS NULL",
            hall_id,
        )
        already = {(r["kind"], r["counter_number"]) for r in open_rows}
        raised = [c for key, c in holding.items() if key not in already]
        cleared = [key for key in already if key not in holding]
        points = cfg.deductions.model_dump()
        for c in raised:
            await conn.execute(
                """INSERT INTO supervision_alarms
                       (hall_id, kind, counter_number, clerk, ticket_id, raised_at, detail, points)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
                hall_id, c.kind, c.counter, c.clerk, c.ticket_id, now, c.detail,
                float(points.get(c.kind, 0)),
            )  # fmt: skip
            uow.add(hall_id, _event(EventType.SUPERVISION_ALARM, now, c.counter, {
                "kind": c.kind, "label": KINDS[c.kind], "detail": c.detail, "clerk": c.clerk,
                "points": float(points.get(c.kind, 0)),
            }))  # fmt: skip
        for kind, counter in cleared:
            await conn.execute(
                "UPDATE supervision_alarms SET cleared_at = $4 WHERE hall_id = $1 AND kind = $2"
                " AND counter_number = $3 AND cleared_at IS NULL",
                hall_id, kind, counter, now,
            )  # fmt: skip
            uow.add(hall_id, _event(EventType.SUPERVISION_CLEARED, now, counter, {
                "kind": kind, "label": KINDS[kind],
            }))  # fmt: skip
        return Change(raised, sorted(cleared))

    change, _ = await run_in_transaction(pool, work)
    return change


def _event(type_: EventType, at: datetime, counter: int, details: dict[str, Any]) -> Event:
    return Event(type=type_, at=at, actor="supervision", counter_number=counter, details=details)


# --- per clerk per day --------------------------------------------------------------------------


async def day_figures(conn: asyncpg.Connection, rules: HallRules, day: date) -> dict[str, Any]:
    """Per clerk: first sign-in, last sign-out, pause time by reason, served and no-shows,
    alarms and points; per counter: alarms and points (window-unit deductions)."""
    hall_id = rules.hall.id
    start = datetime.combine(day, rules.hall.day_boundary, rules.tz)
    end = start + timedelta(days=1)
    events = await conn.fetch(
        """SELECT type, at, actor, counter_number, details FROM events
           WHERE hall_id = $1 AND at >= $2 AND at < $3
             AND (type LIKE 'counter.%' OR type IN ('ticket.finished', 'ticket.no_show'))
           ORDER BY id""",
        hall_id,
        start,
        end,
    )
    clerks: dict[str, dict[str, Any]] = {}

    def of(job_no: str) -> dict[str, Any]:
        return clerks.setdefault(
            job_no,
            {"job_no": job_no, "signed_in_at": None, "signed_out_at": None, "served": 0,
             "no_shows": 0, "pause_s": {}, "alarms": 0, "points": 0.0},
        )  # fmt: skip

    for e in events:
        d: Mapping[str, Any] = e["details"]
        if e["type"] == "counter.opened":
            entry = of(str(d.get("clerk") or e["actor"]))
            if entry["signed_in_at"] is None:
                entry["signed_in_at"] = e["at"].isoformat()
        elif e["type"] == "counter.closed" and d.get("counter_clerk"):
            of(str(d["counter_clerk"]))["signed_out_at"] = e["at"].isoformat()
        if d.get("from_state") == "paused" and d.get("counter_clerk"):
            pauses = of(str(d["counter_clerk"]))["pause_s"]
            reason = str(d.get("pause_reason") or "其他")
            pauses[reason] = round(pauses.get(reason, 0.0) + float(d.get("duration_s", 0)), 3)
        if e["type"] == "ticket.finished":
            of(str(e["actor"]))["served"] += 1
        elif e["type"] == "ticket.no_show":
            of(str(e["actor"]))["no_shows"] += 1
    alarms = await conn.fetch(
        "SELECT kind, counter_number, clerk, points FROM supervision_alarms"
        " WHERE hall_id = $1 AND raised_at >= $2 AND raised_at < $3",
        hall_id,
        start,
        end,
    )
    counters: dict[int, dict[str, Any]] = {}
    for a in alarms:
        if a["clerk"]:
            entry = of(a["clerk"])
            entry["alarms"] += 1
            entry["points"] = round(entry["points"] + a["points"], 2)
        unit = counters.setdefault(
            a["counter_number"], {"counter": a["counter_number"], "alarms": {}, "points": 0.0}
        )
        unit["alarms"][a["kind"]] = unit["alarms"].get(a["kind"], 0) + 1
        unit["points"] = round(unit["points"] + a["points"], 2)
    return {
        "hall": hall_id,
        "day": day.isoformat(),
        "clerks": sorted(clerks.values(), key=lambda c: c["job_no"]),
        "counters": sorted(counters.values(), key=lambda c: c["counter"]),
    }


# --- the task ----------------------------------------------------------------------------------


async def supervising(app: web.Application) -> AsyncIterator[None]:
    """Task: tick every hall every TICK_S seconds for the app's lifetime."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(TICK_S)
            for hall in app[DIRECTORY].config.halls:
                try:
                    await tick(app[POOL], app[DIRECTORY], app[CLOCK], hall.id)
                except Exception:
                    log.exception("supervision of hall %s failed; next try in %.0f s",
                                  hall.id, TICK_S)  # fmt: skip

    task = asyncio.create_task(loop(), name="supervision")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
