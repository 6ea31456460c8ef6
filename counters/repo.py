"""SQL of the counters slice: what a clerk's terminal shows, sign-in credentials, alarms."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

NEXT_SHOWN = 5  # next numbers listed per queue on the terminal
NEXT_OVERALL = 6  # the next calls listed across the counter's queues


@dataclass(frozen=True, slots=True)
class QueueHead:
    code: str
    waiting: int
    oldest_issued_at: datetime | None


async def queue_heads(
    conn: asyncpg.Connection | asyncpg.Pool, hall_id: str, counter: int, services: list[str]
) -> dict[str, QueueHead]:
    """Per service the counter serves: how many wait for it and since when the oldest has
    (tickets sent to another window left out). The next numbers come from ``upcoming``."""
    rows = await conn.fetch(
        """SELECT t.service_code, count(*) AS waiting, min(t.issued_at) AS oldest
           FROM tickets t
           WHERE t.hall_id = $1 AND t.state = 'waiting' AND t.service_code = ANY($2::text[])
             AND (t.target_counter IS NULL OR t.target_counter = $3)
           GROUP BY t.service_code""",
        hall_id,
        services,
        counter,
    )
    return {
        r["service_code"]: QueueHead(r["service_code"], r["waiting"], r["oldest"]) for r in rows
    }


async def sent_here(conn: asyncpg.Connection | asyncpg.Pool, hall_id: str, counter: int) -> int:
    """Waiting tickets transferred to this very counter, whatever their service."""
    value = await conn.fetchval(
        "SELECT count(*) FROM tickets WHERE hall_id = $1 AND state = 'waiting'"
        " AND target_counter = $2",
        hall_id,
        counter,
    )
    return int(value or 0)


async def parked(
    conn: asyncpg.Connection | asyncpg.Pool, hall_id: str, counter: int
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT display_number, service_code FROM tickets
           WHERE hall_id = $1 AND state = 'parked' AND parked_by = $2
           ORDER BY id DESC LIMIT 20""",
        hall_id,
        counter,
    )
    return [{"number": r["display_number"], "service": r["service_code"]} for r in rows]


async def ticket_notes(
    conn: asyncpg.Connection | asyncpg.Pool, ticket_id: int
) -> list[dict[str, Any]]:
    """Notes a ticket carries: the reasons given when it was transferred or parked."""
    rows = await conn.fetch(
        """SELECT type, at, actor, counter_number, details->>'reason' AS reason FROM events
           WHERE ticket_id = $1 AND type IN ('ticket.transferred', 'ticket.parked')
             AND coalesce(details->>'reason', '') <> ''
           ORDER BY id""",
        ticket_id,
    )
    return [
        {
            "at": r["at"].isoformat(),
            "by": r["actor"],
            "counter": r["counter_number"],
            "kind": "转办" if r["type"] == "ticket.transferred" else "挂起",
            "text": r["reason"],
        }
        for r in rows
    ]


async def counter_states(
    conn: asyncpg.Connection | asyncpg.Pool, hall_id: str
) -> dict[int, tuple[str, str | None]]:
    rows = await conn.fetch(
        "SELECT number, state::text AS state, pause_reason FROM counters"
        " WHERE hall_id = $1 AND active",
        hall_id,
    )
    return {r["number"]: (r["state"], r["pause_reason"]) for r in rows}


async def staff_names(
    conn: asyncpg.Connection | asyncpg.Pool, job_nos: list[str]
) -> dict[str, str]:
    rows = await conn.fetch("SELECT job_no, name FROM staff WHERE job_no = ANY($1)", job_nos)
    return {r["job_no"]: r["name"] for r in rows}
