"""Reports for a period, computed in SQL from the tickets and the event log.

Every figure is per ticket of the period's business days, and a ticket is attributed:

- by **hall** and **day**: to its hall and business day;
- by **service**: to the service it was issued for (a transferred ticket keeps the service the
  citizen asked for: the first transfer's ``from_service``);
- by **counter** and **clerk**: to the counter of its closing event (finished, no-show,
  cancelled) and to the clerk who had opened that counter (the latest ``counter.opened``
  before it); its transfer, if any, to the counter (and clerk) that transferred it first.
  Tickets still waiting or parked at the end have no counter and appear only in the hall,
  day and service rows.

Figures: issued; served (finished), no-show, cancelled, transferred; wait (issue → first
call, every called ticket) and service time (start → finish, served tickets) as p50/p90/max
with linear interpolation (``percentile_cont``); service level: the share of served tickets
whose wait was within their service's ``target_wait_minutes``; ratings from the ``ratings``
table: rated, satisfied (level ≥ 3), 差评 (level ≤ 2) and 满意率 = satisfied / rated.

Case and 差评 figures (按时办结率, 现场办结率, 差评整改率 …) come from the evaluator's views: see
``case_figures``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields
from datetime import date, datetime, time, timedelta
from typing import Any

import asyncpg

from hall.domain.errors import InvalidInput
from hall.services.directory import HallRules
from manager.periods import Period


class Dimension(enum.StrEnum):
    HALL = "hall"
    DAY = "day"
    SERVICE = "service"
    COUNTER = "counter"
    CLERK = "clerk"


DIMENSION_LABELS = {
    Dimension.HALL: "大厅",
    Dimension.DAY: "日期",
    Dimension.SERVICE: "业务",
    Dimension.COUNTER: "窗口",
    Dimension.CLERK: "工作人员",
}


def parse_dimension(value: str | None) -> Dimension:
    if value is None or not value:
        return Dimension.SERVICE
    try:
        return Dimension(value)
    except ValueError:
        names = "、".join(f"{d.value}（{DIMENSION_LABELS[d]}）" for d in Dimension)
        raise InvalidInput(
            f"未知的统计维度「{value[:20]}」，可选：{names}", by=value[:20]
        ) from None


@dataclass(frozen=True, slots=True)
class ReportRow:
    key: str
    label: str
    issued: int | None
    """None by counter and clerk: a ticket is issued to a queue, not to a window."""
    served: int
    no_show: int
    cancelled: int
    transferred: int
    wait_p50_s: float | None
    wait_p90_s: float | None
    wait_max_s: float | None
    service_p50_s: float | None
    service_p90_s: float | None
    service_max_s: float | None
    service_level: float | None
    """Share (0-1) of served tickets called within their service's target wait."""
    rated: int
    satisfied: int
    bad: int
    satisfaction: float | None
    """满意率: satisfied / rated (levels ≥ 3 over rated), None when nothing was rated."""
    alarms: int | None
    """Supervision alarms (电子监察) raised in the period; None by service."""
    deducted: float | None
    """考核扣分: the points those alarms deducted under the hall's configured rules."""
    score: float | None
    """考核得分: ``SCORE_BASE`` minus ``deducted`` (not below 0)."""


ROW_FIELDS = [f.name for f in fields(ReportRow)]

COLUMN_LABELS = {
    "key": "编码",
    "label": "名称",
    "issued": "取号数",
    "served": "办结数",
    "no_show": "过号数",
    "cancelled": "取消数",
    "transferred": "转办数",
    "wait_p50_s": "等待中位数(秒)",
    "wait_p90_s": "等待P90(秒)",
    "wait_max_s": "最长等待(秒)",
    "service_p50_s": "办理中位数(秒)",
    "service_p90_s": "办理P90(秒)",
    "service_max_s": "最长办理(秒)",
    "service_level": "服务水平",
    "rated": "评价数",
    "satisfied": "满意数",
    "bad": "差评数",
    "satisfaction": "满意率",
    "alarms": "监察告警数",
    "deducted": "考核扣分",
    "score": "考核得分",
}


