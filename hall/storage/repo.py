"""SQL for tickets, counters and numbering; records become domain dataclasses here."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date, datetime
from typing import Any

import asyncpg

from hall.domain.policy import Candidate
from hall.domain.tickets import CounterState, CounterStatus, Event, EventType, Ticket, TicketState

_TICKET_COLUMNS = """id, hall_id, service_code, number_group, business_day, seq, display_number,
    purpose, priority_class, state::text AS state, issued_at, queue_key, counter_number,
    target_counter, recall_count, first_called_at, called_at, serve_started_at, finished_at,
    parked_by, appointment_start, appointment_end"""


def ticket_from_record(r: asyncpg.Record) -> Ticket:
    values: dict[str, Any] = dict(r)
    values["state"] = TicketState(values["state"])
    return Ticket(**{k: values[k] for k in Ticket.__slots__})


def counter_from_record(r: asyncpg.Record) -> CounterStatus:
    return CounterStatus(
        hall_id=r["hall_id"],
        number=r["number"],
        state=CounterState(r["state"]),
        state_since=r["state_since"],
        pause_reason=r["pause_reason"],
        clerk=r["clerk"],
    )


_ISSUE_ONE_STATEMENT = """
WITH n AS (
    INSERT INTO number_counters AS c (hall_id, number_group, business_day, last_value, issued)
    VALUES ($1, $2, $3, $4, 1)
    ON CONFLICT (hall_id, number_group, business_day)
    DO UPDATE SET last_value = c.last_value + 1, issued = c.issued + 1
        WHERE $16::int IS NULL OR c.issued < $16
    RETURNING last_value
), t AS (
    INSERT INTO tickets (hall_id, service_code, number_group, business_day, seq,
        display_number, token, purpose, priority_class, issued_at, queue_key,
        appointment_start, appointment_end, kiosk, idempotency_key, idempotency_hash)
    SELECT $1, $5, $2, $3, n.last_value,
        $6 || lpad(n.last_value::text, greatest($7, length(n.last_value::text)), '0'),
        $8, $9, $10, $11, $11, $12, $13, $14, $15, $17
    FROM n
    RETURNING id, seq, display_number
), e AS (
    INSERT INTO events (hall_id, type, at, actor, ticket_id, details)
    SELECT $1, 'ticket.issued', $11, $18, t.id,
        $19::jsonb || jsonb_build_object('seq', t.seq, 'display_number', t.display_number)
    FROM t
){audit}
SELECT id, seq, display_number FROM t
"""
_ISSUE_AUDIT_CTE = """, a AS (
    INSERT INTO audit_log (at, actor, actor_kind, session_id, route, method, path, params,
                           remote, user_agent, status)
    SELECT $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30 FROM t
)"""
_ISSUE_PLAIN = _ISSUE_ONE_STATEMENT.replace("{audit}", "")
_ISSUE_AUDITED = _ISSUE_ONE_STATEMENT.replace("{audit}", _ISSUE_AUDIT_CTE)


async def issue_in_one_statement(
    conn: asyncpg.Connection,
    *,
    hall_id: str,
    number_group: str,
    business_day: date,
    number_start: int,
    service_code: str,
    prefix: str,
    width: int,
    token: str,
    purpose: str,
    priority_class: str | None,
    issued_at: datetime,
    appointment_start: datetime | None,
    appointment_end: datetime | None,
    kiosk: str | None,
    idempotency_key: str | None,
    idempotency_hash: str | None,
    quota: int | None,
    actor: str,
    details: dict[str, Any],
    audit: tuple[object, ...] | None = None,
) -> tuple[int, int, str] | None:
    """Number, insert and log a ticket in one autocommitted statement: (id, seq, number).

    The number counter's row lock lasts only while PostgreSQL runs this statement and
    commits, never across a round trip to the application. None when the day's quota of a
    service with its own number group is used up (nothing is changed then). Run outside any
    transaction; the event's hall seq is assigned by the commit-time trigger.
    """
    args: list[object] = [
        hall_id, number_group, business_day, number_start, service_code, prefix, width,
        token, purpose, priority_class, issued_at, appointment_start, appointment_end, kiosk,
        idempotency_key, quota, idempotency_hash, actor, details,
    ]  # fmt: skip
    if audit is not None:
        args.extend(audit)
    row = await conn.fetchrow(_ISSUE_AUDITED if audit is not None else _ISSUE_PLAIN, *args)
    return None if row is None else (row["id"], row["seq"], row["display_number"])


async def issued_today(conn: asyncpg.Connection, hall_id: str, service: str, day: date) -> int:
    count: int = await conn.fetchval(
        "SELECT count(*) FROM tickets WHERE hall_id = $1 AND service_code = $2"
        " AND business_day = $3",
        hall_id,
        service,
        day,
    )
    return count


async def ticket_by_idempotency_key(
    conn: asyncpg.Connection, hall_id: str, key: str
) -> tuple[Ticket, str, str] | None:
    r = await conn.fetchrow(
        f"SELECT {_TICKET_COLUMNS}, token, idempotency_hash FROM tickets"
        " WHERE hall_id = $1 AND idempotency_key = $2",
        hall_id,
        key,
    )
    if r is None:
        return None
    return ticket_from_record(r), r["token"], r["idempotency_hash"]


async def ticket_by_token(conn: asyncpg.Connection, token: str) -> Ticket | None:
    r = await conn.fetchrow(f"SELECT {_TICKET_COLUMNS} FROM tickets WHERE token = $1", token)
    return None if r is None else ticket_from_record(r)


async def ticket_by_number(
    conn: asyncpg.Connection, hall_id: str, day: date, display_number: str
) -> Ticket | None:
    r = await conn.fetchrow(
        f"SELECT {_TICKET_COLUMNS} FROM tickets"
        " WHERE hall_id = $1 AND business_day = $2 AND display_number = $3"
        " ORDER BY id DESC LIMIT 1",
        hall_id,
        day,
        display_number,
    )
    return None if r is None else ticket_from_record(r)


async def active_ticket(
    conn: asyncpg.Connection, hall_id: str, counter: int, *, for_update: bool = False
) -> Ticket | None:
    lock = " FOR UPDATE" if for_update else ""
    r = await conn.fetchrow(
        f"SELECT {_TICKET_COLUMNS} FROM tickets WHERE hall_id = $1 AND counter_number = $2"
        f" AND state IN ('called', 'serving'){lock}",
        hall_id,
        counter,
    )
    return None if r is None else ticket_from_record(r)


# Write a ticket's mutable columns only if it is still in the state it was read in ($2).
_UPDATE_TICKET = """UPDATE tickets SET state = $3::ticket_state, service_code = $4, queue_key = $5,
        counter_number = $6, target_counter = $7, recall_count = $8,
        first_called_at = $9, called_at = $10, serve_started_at = $11,
        finished_at = $12, parked_by = $13
    WHERE id = $1 AND state = $2::ticket_state"""


def _ticket_update_args(before: Ticket, after: Ticket) -> tuple[object, ...]:
    return (
        after.id,
        str(before.state),
        str(after.state),
        after.service_code,
        after.queue_key,
        after.counter_number,
        after.target_counter,
        after.recall_count,
        after.first_called_at,
        after.called_at,
        after.serve_started_at,
        after.finished_at,
        after.parked_by,
    )


async def save_ticket(conn: asyncpg.Connection, before: Ticket, after: Ticket) -> bool:
    """Write ``after`` if the row is still in ``before.state``; False when another actor won."""
    status = await conn.execute(_UPDATE_TICKET, *_ticket_update_args(before, after))
    return bool(status == "UPDATE 1")


async def counter(
    conn: asyncpg.Connection, hall_id: str, number: int, *, for_update: bool = False
) -> tuple[CounterStatus, int] | None:
    """The counter's status and its normal-since-priority tally."""
    lock = " FOR UPDATE" if for_update else ""
    r = await conn.fetchrow(
        "SELECT hall_id, number, state::text AS state, state_since, pause_reason, clerk,"
        f" normal_since_priority FROM counters WHERE hall_id = $1 AND number = $2 AND active{lock}",
        hall_id,
        number,
    )
    return None if r is None else (counter_from_record(r), r["normal_since_priority"])


