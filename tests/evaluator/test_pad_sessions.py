"""A call opens the visit's pad session, once, in the call's own transaction (migration 0055).

The session is opened by a trigger on the call event without a subtransaction and without
locking the hall's row; what the database enforced before still holds: one session per
(counter, ticket), a random id drawn again when taken, and a session's hall exists and
cannot be deleted under it.
"""

from __future__ import annotations

import asyncpg
import pytest

from hall.config.models import HallConfig
from hall.ports import FixedClock
from hall.services.directory import Directory
from hall.services.queue import ActionParams, CounterAction, IssueTicket, QueueService

CALLED = """INSERT INTO events (hall_id, type, at, actor, ticket_id, counter_number)
            VALUES ('test', 'ticket.called', now(), 'c001', $1, 1)"""


async def called(pool: asyncpg.Pool, config: HallConfig, clock: FixedClock) -> int:
    """A ticket issued and called at counter 1 by c001; its id."""
    service = QueueService(pool, Directory(config), clock)
    view = await service.issue(IssueTicket(hall_id="test", service_code="BDC"))
    await service.act("test", 1, CounterAction.OPEN, "c001", ActionParams(clerk="c001"))
    await service.act("test", 1, CounterAction.CALL_NEXT, "c001")
    ticket: int = view.ticket.id
    return ticket


async def test_a_call_opens_one_session_for_the_visit_with_the_clerk(
    pool: asyncpg.Pool, config: HallConfig, clock: FixedClock
) -> None:
    ticket = await called(pool, config, clock)
    sessions = await pool.fetch(
        "SELECT id, hall_id, counter_number, ticket_id, clerk FROM pad_sessions"
    )
    assert [(r["hall_id"], r["counter_number"], r["ticket_id"], r["clerk"]) for r in sessions] == [
        ("test", 1, ticket, "c001")
    ]
    assert 1 <= sessions[0]["id"] <= 0xFFFFFFFF
    # Another call event of the same visit (written by hand here) opens nothing more.
    await pool.execute(CALLED, ticket)
    assert await pool.fetchval("SELECT count(*) FROM pad_sessions") == 1


async def test_a_random_id_already_taken_is_drawn_again(
    pool: asyncpg.Pool, config: HallConfig, clock: FixedClock
) -> None:
    first = await called(pool, config, clock)
    taken = await pool.fetchval("SELECT id FROM pad_sessions WHERE ticket_id = $1", first)
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            # Within this transaction only: the first draw returns the id already taken.
            await conn.execute("CREATE TEMPORARY SEQUENCE draws")
            await conn.execute(
                f"""CREATE OR REPLACE FUNCTION evaluator_random_session() RETURNS bigint
                    LANGUAGE sql VOLATILE AS $$
                    SELECT CASE WHEN nextval('draws') = 1 THEN {taken}::bigint ELSE 77 END $$"""
            )
            spare = await conn.fetchval(
                """INSERT INTO tickets (hall_id, service_code, number_group, business_day, seq,
                       display_number, token, purpose, issued_at, queue_key)
                   SELECT hall_id, service_code, number_group, business_day, seq + 100,
                       'Z1', 'spare', purpose, issued_at, queue_key
                   FROM tickets WHERE id = $1 RETURNING id""",
                first,
            )
            await conn.execute(CALLED, spare)
            rows = await conn.fetch("SELECT id, ticket_id FROM pad_sessions ORDER BY n")
            assert [(r["id"], r["ticket_id"]) for r in rows] == [(taken, first), (77, spare)]
            assert await conn.fetchval("SELECT nextval('draws')") == 3  # two draws before
        finally:
            await tx.rollback()
    assert await pool.fetchval("SELECT count(*) FROM pad_sessions") == 1


async def test_a_session_of_an_unknown_hall_is_refused_and_its_hall_cannot_be_deleted(
    pool: asyncpg.Pool, config: HallConfig, clock: FixedClock
) -> None:
    ticket = await called(pool, config, clock)
    insert = """INSERT INTO pad_sessions (id, hall_id, counter_number, ticket_id, opened_at)
                VALUES ($1, $2, 1, $3, now())"""
    with pytest.raises(asyncpg.ForeignKeyViolationError, match="unknown hall"):
        await pool.execute(insert, 5, "nowhere", ticket)
    # Hall "north" has no events; only this session refers to it.
    await pool.execute(insert, 6, "north", ticket)
    with pytest.raises(asyncpg.ForeignKeyViolationError, match="referenced by pad sessions"):
        await pool.execute("DELETE FROM halls WHERE id = 'north'")
    assert await pool.fetchval("SELECT count(*) FROM halls WHERE id = 'north'") == 1