@dataclass(frozen=True, slots=True)
class Report:
    hall_id: str
    hall_name: str
    period: Period
    by: Dimension
    rows: list[ReportRow]
    total: ReportRow
    cases: dict[str, float | None] | None
    """Case and 差评 figures (``CASE_FIGURES``); None without the evaluator (``case_figures``)."""


# The per-ticket facts of the days not rolled up yet, worked out from the event log. $1 hall,
# $2/$3 an event time window that surely contains those days' events (it only narrows the
# scan), $4 the days. One scan of the window's closing and transfer events gives each ticket
# its last closing event and its first transfer.
_LIVE = """
live_t AS (
    SELECT id, service_code, state, business_day, issued_at, first_called_at,
           serve_started_at, finished_at
      FROM tickets
     WHERE hall_id = $1 AND business_day = ANY($4::date[])
), evs AS MATERIALIZED (
    SELECT e.ticket_id, e.id, e.type = 'ticket.transferred' AS is_transfer, e.counter_number,
           CASE WHEN e.type = 'ticket.transferred' THEN e.details ->> 'from_service' END
               AS from_service
      FROM events e
     WHERE e.hall_id = $1 AND e.at >= $2 AND e.at < $3
       AND e.type IN ('ticket.finished', 'ticket.no_show', 'ticket.cancelled',
                      'ticket.transferred')
), closing AS (
    SELECT DISTINCT ON (ticket_id) ticket_id, id, counter_number
      FROM evs WHERE NOT is_transfer ORDER BY ticket_id, id DESC
), transfer AS (
    SELECT DISTINCT ON (ticket_id) ticket_id, id, counter_number, from_service
      FROM evs WHERE is_transfer ORDER BY ticket_id, id
), live_facts AS (
    SELECT t.id,
           t.business_day,
           t.state,
           coalesce(tr.from_service, t.service_code) AS service,
           extract(epoch FROM t.first_called_at - t.issued_at)::float8 AS wait_s,
           CASE WHEN t.state = 'done'
                THEN extract(epoch FROM t.finished_at - t.serve_started_at)::float8 END
               AS service_s,
           c.counter_number AS counter,
           c.id AS close_id,
           tr.ticket_id IS NOT NULL AS transferred,
           tr.counter_number AS transfer_counter,
           tr.id AS transfer_id
      FROM live_t t
      LEFT JOIN closing c ON c.ticket_id = t.id
      LEFT JOIN transfer tr ON tr.ticket_id = t.id
){clerks}, live AS (
    SELECT f.id, f.business_day, f.state, f.service, f.wait_s, f.service_s, f.counter,
           {clerk} AS clerk, f.transferred, f.transfer_counter, {transfer_clerk} AS transfer_clerk
      FROM live_facts f{clerk_joins}
)"""

# The clerk who had opened the counter before the ticket's closing event (and before its
# transfer). The counters' openings and the tickets' events form one stream per counter in
# event order; each event takes the clerk of the last opening before it (a running count of
# openings numbers the stretches between them). Reports not by clerk skip it.
_CLERKS = """
, stream AS (
    SELECT o.counter_number AS counter, o.id, o.details ->> 'clerk' AS clerk
      FROM events o
     WHERE o.hall_id = $1 AND o.type = 'counter.opened' AND o.at < $3
    UNION ALL
    SELECT counter, close_id, NULL FROM live_facts WHERE counter IS NOT NULL
    UNION ALL
    SELECT transfer_counter, transfer_id, NULL FROM live_facts
     WHERE transfer_counter IS NOT NULL
), stretches AS (
    SELECT counter, id, clerk,
           count(clerk) OVER (PARTITION BY counter ORDER BY id) AS stretch
      FROM stream
), clerk_at AS (
    SELECT counter, id, first_value(clerk) OVER (PARTITION BY counter, stretch ORDER BY id)
               AS clerk
      FROM stretches
)"""
_CLERK_JOINS = """
      LEFT JOIN clerk_at c1 ON c1.counter = f.counter AND c1.id = f.close_id
      LEFT JOIN clerk_at c2 ON c2.counter = f.transfer_counter AND c2.id = f.transfer_id"""


