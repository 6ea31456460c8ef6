"""SQL for tickets, counters and numbering; records become domain dataclasses here."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

import asyncpg

from hall.domain.errors import Unavailable
from hall.domain.policy import Candidate
from hall.domain.tickets import (
    ACTIVE_STATES,
    CounterState,
    CounterStatus,
    Event,
    EventType,
    Ticket,
    TicketState,
)
from hall.storage.access_repo import AUDIT_COLUMNS
from hall.storage.commit_notices import note_events

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


# "People ahead" is counted directly only up to this many; past it, from the service's tally.
_COUNTED_DIRECTLY = 100
RECENT_SERVICES = 40  # finished tickets whose service times feed a wait estimate


def _waiting_sql(hall: str, service: str) -> str:
    """Scalar subquery: a service's waiting tickets, from the tallies of migration 0007.

    ``sum()`` of a bigint is numeric, which asyncpg decodes into a ``Decimal`` (2-3 % of the
    issue's samples in session 10's profile); the cast makes it an int."""
    return f"""(SELECT coalesce(sum(q.waiting), 0)::bigint FROM queue_tallies q
        WHERE q.hall_id = {hall} AND q.service_code = {service})"""


def _recent_seconds_sql(hall: str, service: str, limit: str) -> str:
    """Scalar subquery: [service time, time at the counter, priority (1 or 0)] of a service's
    last finished tickets, newest first, as a 2-D array (an index read on tickets_finished
    that stops at the limit). Time at the counter runs from the first call to the finish, so
    it holds the walk to the window and recalls too.

    ``date_part`` gives the seconds as float8 directly; ``extract(…)::float8`` computed them
    as numeric first (about 0.4 µs a value, two values for each of up to 40 tickets). Both
    give the same float8 for any interval under a day (the float path adds a day's whole
    seconds separately, which can round differently in the last bit beyond that)."""
    return f"""(SELECT coalesce(array_agg(ARRAY[r.d, r.c, r.p]), '{{}}') FROM (
        SELECT date_part('epoch', f.finished_at - f.serve_started_at) AS d,
               date_part('epoch', f.finished_at
                   - coalesce(f.first_called_at, f.serve_started_at)) AS c,
               (f.priority_class IS NOT NULL)::int::float8 AS p
        FROM tickets f WHERE f.hall_id = {hall} AND f.service_code = {service}
          AND f.state = 'done' AND f.serve_started_at IS NOT NULL
        ORDER BY f.finished_at DESC LIMIT {limit}) r)"""


def _counters_now_sql(hall: str, numbers: str, at: str) -> str:
    """Subquery of one row for a FROM list: the counters numbered in an int[] that are open or
    paused, as three arrays in one order (``counter_numbers``, ``counter_states``,
    ``counter_seconds``: seconds in that state, never below 0).

    Arrays, not a JSON array of triples: PostgreSQL builds them without a jsonb value and a
    float-to-numeric conversion per counter, and asyncpg decodes them in C, so nothing is
    converted per counter in Python either (an issued ticket reads every counter serving
    its service: 20 in the deep bench hall). The seconds come from ``date_part``, not
    ``extract(…)::float8``, for the reason ``_recent_seconds_sql`` gives."""
    return f"""(SELECT coalesce(array_agg(number), '{{}}') AS counter_numbers,
            coalesce(array_agg(state::text), '{{}}') AS counter_states,
            coalesce(array_agg(greatest(0, date_part('epoch', {at} - state_since))),
                '{{}}') AS counter_seconds
        FROM counters
        WHERE hall_id = {hall} AND active AND number = ANY({numbers}::int[])
          AND state IN ('idle', 'calling', 'serving', 'paused')) cn"""


def _priority_waiting_sql(hall: str, service: str, before: str | None = None) -> str:
    """Scalar subquery: a service's waiting priority tickets (queued before a (key, id) when
    given), counted up to the bound by an index read on tickets_queue_heads."""
    where = "" if before is None else f" AND (p.queue_key, p.id) < {before}"
    return f"""(SELECT count(*) FROM (
        SELECT 1 FROM tickets p
        WHERE p.hall_id = {hall} AND p.service_code = {service} AND p.state = 'waiting'
          AND p.target_counter IS NULL AND (p.priority_class IS NOT NULL){where}
        LIMIT {_COUNTED_DIRECTLY}) x)"""


def _tallies_sql(hall: str, service: str, services: str) -> str:
    """Subquery of one row for a FROM list, in one read of the hall's tallies: a service's
    waiting tickets (``waiting``, as ``_waiting_sql``) and those of each service in a text[]
    that has a tally, as two arrays in one order (``other_services``, ``other_waiting``),
    which asyncpg decodes in C (see ``_counters_now_sql``)."""
    return f"""(SELECT coalesce(sum(o.n) FILTER (WHERE o.service_code = {service}), 0)::bigint
                AS waiting,
            coalesce(array_agg(o.service_code) FILTER (WHERE o.service_code = ANY({services})),
                '{{}}') AS other_services,
            coalesce(array_agg(o.n) FILTER (WHERE o.service_code = ANY({services})), '{{}}')
                AS other_waiting FROM (
        SELECT service_code, sum(waiting)::bigint AS n FROM queue_tallies
        WHERE hall_id = {hall} AND service_code = ANY(array_prepend({service}, {services}))
        GROUP BY service_code) o) ow"""


_ISSUE_ONE_STATEMENT = """
WITH u AS (
    -- The day's number counter, updated in place: INSERT ... ON CONFLICT DO UPDATE would
    -- lock the row (a WAL record of its own) before updating it. Only the day's first ticket
    -- (or one refused by the quota) goes on to the INSERT, where writers may race to create it.
    UPDATE number_counters SET last_value = last_value + 1, issued = issued + 1
    WHERE hall_id = $1 AND number_group = $2 AND business_day = $3
      AND ($16::int IS NULL OR issued < $16)
    RETURNING last_value
), i AS (
    INSERT INTO number_counters AS c (hall_id, number_group, business_day, last_value, issued)
    SELECT $1, $2, $3, $4, 1 WHERE NOT EXISTS (SELECT FROM u)
    ON CONFLICT (hall_id, number_group, business_day)
    DO UPDATE SET last_value = c.last_value + 1, issued = c.issued + 1
        WHERE $16::int IS NULL OR c.issued < $16
    RETURNING last_value
), n AS (
    SELECT last_value FROM u UNION ALL SELECT last_value FROM i
), t AS (
    INSERT INTO tickets (hall_id, service_code, number_group, business_day, seq,
        display_number, token, purpose, priority_class, issued_at, queue_key,
        appointment_start, appointment_end, kiosk, idempotency_key, idempotency_hash)
    SELECT $1, $5, $2, $3, n.last_value,
        $6 || lpad(n.last_value::text, greatest($7, length(n.last_value::text)), '0'),
        $8, $9, $10, $11, $11, $12, $13, $14, $15, $17
    FROM n
    RETURNING id, seq, display_number
), est AS (
    -- Estimates given with tickets this server issued before (migration 0008).
    INSERT INTO ticket_estimates (ticket_id, estimate_s, low_s, high_s, naive_s)
    SELECT * FROM unnest($22::bigint[], $23::real[], $24::real[], $25::real[], $26::real[])
    ON CONFLICT (ticket_id) DO NOTHING
), e AS (
    INSERT INTO events (hall_id, type, at, actor, ticket_id, details)
    SELECT $1, 'ticket.issued', $11, $18, t.id,
        $19::jsonb || jsonb_build_object('seq', t.seq, 'display_number', t.display_number)
    FROM t
){audit}
SELECT t.id, t.seq, t.display_number,
    -- Where the new ticket stands, as of this statement (which does not see the ticket):
    -- the service's waiting tally less those queued behind it, counted up to the bound.
    ow.waiting AS waiting_before,
    (SELECT count(*) FROM (
        SELECT 1 FROM tickets w
        WHERE w.hall_id = $1 AND w.service_code = $5 AND w.state = 'waiting'
          AND w.queue_key > $11
        LIMIT {bound}) b) AS behind,
    {priority} AS priority_waiting,
    cn.counter_numbers, cn.counter_states, cn.counter_seconds,
    ow.other_services, ow.other_waiting,
    {recent} AS recent
