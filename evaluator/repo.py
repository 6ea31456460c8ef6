"""SQL of the evaluator slice: cases, pad sessions, ratings, 差评 tasks, alarms, outbox."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeAlias

import asyncpg

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool

# --- pad sessions ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PadSession:
    id: int
    hall_id: str
    counter: int
    ticket_id: int
    ticket_number: str
    service_code: str
    clerk: str | None
    finished_at: datetime | None
    """When the ticket was finished at this counter (rating requested); None while open."""
    rated: bool


_SESSION_COLUMNS = """s.id, s.hall_id, s.counter_number AS counter, s.ticket_id,
       t.display_number AS ticket_number, t.service_code, s.clerk,
       (SELECT e.at FROM events e WHERE e.ticket_id = s.ticket_id
          AND e.type = 'ticket.finished' AND e.counter_number = s.counter_number
        ORDER BY e.id DESC LIMIT 1) AS finished_at,
       EXISTS (SELECT 1 FROM ratings r WHERE r.session_id = s.id) AS rated"""


async def session(conn: Conn, hall_id: str, session_id: int) -> PadSession | None:
    r = await conn.fetchrow(
        f"""SELECT {_SESSION_COLUMNS} FROM pad_sessions s JOIN tickets t ON t.id = s.ticket_id
            WHERE s.id = $1 AND s.hall_id = $2""",
        session_id,
        hall_id,
    )
    return PadSession(**dict(r)) if r else None


async def latest_sessions(conn: Conn, hall_id: str) -> dict[int, list[PadSession]]:
    """Each counter's two newest pad sessions, newest first (``evaluator.pad.shown_session``
    picks the one its pad shows)."""
    rows = await conn.fetch(
        f"""SELECT {_SESSION_COLUMNS} FROM counters c
            JOIN LATERAL (SELECT p.id, p.n FROM pad_sessions p
                          WHERE p.hall_id = c.hall_id AND p.counter_number = c.number
                          ORDER BY p.n DESC LIMIT 2) last ON true
            JOIN pad_sessions s ON s.id = last.id
            JOIN tickets t ON t.id = s.ticket_id
            WHERE c.hall_id = $1
            ORDER BY c.number, last.n DESC""",
        hall_id,
    )
    out: dict[int, list[PadSession]] = {}
    for r in rows:
        found = PadSession(**dict(r))
        out.setdefault(found.counter, []).append(found)
    return out


# --- cases -----------------------------------------------------------------------------------

CASE_BASE = """c.id, c.hall_id, c.number, c.source, c.matter_code, c.matter_impl_code,
    c.matter_name, c.case_type, c.promised_days, c.accepted_on, c.due_on, c.status,
    c.ticket_id, c.ticket_number, c.counter_number, c.clerk, c.service_code,
    c.applicant_name, c.applicant_phone, c.rating_token, c.created_at, c.updated_at"""
CASE_COLUMNS = f"""{CASE_BASE},
    (SELECT r.id FROM ratings r WHERE r.case_id = c.id
       OR (r.case_id IS NULL AND r.ticket_id = c.ticket_id AND c.ticket_id IS NOT NULL
           AND r.channel IN ('pad', 'web_pad'))
     ORDER BY r.id LIMIT 1) AS rating_id"""


async def insert_case(conn: asyncpg.Connection, values: dict[str, Any]) -> asyncpg.Record:
    """Insert a case (number generated when ``number`` is None) and its first status."""
    row = await conn.fetchrow(
        f"""WITH n AS (SELECT nextval('cases_id_seq') AS id),
        c AS (
          INSERT INTO cases (id, hall_id, number, source, matter_code, matter_impl_code,
            matter_name, case_type, promised_days, accepted_on, due_on, status, ticket_id,
            ticket_number, counter_number, clerk, service_code, applicant_name,
            applicant_phone, applicant_key, rating_token, created_at, updated_at)
          SELECT n.id, $1,
            coalesce($2, 'L' || to_char($9::date, 'YYYYMMDD') || lpad(n.id::text, 6, '0')),
            $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,
            $21, $21
          FROM n RETURNING *),
        e AS (
          INSERT INTO case_events (case_id, hall_id, from_status, to_status, at, actor)
          SELECT c.id, c.hall_id, NULL, c.status, c.created_at, $22 FROM c)
        SELECT {CASE_BASE}, NULL::bigint AS rating_id
        FROM c""",
        values["hall_id"],
        values["number"],
        values["source"],
        values["matter_code"],
        values["matter_impl_code"],
        values["matter_name"],
        values["case_type"],
        values["promised_days"],
        values["accepted_on"],
        values["due_on"],
        values["status"],
        values["ticket_id"],
        values["ticket_number"],
        values["counter_number"],
        values["clerk"],
        values["service_code"],
        values["applicant_name"],
        values["applicant_phone"],
        values["applicant_key"],
        values["rating_token"],
        values["now"],
        values["actor"],
    )
    assert row is not None
    return row


async def case_by_id(conn: Conn, hall_id: str, case_id: int) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        f"SELECT {CASE_COLUMNS} FROM cases c WHERE c.hall_id = $1 AND c.id = $2", hall_id, case_id
    )
    return row


async def case_by_token(conn: Conn, token: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        f"SELECT {CASE_COLUMNS} FROM cases c WHERE c.rating_token = $1", token
    )
    return row


async def find_cases(
    conn: Conn,
    hall_id: str,
    *,
    number: str | None = None,
    ticket_id: int | None = None,
    ticket_number: str | None = None,
    applicant_key: str | None = None,
    limit: int = 50,
) -> list[asyncpg.Record]:
    where = ["c.hall_id = $1"]
    args: list[object] = [hall_id]
    for column, value in (
        ("c.number", number),
        ("c.ticket_id", ticket_id),
        ("c.ticket_number", ticket_number),
        ("c.applicant_key", applicant_key),
    ):
        if value is not None:
            args.append(value)
            where.append(f"{column} = ${len(args)}")
    args.append(limit)
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""SELECT {CASE_COLUMNS} FROM cases c WHERE {" AND ".join(where)}
            ORDER BY c.id DESC LIMIT ${len(args)}""",
        *args,
    )
    return rows