def _live(clerks: bool) -> str:
    return (
        _LIVE.replace("{clerks}", _CLERKS if clerks else "")
        .replace("{clerk}", "c1.clerk" if clerks else "NULL::text")
        .replace("{transfer_clerk}", "c2.clerk" if clerks else "NULL::text")
        .replace("{clerk_joins}", _CLERK_JOINS if clerks else "")
    )


# Every report groups the facts of the period's tickets: the rolled-up days' rows from
# ``manager_ticket_facts`` and the other days' from the event log ($1-$4 as in ``_LIVE``),
# with the ratings and the target waits as they are now. $5/$6 first/last business day,
# $7/$8 service codes and their target waits in seconds.
_FACTS = """
WITH {live}, facts AS (
    SELECT ticket_id AS id, business_day, state, service, wait_s, service_s, counter, clerk,
           transferred, transfer_counter, transfer_clerk
      FROM manager_ticket_facts
     WHERE hall_id = $1 AND business_day BETWEEN $5 AND $6
    UNION ALL
    SELECT * FROM live
), target AS (
    SELECT * FROM unnest($7::text[], $8::float8[]) AS g (code, wait_s)
), judged AS (
    SELECT f.*, r.level, f.state = 'done' AND f.wait_s <= coalesce(g.wait_s, 1200) AS in_target
      FROM facts f
      LEFT JOIN ratings r ON r.ticket_id = f.id
      LEFT JOIN target g ON g.code = f.service
)
"""

_FIGURES = """
    count(*)::int AS issued,
    count(*) FILTER (WHERE state = 'done')::int AS served,
    count(*) FILTER (WHERE state = 'no_show')::int AS no_show,
    count(*) FILTER (WHERE state = 'cancelled')::int AS cancelled,
    count(*) FILTER (WHERE transferred)::int AS transferred,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY wait_s) AS wait_p50_s,
    percentile_cont(0.9) WITHIN GROUP (ORDER BY wait_s) AS wait_p90_s,
    max(wait_s) AS wait_max_s,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY service_s) AS service_p50_s,
    percentile_cont(0.9) WITHIN GROUP (ORDER BY service_s) AS service_p90_s,
    max(service_s) AS service_max_s,
    count(*) FILTER (WHERE in_target)::float8
        / nullif(count(*) FILTER (WHERE state = 'done'), 0) AS service_level,
    count(level)::int AS rated,
    count(*) FILTER (WHERE level >= 3)::int AS satisfied,
    count(*) FILTER (WHERE level <= 2)::int AS bad
"""

# Grouping key of the closing attribution and of the transfer attribution, per dimension.
_KEYS: dict[Dimension, tuple[str, str]] = {
    Dimension.HALL: ("$1::text", "$1::text"),
    Dimension.DAY: ("business_day::text", "business_day::text"),
    Dimension.SERVICE: ("service", "service"),
    Dimension.COUNTER: ("counter::text", "transfer_counter::text"),
    Dimension.CLERK: ("coalesce(clerk, '?')", "coalesce(transfer_clerk, '?')"),
}