FROM t CROSS JOIN {counters} CROSS JOIN {others}
"""
_ISSUE_AUDIT_CTE = f""", a AS (
    INSERT INTO audit_log ({AUDIT_COLUMNS})
    SELECT $27, $28, $29, $30, $31, $32, $33, $34, $35, $36, $37 FROM t
)"""
_ISSUE_ONE_STATEMENT = (
    _ISSUE_ONE_STATEMENT.replace("{bound}", str(_COUNTED_DIRECTLY))
    .replace("{priority}", _priority_waiting_sql("$1", "$5"))
    .replace("{counters}", _counters_now_sql("$1", "$20", "$11"))
    .replace("{others}", _tallies_sql("$1", "$5", "$21::text[]"))
    .replace("{recent}", _recent_seconds_sql("$1", "$5", str(RECENT_SERVICES)))
)
_ISSUE_PLAIN = _ISSUE_ONE_STATEMENT.replace("{audit}", "")
_ISSUE_AUDITED = _ISSUE_ONE_STATEMENT.replace("{audit}", _ISSUE_AUDIT_CTE)


OPEN_STATES = frozenset({"idle", "calling", "serving"})


@dataclass(frozen=True, slots=True)
class QueueFacts:
    """Where a waiting ticket stands and what its wait depends on, as one statement saw it."""

    ahead: int  # waiting tickets of its service queued before it
    priority_waiting: int  # priority tickets of its service waiting (before it, if priority)
    counters: list[tuple[int, str, float]]  # open or paused counters serving it: number,
    # state, seconds in that state
    recent: list[tuple[float, float]]  # (service time, time at the counter) of its service's
    # latest finished tickets, seconds, newest first
    others: dict[str, int]  # waiting tickets of the other services those counters serve
    priority_share: float = 0.0  # of those latest finished tickets, the priority ones

    @property
    def serving(self) -> int:
        """Open counters among those serving its service (paused ones not counted)."""
        return sum(1 for _, state, _ in self.counters if state in OPEN_STATES)


@dataclass(frozen=True, slots=True)
class EstimateRow:
    """The estimate a ticket was given at issue (migration 0008)."""

    ticket_id: int
    seconds: float
    low_s: float
    high_s: float
    naive_s: float | None


@dataclass(frozen=True, slots=True)
class Issued:
    """A ticket numbered and stored, and where it stands in its queue."""

    id: int
    seq: int
    number: str
    facts: QueueFacts | None  # None when too many are queued behind it to say cheaply

    @property
    def position(self) -> QueueFacts | None:
        """What ``queue_position`` would answer for it now, None when not known cheaply."""
        return self.facts


def _counters_now(row: asyncpg.Record) -> list[tuple[int, str, float]]:
    """(number, state, seconds in that state) of the counters ``_counters_now_sql`` read."""
    return list(
        zip(row["counter_numbers"], row["counter_states"], row["counter_seconds"], strict=True)
    )


def _others_waiting(row: asyncpg.Record) -> dict[str, int]:
    """Waiting tickets per service, as ``_others_waiting_sql`` read them."""
    return dict(zip(row["other_services"], row["other_waiting"], strict=True))


def _recent(value: list[list[float]]) -> list[tuple[float, float]]:
    return [(float(d), float(c)) for d, c, _ in value]


def _priority_share(value: list[list[float]]) -> float:
    return sum(p for _, _, p in value) / len(value) if value else 0.0


_NO_ESTIMATES: tuple[None, ...] = (None,) * 5


def issue_statement(
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
    counters: Sequence[int],
    others: Sequence[str] = (),
    estimates: Sequence[EstimateRow] = (),
    audit: tuple[object, ...] | None = None,
) -> tuple[str, list[object]]:
    """The SQL and arguments of ``issue_in_one_statement``, for a caller that runs it
    itself (group commit runs a batch of them as one pipeline). Its row, or its lack of
    one, means what ``issued_from_row`` says."""
    args: list[object] = [
        hall_id, number_group, business_day, number_start, service_code, prefix, width,
        token, purpose, priority_class, issued_at, appointment_start, appointment_end, kiosk,
        idempotency_key, quota, idempotency_hash, actor, details, list(counters),
        # NULL for none: ANY and unnest of a NULL array find nothing, as of an empty one,
        # and asyncpg sends a NULL without encoding an array (a type check per array and
        # per element). Most statements of a batch carry no estimates.
        list(others) if others else None,
    ]  # fmt: skip
    if estimates:
        args += [
            [e.ticket_id for e in estimates], [e.seconds for e in estimates],
            [e.low_s for e in estimates], [e.high_s for e in estimates],
            [e.naive_s for e in estimates],
        ]  # fmt: skip
    else:
        args += _NO_ESTIMATES
    if audit is not None:
        args.extend(audit)
    return (_ISSUE_AUDITED if audit is not None else _ISSUE_PLAIN), args


def issued_from_row(row: asyncpg.Record | None) -> Issued | None:
    """What the issue statement's row says; None when it returned none (the quota)."""
    if row is None:
        return None
    behind = row["behind"]
    facts = None
    if behind < _COUNTED_DIRECTLY:
        facts = QueueFacts(
            ahead=int(row["waiting_before"]) - behind,
            priority_waiting=row["priority_waiting"],
            counters=_counters_now(row),
            recent=_recent(row["recent"]),
            others=_others_waiting(row),
            priority_share=_priority_share(row["recent"]),
        )
    return Issued(id=row["id"], seq=row["seq"], number=row["display_number"], facts=facts)


