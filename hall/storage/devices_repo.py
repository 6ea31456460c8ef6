"""SQL for the device registry, device alarms, exactly-once event keys and what devices show."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from hall.domain.tickets import CounterStatus
from hall.storage import repo
from hall.storage.repo import ACTIVE_TICKET, COUNTER_READ_COLUMNS, counter_read_from_record

# §8.3: keys of a boot_id seen again are from a boot 65535 boots ago, never a re-delivery of
# this boot's events; anything younger than this is kept so a late duplicate still matches.
STALE_KEYS_AFTER = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class DeviceRow:
    hall_id: str
    bus: str
    address: int
    uid: str | None
    device_class: str
    firmware: str | None
    boot_id: int | None
    counter_number: int | None
    kiosk: str | None
    screen: str | None
    state: str
    state_since: datetime
    last_seen: datetime | None


@dataclass(frozen=True, slots=True)
class AlarmRow:
    id: int
    bus: str
    address: int
    uid: str | None
    kind: str
    detail: str
    at: datetime


@dataclass(frozen=True, slots=True)
class CounterDeviceView:
    """What a counter's strip, pad and caller need to show."""

    number: int
    state: str
    clerk: str | None
    ticket_id: int | None
    ticket_number: str | None
    ticket_state: str | None
    service_code: str | None
    ticket_recalls: int = 0
    """How often the active ticket was recalled (重呼): a new value means "call it again"."""


def device_view(read: repo.CounterRead) -> CounterDeviceView:
    """What the counter's devices show of a read of it (``counter_in_transaction``, a
    counter action's read, or the counter as its write left it, ``repo.read_after_write``)."""
    status, t = read.status, read.active
    if t is None:
        return CounterDeviceView(
            status.number, str(status.state), status.clerk, None, None, None, None
        )
    return CounterDeviceView(
        status.number,
        str(status.state),
        status.clerk,
        t.id,
        t.display_number,
        str(t.state),
        t.service_code,
        t.recall_count,
    )


_DEVICE_COLUMNS = """hall_id, bus, address, uid, device_class, firmware, boot_id, counter_number,
    kiosk, screen, state::text AS state, state_since, last_seen"""


async def sync_configured(conn: asyncpg.Connection, rows: list[DeviceRow]) -> None:
    """Make the registry list exactly the configured devices (assignment and class from
    config). A device taken out of the config leaves the registry; its alarms stay."""
    async with conn.transaction():
        await conn.execute(
            """DELETE FROM devices d WHERE NOT EXISTS (
                   SELECT 1 FROM unnest($1::text[], $2::int[]) AS c(bus, address)
                   WHERE c.bus = d.bus AND c.address = d.address)""",
            [r.bus for r in rows],
            [r.address for r in rows],
        )
        await _upsert_configured(conn, rows)


async def _upsert_configured(conn: asyncpg.Connection, rows: list[DeviceRow]) -> None:
    await conn.executemany(
        """INSERT INTO devices (hall_id, bus, address, uid, device_class, counter_number, kiosk,
                                screen)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           ON CONFLICT (bus, address) DO UPDATE SET hall_id = EXCLUDED.hall_id,
               device_class = EXCLUDED.device_class, counter_number = EXCLUDED.counter_number,
               kiosk = EXCLUDED.kiosk, screen = EXCLUDED.screen,
               uid = COALESCE(devices.uid, EXCLUDED.uid)""",
        [
            (
                r.hall_id,
                r.bus,
                r.address,
                r.uid,
                r.device_class,
                r.counter_number,
                r.kiosk,
                r.screen,
            )
            for r in rows
        ],
    )


async def device(
    conn: asyncpg.Connection | asyncpg.Pool, bus: str, address: int, *, for_update: bool = False
) -> DeviceRow | None:
    lock = " FOR UPDATE" if for_update else ""
    r = await conn.fetchrow(
        f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE bus = $1 AND address = $2{lock}",
        bus,
        address,
    )
    return None if r is None else DeviceRow(**dict(r))


async def devices_of_hall(conn: asyncpg.Connection | asyncpg.Pool, hall_id: str) -> list[DeviceRow]:
    rows = await conn.fetch(
        f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE hall_id = $1 ORDER BY bus, address",
        hall_id,
    )
    return [DeviceRow(**dict(r)) for r in rows]


async def addresses_with_uid(
    conn: asyncpg.Connection | asyncpg.Pool, uid: str, bus: str, address: int
) -> list[DeviceRow]:
    """Other registry entries that carry ``uid``."""
    rows = await conn.fetch(
        f"""SELECT {_DEVICE_COLUMNS} FROM devices
            WHERE uid = $1 AND NOT (bus = $2 AND address = $3)""",
        uid,
        bus,
        address,
    )
    return [DeviceRow(**dict(r)) for r in rows]