async def counter_for_action(
    conn: asyncpg.Connection, hall_id: str, number: int
) -> tuple[CounterStatus, int, Ticket | None] | None:
    """Lock a counter for an action and read its active ticket in the same round trip.

    Only the counter row is locked: an active ticket changes only through its counter's
    actions, which all take this lock, and every ticket write is conditional on its state.
    """
    r = await conn.fetchrow(
        f"""SELECT c.hall_id AS c_hall, c.number AS c_number, c.state::text AS c_state,
                   c.state_since AS c_since, c.pause_reason AS c_reason, c.clerk AS c_clerk,
                   c.normal_since_priority AS c_tally, t.*, t.state::text AS t_state
            FROM counters c
            LEFT JOIN LATERAL (
                SELECT {_TICKET_COLUMNS} FROM tickets
                WHERE hall_id = c.hall_id AND counter_number = c.number
                  AND state IN ('called', 'serving')) t ON true
            WHERE c.hall_id = $1 AND c.number = $2 AND c.active
            FOR UPDATE OF c""",
        hall_id,
        number,
    )
    if r is None:
        return None
    status = CounterStatus(
        hall_id=r["c_hall"],
        number=r["c_number"],
        state=CounterState(r["c_state"]),
        state_since=r["c_since"],
        pause_reason=r["c_reason"],
        clerk=r["c_clerk"],
    )
    active = None
    if r["id"] is not None:
        values = {k: r[k] for k in Ticket.__slots__ if k != "state"}
        active = Ticket(state=TicketState(r["t_state"]), **values)
    return status, r["c_tally"], active