async def issue_in_one_statement(
    conn: asyncpg.Connection,
    *,
    hall_id: str,
    **statement: Any,
) -> Issued | None:
    """Number, insert and log a ticket in one autocommitted statement, and say where it
    stands among the waiting tickets of its service: open counters among ``counters``, and
    the waiting of ``others`` (the other services those counters serve). ``estimates`` of
    tickets issued before are written by the same statement (the arguments are
    ``issue_statement``'s).

    The number counter's row lock lasts only while PostgreSQL runs this statement and
    commits, never across a round trip to the application. None when the day's quota of a
    service with its own number group is used up (nothing is changed then). Run outside any
    transaction; the event's hall seq is assigned by the insert trigger of migration 0004.
    """
    sql, args = issue_statement(hall_id=hall_id, **statement)
    note_events(conn, hall_id)
    return issued_from_row(await conn.fetchrow(sql, *args))


async def issued_today(conn: asyncpg.Connection, hall_id: str, service: str, day: date) -> int:
    """Tickets of ``service`` issued on ``day``, from the tally migration 0007 keeps."""
    count: int | None = await conn.fetchval(
        "SELECT issued FROM service_days WHERE hall_id = $1 AND service_code = $2"
        " AND business_day = $3",
        hall_id,
        service,
        day,
    )
    return count or 0


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
    found = await ticket_and_token_by_number(conn, hall_id, day, display_number)
    return None if found is None else found[0]


async def ticket_and_token_by_number(
    conn: asyncpg.Connection, hall_id: str, day: date, display_number: str
) -> tuple[Ticket, str] | None:
    """The day's (latest) ticket with this number, and its token."""
    r = await conn.fetchrow(
        f"SELECT {_TICKET_COLUMNS}, token FROM tickets"
        " WHERE hall_id = $1 AND business_day = $2 AND display_number = $3"
        " ORDER BY id DESC LIMIT 1",
        hall_id,
        day,
        display_number,
    )
    return None if r is None else (ticket_from_record(r), r["token"])


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


@dataclass(frozen=True, slots=True)
class CounterRead:
    """What a counter action decides on: the counter as read, and the version to write at."""

    status: CounterStatus
    tally: int  # normal tickets called since the last priority one
    version: int
    active: Ticket | None  # its called or serving ticket


# The columns of a counter read (``counter_read_from_record``): counter ``c`` and its active
# ticket ``t``, joined laterally as ``LEFT JOIN LATERAL ({ACTIVE_TICKET}) t ON true``.
COUNTER_READ_COLUMNS = """c.hall_id AS c_hall, c.number AS c_number, c.state::text AS c_state,
    c.state_since AS c_since, c.pause_reason AS c_reason, c.clerk AS c_clerk,
    c.normal_since_priority AS c_tally, c.version AS c_version,
    t.*, t.state::text AS t_state"""
ACTIVE_TICKET = f"""SELECT {_TICKET_COLUMNS} FROM tickets
    WHERE hall_id = c.hall_id AND counter_number = c.number AND state IN ('called', 'serving')"""


async def counter_for_action(
    conn: asyncpg.Connection, hall_id: str, number: int
) -> CounterRead | None:
    """Read a counter and its active ticket in one round trip, without locking either.

    ``write_action`` later writes only if the counter still has this version; an active
    ticket changes only through its counter's actions, so the version covers it too.
    """
    r = await conn.fetchrow(
        f"""SELECT {COUNTER_READ_COLUMNS}
            FROM counters c
            LEFT JOIN LATERAL ({ACTIVE_TICKET}) t ON true
            WHERE c.hall_id = $1 AND c.number = $2 AND c.active""",
        hall_id,
        number,
    )
    return None if r is None else counter_read_from_record(r)


def counter_read_from_record(r: asyncpg.Record) -> CounterRead:
    """A ``CounterRead`` from a row of ``COUNTER_READ_COLUMNS`` (the counter not null)."""
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
    return CounterRead(status, r["c_tally"], r["c_version"], active)


class StaleRead(Exception):
    """A counter action's write found the counter or its ticket changed since the read;
    nothing was written."""


class CounterChanged(StaleRead):
    """The counter moved on since it was read: read it again and decide again."""


class TicketChanged(StaleRead):
    """The ticket left the state it was read in (another counter or actor got there first)."""


@dataclass(frozen=True, slots=True)
class CounterWrite:
    status: CounterStatus
    version: int  # as read; the write holds only if it is unchanged
    tally: int | None = None  # new normal-since-priority tally, None keeps it


