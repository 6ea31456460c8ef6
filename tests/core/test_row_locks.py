"""What PostgreSQL locks on its own when a ticket is issued and served (issue 9, CPU per
operation). A row lock that is not part of an update is a WAL record and a dirtied page of
its own; these tests read the WAL the operations wrote (pg_walinspect).

- Issuing does not lock the ticket's service (migration 0105 replaced the foreign key
  tickets -> services, whose check locked it FOR KEY SHARE at every issue); a ticket of an
  unknown service is still refused, and a service that tickets refer to cannot be deleted.
- An audit row takes no entry in the log's time index (migration 0106: a BRIN index).
- The waiting tally's trigger runs only when a ticket enters or leaves the queue, or
  moves (migration 0107): not for starting or finishing it.
- Numbering several tickets of a group in one transaction (a group commit batch) does not
  lock the hall's row (migration 0108 replaced the foreign key number_counters -> halls,
  whose check ran again, and locked the hall FOR KEY SHARE, at every update of a counter row
  the transaction had already written); a number counter of an unknown hall is still
  refused, and a hall that number counters refer to cannot be deleted.
- Start and finish lock the counter and then update the ticket, without locking the ticket
  beforehand (``repo.write_action``); only call-next, which must skip a ticket another
  counter is taking, locks its ticket on its own.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace
from datetime import timedelta

import asyncpg
import pytest

from hall.config.models import HallConfig
from hall.ports import FixedClock
from hall.services.directory import Directory
from hall.services.queue import CounterAction, IssueTicket, QueueService
from hall.storage import repo
from hall.storage.access_repo import AuditEntry, append_audit

A = CounterAction


@pytest.fixture
def service(pool: asyncpg.Pool, config: HallConfig, clock: FixedClock) -> QueueService:
    return QueueService(pool, Directory(config), clock)


async def wal_position(pool: asyncpg.Pool) -> str:
    position: str = await pool.fetchval("SELECT pg_current_wal_insert_lsn()::text")
    return position


async def row_locks(pool: asyncpg.Pool, since: str) -> Counter[str]:
    """Heap LOCK records written since ``since``, by table."""
    async with pool.acquire() as conn:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
        # The test server commits asynchronously: a synchronous commit of a transaction that
        # wrote WAL flushes it up to here, so that pg_walinspect can read all of it.
        await conn.execute("SET synchronous_commit = on")
        async with conn.transaction():
            await conn.execute("SELECT pg_logical_emit_message(true, 'test', 'flush')")
        end = await conn.fetchval("SELECT pg_current_wal_flush_lsn()::text")
        rows = await conn.fetch(
            """SELECT c.relname::text AS rel, count(*) AS n
               FROM pg_get_wal_block_info($1::text::pg_lsn, $2::text::pg_lsn) b
               JOIN pg_class c ON pg_relation_filenode(c.oid) = b.relfilenode
               WHERE b.resource_manager = 'Heap' AND b.record_type = 'LOCK'
               GROUP BY c.relname""",
            since,
            end,
        )
    return Counter({r["rel"]: r["n"] for r in rows})


async def test_issuing_locks_no_service_row(service: QueueService, pool: asyncpg.Pool) -> None:
    await service.issue(IssueTicket(hall_id="test", service_code="BDC"))  # the day's first
    since = await wal_position(pool)
    for _ in range(3):
        await service.issue(IssueTicket(hall_id="test", service_code="BDC"))
    assert (await row_locks(pool, since))["services"] == 0


async def test_issuing_goes_on_while_the_service_row_is_locked(
    service: QueueService, pool: asyncpg.Pool
) -> None:
    await service.issue(IssueTicket(hall_id="test", service_code="BDC"))
    async with pool.acquire() as holder, holder.transaction():
        # An administrator's transaction editing the service (FOR UPDATE conflicts with the
        # FOR KEY SHARE a foreign key check would take).
        await holder.execute(
            "SELECT 1 FROM services WHERE hall_id = 'test' AND code = 'BDC' FOR UPDATE"
        )
        view = await asyncio.wait_for(
            service.issue(IssueTicket(hall_id="test", service_code="BDC")), timeout=10
        )
    assert view.ticket.display_number == "A002"


async def test_start_and_finish_lock_no_ticket_on_its_own(
    service: QueueService, pool: asyncpg.Pool
) -> None:
    await service.issue(IssueTicket(hall_id="test", service_code="BDC"))
    await service.act("test", 1, A.OPEN, "c001")
    await service.act("test", 1, A.CALL_NEXT, "c001")
    since = await wal_position(pool)
    await service.act("test", 1, A.START, "c001")
    await service.act("test", 1, A.FINISH, "c001")
    locks = await row_locks(pool, since)
    assert locks["tickets"] == 0
    assert locks["counters"] == 2  # each action still locks its counter at the version read
    assert await pool.fetchval("SELECT state::text FROM tickets") == "done"


async def test_a_ticket_of_an_unknown_service_is_refused(
    service: QueueService, pool: asyncpg.Pool
) -> None:
    view = await service.issue(IssueTicket(hall_id="test", service_code="BDC"))
    copy = """INSERT INTO tickets (hall_id, service_code, number_group, business_day, seq,
                  display_number, token, purpose, issued_at, queue_key)
              SELECT hall_id, $2, number_group, business_day + $3::int, seq + 100,
                  'Z' || $3::int, 'spare-' || $3::int, purpose, issued_at, queue_key
              FROM tickets WHERE id = $1"""
    # The day's first ticket of a service (no service-day row yet) and a later one.
    with pytest.raises(asyncpg.ForeignKeyViolationError, match="unknown service"):
        await pool.execute(copy, view.ticket.id, "NOPE", 1)
    await pool.execute(copy, view.ticket.id, "BDC", 1)
    with pytest.raises(asyncpg.ForeignKeyViolationError, match="unknown service"):
        await pool.execute(copy, view.ticket.id, "NOPE", 0)
    # Moving a ticket to a service that does not exist.
    with pytest.raises(asyncpg.ForeignKeyViolationError, match="unknown service"):
        await pool.execute("UPDATE tickets SET service_code = 'NOPE' WHERE id = $1", view.ticket.id)
    assert await pool.fetchval("SELECT count(*) FROM tickets") == 2


async def test_a_service_that_tickets_refer_to_cannot_go(
    service: QueueService, pool: asyncpg.Pool
) -> None:
    await service.issue(IssueTicket(hall_id="test", service_code="BDC"))
    with pytest.raises(asyncpg.ForeignKeyViolationError, match="referenced by tickets"):
        await pool.execute("DELETE FROM services WHERE hall_id = 'test' AND code = 'BDC'")
    with pytest.raises(asyncpg.ForeignKeyViolationError, match="referenced by tickets"):
        await pool.execute("UPDATE services SET code = 'X' WHERE hall_id = 'test' AND code = 'BDC'")
    # Other columns of a service may change; a service nothing refers to may go.
    await pool.execute("UPDATE services SET active = active WHERE hall_id = 'test'")
    unused = await pool.fetchval(
        "SELECT code FROM services WHERE hall_id = 'test' AND code <> 'BDC' ORDER BY code LIMIT 1"
    )
    await pool.execute("DELETE FROM services WHERE hall_id = 'test' AND code = $1", unused)
    assert (
        await pool.fetchval("SELECT count(*) FROM services WHERE hall_id = 'test' AND code = 'BDC'")
        == 1
    )


async def index_entries(pool: asyncpg.Pool, since: str, index: str) -> int:
    async with pool.acquire() as conn:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
        await conn.execute("SET synchronous_commit = on")
        async with conn.transaction():
            await conn.execute("SELECT pg_logical_emit_message(true, 'test', 'flush')")
        n: int = await conn.fetchval(
            """SELECT count(*) FROM pg_get_wal_block_info($1::text::pg_lsn,
                   pg_current_wal_flush_lsn()) b
               WHERE b.relfilenode = pg_relation_filenode($2::regclass)""",
            since,
            index,
        )
    return n


async def test_an_audit_row_writes_nothing_to_the_audit_time_index(
    pool: asyncpg.Pool, clock: FixedClock
) -> None:
    entry = AuditEntry(
        at=clock.now(), actor="c001", actor_kind="staff", session_id=None, route="issue",
        method="POST", path="/api/v1/tickets", params={}, remote=None, user_agent=None,
        status=201,
    )  # fmt: skip
    await append_audit(pool, entry)
    # The block range being filled is not summarized: VACUUM summarizes only full ranges
    # (CREATE INDEX, and TRUNCATE in these tests, summarize the last one too).
    await pool.execute("SELECT brin_desummarize_range('audit_log_at', 0)")
    since = await wal_position(pool)
    for n in range(1, 3):
        await append_audit(pool, replace(entry, at=entry.at + timedelta(seconds=n)))
    assert await pool.fetchval("SELECT count(*) FROM audit_log") == 3
    assert await index_entries(pool, since, "audit_log_at") == 0
    assert await index_entries(pool, since, "audit_log_actor") == 2
    # A period of the log is still read through the index.
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")
        plan = await conn.fetchval(
            "EXPLAIN (FORMAT JSON) SELECT * FROM audit_log WHERE at >= $1", clock.now()
        )
    assert "audit_log_at" in str(plan)


async def tally_calls(conn: asyncpg.Connection) -> int:
    n: int | None = await conn.fetchval(
        "SELECT calls FROM pg_stat_xact_user_functions WHERE funcname = 'tickets_tally'"
    )
    return n or 0


async def test_the_tally_trigger_runs_only_for_moves_in_and_out_of_the_queue(
    service: QueueService, pool: asyncpg.Pool
) -> None:
    first = await service.issue(IssueTicket(hall_id="test", service_code="BDC"))
    await service.issue(IssueTicket(hall_id="test", service_code="BDC"))
    ticket = first.ticket.id
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL track_functions = 'all'")
        await conn.execute(
            "UPDATE tickets SET state = 'called', counter_number = 1, called_at = now(),"
            " first_called_at = now() WHERE id = $1",
            ticket,
        )
        assert await tally_calls(conn) == 1  # left the queue
        await conn.execute(
            "UPDATE tickets SET state = 'serving', serve_started_at = now() WHERE id = $1", ticket
        )
        await conn.execute(
            "UPDATE tickets SET state = 'done', counter_number = NULL, finished_at = now()"
            " WHERE id = $1",
            ticket,
        )
        assert await tally_calls(conn) == 1  # neither: no call
        await conn.execute("UPDATE tickets SET service_code = 'TAX' WHERE id = $1 + 1", ticket)
        assert await tally_calls(conn) == 2  # a waiting ticket moved to another service
    tallies = await pool.fetch(
        "SELECT service_code, sum(waiting)::int AS n FROM queue_tallies"
        " GROUP BY service_code HAVING sum(waiting) <> 0 ORDER BY service_code"
    )
    assert [tuple(r) for r in tallies] == [("TAX", 1)]


async def issue_in(conn: asyncpg.Connection, clock: FixedClock, token: str) -> None:
    """The issue statement as the group commit runs it: on a connection, in its transaction."""
    await repo.issue_in_one_statement(
        conn, hall_id="test", number_group="BDC", business_day=clock.now().date(),
        number_start=1, service_code="BDC", prefix="A", width=3, token=token, purpose="apply",
        priority_class=None, issued_at=clock.now(), appointment_start=None,
        appointment_end=None, kiosk=None, idempotency_key=None, idempotency_hash=None,
        quota=None, actor="test", details={}, counters=[1],
    )  # fmt: skip


async def test_a_batch_of_issues_locks_no_hall_row(
    service: QueueService, pool: asyncpg.Pool, clock: FixedClock
) -> None:
    await service.issue(IssueTicket(hall_id="test", service_code="BDC"))  # the day's first
    since = await wal_position(pool)
    async with pool.acquire() as conn, conn.transaction():
        for n in range(3):
            await issue_in(conn, clock, f"batch-{n}")
        locks = await row_locks(pool, since)
        assert locks["halls"] == 0
        assert locks["number_counters"] == 0  # each update is its own lock
        # Another group's batch or the sequencer meanwhile: FOR UPDATE conflicts with the
        # FOR KEY SHARE a foreign key check takes.
        async with pool.acquire() as other, other.transaction():
            await other.execute("SELECT 1 FROM halls WHERE id = 'test' FOR UPDATE NOWAIT")
    numbers = await pool.fetch("SELECT display_number FROM tickets ORDER BY id")
    assert [r["display_number"] for r in numbers] == ["A001", "A002", "A003", "A004"]


async def test_a_number_counter_of_an_unknown_hall_is_refused(
    service: QueueService, pool: asyncpg.Pool, clock: FixedClock
) -> None:
    await service.issue(IssueTicket(hall_id="test", service_code="BDC"))
    day = clock.now().date()
    with pytest.raises(asyncpg.ForeignKeyViolationError, match="unknown hall"):
        await pool.execute("INSERT INTO number_counters VALUES ('nowhere', 'BDC', $1, 1, 1)", day)
    with pytest.raises(asyncpg.ForeignKeyViolationError, match="unknown hall"):
        await pool.execute("UPDATE number_counters SET hall_id = 'nowhere'")
    # Numbering updates the row without its hall: no check, and it goes on.
    view = await service.issue(IssueTicket(hall_id="test", service_code="BDC"))
    assert view.ticket.display_number == "A002"


async def test_a_hall_that_number_counters_refer_to_cannot_go(
    pool: asyncpg.Pool, clock: FixedClock
) -> None:
    # A hall nothing else refers to (whose own checks would refuse first): a number counter.
    await pool.execute(
        "INSERT INTO halls (id, name, level, tz, day_boundary)"
        " VALUES ('bare', 'bare', 'county', 'Asia/Shanghai', '00:00')"
    )
    await pool.execute(
        "INSERT INTO number_counters VALUES ('bare', 'BDC', $1, 1, 1)", clock.now().date()
    )
    with pytest.raises(asyncpg.ForeignKeyViolationError, match="referenced by number counters"):
        await pool.execute("DELETE FROM halls WHERE id = 'bare'")
    with pytest.raises(asyncpg.ForeignKeyViolationError, match="referenced by number counters"):
        await pool.execute("UPDATE halls SET id = 'elsewhere' WHERE id = 'bare'")
    # The sequencer's update of its hall takes no row lock before it (a trigger BEFORE an
    # update, even of another column, would).
    since = await wal_position(pool)
    await pool.execute("UPDATE halls SET last_seq = last_seq + 1 WHERE id = 'bare'")
    assert (await row_locks(pool, since))["halls"] == 0
    assert await pool.fetchval("SELECT count(*) FROM halls WHERE id = 'bare'") == 1
    # Once nothing refers to it, it may be renamed and deleted.
    await pool.execute("DELETE FROM number_counters WHERE hall_id = 'bare'")
    await pool.execute("UPDATE halls SET id = 'elsewhere' WHERE id = 'bare'")
    await pool.execute("DELETE FROM halls WHERE id = 'elsewhere'")
