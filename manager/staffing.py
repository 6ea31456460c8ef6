"""Staffing advice: counters needed per service and hour (Erlang C) next to those working.

Observed over a period, per service and local hour of day:
- arrivals per hour: tickets issued in that hour, averaged over the period's days that had
  tickets of the hall (closed days do not dilute the rate);
- mean service time: of the service's tickets finished in the period (the config's
  ``default_service_minutes`` when none was);
- counters working: distinct counters that called a ticket of the service in that hour,
  averaged over the same days (a counter serving several services counts for each).
The advice is the fewest counters that call ``goal`` (default 80 %) of citizens within the
service's ``target_wait_minutes``.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from hall.services.directory import HallRules
from manager.erlang import counters_needed
from manager.periods import Period
from manager.reports import day_window, live_days

_OBSERVED = """
WITH t AS (
    SELECT id, service_code, business_day, issued_at, serve_started_at, finished_at, state
      FROM tickets WHERE hall_id = $1 AND business_day BETWEEN $2 AND $3
), days AS (
    SELECT count(DISTINCT business_day)::int AS n FROM t
), arrivals AS (
    SELECT service_code, extract(hour FROM issued_at AT TIME ZONE $6)::int AS hour,
           count(*)::int AS n
      FROM t GROUP BY 1, 2
), service AS (
    SELECT service_code, avg(extract(epoch FROM finished_at - serve_started_at))::float8 AS s
      FROM t WHERE state = 'done' GROUP BY 1
), working AS (
    SELECT service_code, hour, sum(n)::int AS n
      FROM (SELECT service AS service_code, hour::int AS hour, counters AS n
              FROM manager_called_hours
             WHERE hall_id = $1 AND business_day BETWEEN $2 AND $3
            UNION ALL
            SELECT service_code, hour, n FROM ({called}) live) both_parts
     GROUP BY 1, 2
)
SELECT coalesce(a.service_code, w.service_code) AS service_code,
       coalesce(a.hour, w.hour) AS hour,
       coalesce(a.n, 0) AS arrivals, coalesce(w.n, 0) AS working,
       s.s AS service_s, (SELECT n FROM days) AS days
  FROM arrivals a
  FULL JOIN working w ON w.service_code = a.service_code AND w.hour = a.hour
  LEFT JOIN service s ON s.service_code = coalesce(a.service_code, w.service_code)
 ORDER BY 1, 2
"""

# Counters that called a ticket of each service, per local hour, over the local calendar days
# $7 (between $4 and $5): what ``manager_called_hours`` keeps for rolled days.
CALLED_HOURS = """
    SELECT e.details ->> 'service_code' AS service_code,
           extract(hour FROM e.at AT TIME ZONE $6)::int AS hour,
           count(DISTINCT (date_trunc('hour', e.at AT TIME ZONE $6), e.counter_number))::int
               AS n
      FROM events e
     WHERE e.hall_id = $1 AND e.at >= $4 AND e.at < $5 AND e.type = 'ticket.called'
       AND (e.at AT TIME ZONE $6)::date = ANY($7::date[])
     GROUP BY 1, 2"""


@dataclass(frozen=True, slots=True)
class StaffingRow:
    service: str
    service_name: str
    hour: int
    arrivals_per_hour: float
    service_s: float
    target_wait_s: float
    needed: int
    counters_working: float
    predicted_level: float
    """Share called within the target with ``needed`` counters (Erlang C)."""


async def staffing(
    conn: asyncpg.Connection, rules: HallRules, period: Period, goal: float = 0.8
) -> list[StaffingRow]:
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        await conn.execute("SET LOCAL plan_cache_mode = auto")  # see reports.build_report
        live = await live_days(conn, rules, period)
        start, end = day_window(rules, live)
        rows = await conn.fetch(
            _OBSERVED.replace("{called}", CALLED_HOURS),
            rules.hall.id, period.first, period.last, start, end, rules.hall.timezone, live,
        )  # fmt: skip
    services = {s.code: s for s in rules.hall.services}
    out: list[StaffingRow] = []
    for r in rows:
        svc = services.get(r["service_code"])
        if svc is None or not r["days"]:
            continue
        days = int(r["days"])
        service_s = r["service_s"] or svc.default_service_minutes * 60.0
        rate = r["arrivals"] / days
        target = svc.target_wait_minutes * 60.0
        advice = counters_needed(rate, service_s, target, goal)
        out.append(
            StaffingRow(
                service=svc.code,
                service_name=svc.name,
                hour=int(r["hour"]),
                arrivals_per_hour=rate,
                service_s=service_s,
                target_wait_s=target,
                needed=advice.counters,
                counters_working=r["working"] / days,
                predicted_level=advice.service_level,
            )
        )
    return out
