"""The kiosk's SQL: printers of kiosks, print jobs and printer status (migrations/0030)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import asyncpg

OPEN_STATES = ("queued", "printing", "held")
# A job the printer cannot print now is held for later, but a notice slip is cancelled: the
# kiosk shows it on screen, and nobody comes back for it.
_HELD = "CASE WHEN kind = 'notice' THEN 'cancelled' ELSE 'held' END"


@dataclass(frozen=True, slots=True)
class PrinterRow:
    hall_id: str
    kiosk: str
    printer: str


@dataclass(frozen=True, slots=True)
class JobRow:
    """A print job; a notice slip has no ticket (ticket_id, token, number None) but a matter."""

    id: int
    ticket_id: int | None
    hall_id: str
    kiosk: str
    kind: str
    state: str
    reason: str | None
    attempts: int
    created_at: datetime
    printed_at: datetime | None
    token: str | None
    number: str | None
    matter: str | None = None


_JOB = """j.id, j.ticket_id, j.hall_id, j.kiosk, j.kind, j.state, j.reason, j.attempts,
          j.created_at, j.printed_at, t.token, t.display_number AS number, j.matter"""


def _job(row: asyncpg.Record) -> JobRow:
    return JobRow(**dict(row))


async def sync_printers(
    conn: asyncpg.Connection, rows: Sequence[PrinterRow], now: datetime
) -> None:
    """Make ``kiosk_printers`` and the status table list exactly the configured printers."""
    async with conn.transaction():
        await conn.execute("DELETE FROM kiosk_printers")
        await conn.executemany(
            "INSERT INTO kiosk_printers (hall_id, kiosk, printer) VALUES ($1, $2, $3)"
            " ON CONFLICT (hall_id, kiosk) DO NOTHING",
            [(r.hall_id, r.kiosk, r.printer) for r in rows],
        )
        await conn.execute(
            "DELETE FROM kiosk_printer_status s WHERE NOT EXISTS (SELECT 1 FROM kiosk_printers p"
            " WHERE p.hall_id = s.hall_id AND p.printer = s.printer)"
        )
        await conn.executemany(
            "INSERT INTO kiosk_printer_status (hall_id, printer, kiosk, since) VALUES"
            " ($1, $2, $3, $4) ON CONFLICT (hall_id, printer) DO UPDATE SET kiosk = $3",
            [(r.hall_id, r.printer, r.kiosk, now) for r in rows],
        )


async def requeue_interrupted(
    conn: asyncpg.Connection | asyncpg.Pool, now: datetime, hall_id: str, kiosk: str
) -> int:
    """The kiosk's jobs left 'printing' by a process that stopped are printed again (a ticket
    twice beats none). Only the printer's new lease holder calls this."""
    result: str = await conn.execute(
        "UPDATE kiosk_print_jobs SET state = 'queued', reason = 'interrupted', updated_at = $1"
        " WHERE state = 'printing' AND hall_id = $2 AND kiosk = $3",
        now,
        hall_id,
        kiosk,
    )
    return int(result.split()[-1])


async def claim_next(
    conn: asyncpg.Connection | asyncpg.Pool, hall_id: str, kiosk: str, now: datetime
) -> JobRow | None:
    """The kiosk's oldest queued or held job, now 'printing'; None when there is none."""
    row = await conn.fetchrow(
        f"""WITH claimed AS (
                UPDATE kiosk_print_jobs SET state = 'printing', attempts = attempts + 1,
                       updated_at = $3
                 WHERE id = (SELECT id FROM kiosk_print_jobs
                              WHERE hall_id = $1 AND kiosk = $2 AND state IN ('queued', 'held')
                              ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
             RETURNING *)
            SELECT {_JOB} FROM claimed j LEFT JOIN tickets t ON t.id = j.ticket_id""",
        hall_id,
        kiosk,
        now,
    )
    return None if row is None else _job(row)


async def mark_printed(conn: asyncpg.Connection | asyncpg.Pool, job_id: int, now: datetime) -> None:
    await conn.execute(
        "UPDATE kiosk_print_jobs SET state = 'printed', reason = NULL, printed_at = $2,"
        " updated_at = $2 WHERE id = $1 AND state = 'printing'",
        job_id,
        now,
    )


