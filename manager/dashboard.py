"""The live dashboard's figures for one hall and business day, and its alarm list.

Alarms are conditions that hold now, each with a stable key (acknowledging stores the key):

- queue: a service whose oldest waiting ticket has waited longer than the service's
  ``target_wait_minutes`` (key ``wait:<service>:<ticket id>``), or whose queue is longer than
  ``QUEUE_ALARM_LENGTH``; a counter idle for ``IDLE_ALARM_S`` while a queue it serves waits
  (``idle:<counter>:<since>``);
- devices: HB/1 devices offline or suspect, from the kernel's ``devices`` table;
- printers: kiosk printers not ``ok`` (paper low or out, cover open, no answer), from the
  ``kiosk_printer_status`` table when it exists;
- supervision: open rows of the counters slice's ``supervision_alarms`` when it exists (they
  replace the dashboard's own idle-counter check);
- any other slice: every view named ``alarms_<slice>`` with the columns ``hall_id text,
  key text, kind text, severity text ('warning' | 'critical'), message text (zh-CN),
  since timestamptz``, listing the conditions that hold now (counters' supervision,
  evaluator's overdue 差评 and upstream dead letters). The dashboard reads them all, so a
  slice makes its alarms appear by creating such a view; no import of manager/ is needed.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import asyncpg

from hall.domain.calendar import business_day
from hall.services.directory import HallRules
from hall.services.queue import ServiceOverview

QUEUE_ALARM_LENGTH = 50
IDLE_ALARM_S = 300
MIN_SERVICE_S = 60.0
WAIT_BUCKETS_MIN = (5, 10, 20, 30, 60)
STATE_LABELS = {
    "closed": "窗口关闭",
    "idle": "空闲",
    "calling": "呼叫中",
    "serving": "办理中",
    "paused": "暂停服务",
}
PRINTER_LABELS = {
    "near_end": "打印纸将尽",
    "paper_out": "打印机缺纸",
    "cover_open": "打印机盖未关",
    "error": "打印机故障",
    "offline": "打印机离线",
    "no_answer": "打印机无响应",
}


@dataclass(frozen=True, slots=True)
class Alarm:
    key: str
    kind: str
    severity: str
    message: str
    since: datetime | None
    acked: bool = False


def day_start(rules: HallRules, day: date) -> datetime:
    return datetime.combine(day, rules.hall.day_boundary, rules.tz)


async def figures(
    conn: asyncpg.Connection,
    rules: HallRules,
    now: datetime,
    overview: list[ServiceOverview],
) -> dict[str, Any]:
    hall_id = rules.hall.id
    day = business_day(now, rules.tz, rules.hall.day_boundary)
    start = day_start(rules, day)
    oldest = {
        r["service_code"]: r
        for r in await conn.fetch(
            """SELECT DISTINCT ON (service_code) service_code, id, issued_at
                 FROM tickets WHERE hall_id = $1 AND state = 'waiting'
                ORDER BY service_code, queue_key""",
            hall_id,
        )
    }
    per_service = {
        r["service_code"]: r
        for r in await conn.fetch(
            """SELECT service_code, count(*) FILTER (WHERE state = 'done')::int AS served,
                      count(*)::int AS issued
                 FROM tickets WHERE hall_id = $1 AND business_day = $2 GROUP BY 1""",
            hall_id,
            day,
        )
    }
    services = []
    for item in overview:
        head = oldest.get(item.code)
        stats = per_service.get(item.code)
        services.append(
            {
                "code": item.code,
                "name": item.name,
                "waiting": item.waiting,
                "longest_wait_s": (now - head["issued_at"]).total_seconds() if head else 0.0,
                "oldest_ticket": head["id"] if head else None,
                "estimated_wait_s": item.estimated_wait_s,
                "issued_today": stats["issued"] if stats else 0,
                "served_today": stats["served"] if stats else 0,
                "target_wait_s": rules.service(item.code).target_wait_minutes * 60.0,
            }
        )
    counters = await _counters(conn, rules, start, now)
    return {
        "hall": hall_id,
        "hall_name": rules.hall.name,
        "day": day.isoformat(),
        "now": now.isoformat(),
        "services": services,
        "counters": counters,
        "charts": await _charts(conn, rules, day, start, now),
    }


async def _counters(
    conn: asyncpg.Connection, rules: HallRules, start: datetime, now: datetime
) -> list[dict[str, Any]]:
    hall_id = rules.hall.id
    rows = await conn.fetch(
        """SELECT c.number, c.state::text AS state, c.state_since, c.pause_reason, c.clerk,
                  s.name AS clerk_name, t.display_number, t.state::text AS ticket_state,
                  t.called_at, t.serve_started_at
             FROM counters c
             LEFT JOIN staff s ON s.job_no = c.clerk
             LEFT JOIN tickets t ON t.hall_id = c.hall_id AND t.counter_number = c.number
                                AND t.state IN ('called', 'serving')
            WHERE c.hall_id = $1 AND c.active ORDER BY c.number""",
        hall_id,
    )
    served = {
        r["counter_number"]: r
        for r in await conn.fetch(
            """SELECT e.counter_number, count(*)::int AS n,
                      avg(extract(epoch FROM t.finished_at - t.serve_started_at))::float8 AS mean
                 FROM events e JOIN tickets t ON t.id = e.ticket_id
                WHERE e.hall_id = $1 AND e.at >= $2 AND e.type = 'ticket.finished'
                GROUP BY 1""",
            hall_id,
            start,
        )
    }
    rated = {
        r["counter_number"]: r
        for r in await conn.fetch(
            """SELECT counter_number, count(level)::int AS rated,
                      count(*) FILTER (WHERE level >= 3)::int AS satisfied,
                      count(*) FILTER (WHERE level <= 2)::int AS bad
                 FROM ratings WHERE hall_id = $1 AND rated_at >= $2 GROUP BY 1""",
            hall_id,
            start,
        )
    }
    out = []
    for r in rows:
        number = r["number"]
        s = served.get(number)
        g = rated.get(number)
        since = r["serve_started_at"] or r["called_at"]
        label = STATE_LABELS.get(r["state"], r["state"])
        if r["state"] == "paused" and r["pause_reason"]:
            label = f"{label}（{r['pause_reason']}）"
        out.append(
            {
                "number": number,
                "name": rules.counter(number).display_name,
                "services": [x.code for x in rules.counter(number).services],
                "state": r["state"],
                "state_label": label,
                "state_since": r["state_since"].isoformat(),
                "clerk": r["clerk"],
                "clerk_name": r["clerk_name"],
                "ticket": r["display_number"],
                "ticket_state": r["ticket_state"],
                "ticket_for_s": (now - since).total_seconds() if since else None,
                "served_today": s["n"] if s else 0,
                "mean_service_s": s["mean"] if s else None,
                "rated_today": g["rated"] if g else 0,
                "satisfied_today": g["satisfied"] if g else 0,
                "bad_today": g["bad"] if g else 0,
            }
        )
    return out


async def _charts(
    conn: asyncpg.Connection, rules: HallRules, day: date, start: datetime, now: datetime
) -> dict[str, Any]:
    hall_id = rules.hall.id
    tz = rules.hall.timezone
    arrivals = {
        r["hour"]: r["n"]
        for r in await conn.fetch(
            """SELECT extract(hour FROM issued_at AT TIME ZONE $3)::int AS hour, count(*)::int AS n
                 FROM tickets WHERE hall_id = $1 AND business_day = $2 GROUP BY 1""",
            hall_id,
            day,
            tz,
        )
    }
    hourly = {
        r["hour"]: r
        for r in await conn.fetch(
            """SELECT extract(hour FROM e.at AT TIME ZONE $3)::int AS hour,
                      count(DISTINCT e.counter_number)::int AS counters
                 FROM events e
                WHERE e.hall_id = $1 AND e.at >= $2 AND e.type = 'ticket.called'
                GROUP BY 1""",
            hall_id,
            start,
            tz,
        )
    }
    # Capacity per working counter from the last week's service times (today's first few
    # finishes say little), at least a minute each.
    mean = await conn.fetchval(
        """SELECT avg(extract(epoch FROM finished_at - serve_started_at))::float8
             FROM tickets WHERE hall_id = $1 AND business_day BETWEEN $2::date - 7 AND $2::date
              AND state = 'done'""",
        hall_id,
        day,
    )
    default = (
        sum(s.default_service_minutes for s in rules.hall.services)
        * 60.0
        / max(1, len(rules.hall.services))
    )
    per_counter_hour = 3600.0 / max(MIN_SERVICE_S, mean or default)
    waits = [
        r["w"]
        for r in await conn.fetch(
            """SELECT extract(epoch FROM first_called_at - issued_at)::float8 AS w
                 FROM tickets WHERE hall_id = $1 AND business_day = $2
                  AND first_called_at IS NOT NULL""",
            hall_id,
            day,
        )
    ]
    edges = [m * 60 for m in WAIT_BUCKETS_MIN]
    buckets = [0] * (len(edges) + 1)
    for w in waits:
        buckets[sum(w >= e for e in edges)] += 1
    labels = [f"<{WAIT_BUCKETS_MIN[0]}分"]
    labels += [f"{a}-{b}分" for a, b in itertools.pairwise(WAIT_BUCKETS_MIN)]
    labels.append(f"≥{WAIT_BUCKETS_MIN[-1]}分")
    open_by_hour = await _open_by_hour(conn, rules, start, now)
    opening = [p.open.hour for p in rules.hall.business_hours] or [8]
    closing = [p.close.hour for p in rules.hall.business_hours] or [18]
    hours = list(range(min([*opening, *arrivals]), max([*closing, *arrivals]) + 1))
    current = now.astimezone(rules.tz).hour
    return {
        "hours": hours,
        # Hours still to come have no figures yet (null), rather than zeros.
        "arrivals": [arrivals.get(h, 0) if h <= current else None for h in hours],
        "capacity": [
            round(hourly[h]["counters"] * per_counter_hour, 1)
            if h in hourly
            else (0 if h <= current else None)
            for h in hours
        ],
        "counters_open": [open_by_hour.get(h) for h in hours],
        "wait_labels": labels,
        "wait_counts": buckets,
    }


async def _open_by_hour(
    conn: asyncpg.Connection, rules: HallRules, start: datetime, now: datetime
) -> dict[int, int]:
    """Counters open (not closed) at the half hour of each hour of the day so far, from the
    counters' open/close events (a counter without events today keeps its current state)."""
    rows = await conn.fetch(
        """SELECT counter_number, type, at FROM events
            WHERE hall_id = $1 AND at >= $2 AND type IN ('counter.opened', 'counter.closed')
            ORDER BY id""",
        rules.hall.id,
        start,
    )
    current = {
        r["number"]: r["state"] != "closed"
        for r in await conn.fetch(
            "SELECT number, state::text AS state FROM counters WHERE hall_id = $1 AND active",
            rules.hall.id,
        )
    }
    changes: dict[int, list[tuple[datetime, bool]]] = {}
    for r in rows:
        changes.setdefault(r["counter_number"], []).append((r["at"], r["type"] == "counter.opened"))
    out: dict[int, int] = {}
    local_day = start.astimezone(rules.tz).date()
    for hour in range(24):
        at = datetime.combine(local_day, time(hour, 30), rules.tz)
        if at - timedelta(minutes=30) > now:
            break
        at = min(at, now)  # the hour under way: as it is now
        count = 0
        for number, is_open_now in current.items():
            timeline = changes.get(number)
            if not timeline:
                count += is_open_now
                continue
            state = not timeline[0][1]  # before its first change, the opposite of that change
            for when, opened in timeline:
                if when <= at:
                    state = opened
            count += state
        out[hour] = count
    return out