@dataclass(frozen=True, slots=True)
class TicketWrite:
    before: Ticket  # as read; the write holds only if the row is still in before.state
    after: Ticket


class SqlArgs:
    """Positional parameters of a statement assembled from parts: each call adds a value and
    returns its placeholder, so parts can be combined without renumbering."""

    def __init__(self) -> None:
        self.values: list[object] = []

    def __call__(self, value: object) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def insert_events(a: SqlArgs, hall_id: str, events: Sequence[Event], *, where: str = "true") -> str:
    """INSERT of one hall's events in the order given; the insert trigger of migration 0004
    numbers them and notifies listeners (at COMMIT)."""
    return f"""INSERT INTO events (hall_id, type, at, actor, ticket_id, counter_number, details)
        SELECT {a(hall_id)}, e.type, e.at, e.actor, e.ticket_id, e.counter_number,
               e.details::jsonb
        FROM unnest({a([str(e.type) for e in events])}::text[],
                    {a([e.at for e in events])}::timestamptz[],
                    {a([e.actor for e in events])}::text[],
                    {a([e.ticket_id for e in events])}::bigint[],
                    {a([e.counter_number for e in events])}::int[],
                    {a([json.dumps(dict(e.details)) for e in events])}::text[])
             WITH ORDINALITY AS e(type, at, actor, ticket_id, counter_number, details, n)
        WHERE {where}
        ORDER BY e.n"""


def insert_audit(a: SqlArgs, audit: tuple[object, ...], *, where: str = "true") -> str:
    """INSERT of one audit row (values in the order of ``AUDIT_COLUMNS``)."""
    values = ", ".join(a(v) for v in audit)
    return f"INSERT INTO audit_log ({AUDIT_COLUMNS}) SELECT {values} WHERE {where}"


async def write_action(
    conn: asyncpg.Connection,
    hall_id: str,
    *,
    counter: CounterWrite | None,
    ticket: TicketWrite | None,
    events: Sequence[Event],
    audit: tuple[object, ...] | None = None,
    skip_locked: bool = False,
) -> None:
    """Write a counter action in one statement (``build_action_statement``); see there."""
    query, values = action_statement(
        hall_id, counter=counter, ticket=ticket, events=events, audit=audit,
        skip_locked=skip_locked,
    )  # fmt: skip
    note_events(conn, hall_id)
    action_outcome(await conn.fetchrow(query, *values))


def action_outcome(row: asyncpg.Record | None) -> None:
    """Raise CounterChanged or TicketChanged when the action statement's row says it wrote
    nothing (it always returns one row)."""
    assert row is not None
    if not row["counter_ok"]:
        raise CounterChanged()
    if not row["ticket_ok"]:
        raise TicketChanged()


# action_statement's SQL per shape: (counter written, ticket written, skip_locked, audit
# values or None). The text depends on nothing else, and assembling it took about 16 µs
# per write (42 placeholders), a few per cent of a drain request's CPU.
_ACTION_SQL: dict[tuple[bool, bool, bool, int | None], str] = {}


def action_statement(
    hall_id: str,
    *,
    counter: CounterWrite | None,
    ticket: TicketWrite | None,
    events: Sequence[Event],
    audit: tuple[object, ...] | None = None,
    skip_locked: bool = False,
) -> tuple[str, list[object]]:
    """``build_action_statement``'s SQL and arguments: its text kept per shape, the
    arguments listed here in the order its placeholders take them (a test holds the two
    equal for every shape)."""
    skip_locked = skip_locked and ticket is not None
    shape = (
        counter is not None,
        ticket is not None,
        skip_locked,
        None if audit is None else len(audit),
    )
    query = _ACTION_SQL.get(shape)
    if query is None:
        built = build_action_statement(
            hall_id, counter=counter, ticket=ticket, events=events, audit=audit,
            skip_locked=skip_locked,
        )  # fmt: skip
        _ACTION_SQL[shape] = built[0]
        return built
    values: list[object] = []
    if counter is not None:
        st = counter.status
        values += (st.hall_id, st.number, counter.version)
    if ticket is not None:
        t, before = ticket.after, str(ticket.before.state)
        # The lock's part (skip_locked), or the update's condition, comes first.
        values += (t.id, before) if skip_locked else (before,)
        values += (
            str(t.state), t.service_code, t.queue_key, t.counter_number, t.target_counter,
            t.recall_count, t.first_called_at, t.called_at, t.serve_started_at, t.finished_at,
            t.parked_by, t.id,
        )  # fmt: skip
    if counter is not None:
        st = counter.status
        values += (
            str(st.state), st.state_since, st.pause_reason, st.clerk, counter.tally,
            st.hall_id, st.number,
        )  # fmt: skip
    values += (
        hall_id,
        [str(e.type) for e in events],
        [e.at for e in events],
        [e.actor for e in events],
        [e.ticket_id for e in events],
        [e.counter_number for e in events],
        [json.dumps(dict(e.details)) for e in events],
    )
    if audit is not None:
        values += audit
    return query, values