async def hold(
    conn: asyncpg.Connection | asyncpg.Pool, job_id: int, reason: str, now: datetime
) -> None:
    await conn.execute(
        f"UPDATE kiosk_print_jobs SET state = {_HELD}, reason = $2, updated_at = $3"
        " WHERE id = $1 AND state = 'printing'",
        job_id,
        reason,
        now,
    )


async def cancel_printing(
    conn: asyncpg.Connection | asyncpg.Pool, job_id: int, reason: str, now: datetime
) -> None:
    await conn.execute(
        "UPDATE kiosk_print_jobs SET state = 'cancelled', reason = $2, updated_at = $3"
        " WHERE id = $1 AND state = 'printing'",
        job_id,
        reason,
        now,
    )


async def hold_queued(
    conn: asyncpg.Connection | asyncpg.Pool, hall_id: str, kiosk: str, reason: str, now: datetime
) -> int:
    """While the printer cannot print, every queued job of the kiosk is held at once, so the
    kiosk page shows its citizen the ticket on screen instead of waiting."""
    result: str = await conn.execute(
        f"UPDATE kiosk_print_jobs SET state = {_HELD}, reason = $3, updated_at = $4"
        " WHERE hall_id = $1 AND kiosk = $2 AND state = 'queued'",
        hall_id,
        kiosk,
        reason,
        now,
    )
    return int(result.split()[-1])


async def has_open_jobs(conn: asyncpg.Connection | asyncpg.Pool, hall_id: str, kiosk: str) -> bool:
    found: bool = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM kiosk_print_jobs WHERE hall_id = $1 AND kiosk = $2"
        " AND state IN ('queued', 'held'))",
        hall_id,
        kiosk,
    )
    return found


async def set_printer_state(
    conn: asyncpg.Connection, hall_id: str, printer: str, kiosk: str, state: str, now: datetime
) -> str | None:
    """Store what the printer said; on a change append an alarm row. Returns the old state
    when it changed, else None."""
    async with conn.transaction():
        old = await conn.fetchval(
            "SELECT state FROM kiosk_printer_status WHERE hall_id = $1 AND printer = $2 FOR UPDATE",
            hall_id,
            printer,
        )
        if old == state:
            await conn.execute(
                "UPDATE kiosk_printer_status SET checked_at = $3"
                " WHERE hall_id = $1 AND printer = $2",
                hall_id,
                printer,
                now,
            )
            return None
        await conn.execute(
            "INSERT INTO kiosk_printer_status (hall_id, printer, kiosk, state, since, checked_at)"
            " VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (hall_id, printer) DO UPDATE"
            " SET state = $4, since = $5, checked_at = $5, kiosk = $3",
            hall_id,
            printer,
            kiosk,
            state,
            now,
        )
        # 'unknown' → 'ok' at start-up is no news; every other change is.
        if not (old in (None, "unknown") and state == "ok"):
            await conn.execute(
                "INSERT INTO kiosk_printer_alarms (hall_id, printer, kiosk, kind, at)"
                " VALUES ($1, $2, $3, $4, $5)",
                hall_id,
                printer,
                kiosk,
                state,
                now,
            )
        return str(old) if old is not None else "unknown"


@dataclass(frozen=True, slots=True)
class PrinterStatusRow:
    hall_id: str
    printer: str
    kiosk: str
    state: str
    since: datetime
    checked_at: datetime | None


async def printer_states(
    conn: asyncpg.Connection | asyncpg.Pool, hall_id: str
) -> list[PrinterStatusRow]:
    rows = await conn.fetch(
        "SELECT hall_id, printer, kiosk, state, since, checked_at FROM kiosk_printer_status"
        " WHERE hall_id = $1 ORDER BY printer",
        hall_id,
    )
    return [PrinterStatusRow(**dict(r)) for r in rows]


async def alarms(
    conn: asyncpg.Connection | asyncpg.Pool, hall_id: str, limit: int = 50
) -> list[tuple[str, str, str, datetime]]:
    rows = await conn.fetch(
        "SELECT printer, kiosk, kind, at FROM kiosk_printer_alarms WHERE hall_id = $1"
        " ORDER BY id DESC LIMIT $2",
        hall_id,
        limit,
    )
    return [(r["printer"], r["kiosk"], r["kind"], r["at"]) for r in rows]