async def update_seen(
    conn: asyncpg.Connection | asyncpg.Pool,
    bus: str,
    address: int,
    *,
    uid: str | None,
    firmware: str | None,
    boot_id: int | None,
    state: str,
    last_seen: datetime | None,
    now: datetime,
) -> None:
    await conn.execute(
        """UPDATE devices SET uid = COALESCE($3, uid), firmware = COALESCE($4, firmware),
               boot_id = COALESCE($5, boot_id),
               state_since = CASE WHEN state = $6::device_health THEN state_since ELSE $8 END,
               state = $6::device_health,
               last_seen = GREATEST(last_seen, $7)
           WHERE bus = $1 AND address = $2""",
        bus,
        address,
        uid,
        firmware,
        boot_id,
        state,
        last_seen,
        now,
    )


async def add_alarm(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    hall_id: str,
    bus: str,
    address: int,
    uid: str | None,
    kind: str,
    detail: str,
    at: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO device_alarms (hall_id, bus, address, uid, kind, detail, at)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        hall_id,
        bus,
        address,
        uid,
        kind,
        detail,
        at,
    )


async def alarms_of_hall(
    conn: asyncpg.Connection | asyncpg.Pool, hall_id: str, limit: int = 200
) -> list[AlarmRow]:
    rows = await conn.fetch(
        """SELECT id, bus, address, uid, kind, detail, at FROM device_alarms
           WHERE hall_id = $1 ORDER BY id DESC LIMIT $2""",
        hall_id,
        limit,
    )
    return [AlarmRow(**dict(r)) for r in rows]


# --- exactly-once keys ---------------------------------------------------------------------


async def claim_event(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    bus: str,
    address: int,
    uid: str,
    boot_id: int,
    evt_seq: int,
    hall_id: str,
    evt_type: int,
    outcome: str,
    now: datetime,
) -> bool:
    """Store the event's key with ``outcome``, in one statement (migration 0024); False if it
    was stored before (a duplicate: no effect).

    §8.3 boot handling comes first: when the registry row at (bus, address) does not carry
    this boot_id, or the event is its boot's first, this uid's keys of this boot_id older than
    ``STALE_KEYS_AFTER`` are forgotten (§15.4). A delivery of the same key in another
    transaction waits here until that one ends (the key's unique index)."""
    inserted = await conn.fetchval(
        "SELECT claim_device_event($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        bus,
        address,
        uid,
        boot_id,
        evt_seq,
        hall_id,
        evt_type,
        outcome,
        now,
        STALE_KEYS_AFTER,
    )
    return bool(inserted)


_CLAIM_LOCKING = f"""
WITH k AS MATERIALIZED (
    SELECT claim_device_event($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) AS claimed)
SELECT k.claimed, {COUNTER_READ_COLUMNS},
       (SELECT s.version FROM counters s WHERE s.hall_id = $6 AND s.number = $11) AS seen_version,
       CASE WHEN c.number IS NOT NULL THEN pg_current_xact_id_if_assigned()::text END AS xid,
       CASE WHEN c.number IS NOT NULL THEN snapshot_now() END AS snapshot
FROM k LEFT JOIN LATERAL (
    SELECT * FROM counters
    WHERE hall_id = $6 AND number = $11 AND active AND k.claimed
    FOR UPDATE) c ON true
LEFT JOIN LATERAL ({ACTIVE_TICKET}) t ON true"""


@dataclass(frozen=True, slots=True)
class LockedCounter:
    """A device event's counter as its key statement locked it
    (``claim_event_locking_counter``)."""

    status: CounterStatus
    """The counter's row as locked: the latest committed, even after waiting for the lock."""
    read: repo.CounterRead | None
    """The counter with its active ticket, current under the lock, for the counter action to
    decide on without reading it again (``UnitOfWork.counters``); None when the lock waited
    for a transaction that changed the counter: the ticket was read in the statement's
    snapshot, from before that change, and the action reads the counter itself."""
    xid: int | None
    """The event's transaction id (the key's insert assigned it)."""
    snapshot: str
    """A snapshot taken after the lock was granted (``snapshot_now()``, migration 0025): it
    saw every transaction that held the counter's lock before this one."""


async def claim_event_locking_counter(
    conn: asyncpg.Connection,
    *,
    bus: str,
    address: int,
    uid: str,
    boot_id: int,
    evt_seq: int,
    hall_id: str,
    evt_type: int,
    outcome: str,
    now: datetime,
    counter: int,
) -> tuple[bool, LockedCounter | None]:
    """``claim_event`` and, when the key is new, the lock (FOR UPDATE) of the hall's active
    counter ``counter`` with its active ticket read, in one round trip: (whether the key is
    new, the counter as locked).

    The lateral lock runs after the claim (it depends on its result), so a duplicate locks
    nothing. A lock that waited for another transaction returns the row that transaction
    committed, but the ticket's lateral read is not re-read: it sees the statement's
    snapshot, from before the wait. The counter's version in that snapshot
    (``seen_version``) tells: the same as the locked row's, no transaction changed the
    counter in between, and so none changed its active ticket (an active ticket changes only
    through its counter's actions, which bump the version)."""
    row = await conn.fetchrow(
        _CLAIM_LOCKING,
        bus,
        address,
        uid,
        boot_id,
        evt_seq,
        hall_id,
        evt_type,
        outcome,
        now,
        STALE_KEYS_AFTER,
        counter,
    )
    assert row is not None
    if row["c_number"] is None:
        return bool(row["claimed"]), None
    read = counter_read_from_record(row)
    xid = row["xid"]
    locked = LockedCounter(
        read.status,
        read if row["seen_version"] == read.version else None,
        None if xid is None else int(xid),
        row["snapshot"],
    )
    return True, locked