async def alarms(
    conn: asyncpg.Connection, rules: HallRules, now: datetime, data: dict[str, Any]
) -> list[Alarm]:
    """Every condition that holds now, oldest first, with its acknowledgement."""
    found: list[Alarm] = []
    waiting = {s["code"]: s for s in data["services"]}
    for s in data["services"]:
        if s["waiting"] and s["longest_wait_s"] > s["target_wait_s"]:
            found.append(
                Alarm(
                    f"wait:{s['code']}:{s['oldest_ticket']}",
                    "queue_wait",
                    "critical" if s["longest_wait_s"] > 2 * s["target_wait_s"] else "warning",
                    f"「{s['name']}」最长等待 {s['longest_wait_s'] / 60:.0f} 分钟，"
                    f"超过目标 {s['target_wait_s'] / 60:.0f} 分钟",
                    now - timedelta(seconds=s["longest_wait_s"]),
                )
            )
        if s["waiting"] > QUEUE_ALARM_LENGTH:
            found.append(
                Alarm(
                    f"length:{s['code']}:{data['day']}",
                    "queue_length",
                    "warning",
                    f"「{s['name']}」排队 {s['waiting']} 人，超过 {QUEUE_ALARM_LENGTH} 人",
                    None,
                )
            )
    # The counters slice's electronic supervision (电子监察), when installed, watches idle
    # counters itself: its open alarms replace the dashboard's own idle check.
    supervised = await conn.fetchval("SELECT to_regclass('supervision_alarms') IS NOT NULL")
    if supervised:
        rows = await conn.fetch(
            """SELECT id, counter_number, detail, raised_at FROM supervision_alarms
                WHERE hall_id = $1 AND cleared_at IS NULL ORDER BY raised_at""",
            rules.hall.id,
        )
        found.extend(
            Alarm(
                f"supervision:{r['id']}",
                "supervision",
                "warning",
                f"电子监察：{r['counter_number']}号窗口 {r['detail']}",
                r["raised_at"],
            )
            for r in rows
        )
    for c in data["counters"] if not supervised else []:
        since = datetime.fromisoformat(c["state_since"])
        queued = sum(waiting[code]["waiting"] for code in c["services"] if code in waiting)
        if c["state"] == "idle" and queued and (now - since).total_seconds() > IDLE_ALARM_S:
            found.append(
                Alarm(
                    f"idle:{c['number']}:{c['state_since']}",
                    "counter_idle",
                    "warning",
                    f"{c['name']}空闲 {(now - since).total_seconds() / 60:.0f} 分钟，"
                    f"但有 {queued} 人在等候",
                    since,
                )
            )
    for r in await conn.fetch(
        """SELECT bus, address, device_class, state::text AS state, state_since, counter_number
             FROM devices WHERE hall_id = $1 AND state IN ('offline', 'suspect')""",
        rules.hall.id,
    ):
        where = f"（{r['counter_number']}号窗口）" if r["counter_number"] else ""
        found.append(
            Alarm(
                f"device:{r['bus']}:{r['address']}:{r['state_since'].isoformat()}",
                "device_offline",
                "critical" if r["state"] == "offline" else "warning",
                f"设备 {r['bus']}/{r['address']}（{r['device_class']}）{where}"
                + ("离线" if r["state"] == "offline" else "通信异常"),
                r["state_since"],
            )
        )
    if await conn.fetchval("SELECT to_regclass('kiosk_printer_status') IS NOT NULL"):
        printers = await conn.fetch(
            """SELECT printer, kiosk, state, since FROM kiosk_printer_status
                WHERE hall_id = $1 AND state NOT IN ('ok', 'unknown')""",
            rules.hall.id,
        )
        found.extend(
            Alarm(
                f"printer:{r['printer']}:{r['since'].isoformat()}",
                "printer",
                "warning" if r["state"] == "near_end" else "critical",
                f"取号机 {r['kiosk']}：{PRINTER_LABELS.get(r['state'], r['state'])}",
                r["since"],
            )
            for r in printers
        )
    found.extend(await _slice_alarms(conn, rules.hall.id))
    acked = {
        r["key"]
        for r in await conn.fetch(
            "SELECT key FROM manager_alarm_acks WHERE hall_id = $1 AND key = ANY($2::text[])",
            rules.hall.id,
            [a.key for a in found],
        )
    }
    result = [Alarm(a.key, a.kind, a.severity, a.message, a.since, a.key in acked) for a in found]
    return sorted(result, key=lambda a: (a.acked, a.since or now))