async def job(conn: asyncpg.Connection | asyncpg.Pool, job_id: int) -> JobRow | None:
    row = await conn.fetchrow(
        f"SELECT {_JOB} FROM kiosk_print_jobs j LEFT JOIN tickets t ON t.id = j.ticket_id"
        " WHERE j.id = $1",
        job_id,
    )
    return None if row is None else _job(row)


async def latest_job_of_ticket(
    conn: asyncpg.Connection | asyncpg.Pool, ticket_id: int
) -> JobRow | None:
    row = await conn.fetchrow(
        f"SELECT {_JOB} FROM kiosk_print_jobs j LEFT JOIN tickets t ON t.id = j.ticket_id"
        " WHERE j.ticket_id = $1 ORDER BY j.id DESC LIMIT 1",
        ticket_id,
    )
    return None if row is None else _job(row)


async def jobs_of_hall(
    conn: asyncpg.Connection | asyncpg.Pool, hall_id: str, states: Sequence[str], limit: int = 200
) -> list[JobRow]:
    rows = await conn.fetch(
        f"SELECT {_JOB} FROM kiosk_print_jobs j LEFT JOIN tickets t ON t.id = j.ticket_id"
        " WHERE j.hall_id = $1 AND j.state = ANY($2::text[]) ORDER BY j.id DESC LIMIT $3",
        hall_id,
        list(states),
        limit,
    )
    return [_job(r) for r in rows]


async def add_reprint(
    conn: asyncpg.Connection | asyncpg.Pool,
    ticket_id: int,
    hall_id: str,
    kiosk: str,
    by: str,
    now: datetime,
) -> int:
    job_id: int = await conn.fetchval(
        "INSERT INTO kiosk_print_jobs (ticket_id, hall_id, kiosk, kind, created_at, updated_at,"
        " requested_by) VALUES ($1, $2, $3, 'reprint', $4, $4, $5) RETURNING id",
        ticket_id,
        hall_id,
        kiosk,
        now,
        by,
    )
    await conn.execute(
        "SELECT pg_notify('kiosk_print', json_build_object('hall', $1::text, 'kiosk', $2::text)"
        "::text)",
        hall_id,
        kiosk,
    )
    return job_id


async def add_notice(
    conn: asyncpg.Connection | asyncpg.Pool, hall_id: str, kiosk: str, matter: str, now: datetime
) -> int:
    """A notice slip (一次性告知单) of ``matter`` for the kiosk's printer."""
    job_id: int = await conn.fetchval(
        "INSERT INTO kiosk_print_jobs (hall_id, kiosk, kind, matter, created_at, updated_at)"
        " VALUES ($1, $2, 'notice', $3, $4, $4) RETURNING id",
        hall_id,
        kiosk,
        matter,
        now,
    )
    await conn.execute(
        "SELECT pg_notify('kiosk_print', json_build_object('hall', $1::text, 'kiosk', $2::text)"
        "::text)",
        hall_id,
        kiosk,
    )
    return job_id


async def cancel(
    conn: asyncpg.Connection | asyncpg.Pool, hall_id: str, job_id: int, by: str, now: datetime
) -> bool:
    result: str = await conn.execute(
        "UPDATE kiosk_print_jobs SET state = 'cancelled', reason = 'cancelled by ' || $3,"
        " updated_at = $4 WHERE id = $1 AND hall_id = $2 AND state IN ('queued', 'held')",
        job_id,
        hall_id,
        by,
        now,
    )
    return result.endswith(" 1")


async def ticket_of_number(
    conn: asyncpg.Connection | asyncpg.Pool, hall_id: str, number: str, day: object
) -> tuple[int, str | None] | None:
    """(ticket id, kiosk) of today's ticket with this display number."""
    row = await conn.fetchrow(
        "SELECT id, kiosk FROM tickets WHERE hall_id = $1 AND display_number = $2"
        " AND business_day = $3 ORDER BY id DESC LIMIT 1",
        hall_id,
        number,
        day,
    )
    return None if row is None else (row["id"], row["kiosk"])