def _query(by: Dimension) -> str:
    """One statement: a row per key (``is_total`` false) and the hall's total (true)."""
    key, transfer_key = _KEYS[by]
    facts = _FACTS.replace("{live}", _live(by is Dimension.CLERK))
    grouped = f"""{facts}
, grouped AS (
    SELECT CASE WHEN counter IS NULL THEN NULL ELSE {key} END AS key,
           GROUPING(CASE WHEN counter IS NULL THEN NULL ELSE {key} END) = 1 AS is_total,
           {_FIGURES}
      FROM judged
     GROUP BY GROUPING SETS ((CASE WHEN counter IS NULL THEN NULL ELSE {key} END), ())
)"""
    if by not in (Dimension.COUNTER, Dimension.CLERK):
        grouped = grouped.replace("CASE WHEN counter IS NULL THEN NULL ELSE " + key + " END", key)
        return f"""{grouped}
SELECT * FROM grouped ORDER BY is_total, key"""
    # Per counter or clerk: rows of tickets closed there (issued is not theirs to count),
    # transfers counted where they were made; the total is the whole hall's.
    return f"""{grouped}
, moved AS (
    SELECT {transfer_key} AS key, count(*)::int AS n
      FROM judged WHERE transferred AND transfer_counter IS NOT NULL GROUP BY 1
), per_key AS (
    SELECT coalesce(g.key, m.key) AS key, false AS is_total, NULL::int AS issued,
           coalesce(g.served, 0) AS served, coalesce(g.no_show, 0) AS no_show,
           coalesce(g.cancelled, 0) AS cancelled, coalesce(m.n, 0) AS transferred,
           g.wait_p50_s, g.wait_p90_s, g.wait_max_s, g.service_p50_s, g.service_p90_s,
           g.service_max_s, g.service_level, coalesce(g.rated, 0) AS rated,
           coalesce(g.satisfied, 0) AS satisfied, coalesce(g.bad, 0) AS bad
      FROM (SELECT * FROM grouped WHERE NOT is_total AND key IS NOT NULL) g
      FULL JOIN moved m ON m.key = g.key
)
SELECT * FROM per_key
UNION ALL
SELECT key, is_total, issued, served, no_show, cancelled, transferred, wait_p50_s, wait_p90_s,
       wait_max_s, service_p50_s, service_p90_s, service_max_s, service_level, rated,
       satisfied, bad
  FROM grouped WHERE is_total
ORDER BY is_total, key"""


def event_window(rules: HallRules, first: date, last: date) -> tuple[datetime, datetime]:
    """A time range that contains every event of the tickets of ``first``..``last``: from the
    first day's midnight (local, before its boundary) to two days after the last one."""
    start = datetime.combine(first, time(0), rules.tz)
    end = datetime.combine(last + timedelta(days=2), time(0), rules.tz)
    return start, end


def _live_args(rules: HallRules, days: list[date]) -> tuple[Any, ...]:
    if not days:  # an empty window: the event scan finds nothing
        start = datetime.combine(date(2000, 1, 1), time(0), rules.tz)
        return rules.hall.id, start, start, days
    start, end = event_window(rules, min(days), max(days))
    return rules.hall.id, start, end, days


def day_window(rules: HallRules, days: list[date]) -> tuple[datetime, datetime]:
    """Local midnight before the first of ``days`` to the one after the last (empty if none)."""
    if not days:
        start = datetime.combine(date(2000, 1, 1), time(0), rules.tz)
        return start, start
    start = datetime.combine(min(days), time(0), rules.tz)
    return start, datetime.combine(max(days) + timedelta(days=1), time(0), rules.tz)


async def live_days(conn: asyncpg.Connection, rules: HallRules, period: Period) -> list[date]:
    """The period's days not rolled up (worked out from the event log)."""
    rolled = {
        r["business_day"]
        for r in await conn.fetch(
            "SELECT business_day FROM manager_rolled_days"
            " WHERE hall_id = $1 AND business_day BETWEEN $2 AND $3",
            rules.hall.id,
            period.first,
            period.last,
        )
    }
    return [d for d in period.each_day() if d not in rolled]


def _targets(rules: HallRules) -> tuple[list[str], list[float]]:
    services = rules.hall.services
    return [s.code for s in services], [s.target_wait_minutes * 60.0 for s in services]