def build_action_statement(
    hall_id: str,
    *,
    counter: CounterWrite | None,
    ticket: TicketWrite | None,
    events: Sequence[Event],
    audit: tuple[object, ...] | None = None,
    skip_locked: bool = False,
) -> tuple[str, list[object]]:
    """The SQL and arguments that write a counter action in one statement: counter, ticket,
    events and audit row, all or nothing. Its one row says whether it wrote
    (``action_outcome`` raises CounterChanged or TicketChanged, nothing having been written,
    when what the action was decided on has changed).

    The statement first locks the counter (if it still has the version read) and then the
    ticket (if still in the state read), in that order, and writes only when it holds both:
    a stale read fails on the version, never half-way or on the one-active-ticket index, and
    a lost race is an answer, not an error in PostgreSQL's log. Outside a transaction the
    statement commits by itself, so no lock outlives it. Event seqs come from the sequencer
    (migration 0006).

    Only one of the two rows is locked on its own (a heap LOCK record in the WAL and a dirtied
    page before the update writes the row again): the ticket's update is its own lock, taken
    after the counter's, and the counter is updated only once the ticket's update succeeded
    (it cannot fail then: the counter is locked at the version read). With ``skip_locked``
    the ticket is locked on its own first, since only a locking read can skip a locked row.

    A counter taken out of the configuration (``active`` false; config_store does not bump
    its version) counts as changed, so a read kept from before cannot write to it.

    ``skip_locked`` (a call among heads; call-next writes through ``build_call_statement``,
    which locks the same way): a ticket another transaction has locked is being taken by
    another counter, so it counts as changed at once instead of after that transaction's
    commit; the caller tries its next candidate without queueing behind the other counter's
    WAL flush. Were that transaction to roll back, the ticket is still waiting, and first.
    """
    a = SqlArgs()
    parts: list[str] = []
    counter_ok = ticket_ok = "true"
    if counter is not None:
        st = counter.status
        parts.append(
            f"""lc AS (
            SELECT 1 FROM counters
            WHERE hall_id = {a(st.hall_id)} AND number = {a(st.number)}
              AND version = {a(counter.version)} AND active
            FOR UPDATE)"""
        )
        counter_ok = "EXISTS (SELECT 1 FROM lc)"
    if ticket is not None and skip_locked:
        t = ticket.after
        parts.append(
            f"""lt AS (
            SELECT 1 FROM tickets
            WHERE id = {a(t.id)} AND state = {a(str(ticket.before.state))}::ticket_state
              AND {counter_ok}
            FOR UPDATE SKIP LOCKED)"""
        )
        ticket_ok = "EXISTS (SELECT 1 FROM lt)"
    if ticket is not None:
        t = ticket.after
        # Without skip_locked the update checks the state read and takes the ticket's lock
        # itself (after the counter's, as before): nothing is written unless it matched.
        held = (
            ticket_ok
            if skip_locked
            else f"state = {a(str(ticket.before.state))}::ticket_state AND {counter_ok}"
        )
        parts.append(
            f"""t AS (
            UPDATE tickets SET state = {a(str(t.state))}::ticket_state,
                service_code = {a(t.service_code)}, queue_key = {a(t.queue_key)},
                counter_number = {a(t.counter_number)}, target_counter = {a(t.target_counter)},
                recall_count = {a(t.recall_count)}, first_called_at = {a(t.first_called_at)},
                called_at = {a(t.called_at)}, serve_started_at = {a(t.serve_started_at)},
                finished_at = {a(t.finished_at)}, parked_by = {a(t.parked_by)}
            WHERE id = {a(t.id)} AND {held}
            RETURNING 1)"""
        )
        ticket_ok = "EXISTS (SELECT 1 FROM t)"
    parts.append(f"ok AS (SELECT {counter_ok} AS counter_ok, {ticket_ok} AS ticket_ok)")
    both = "(SELECT counter_ok AND ticket_ok FROM ok)"
    if counter is not None:
        st = counter.status
        parts.append(
            f"""c AS (
            UPDATE counters SET state = {a(str(st.state))}::counter_state,
                state_since = {a(st.state_since)}, pause_reason = {a(st.pause_reason)},
                clerk = {a(st.clerk)},
                normal_since_priority = coalesce({a(counter.tally)}::int, normal_since_priority),
                version = version + 1
            WHERE hall_id = {a(st.hall_id)} AND number = {a(st.number)} AND {both})"""
        )
    parts.append(f"e AS ({insert_events(a, hall_id, events, where=both)})")
    if audit is not None:
        parts.append(f"a AS ({insert_audit(a, audit, where=both)})")
    query = "WITH " + ",\n".join(parts) + "\nSELECT counter_ok, ticket_ok FROM ok"
    return query, a.values


def build_call_statement(
    hall_id: str,
    *,
    counter: CounterWrite,
    ticket_id: int,
    at: datetime,
    events: Sequence[Event],
    audit: tuple[object, ...] | None = None,
) -> tuple[str, list[object]]:
    """The SQL and arguments of call-next's write: the waiting ticket ``ticket_id`` called at
    this counter at ``at``, with the counter, events and audit row, all or nothing, as
    ``build_action_statement`` writes a call with ``skip_locked`` (same locks in the same
    order: the counter at the version read, then the ticket if still waiting, skipping it
    if another transaction holds it). The ticket's update is the call's own (what
    ``apply_ticket`` does for ``ticket.called``), so the caller needs only the ticket's id,
    not the ticket read: the row returns the ticket as called, its columns next to
    ``counter_ok`` and ``ticket_ok`` (``call_outcome``).
    """
    a = SqlArgs()
    st = counter.status
    hall, number = a(st.hall_id), a(st.number)
    version, tid, called_at = a(counter.version), a(ticket_id), a(at)
    parts = [
        f"""lc AS (
            SELECT 1 FROM counters
            WHERE hall_id = {hall} AND number = {number} AND version = {version} AND active
            FOR UPDATE)""",
        f"""lt AS (
            SELECT 1 FROM tickets
            WHERE id = {tid} AND state = 'waiting' AND EXISTS (SELECT 1 FROM lc)
            FOR UPDATE SKIP LOCKED)""",
        f"""t AS (
            UPDATE tickets SET state = 'called', counter_number = {number},
                called_at = {called_at}, first_called_at = coalesce(first_called_at, {called_at}),
                target_counter = NULL, parked_by = NULL
            WHERE id = {tid} AND EXISTS (SELECT 1 FROM lt)
            RETURNING {_TICKET_COLUMNS})""",
        """ok AS (SELECT EXISTS (SELECT 1 FROM lc) AS counter_ok,
            EXISTS (SELECT 1 FROM t) AS ticket_ok)""",
    ]
    both = "(SELECT counter_ok AND ticket_ok FROM ok)"
    parts.append(
        f"""c AS (
            UPDATE counters SET state = {a(str(st.state))}::counter_state,
                state_since = {a(st.state_since)}, pause_reason = {a(st.pause_reason)},
                clerk = {a(st.clerk)},
                normal_since_priority = coalesce({a(counter.tally)}::int, normal_since_priority),
                version = version + 1
            WHERE hall_id = {hall} AND number = {number} AND {both})"""
    )
    parts.append(f"e AS ({insert_events(a, hall_id, events, where=both)})")
    if audit is not None:
        parts.append(f"a AS ({insert_audit(a, audit, where=both)})")
    query = (
        "WITH " + ",\n".join(parts) + "\nSELECT ok.counter_ok, ok.ticket_ok, t.* FROM ok"
        " LEFT JOIN t ON true"
    )
    return query, a.values


