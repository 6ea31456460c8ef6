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

Case figures (按时办结率, 现场办结率) need the evaluator's cases table: see ``case_figures``.
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
    """按时办结率 / 现场办结率 when a cases table exists (hook, see ``case_figures``)."""


# The per-ticket facts every report groups. $1 hall, $2/$3 first/last business day, $4/$5 an
# event time window that surely contains the period's events (it only narrows the scan),
# $6/$7 service codes and their target waits in seconds. One scan of the window's closing
# and transfer events gives each ticket its last closing event and its first transfer.
_FACTS = """
WITH t AS (
    SELECT id, service_code, state, business_day, issued_at, first_called_at,
           serve_started_at, finished_at
      FROM tickets
     WHERE hall_id = $1 AND business_day BETWEEN $2 AND $3
), evs AS MATERIALIZED (
    SELECT e.ticket_id, e.id, e.type = 'ticket.transferred' AS is_transfer, e.counter_number,
           CASE WHEN e.type = 'ticket.transferred' THEN e.details ->> 'from_service' END
               AS from_service
      FROM events e
     WHERE e.hall_id = $1 AND e.at >= $4 AND e.at < $5
       AND e.type IN ('ticket.finished', 'ticket.no_show', 'ticket.cancelled',
                      'ticket.transferred')
), closing AS (
    SELECT DISTINCT ON (ticket_id) ticket_id, id, counter_number
      FROM evs WHERE NOT is_transfer ORDER BY ticket_id, id DESC
), transfer AS (
    SELECT DISTINCT ON (ticket_id) ticket_id, id, counter_number, from_service
      FROM evs WHERE is_transfer ORDER BY ticket_id, id
), target AS (
    SELECT * FROM unnest($6::text[], $7::float8[]) AS g (code, wait_s)
), facts AS (
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
           tr.id AS transfer_id,
           r.level
      FROM t
      LEFT JOIN closing c ON c.ticket_id = t.id
      LEFT JOIN transfer tr ON tr.ticket_id = t.id
      LEFT JOIN ratings r ON r.ticket_id = t.id
){clerks}, judged AS (
    SELECT f.*, f.state = 'done' AND f.wait_s <= coalesce(g.wait_s, 1200) AS in_target
           {clerk_columns}
      FROM facts f LEFT JOIN target g ON g.code = f.service{clerk_joins}
)
"""

# Only the clerk report looks the clerks up: the clerk who had opened the counter before the
# ticket's closing event (and before its transfer). The counters' openings and the tickets'
# events form one stream per counter in event order; each event takes the clerk of the last
# opening before it (a running count of openings numbers the stretches between them).
_CLERKS = """
, stream AS (
    SELECT o.counter_number AS counter, o.id, o.details ->> 'clerk' AS clerk
      FROM events o
     WHERE o.hall_id = $1 AND o.type = 'counter.opened' AND o.at < $5
    UNION ALL
    SELECT counter, close_id, NULL FROM facts WHERE counter IS NOT NULL
    UNION ALL
    SELECT transfer_counter, transfer_id, NULL FROM facts WHERE transfer_counter IS NOT NULL
), stretches AS (
    SELECT counter, id, clerk,
           count(clerk) OVER (PARTITION BY counter ORDER BY id) AS stretch
      FROM stream
), clerk_at AS (
    SELECT counter, id, first_value(clerk) OVER (PARTITION BY counter, stretch ORDER BY id)
               AS clerk
      FROM stretches
)"""
_CLERK_COLUMNS = ", c1.clerk AS clerk, c2.clerk AS transfer_clerk"
_CLERK_JOINS = """
      LEFT JOIN clerk_at c1 ON c1.counter = f.counter AND c1.id = f.close_id
      LEFT JOIN clerk_at c2 ON c2.counter = f.transfer_counter AND c2.id = f.transfer_id"""

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
    clerks = by is Dimension.CLERK
    facts = (
        _FACTS.replace("{clerks}", _CLERKS if clerks else "")
        .replace("{clerk_columns}", _CLERK_COLUMNS if clerks else "")
        .replace("{clerk_joins}", _CLERK_JOINS if clerks else "")
    )
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


def event_window(rules: HallRules, period: Period) -> tuple[datetime, datetime]:
    """A time range that contains every event of the period's tickets: from the first day's
    midnight (local, before its boundary) to two days after the last one (late closes)."""
    start = datetime.combine(period.first, time(0), rules.tz)
    end = datetime.combine(period.last + timedelta(days=2), time(0), rules.tz)
    return start, end


def _targets(rules: HallRules) -> tuple[list[str], list[float]]:
    services = rules.hall.services
    return [s.code for s in services], [s.target_wait_minutes * 60.0 for s in services]


async def build_report(
    conn: asyncpg.Connection,
    rules: HallRules,
    period: Period,
    by: Dimension,
    names: dict[str, str] | None = None,
) -> Report:
    """The report of one hall for a period, one row per key of ``by`` plus the total."""
    start, end = event_window(rules, period)
    codes, waits = _targets(rules)
    args: tuple[Any, ...] = (rules.hall.id, period.first, period.last, start, end, codes, waits)
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        # The work pool plans generically (hall.storage.db); a report's best plan depends on
        # its period, so plan it for the values at hand.
        await conn.execute("SET LOCAL plan_cache_mode = auto")
        found = await conn.fetch(_query(by), *args)
        cases = await case_figures(conn, rules, period)
    rows = [r for r in found if not r["is_total"]]
    [total] = [r for r in found if r["is_total"]]
    labels = _labels(rules, by, names or {})
    out = [_row(r, labels.get(r["key"], r["key"])) for r in rows]
    if by is Dimension.COUNTER:  # window 2 before window 10
        out.sort(key=lambda row: (len(row.key), row.key))
    return Report(
        hall_id=rules.hall.id,
        hall_name=rules.hall.name,
        period=period,
        by=by,
        rows=out,
        total=_row(total, "合计", rules.hall.id),
        cases=cases,
    )


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


def _row(r: asyncpg.Record, label: str, key: str | None = None) -> ReportRow:
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
    )


async def case_figures(
    conn: asyncpg.Connection, rules: HallRules, period: Period
) -> dict[str, float | None] | None:
    """HOOK (issue 15 / evaluator): 按时办结率 and 现场办结率 from the evaluator's cases.

    The cases table does not exist yet on this branch. Once evaluator/ ships it, this reads
    a view the evaluator owns (``evaluator_case_facts``: hall_id, business_day, on_time
    boolean, on_the_spot boolean) so manager/ does not depend on the evaluator's tables.
    Until that view exists it returns None and pages show "—（待办件数据）".
    """
    found = await conn.fetchval("SELECT to_regclass('evaluator_case_facts') IS NOT NULL")
    if not found:
        return None
    row = await conn.fetchrow(
        """SELECT avg(on_time::int)::float8 AS on_time, avg(on_the_spot::int)::float8 AS spot
             FROM evaluator_case_facts
            WHERE hall_id = $1 AND business_day BETWEEN $2 AND $3""",
        rules.hall.id,
        period.first,
        period.last,
    )
    assert row is not None
    return {"on_time_rate": row["on_time"], "on_the_spot_rate": row["spot"]}


async def staff_names(conn: asyncpg.Connection) -> dict[str, str]:
    return {r["job_no"]: r["name"] for r in await conn.fetch("SELECT job_no, name FROM staff")}


def day_list(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]