# Staffing's counters working per service and local hour of each rolled day: what
# ``manager.staffing`` works out from the ``ticket.called`` events of the days not rolled.
_ROLL_CALLED_HOURS = """
INSERT INTO manager_called_hours (hall_id, business_day, service, hour, counters)
SELECT $1, (e.at AT TIME ZONE $4)::date, e.details ->> 'service_code',
       extract(hour FROM e.at AT TIME ZONE $4)::int,
       count(DISTINCT (date_trunc('hour', e.at AT TIME ZONE $4), e.counter_number))::int
  FROM events e
 WHERE e.hall_id = $1 AND e.at >= $2 AND e.at < $3 AND e.type = 'ticket.called'
   AND (e.at AT TIME ZONE $4)::date = ANY($5::date[])
   AND e.details ->> 'service_code' IS NOT NULL
 GROUP BY 2, 3, 4"""

ROLL_AFTER_DAYS = 2
"""A business day is rolled up once this many days have passed (its events are all in)."""
_CLOSED = ("done", "no_show", "cancelled")


async def roll_up(conn: asyncpg.Connection, rules: HallRules, today: date, days: list[date]) -> int:
    """Roll up those of ``days`` that are old enough and whose tickets are all closed; return
    how many days were rolled. Safe to run from several processes at once (one per hall at a
    time; a day rolled meanwhile is skipped)."""
    cutoff = today - timedelta(days=ROLL_AFTER_DAYS)
    wanted = sorted(d for d in set(days) if d <= cutoff)
    if not wanted:
        return 0
    hall_id = rules.hall.id
    rolled = 0
    async with conn.transaction():
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext('manager-roll-up:' || $1))", hall_id
        )
        done = {
            r["business_day"]
            for r in await conn.fetch(
                "SELECT business_day FROM manager_rolled_days"
                " WHERE hall_id = $1 AND business_day = ANY($2::date[])",
                hall_id,
                wanted,
            )
        }
        todo = [d for d in wanted if d not in done]
        if not todo:
            return 0
        ready = await conn.fetch(
            """SELECT business_day, count(*)::int AS tickets FROM tickets
                WHERE hall_id = $1 AND business_day = ANY($2::date[])
                GROUP BY 1 HAVING bool_and(state::text = ANY($3::text[]))""",
            hall_id,
            todo,
            list(_CLOSED),
        )
        if not ready:
            return 0
        ready_days = [r["business_day"] for r in ready]
        await conn.executemany(
            "INSERT INTO manager_rolled_days (hall_id, business_day, tickets, rolled_at)"
            " VALUES ($1, $2, $3, now())",
            [(hall_id, r["business_day"], r["tickets"]) for r in ready],
        )
        await conn.execute(
            f"""WITH {_live(True)}
                INSERT INTO manager_ticket_facts
                    (ticket_id, hall_id, business_day, state, service, wait_s, service_s,
                     counter, clerk, transferred, transfer_counter, transfer_clerk)
                SELECT id, $1, business_day, state, service, wait_s, service_s, counter, clerk,
                       transferred, transfer_counter, transfer_clerk
                  FROM live""",
            *_live_args(rules, ready_days),
        )
        start, end = day_window(rules, ready_days)
        await conn.execute(_ROLL_CALLED_HOURS, hall_id, start, end, rules.hall.timezone, ready_days)
        rolled = len(ready_days)
    return rolled