# call_statement's SQL per number of audit values (None: no audit row).
_CALL_SQL: dict[int | None, str] = {}


def call_statement(
    hall_id: str,
    *,
    counter: CounterWrite,
    ticket_id: int,
    at: datetime,
    events: Sequence[Event],
    audit: tuple[object, ...] | None = None,
) -> tuple[str, list[object]]:
    """``build_call_statement``'s SQL and arguments, its text kept per shape and the
    arguments listed here in its placeholders' order (a test holds the two equal)."""
    shape = None if audit is None else len(audit)
    query = _CALL_SQL.get(shape)
    if query is None:
        built = build_call_statement(
            hall_id, counter=counter, ticket_id=ticket_id, at=at, events=events, audit=audit
        )
        _CALL_SQL[shape] = built[0]
        return built
    st = counter.status
    values: list[object] = [
        st.hall_id, st.number, counter.version, ticket_id, at,
        str(st.state), st.state_since, st.pause_reason, st.clerk, counter.tally,
        hall_id,
        [str(e.type) for e in events],
        [e.at for e in events],
        [e.actor for e in events],
        [e.ticket_id for e in events],
        [e.counter_number for e in events],
        [json.dumps(dict(e.details)) for e in events],
    ]  # fmt: skip
    if audit is not None:
        values += audit
    return query, values


def call_outcome(row: asyncpg.Record | None) -> Ticket:
    """The ticket as ``call_statement`` called it; CounterChanged or TicketChanged when it
    wrote nothing (as ``action_outcome``)."""
    action_outcome(row)
    assert row is not None
    return ticket_from_record(row)


def read_after_call(read: CounterRead, counter: CounterWrite, called: Ticket) -> CounterRead:
    """``read_after_write`` for ``call_statement``: the counter as written, its active
    ticket the one called, as the write returned it."""
    status = counter.status
    if status.state_since.tzinfo is not UTC:
        status = replace(status, state_since=status.state_since.astimezone(UTC))
    tally = read.tally if counter.tally is None else counter.tally
    return CounterRead(status, tally, read.version + 1, called)


# The ticket columns write_action's UPDATE sets; every other column keeps the value read.
_WRITTEN_TICKET_FIELDS = (
    "state", "service_code", "queue_key", "counter_number", "target_counter", "recall_count",
    "first_called_at", "called_at", "serve_started_at", "finished_at", "parked_by",
)  # fmt: skip
_UNWRITTEN_TICKET_FIELDS = tuple(f for f in Ticket.__slots__ if f not in _WRITTEN_TICKET_FIELDS)
_WRITTEN_TIMES = ("queue_key", "first_called_at", "called_at", "serve_started_at", "finished_at")


def _stored(value: Any) -> Any:
    # timestamptz comes back from PostgreSQL in UTC, whatever zone the value was written in.
    return value.astimezone(UTC) if isinstance(value, datetime) else value


def _as_stored(before: Ticket, after: Ticket) -> Ticket:
    """``after`` as ``write_action`` stored it over ``before``: its written columns (in UTC),
    the others as read."""
    if all(getattr(after, f) is getattr(before, f) for f in _UNWRITTEN_TICKET_FIELDS) and all(
        v is None or v.tzinfo is UTC for v in (getattr(after, f) for f in _WRITTEN_TIMES)
    ):
        return after  # the usual case, without building another Ticket
    return replace(before, **{f: _stored(getattr(after, f)) for f in _WRITTEN_TICKET_FIELDS})


def read_after_write(
    read: CounterRead, counter: CounterWrite, ticket: TicketWrite | None
) -> CounterRead:
    """What ``counter_for_action`` returns right after ``write_action`` committed ``counter``
    (and ``ticket``) on the counter as ``read``: the same values, without the round trip.

    Only this counter's actions change its row (each bumps the version, which the next
    write checks) and its active ticket (no other action takes a called or serving ticket),
    so a process may decide its next action on this counter from it, as from a read.
    """
    status = counter.status
    if status.state_since.tzinfo is not UTC:
        status = replace(status, state_since=status.state_since.astimezone(UTC))
    active = read.active
    if ticket is not None:
        after = ticket.after
        if active is not None and active.id == after.id:
            active = None
        if after.state in ACTIVE_STATES and after.counter_number == status.number:
            active = _as_stored(ticket.before, after)
    tally = read.tally if counter.tally is None else counter.tally
    return CounterRead(status, tally, read.version + 1, active)


# What call-next chooses on: the ranking's fields in ``Candidate``'s order, then the number
# its event names. The whole ticket (22 columns) of every head cost more to decode than the
# choice itself; the called one comes back from its write (``call_statement``).
_HEAD_COLUMNS = """id, service_code, queue_key, priority_class IS NOT NULL AS priority,
    target_counter, appointment_start, appointment_end, display_number"""


def _heads_sql(columns: str) -> str:
    """Heads of each eligible queue, each column list the same three index range reads."""
    return f"""SELECT h.* FROM unnest($3::text[]) AS s(code)
                CROSS JOIN (VALUES (false), (true)) AS p(priority)
                CROSS JOIN LATERAL (
                    SELECT {columns} FROM tickets
                    WHERE hall_id = $1 AND service_code = s.code
                      AND (priority_class IS NOT NULL) = p.priority
                      AND state = 'waiting' AND target_counter IS NULL
                      AND NOT (id = ANY($5::bigint[]))
                    ORDER BY queue_key, id LIMIT $4) h
            UNION ALL
            (SELECT {columns} FROM tickets
             WHERE hall_id = $1 AND target_counter = $2 AND state = 'waiting'
               AND NOT (id = ANY($5::bigint[]))
             ORDER BY queue_key, id LIMIT $4)
            UNION ALL
            SELECT a.* FROM unnest($3::text[]) AS s(code)
                CROSS JOIN LATERAL (
                    SELECT {columns} FROM tickets
                    WHERE hall_id = $1 AND service_code = s.code
                      AND state = 'waiting' AND target_counter IS NULL
                      AND appointment_start IS NOT NULL AND appointment_start <= $6
                      AND NOT (id = ANY($5::bigint[]))
                    ORDER BY appointment_start, id LIMIT $4) a"""