async def _slice_alarms(conn: asyncpg.Connection, hall_id: str) -> list[Alarm]:
    views = await conn.fetch(
        r"""SELECT viewname FROM pg_views
             WHERE schemaname = current_schema() AND viewname LIKE 'alarms\_%'
             ORDER BY viewname"""
    )
    out: list[Alarm] = []
    for v in views:
        name = v["viewname"]
        if not name.replace("_", "").isalnum():
            continue
        try:
            rows = await conn.fetch(
                f'SELECT key, kind, severity, message, since FROM "{name}" '
                "WHERE hall_id = $1 ORDER BY since LIMIT 200",
                hall_id,
            )
        except asyncpg.PostgresError:
            continue  # a view of the wrong shape is that slice's bug, not the dashboard's
        out.extend(
            Alarm(
                str(r["key"])[:200],
                str(r["kind"]),
                "critical" if r["severity"] == "critical" else "warning",
                str(r["message"]),
                r["since"],
            )
            for r in rows
        )
    return out


async def acknowledge(
    conn: asyncpg.Connection, hall_id: str, key: str, actor: str, now: datetime
) -> None:
    await conn.execute(
        """INSERT INTO manager_alarm_acks (hall_id, key, acked_by, acked_at)
           VALUES ($1, $2, $3, $4) ON CONFLICT (hall_id, key) DO NOTHING""",
        hall_id,
        key,
        actor,
        now,
    )