async def build_report(
    conn: asyncpg.Connection,
    rules: HallRules,
    period: Period,
    by: Dimension,
    names: dict[str, str] | None = None,
) -> Report:
    """The report of one hall for a period, one row per key of ``by`` plus the total.

    Rolled-up days are read from ``manager_ticket_facts``; the others are worked out from the
    event log (call ``roll_up`` first to roll what can be)."""
    codes, waits = _targets(rules)
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        # The work pool plans generically (hall.storage.db); a report's best plan depends on
        # its period, so plan it for the values at hand.
        await conn.execute("SET LOCAL plan_cache_mode = auto")
        live = await live_days(conn, rules, period)
        args = (*_live_args(rules, live), period.first, period.last, codes, waits)
        found = await conn.fetch(_query(by), *args)
        cases = await case_figures(conn, rules, period)
        points = await _deductions(conn, rules, period)
    rows = [r for r in found if not r["is_total"]]
    [total] = [r for r in found if r["is_total"]]
    labels = _labels(rules, by, names or {})
    out = [_row(r, labels.get(r["key"], r["key"]), points.get(by, str(r["key"]))) for r in rows]
    if by is Dimension.COUNTER:  # window 2 before window 10
        out.sort(key=lambda row: (len(row.key), row.key))
    return Report(
        hall_id=rules.hall.id,
        hall_name=rules.hall.name,
        period=period,
        by=by,
        rows=out,
        total=_row(total, "合计", points.total(), rules.hall.id),
        cases=cases,
    )


SCORE_BASE = 100.0
"""考核得分 = this base minus the points the supervision alarms of the period deducted."""


@dataclass(frozen=True, slots=True)
class Deduction:
    alarms: int
    points: float


@dataclass(frozen=True, slots=True)
class _Deductions:
    hall_id: str
    rows: list[tuple[date, int, str | None, float]]
    """(business day, counter, clerk, points) of every supervision alarm of the period."""

    def get(self, by: Dimension, key: str) -> Deduction | None:
        if by is Dimension.SERVICE:
            return None  # an alarm is a counter's, not a service's
        hits = [points for day, counter, clerk, points in self.rows
                if _alarm_key(by, self.hall_id, day, counter, clerk) == key]  # fmt: skip
        return Deduction(len(hits), sum(hits))

    def total(self) -> Deduction:
        return Deduction(len(self.rows), sum(p for *_, p in self.rows))


def _alarm_key(by: Dimension, hall_id: str, day: date, counter: int, clerk: str | None) -> str:
    if by is Dimension.HALL:
        return hall_id
    if by is Dimension.DAY:
        return day.isoformat()
    if by is Dimension.COUNTER:
        return str(counter)
    return clerk or "?"


async def _deductions(conn: asyncpg.Connection, rules: HallRules, period: Period) -> _Deductions:
    """The supervision alarms raised in the period, from the events the counters slice records
    (``supervision.alarm``: counter, clerk and the points its configured rules deduct)."""
    start = datetime.combine(period.first, rules.hall.day_boundary, rules.tz)
    end = datetime.combine(period.last + timedelta(days=1), rules.hall.day_boundary, rules.tz)
    found = await conn.fetch(
        """SELECT at, counter_number, details ->> 'clerk' AS clerk,
                  coalesce((details ->> 'points')::float8, 0) AS points
             FROM events
            WHERE hall_id = $1 AND type = 'supervision.alarm' AND at >= $2 AND at < $3""",
        rules.hall.id,
        start,
        end,
    )
    boundary = timedelta(hours=rules.hall.day_boundary.hour, minutes=rules.hall.day_boundary.minute)
    return _Deductions(
        rules.hall.id,
        [
            ((r["at"].astimezone(rules.tz) - boundary).date(), r["counter_number"], r["clerk"],
             float(r["points"]))
            for r in found
        ],
    )  # fmt: skip


def _labels(rules: HallRules, by: Dimension, names: dict[str, str]) -> dict[str, str]:
    if by is Dimension.HALL:
        return {rules.hall.id: rules.hall.name}
    if by is Dimension.SERVICE:
        return {s.code: s.name for s in rules.hall.services}
    if by is Dimension.COUNTER:
        return {str(c.number): c.display_name for c in rules.hall.counters}
    if by is Dimension.CLERK:
        return {**names, "?": "（未登记）"}
    return {}