async def set_case_status(
    conn: asyncpg.Connection,
    case_id: int,
    from_status: str,
    to_status: str,
    at: datetime,
    actor: str,
    note: str | None,
) -> bool:
    """Move the case if it is still in ``from_status`` (False: it moved meanwhile)."""
    done = await conn.fetchval(
        """WITH c AS (UPDATE cases SET status = $3, updated_at = $4
                      WHERE id = $1 AND status = $2 RETURNING id, hall_id)
           INSERT INTO case_events (case_id, hall_id, from_status, to_status, at, actor, note)
           SELECT c.id, c.hall_id, $2, $3, $4, $5, $6 FROM c RETURNING true""",
        case_id,
        from_status,
        to_status,
        at,
        actor,
        note,
    )
    return bool(done)


async def case_events(conn: Conn, case_id: int) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT * FROM case_events WHERE case_id = $1 ORDER BY id", case_id
    )
    return rows


async def unrated_case_of_visit(
    conn: Conn, hall_id: str, ticket_id: int, counter: int
) -> int | None:
    value: int | None = await conn.fetchval(
        """SELECT c.id FROM cases c WHERE c.hall_id = $1 AND c.ticket_id = $2
             AND c.counter_number = $3
             AND NOT EXISTS (SELECT 1 FROM ratings r WHERE r.case_id = c.id)
           ORDER BY c.id LIMIT 1""",
        hall_id,
        ticket_id,
        counter,
    )
    return value