async def lock_person(conn: asyncpg.Connection, key: str) -> None:
    """Serialise the tickets of one person for one service and day until the transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 11))", key)


async def tickets_of_person(
    conn: asyncpg.Connection, hall_id: str, service: str, day: date, id_hash: str
) -> int:
    count: int = await conn.fetchval(
        "SELECT count(*) FROM kiosk_id_tickets i JOIN tickets t ON t.id = i.ticket_id"
        " WHERE i.hall_id = $1 AND i.service_code = $2 AND i.business_day = $3"
        " AND i.id_hash = $4 AND t.state <> 'cancelled'",
        hall_id,
        service,
        day,
        id_hash,
    )
    return count


async def add_person_ticket(
    conn: asyncpg.Connection, ticket_id: int, hall_id: str, service: str, day: date, id_hash: str
) -> None:
    await conn.execute(
        "INSERT INTO kiosk_id_tickets (ticket_id, hall_id, service_code, business_day, id_hash)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (ticket_id) DO NOTHING",
        ticket_id,
        hall_id,
        service,
        day,
        id_hash,
    )


# --- appointments (migrations/0033) --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AppointmentRow:
    id: int
    hall_id: str
    code: str
    service_code: str
    slot_start: datetime
    slot_end: datetime
    phone_masked: str | None
    name_masked: str | None
    ticket_id: int | None
    checked_in_at: datetime | None


_APPT = """id, hall_id, code, service_code, slot_start, slot_end, phone_masked, name_masked,
           ticket_id, checked_in_at"""


async def save_appointment(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    hall_id: str,
    code: str,
    service: str,
    slot_start: datetime,
    slot_end: datetime,
    phone_hash: str | None,
    phone_masked: str | None,
    name_masked: str | None,
    by: str,
    now: datetime,
) -> AppointmentRow | None:
    """Add a booking, or update it while it is not checked in; None once it is."""
    row = await conn.fetchrow(
        f"""INSERT INTO kiosk_appointments (hall_id, code, service_code, slot_start, slot_end,
                   phone_hash, phone_masked, name_masked, created_at, created_by)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            ON CONFLICT (hall_id, code) DO UPDATE SET service_code = $3, slot_start = $4,
                   slot_end = $5, phone_hash = $6, phone_masked = $7, name_masked = $8
             WHERE kiosk_appointments.checked_in_at IS NULL
            RETURNING {_APPT}""",
        hall_id,
        code,
        service,
        slot_start,
        slot_end,
        phone_hash,
        phone_masked,
        name_masked,
        now,
        by,
    )
    return None if row is None else AppointmentRow(**dict(row))


async def appointment_for_check_in(
    conn: asyncpg.Connection,
    hall_id: str,
    *,
    code: str | None = None,
    phone_hash: str | None = None,
    day_start: datetime | None = None,
    day_end: datetime | None = None,
) -> AppointmentRow | None:
    """The booking with ``code``, or the first of the day's not checked in with this phone;
    locked until the transaction ends (two kiosks cannot both check it in)."""
    if code is not None:
        row = await conn.fetchrow(
            f"SELECT {_APPT} FROM kiosk_appointments WHERE hall_id = $1 AND code = $2 FOR UPDATE",
            hall_id,
            code,
        )
    else:
        row = await conn.fetchrow(
            f"""SELECT {_APPT} FROM kiosk_appointments
                 WHERE hall_id = $1 AND phone_hash = $2 AND slot_start >= $3
                   AND slot_start < $4
                 ORDER BY (checked_in_at IS NOT NULL), slot_start LIMIT 1 FOR UPDATE""",
            hall_id,
            phone_hash,
            day_start,
            day_end,
        )
    return None if row is None else AppointmentRow(**dict(row))


async def mark_checked_in(
    conn: asyncpg.Connection, appointment_id: int, ticket_id: int, now: datetime
) -> None:
    await conn.execute(
        "UPDATE kiosk_appointments SET ticket_id = $2, checked_in_at = $3 WHERE id = $1",
        appointment_id,
        ticket_id,
        now,
    )


async def token_of_ticket(conn: asyncpg.Connection | asyncpg.Pool, ticket_id: int) -> str:
    token: str = await conn.fetchval("SELECT token FROM tickets WHERE id = $1", ticket_id)
    return token


# --- what a waiting ticket is told (kiosk/standing.py) -------------------------------------


async def counter_state(conn: asyncpg.Connection | asyncpg.Pool, hall_id: str, number: int) -> str:
    """The window's state now ("closed" for a window the hall does not have or has retired)."""
    state: str | None = await conn.fetchval(
        "SELECT state::text FROM counters WHERE hall_id = $1 AND number = $2 AND active",
        hall_id,
        number,
    )
    return state or "closed"