def _row(
    r: asyncpg.Record, label: str, deduction: Deduction | None, key: str | None = None
) -> ReportRow:
    rated = int(r["rated"])
    satisfied = int(r["satisfied"])
    return ReportRow(
        key=key if key is not None else str(r["key"]),
        label=label,
        issued=r["issued"],
        served=r["served"],
        no_show=r["no_show"],
        cancelled=r["cancelled"],
        transferred=r["transferred"],
        wait_p50_s=r["wait_p50_s"],
        wait_p90_s=r["wait_p90_s"],
        wait_max_s=r["wait_max_s"],
        service_p50_s=r["service_p50_s"],
        service_p90_s=r["service_p90_s"],
        service_max_s=r["service_max_s"],
        service_level=r["service_level"],
        rated=rated,
        satisfied=satisfied,
        bad=int(r["bad"]),
        satisfaction=satisfied / rated if rated else None,
        alarms=deduction.alarms if deduction else None,
        deducted=deduction.points if deduction else None,
        score=max(0.0, SCORE_BASE - deduction.points) if deduction else None,
    )


CASE_FIGURES: tuple[tuple[str, str], ...] = (
    ("on_time_rate", "按时办结率"),
    ("on_the_spot_rate", "现场办结率"),
    ("bad_ratings", "差评数"),
    ("rectified_rate", "差评整改率"),
    ("return_visit_rate", "差评回访率"),
    ("closed_on_time_rate", "差评按时办结率"),
)
"""The case and 差评 figures of a report, in the order pages and exports show them."""


async def case_figures(
    conn: asyncpg.Connection, rules: HallRules, period: Period
) -> dict[str, float | None] | None:
    """按时办结率 and 现场办结率 from the evaluator's cases, and the 差评 follow-up figures.

    They come from views the evaluator owns (``evaluator_case_facts``: hall_id,
    business_day, completed, on_time, on_the_spot; ``evaluator_bad_rating_facts``: hall_id,
    business_day, rectified, return_visited, closed_on_time, appeal_upheld), so manager/
    does not depend on the evaluator's tables. None when neither view exists (the evaluator
    is not installed): pages then show "—（待办件数据）". 按时办结率 is over completed cases
    (domain.md §2.4); a 差评 whose appeal was upheld leaves the statistics.
    """
    cases, bad = await conn.fetchrow(
        "SELECT to_regclass('evaluator_case_facts') IS NOT NULL,"
        " to_regclass('evaluator_bad_rating_facts') IS NOT NULL"
    ) or (False, False)
    if not cases and not bad:
        return None
    out: dict[str, float | None] = {}
    if cases:
        row = await conn.fetchrow(
            """SELECT (count(*) FILTER (WHERE on_time))::float8
                          / nullif(count(*) FILTER (WHERE completed), 0) AS on_time,
                      avg(on_the_spot::int)::float8 AS spot
                 FROM evaluator_case_facts
                WHERE hall_id = $1 AND business_day BETWEEN $2 AND $3""",
            rules.hall.id,
            period.first,
            period.last,
        )
        assert row is not None
        out.update(on_time_rate=row["on_time"], on_the_spot_rate=row["spot"])
    if bad:
        row = await conn.fetchrow(
            """SELECT count(*)::float8 AS n, avg(rectified::int)::float8 AS rectified,
                      avg(return_visited::int)::float8 AS visited,
                      avg(closed_on_time::int)::float8 AS on_time
                 FROM evaluator_bad_rating_facts
                WHERE hall_id = $1 AND business_day BETWEEN $2 AND $3 AND NOT appeal_upheld""",
            rules.hall.id,
            period.first,
            period.last,
        )
        assert row is not None
        out.update(
            bad_ratings=row["n"],
            rectified_rate=row["rectified"],
            return_visit_rate=row["visited"],
            closed_on_time_rate=row["on_time"],
        )
    return out


async def staff_names(conn: asyncpg.Connection) -> dict[str, str]:
    return {r["job_no"]: r["name"] for r in await conn.fetch("SELECT job_no, name FROM staff")}


def day_list(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]