_CALL_HEADS = _heads_sql(_HEAD_COLUMNS)
_WHOLE_HEADS = _heads_sql(_TICKET_COLUMNS)


async def candidates(
    conn: asyncpg.Connection,
    hall_id: str,
    counter_number: int,
    services: Sequence[str],
    *,
    appointments_from: datetime,
    per_class: int = 8,
    exclude: Collection[int] = (),
) -> list[tuple[Candidate, Ticket]]:
    """``call_heads``' heads, each with its whole ``Ticket`` (pages that list them)."""
    rows = await conn.fetch(
        _WHOLE_HEADS, hall_id, counter_number, list(services), per_class, list(exclude),
        appointments_from,
    )  # fmt: skip
    seen: set[int] = set()
    found: list[tuple[Candidate, Ticket]] = []
    for r in rows:
        if r["id"] in seen:
            continue  # an appointment that is also at the head of its queue
        seen.add(r["id"])
        ticket = ticket_from_record(r)
        found.append(
            (
                Candidate(
                    ticket_id=ticket.id,
                    service_code=ticket.service_code,
                    queue_key=ticket.queue_key,
                    priority=ticket.priority_class is not None,
                    target_counter=ticket.target_counter,
                    appointment_start=ticket.appointment_start,
                    appointment_end=ticket.appointment_end,
                ),
                ticket,
            )
        )
    return found


async def call_heads(
    conn: asyncpg.Connection,
    hall_id: str,
    counter_number: int,
    services: Sequence[str],
    *,
    appointments_from: datetime,
    per_class: int = 8,
    exclude: Collection[int] = (),
) -> list[tuple[Candidate, str]]:
    """Heads of each eligible queue: the oldest ``per_class`` normal and priority tickets per
    service, the oldest tickets targeted at this counter, and per service the earliest
    appointments whose slot starts by ``appointments_from``, leaving out ``exclude`` (tickets
    other counters took meanwhile), each with its display number. The policy needs nothing
    deeper. Each part is an index range read that stops at its LIMIT (migration 0007), so
    the cost does not grow with the queue.

    Only what the choice needs is read (``_HEAD_COLUMNS``): call-next writes the one it
    picks by id and takes the whole ticket from that write (``call_statement``).
    """
    rows = await conn.fetch(
        _CALL_HEADS, hall_id, counter_number, list(services), per_class, list(exclude),
        appointments_from,
    )  # fmt: skip
    seen: set[int] = set()
    found: list[tuple[Candidate, str]] = []
    for r in rows:
        ticket_id = r[0]
        if ticket_id in seen:
            continue  # an appointment that is also at the head of its queue
        seen.add(ticket_id)
        found.append((Candidate(ticket_id, r[1], r[2], r[3], r[4], r[5], r[6]), r[7]))
    return found


async def head_queue_key(conn: asyncpg.Connection, hall_id: str, service: str) -> datetime | None:
    value: datetime | None = await conn.fetchval(
        "SELECT min(queue_key) FROM tickets WHERE hall_id = $1 AND service_code = $2"
        " AND state = 'waiting'",
        hall_id,
        service,
    )
    return value


_QUEUE_POSITION = f"""SELECT
    ow.waiting,
    (SELECT count(*) FROM (
        SELECT 1 FROM tickets
        WHERE hall_id = $1 AND service_code = $2 AND state = 'waiting'
          AND (queue_key, id) > ($3, $4)
        LIMIT $7) b) AS behind,
    {_priority_waiting_sql("$1", "$2")} AS priority_waiting,
    {_priority_waiting_sql("$1", "$2", "($3, $4)")} AS priority_before,
    cn.counter_numbers, cn.counter_states, cn.counter_seconds,
    ow.other_services, ow.other_waiting,
    {_recent_seconds_sql("$1", "$2", "$6")} AS recent
FROM {_counters_now_sql("$1", "$5", "$9")} CROSS JOIN {_tallies_sql("$1", "$2", "$8::text[]")}"""


async def queue_position(
    conn: asyncpg.Connection,
    t: Ticket,
    counters: list[int],
    recent: int = RECENT_SERVICES,
    *,
    others: Sequence[str] = (),
    at: datetime | None = None,
) -> QueueFacts:
    """People ahead of a waiting ticket, the open or paused counters among ``counters``, the
    waiting of ``others``, and the most recent service durations of its service (newest
    first), in one round trip; counter times are measured up to ``at`` (default: now).

    People ahead are the service's waiting tally less the ticket and those behind it, counted
    by an index read that stops after ``_COUNTED_DIRECTLY`` rows: a new ticket (at the back)
    costs the same whatever the queue. Only a ticket with that many both ahead and behind it
    is counted in full, and that read is bounded by the answer. For a priority ticket the
    priority count is of those queued before it, for a normal one of all waiting.
    """
    row = await conn.fetchrow(
        _QUEUE_POSITION,
        t.hall_id,
        t.service_code,
        t.queue_key,
        t.id,
        counters,
        recent,
        _COUNTED_DIRECTLY,
        list(others),
        at or datetime.now(UTC),
    )
    assert row is not None
    if row["behind"] < _COUNTED_DIRECTLY:
        ahead = max(0, int(row["waiting"]) - 1 - row["behind"])
    else:
        ahead = await conn.fetchval(
            """SELECT count(*) FROM tickets
               WHERE hall_id = $1 AND service_code = $2 AND state = 'waiting'
                 AND (queue_key, id) < ($3, $4)""",
            t.hall_id,
            t.service_code,
            t.queue_key,
            t.id,
        )
    priority = row["priority_before"] if t.priority_class is not None else row["priority_waiting"]
    return QueueFacts(
        ahead=ahead,
        priority_waiting=priority,
        counters=_counters_now(row),
        recent=_recent(row["recent"]),
        others=_others_waiting(row),
        priority_share=_priority_share(row["recent"]),
    )