async def set_outcome(
    conn: asyncpg.Connection, uid: str, boot_id: int, evt_seq: int, outcome: str
) -> None:
    await conn.execute(
        """UPDATE device_events_seen SET outcome = $4
           WHERE device_uid = $1 AND boot_id = $2 AND evt_seq = $3""",
        uid,
        boot_id,
        evt_seq,
        outcome,
    )


async def outcome_of(
    conn: asyncpg.Connection | asyncpg.Pool, uid: str, boot_id: int, evt_seq: int
) -> str | None:
    value: str | None = await conn.fetchval(
        """SELECT outcome FROM device_events_seen
           WHERE device_uid = $1 AND boot_id = $2 AND evt_seq = $3""",
        uid,
        boot_id,
        evt_seq,
    )
    return value


# --- what devices show ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HallScene:
    """What one desired-state pass reads of a hall, in one statement (one snapshot)."""

    last_seq: int
    """The hall's last numbered event, and how many committed events the sequencer had not
    numbered yet: how far the read reached (hall.storage.sequencer.Seen)."""
    unnumbered: int
    counters: list[CounterDeviceView]
    calls: list[tuple[int, str, int, str | None, bool]]
    """The latest calls and recalls, newest first: (event id, number, counter, service,
    recall); empty unless asked for."""
    staff_names: dict[str, str]
    """The names of the clerks signed in at the hall's counters."""
    snapshot: str = ""
    """The read's snapshot (``pg_current_snapshot()``: "xmin:xmax:xip,..."): which
    transactions it saw."""


_SCENE = """
SELECT h.last_seq,
       (SELECT count(*) FROM events u WHERE u.hall_id = h.id AND u.seq IS NULL) AS unnumbered,
       ARRAY(SELECT ROW(c.number, c.state::text, c.clerk, t.id, t.display_number,
                        t.state::text, t.service_code, COALESCE(t.recall_count, 0))
             FROM counters c
             LEFT JOIN tickets t ON t.hall_id = c.hall_id AND t.counter_number = c.number
                  AND t.state IN ('called', 'serving')
             WHERE c.hall_id = h.id AND c.active ORDER BY c.number) AS counters,
       -- The types are literals so that the partial index events_calls matches.
       ARRAY(SELECT ROW(e.id, e.details->>'display_number', e.counter_number,
                        e.details->>'service_code', e.type = 'ticket.recalled')
             FROM events e WHERE e.hall_id = h.id
                  AND e.type IN ('ticket.called', 'ticket.recalled')
             ORDER BY e.seq DESC NULLS FIRST, e.id DESC LIMIT $2) AS calls,
       ARRAY(SELECT ROW(s.job_no, s.name) FROM staff s
             WHERE s.job_no IN (SELECT k.clerk FROM counters k
                                WHERE k.hall_id = h.id AND k.active)) AS staff,
       pg_current_snapshot()::text AS snapshot
FROM halls h WHERE h.id = $1"""


async def hall_scene(conn: asyncpg.Connection, hall_id: str, calls: int) -> HallScene:
    """Every active counter with its active ticket, the ``calls`` latest calls, the signed-in
    clerks' names and the read's place in the event log, in one round trip and snapshot."""
    row = await conn.fetchrow(_SCENE, hall_id, calls)
    if row is None:
        return HallScene(0, 0, [], [], {})
    return HallScene(
        last_seq=row["last_seq"],
        unnumbered=row["unnumbered"],
        counters=[CounterDeviceView(*c) for c in row["counters"]],
        calls=list(row["calls"]),
        staff_names=dict(row["staff"]),
        snapshot=row["snapshot"],
    )


_COUNTER = f"""
SELECT {COUNTER_READ_COLUMNS},
       pg_current_xact_id()::text AS xid, pg_current_snapshot()::text AS snapshot
FROM counters c
LEFT JOIN LATERAL ({ACTIVE_TICKET}) t ON true
WHERE c.hall_id = $1 AND c.number = $2 AND c.active"""


@dataclass(frozen=True, slots=True)
class CounterRead:
    """One counter as a transaction sees it before its commit: the view, the transaction's
    id and the statement's snapshot (what else it saw)."""

    view: CounterDeviceView
    xid: int
    snapshot: str
    locked: bool = False
    """Whether the transaction held the counter's lock from before ``snapshot`` was taken
    until its commit (``ReadPoint.locked``)."""


async def counter_in_transaction(
    conn: asyncpg.Connection, hall_id: str, number: int
) -> CounterRead | None:
    """The counter with its active ticket as the open transaction on ``conn`` sees it (its own
    writes included), for rendering its devices at once after the commit; None when the
    counter is not active."""
    row = await conn.fetchrow(_COUNTER, hall_id, number)
    if row is None:
        return None
    view = device_view(counter_read_from_record(row))
    return CounterRead(view, int(row["xid"]), row["snapshot"])