async def save_ticket_and_counter(
    conn: asyncpg.Connection,
    before: Ticket,
    after: Ticket,
    status: CounterStatus,
    normal_since_priority: int | None,
) -> bool:
    """Write a ticket (if still in ``before.state``) and its counter in one statement;
    False, with nothing written, when another actor changed the ticket first."""
    written = await conn.fetchval(
        f"""WITH t AS ({_UPDATE_TICKET} RETURNING id), c AS (
               UPDATE counters SET state = $16::counter_state, state_since = $17,
                   pause_reason = $18, clerk = $19,
                   normal_since_priority = coalesce($20, normal_since_priority)
               WHERE hall_id = $14 AND number = $15 AND EXISTS (SELECT 1 FROM t)
               RETURNING number
           )
           SELECT (SELECT count(*) FROM t) + (SELECT count(*) FROM c)""",
        *_ticket_update_args(before, after),
        status.hall_id,
        status.number,
        str(status.state),
        status.state_since,
        status.pause_reason,
        status.clerk,
        normal_since_priority,
    )
    return bool(written == 2)


async def save_counter(
    conn: asyncpg.Connection, status: CounterStatus, normal_since_priority: int | None = None
) -> None:
    await conn.execute(
        """UPDATE counters SET state = $3::counter_state, state_since = $4, pause_reason = $5,
               clerk = $6, normal_since_priority = coalesce($7, normal_since_priority)
           WHERE hall_id = $1 AND number = $2""",
        status.hall_id,
        status.number,
        str(status.state),
        status.state_since,
        status.pause_reason,
        status.clerk,
        normal_since_priority,
    )