async def ticket_at_counter(
    conn: Conn, hall_id: str, ticket_id: int, counter: int
) -> asyncpg.Record | None:
    """The ticket if it was called at ``counter`` (it has that counter's pad session)."""
    row: asyncpg.Record | None = await conn.fetchrow(
        """SELECT t.id, t.display_number, t.service_code, t.state::text AS state, s.clerk
           FROM tickets t JOIN pad_sessions s ON s.ticket_id = t.id AND s.hall_id = t.hall_id
           WHERE t.hall_id = $1 AND t.id = $2 AND s.counter_number = $3""",
        hall_id,
        ticket_id,
        counter,
    )
    return row


# --- ratings ---------------------------------------------------------------------------------


async def insert_rating(conn: asyncpg.Connection, values: dict[str, Any]) -> int | None:
    """Store a rating; None when the visit, session or case already has one."""
    try:
        async with conn.transaction():
            rid: int | None = await conn.fetchval(
                """INSERT INTO ratings (hall_id, ticket_id, counter_number, clerk, level,
                     not_rated_reason, reasons, dims, channel, device_uid, rated_at,
                     session_id, case_id, service_code, reason_codes, comment)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
                           $15, $16)
                   RETURNING id""",
                values["hall_id"],
                values.get("ticket_id"),
                values.get("counter"),
                values.get("clerk"),
                values.get("level"),
                values.get("not_rated_reason"),
                values.get("reasons", 0),
                values.get("dims"),
                values["channel"],
                values.get("device_uid"),
                values["rated_at"],
                values.get("session_id"),
                values.get("case_id"),
                values.get("service_code"),
                values.get("reason_codes", []),
                values.get("comment"),
            )
    except asyncpg.UniqueViolationError:
        return None
    return rid


RATING_COLUMNS = """r.id, r.hall_id, r.ticket_id, r.counter_number, r.clerk, r.level,
    r.not_rated_reason, r.reason_codes, r.comment, r.channel, r.device_uid, r.rated_at,
    r.session_id, r.case_id, coalesce(r.service_code, t.service_code) AS service_code,
    t.display_number AS ticket_number, c.number AS case_number, k.id AS task_id"""


async def list_ratings(
    conn: Conn,
    hall_id: str,
    *,
    counter: int | None = None,
    clerk: str | None = None,
    service: str | None = None,
    level: int | None = None,
    rated: bool | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 200,
) -> list[asyncpg.Record]:
    where = ["r.hall_id = $1"]
    args: list[object] = [hall_id]

    def add(sql: str, value: object) -> None:
        args.append(value)
        where.append(sql.replace("?", f"${len(args)}"))

    if counter is not None:
        add("r.counter_number = ?", counter)
    if clerk is not None:
        add("r.clerk = ?", clerk)
    if service is not None:
        add("coalesce(r.service_code, t.service_code) = ?", service)
    if level is not None:
        add("r.level = ?", level)
    if rated is not None:
        where.append("r.level IS NOT NULL" if rated else "r.level IS NULL")
    if since is not None:
        add("r.rated_at >= ?", since)
    if until is not None:
        add("r.rated_at < ?", until)
    args.append(limit)
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""SELECT {RATING_COLUMNS} FROM ratings r
            LEFT JOIN tickets t ON t.id = r.ticket_id
            LEFT JOIN cases c ON c.id = r.case_id
            LEFT JOIN bad_rating_tasks k ON k.rating_id = r.id
            WHERE {" AND ".join(where)} ORDER BY r.rated_at DESC, r.id DESC
            LIMIT ${len(args)}""",
        *args,
    )
    return rows


async def rating(conn: Conn, rating_id: int) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        f"""SELECT {RATING_COLUMNS} FROM ratings r
            LEFT JOIN tickets t ON t.id = r.ticket_id
            LEFT JOIN cases c ON c.id = r.case_id
            LEFT JOIN bad_rating_tasks k ON k.rating_id = r.id WHERE r.id = $1""",
        rating_id,
    )
    return row


# --- 差评 tasks --------------------------------------------------------------------------------


async def open_task(conn: asyncpg.Connection, values: dict[str, Any]) -> int:
    tid: int = await conn.fetchval(
        """INSERT INTO bad_rating_tasks (hall_id, rating_id, case_id, ticket_id, counter_number,
             clerk, owner, opened_at, due_on)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id""",
        values["hall_id"],
        values["rating_id"],
        values.get("case_id"),
        values.get("ticket_id"),
        values.get("counter"),
        values.get("clerk"),
        values["owner"],
        values["opened_at"],
        values["due_on"],
    )
    return tid


TASK_COLUMNS = """k.*, r.level, r.reason_codes, r.comment AS rating_comment, r.rated_at,
    c.number AS case_number, c.applicant_name, c.applicant_phone,
    t.display_number AS ticket_number"""


async def tasks(
    conn: Conn, hall_id: str, *, open_only: bool = False, task_id: int | None = None
) -> list[asyncpg.Record]:
    where = ["k.hall_id = $1"]
    args: list[object] = [hall_id]
    if open_only:
        where.append("k.status <> 'closed'")
    if task_id is not None:
        args.append(task_id)
        where.append(f"k.id = ${len(args)}")
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""SELECT {TASK_COLUMNS} FROM bad_rating_tasks k
            JOIN ratings r ON r.id = k.rating_id
            LEFT JOIN cases c ON c.id = coalesce(k.case_id, r.case_id)
            LEFT JOIN tickets t ON t.id = k.ticket_id
            WHERE {" AND ".join(where)} ORDER BY k.due_on, k.id""",
        *args,
    )
    return rows