async def service_stats(
    conn: asyncpg.Connection, hall_id: str, day: date, recent: int = RECENT_SERVICES
) -> dict[str, tuple[int, int, list[tuple[float, float]]]]:
    """Per active service: (waiting now, issued on ``day``, recent (service time, time at the
    counter) in seconds, newest first), from the tallies of migration 0007 and the last
    finished tickets."""
    rows = await conn.fetch(
        f"""SELECT s.code,
             {_waiting_sql("s.hall_id", "s.code")} AS waiting,
             (SELECT coalesce(max(d.issued), 0) FROM service_days d
               WHERE d.hall_id = s.hall_id AND d.service_code = s.code
                 AND d.business_day = $2) AS issued,
             {_recent_seconds_sql("s.hall_id", "s.code", "$3")} AS recent
           FROM services s WHERE s.hall_id = $1 AND s.active""",
        hall_id,
        day,
        recent,
    )
    return {r["code"]: (int(r["waiting"]), r["issued"], _recent(r["recent"])) for r in rows}


async def counters_now(
    conn: asyncpg.Connection, hall_id: str, at: datetime
) -> list[tuple[int, str, float]]:
    """Every open or paused counter of the hall: number, state, seconds in that state."""
    rows = await conn.fetch(
        "SELECT number, state::text AS state,"
        " extract(epoch FROM $2 - state_since)::float8 AS secs FROM counters"
        " WHERE hall_id = $1 AND active AND state IN ('idle', 'calling', 'serving', 'paused')",
        hall_id,
        at,
    )
    return [(r["number"], r["state"], max(0.0, r["secs"])) for r in rows]


async def write_estimates(conn: asyncpg.Connection, estimates: Sequence[EstimateRow]) -> None:
    """Store estimates given at issue (migration 0008) outside an issue statement."""
    await conn.execute(
        """INSERT INTO ticket_estimates (ticket_id, estimate_s, low_s, high_s, naive_s)
           SELECT * FROM unnest($1::bigint[], $2::real[], $3::real[], $4::real[], $5::real[])
           ON CONFLICT (ticket_id) DO NOTHING""",
        [e.ticket_id for e in estimates],
        [e.seconds for e in estimates],
        [e.low_s for e in estimates],
        [e.high_s for e in estimates],
        [e.naive_s for e in estimates],
    )


async def waiting_counts(conn: asyncpg.Connection, hall_id: str) -> dict[str, int]:
    """Waiting tickets per service, from the tallies of migration 0007."""
    rows = await conn.fetch(
        "SELECT service_code, sum(waiting) AS n FROM queue_tallies WHERE hall_id = $1"
        " GROUP BY service_code",
        hall_id,
    )
    return {r["service_code"]: int(r["n"]) for r in rows}


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
        # The types are literals so that the partial index events_calls matches.
        """SELECT e.seq, e.at, e.counter_number, e.type, e.details->>'display_number' AS number,
                  e.details->>'service_code' AS service
           FROM events e WHERE e.hall_id = $1 AND e.type IN ('ticket.called', 'ticket.recalled')
           ORDER BY e.seq DESC NULLS FIRST, e.id DESC LIMIT $2""",
        hall_id,
        limit,
    )
    return rows


# The advisory lock (class, key) under which sequence_events runs (migration 0006).
_SEQUENCER_LOCK = "7101002, hashtext($1)"
_SEQUENCER_LOCK_WAIT_S = 10.0


async def halls_with_unsequenced_events(conn: asyncpg.Connection) -> list[str]:
    """Halls with committed events not yet numbered (an index read of a near-empty index)."""
    rows = await conn.fetch("SELECT DISTINCT hall_id FROM events WHERE seq IS NULL")
    return [r["hall_id"] for r in rows]


async def sequence_events(conn: asyncpg.Connection, hall_id: str) -> int:
    """Number the hall's committed, unnumbered events (migration 0006); its last seq."""
    value: int = await conn.fetchval("SELECT sequence_events($1)", hall_id)
    return value


@contextlib.asynccontextmanager
async def sequenced_read(conn: asyncpg.Connection, hall_id: str) -> AsyncIterator[int]:
    """A read-only view of the hall consistent with one seq, which it yields.

    Holding the sequencer's lock for the whole session, it opens a repeatable-read
    transaction whose first statement numbers every event committed so far: no other
    sequencer can run meanwhile, so what this snapshot sees is exactly the events up to the
    seq yielded, and events committed after it stay unnumbered until the lock is released.
    Writers are not held up. A serialization failure (the hall row changed under a config
    load) is retried.
    """
    try:
        # A sequencer run holds the lock for one short statement; behind anything longer,
        # give up (the caller answers 503 or retries) rather than wait without end.
        try:
            async with asyncio.timeout(_SEQUENCER_LOCK_WAIT_S):
                await conn.execute(f"SELECT pg_advisory_lock({_SEQUENCER_LOCK})", hall_id)
        except TimeoutError:
            raise Unavailable("大厅数据正在更新，请稍后重试") from None
        for attempt in range(5):
            tx = conn.transaction(isolation="repeatable_read")
            await tx.start()
            try:
                seq = await sequence_events(conn, hall_id)
                break
            except BaseException as exc:
                await tx.rollback()
                if not isinstance(exc, asyncpg.SerializationError) or attempt == 4:
                    raise
        try:
            yield seq
        except BaseException:
            await tx.rollback()
            raise
        await tx.commit()
    finally:
        try:
            await conn.execute(f"SELECT pg_advisory_unlock({_SEQUENCER_LOCK})", hall_id)
        except BaseException:
            # Cancelled or failed with the lock possibly held: a session lock left on a
            # pooled connection would stop the hall's sequencing for good, so end the
            # session instead, which releases it.
            conn.terminate()
            raise


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