async def candidates(
    conn: asyncpg.Connection,
    hall_id: str,
    counter_number: int,
    services: Sequence[str],
    *,
    per_class: int = 8,
    exclude: Collection[int] = (),
) -> list[Candidate]:
    """Heads of each eligible queue: the oldest few normal and priority tickets per service,
    plus everything targeted at this counter, leaving out ``exclude`` (tickets other counters
    are claiming). The policy needs nothing deeper."""
    rows = await conn.fetch(
        """WITH waiting AS (
               SELECT id, service_code, queue_key, priority_class, target_counter,
                      appointment_start, appointment_end,
                      row_number() OVER (PARTITION BY service_code, priority_class IS NOT NULL
                                         ORDER BY queue_key, id) AS rn
               FROM tickets
               WHERE hall_id = $1 AND state = 'waiting'
                 AND (target_counter IS NULL AND service_code = ANY($3::text[])
                      OR target_counter = $2)
                 AND NOT (id = ANY($5::bigint[])))
           SELECT * FROM waiting WHERE rn <= $4 OR target_counter = $2""",
        hall_id,
        counter_number,
        list(services),
        per_class,
        list(exclude),
    )
    return [
        Candidate(
            ticket_id=r["id"],
            service_code=r["service_code"],
            queue_key=r["queue_key"],
            priority=r["priority_class"] is not None,
            target_counter=r["target_counter"],
            appointment_start=r["appointment_start"],
            appointment_end=r["appointment_end"],
        )
        for r in rows
    ]


async def lock_first_waiting(
    conn: asyncpg.Connection, ranked_ids: Sequence[int], *, skip_locked: bool
) -> Ticket | None:
    """Lock the first of ``ranked_ids`` (in that order) that is still waiting and, with
    ``skip_locked``, not held by another transaction; only that one row is locked."""
    if not ranked_ids:
        return None
    mode = "SKIP LOCKED" if skip_locked else ""
    r = await conn.fetchrow(
        f"SELECT {_TICKET_COLUMNS} FROM tickets WHERE id = ANY($1::bigint[])"
        f" AND state = 'waiting' ORDER BY array_position($1::bigint[], id)"
        f" LIMIT 1 FOR UPDATE {mode}",
        list(ranked_ids),
    )
    return None if r is None else ticket_from_record(r)


async def head_queue_key(conn: asyncpg.Connection, hall_id: str, service: str) -> datetime | None:
    value: datetime | None = await conn.fetchval(
        "SELECT min(queue_key) FROM tickets WHERE hall_id = $1 AND service_code = $2"
        " AND state = 'waiting'",
        hall_id,
        service,
    )
    return value


async def queue_position(
    conn: asyncpg.Connection, t: Ticket, counters: list[int], recent: int = 20
) -> tuple[int, int, list[float]]:
    """People ahead of a waiting ticket, open counters among ``counters``, and the most recent
    service durations of its service (newest first), in one round trip."""
    row = await conn.fetchrow(
        """SELECT
             (SELECT count(*) FROM tickets
               WHERE hall_id = $1 AND service_code = $2 AND state = 'waiting'
                 AND (queue_key, id) < ($3, $4)) AS ahead,
             (SELECT count(*) FROM counters
               WHERE hall_id = $1 AND active AND number = ANY($5::int[])
                 AND state IN ('idle', 'calling', 'serving')) AS serving,
             (SELECT coalesce(array_agg(s), '{}') FROM (
                SELECT extract(epoch FROM finished_at - serve_started_at)::float8 AS s
                FROM tickets WHERE hall_id = $1 AND service_code = $2 AND state = 'done'
                  AND serve_started_at IS NOT NULL
                ORDER BY finished_at DESC LIMIT $6) r) AS recent""",
        t.hall_id,
        t.service_code,
        t.queue_key,
        t.id,
        counters,
        recent,
    )
    assert row is not None
    return row["ahead"], row["serving"], [float(x) for x in row["recent"]]