async def update_task(
    conn: asyncpg.Connection, hall_id: str, task_id: int, changes: dict[str, Any]
) -> bool:
    cols = list(changes)
    sets = ", ".join(f"{c} = ${i + 3}" for i, c in enumerate(cols))
    done = await conn.fetchval(
        f"UPDATE bad_rating_tasks SET {sets} WHERE hall_id = $1 AND id = $2 RETURNING true",
        hall_id,
        task_id,
        *[changes[c] for c in cols],
    )
    return bool(done)


async def overdue_tasks(conn: Conn, today: date) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT k.id, k.hall_id, k.due_on, k.owner, k.counter_number FROM bad_rating_tasks k
           WHERE k.status <> 'closed' AND k.due_on < $1
             AND NOT EXISTS (SELECT 1 FROM evaluator_alarms a
                             WHERE a.kind = 'bad_rating_overdue' AND a.ref_id = k.id)""",
        today,
    )
    return rows


# --- alarms ----------------------------------------------------------------------------------

ALARM_CHANNEL = "evaluator_alarms"


async def raise_alarm(
    conn: asyncpg.Connection, hall_id: str, kind: str, ref_id: int, message: str, at: datetime
) -> bool:
    """Store the alarm once per (kind, ref) and publish it on the alarm channel."""
    row = await conn.fetchrow(
        """INSERT INTO evaluator_alarms (hall_id, kind, ref_id, message, raised_at)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT (kind, ref_id) DO NOTHING
           RETURNING id""",
        hall_id,
        kind,
        ref_id,
        message,
        at,
    )
    if row is None:
        return False
    payload = {
        "type": "alarm",
        "source": "evaluator",
        "id": row["id"],
        "hall": hall_id,
        "kind": kind,
        "ref_id": ref_id,
        "message": message,
        "at": at.isoformat(),
    }
    await conn.execute("SELECT pg_notify($1, $2)", ALARM_CHANNEL, json.dumps(payload))
    return True


async def clear_alarm(conn: asyncpg.Connection, kind: str, ref_id: int, at: datetime) -> None:
    await conn.execute(
        """UPDATE evaluator_alarms SET cleared_at = $3
           WHERE kind = $1 AND ref_id = $2 AND cleared_at IS NULL""",
        kind,
        ref_id,
        at,
    )


async def alarms(conn: Conn, hall_id: str, *, active_only: bool = True) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""SELECT * FROM evaluator_alarms WHERE hall_id = $1
            {"AND cleared_at IS NULL" if active_only else ""} ORDER BY raised_at DESC, id DESC
            LIMIT 200""",
        hall_id,
    )
    return rows