async def service_stats(
    conn: asyncpg.Connection, hall_id: str, day: date, recent: int = 20
) -> dict[str, tuple[int, int, list[float]]]:
    """Per active service: (waiting now, issued on ``day``, recent service seconds newest first)."""
    rows = await conn.fetch(
        """SELECT s.code,
             (SELECT count(*) FROM tickets t
               WHERE t.hall_id = s.hall_id AND t.service_code = s.code
                 AND t.state = 'waiting') AS waiting,
             (SELECT count(*) FROM tickets t
               WHERE t.hall_id = s.hall_id AND t.service_code = s.code
                 AND t.business_day = $2) AS issued,
             (SELECT coalesce(array_agg(d), '{}') FROM (
                SELECT extract(epoch FROM finished_at - serve_started_at)::float8 AS d
                FROM tickets t WHERE t.hall_id = s.hall_id AND t.service_code = s.code
                  AND t.state = 'done' AND t.serve_started_at IS NOT NULL
                ORDER BY t.finished_at DESC LIMIT $3) r) AS recent
           FROM services s WHERE s.hall_id = $1 AND s.active""",
        hall_id,
        day,
        recent,
    )
    return {r["code"]: (r["waiting"], r["issued"], [float(x) for x in r["recent"]]) for r in rows}


async def open_counter_numbers(conn: asyncpg.Connection, hall_id: str) -> set[int]:
    rows = await conn.fetch(
        "SELECT number FROM counters WHERE hall_id = $1 AND active"
        " AND state IN ('idle', 'calling', 'serving')",
        hall_id,
    )
    return {r["number"] for r in rows}


async def waiting_counts(conn: asyncpg.Connection, hall_id: str) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT service_code, count(*) AS n FROM tickets WHERE hall_id = $1 AND state = 'waiting'"
        " GROUP BY service_code",
        hall_id,
    )
    return {r["service_code"]: r["n"] for r in rows}


async def counters_of_hall(conn: asyncpg.Connection, hall_id: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT c.number, c.name, c.state::text AS state, c.state_since, c.pause_reason, c.clerk,
                  t.id AS ticket_id, t.display_number, t.service_code, t.state::text AS ticket_state
           FROM counters c
           LEFT JOIN tickets t ON t.hall_id = c.hall_id AND t.counter_number = c.number
                AND t.state IN ('called', 'serving')
           WHERE c.hall_id = $1 AND c.active ORDER BY c.number""",
        hall_id,
    )
    return rows


async def recent_calls(conn: asyncpg.Connection, hall_id: str, limit: int) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT e.seq, e.at, e.counter_number, e.type, e.details->>'display_number' AS number
           FROM events e WHERE e.hall_id = $1 AND e.type = ANY($2::text[])
           ORDER BY e.seq DESC LIMIT $3""",
        hall_id,
        [str(EventType.TICKET_CALLED), str(EventType.TICKET_RECALLED)],
        limit,
    )
    return rows


async def last_seq(conn: asyncpg.Connection, hall_id: str) -> int:
    value: int = await conn.fetchval("SELECT last_seq FROM halls WHERE id = $1", hall_id)
    return value


async def events_after(
    conn: asyncpg.Connection, hall_id: str, after_seq: int, limit: int = 1000
) -> list[tuple[int, Event]]:
    rows = await conn.fetch(
        """SELECT seq, type, at, actor, ticket_id, counter_number, details FROM events
           WHERE hall_id = $1 AND seq > $2 ORDER BY seq LIMIT $3""",
        hall_id,
        after_seq,
        limit,
    )
    return [(r["seq"], event_from_record(r)) for r in rows]


def event_from_record(r: asyncpg.Record) -> Event:
    return Event(
        type=EventType(r["type"]),
        at=r["at"],
        actor=r["actor"],
        ticket_id=r["ticket_id"],
        counter_number=r["counter_number"],
        details=r["details"],
    )