# --- upstream outbox -------------------------------------------------------------------------

OUTBOX_CHANNEL = "evaluator_outbox"


async def due_records(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    """Pending records whose next attempt is due, locked for this sender (skip others')."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT id, hall_id, key, kind, ref_id, attempts FROM upstream_outbox
           WHERE state = 'pending' AND next_attempt_at <= now()
           ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED""",
        limit,
    )
    return rows


async def rating_record(conn: Conn, rating_id: int) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        """SELECT r.*, t.display_number AS ticket_number,
                  coalesce(r.service_code, t.service_code) AS service,
                  c.number AS case_number, c.matter_code, c.matter_impl_code, c.matter_name
           FROM ratings r LEFT JOIN tickets t ON t.id = r.ticket_id
           LEFT JOIN cases c ON c.id = r.case_id WHERE r.id = $1""",
        rating_id,
    )
    return row


async def case_event_record(conn: Conn, event_id: int) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        """SELECT e.id AS event_id, e.from_status, e.to_status, e.at, e.actor, e.note,
                  c.number AS case_number, c.case_type, c.matter_code, c.matter_impl_code,
                  c.matter_name, c.accepted_on, c.due_on, c.promised_days, c.counter_number,
                  c.clerk, c.ticket_number, c.source
           FROM case_events e JOIN cases c ON c.id = e.case_id WHERE e.id = $1""",
        event_id,
    )
    return row


async def mark_delivered(conn: asyncpg.Connection, record_id: int) -> None:
    await conn.execute(
        """UPDATE upstream_outbox SET state = 'delivered', delivered_at = now(),
             attempts = attempts + 1, last_error = NULL WHERE id = $1""",
        record_id,
    )


async def mark_failed(
    conn: asyncpg.Connection, record_id: int, error: str, delay_s: float, dead: bool
) -> None:
    await conn.execute(
        """UPDATE upstream_outbox SET attempts = attempts + 1, last_error = left($2, 300),
             next_attempt_at = now() + make_interval(secs => $3),
             state = CASE WHEN $4 THEN 'dead' ELSE state END
           WHERE id = $1""",
        record_id,
        error,
        delay_s,
        dead,
    )


async def retry_dead(conn: asyncpg.Connection, hall_id: str, record_id: int) -> bool:
    done = await conn.fetchval(
        """UPDATE upstream_outbox SET state = 'pending', attempts = 0, next_attempt_at = now()
           WHERE hall_id = $1 AND id = $2 AND state = 'dead' RETURNING true""",
        hall_id,
        record_id,
    )
    return bool(done)


async def outbox(
    conn: Conn, hall_id: str, *, state: str | None = None, limit: int = 200
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT id, key, kind, ref_id, state, attempts, next_attempt_at, last_error,
                  created_at, delivered_at
           FROM upstream_outbox WHERE hall_id = $1 AND ($2::text IS NULL OR state = $2)
           ORDER BY id DESC LIMIT $3""",
        hall_id,
        state,
        limit,
    )
    return rows


async def outbox_counts(conn: Conn, hall_id: str) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT state, count(*) AS n FROM upstream_outbox WHERE hall_id = $1 GROUP BY state",
        hall_id,
    )
    out = {"pending": 0, "delivered": 0, "dead": 0}
    out.update({r["state"]: r["n"] for r in rows})
    return out


def to_codes(values: Sequence[str] | None) -> list[str]:
    return list(values or [])
