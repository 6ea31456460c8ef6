"""The hot paths' queries cost the same whatever the queue depth and the day's history.

Each read of call-next, issuing, the ticket page, the kiosk's service list and the screens'
snapshot is run under EXPLAIN (ANALYZE, BUFFERS) on a hall with a short queue and again on
the same hall with ten times the waiting and finished tickets and events: the pages it
touches may grow by an index level, never with the queue, and no plan scans a whole table.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Any, cast

import asyncpg

from hall.ports import FixedClock
from hall.storage import devices_repo, repo

DAY = date(2026, 11, 24)


class Explaining:
    """Passes reads to a connection after running each under EXPLAIN; keeps the plans."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.plans: list[dict[str, Any]] = []

    async def _explain(self, query: str, args: tuple[object, ...]) -> None:
        text = await self.conn.fetchval("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + query, *args)
        # The pool's JSON codec may already have decoded it.
        plan = json.loads(text) if isinstance(text, str) else text
        self.plans.append(plan[0]["Plan"])

    async def fetch(self, query: str, *args: object) -> list[asyncpg.Record]:
        await self._explain(query, args)
        rows: list[asyncpg.Record] = await self.conn.fetch(query, *args)
        return rows

    async def fetchrow(self, query: str, *args: object) -> asyncpg.Record | None:
        await self._explain(query, args)
        return await self.conn.fetchrow(query, *args)

    async def fetchval(self, query: str, *args: object) -> object:
        await self._explain(query, args)
        return await self.conn.fetchval(query, *args)


def pages(plan: dict[str, Any]) -> int:
    return int(plan["Shared Hit Blocks"]) + int(plan["Shared Read Blocks"])


def scans(plan: dict[str, Any]) -> list[tuple[str, str]]:
    """(node type, relation) of every scan in the plan."""
    found = []
    if "Relation Name" in plan:
        found.append((plan["Node Type"], plan["Relation Name"]))
    for child in plan.get("Plans", []):
        found += scans(child)
    return found


async def grow(pool: asyncpg.Pool, start: int, count: int, clock: FixedClock) -> None:
    """Add ``count`` waiting and ``count`` finished tickets of BDC, and their events."""
    t0 = clock.now() - timedelta(hours=2)
    await pool.execute(
        """INSERT INTO tickets (hall_id, service_code, number_group, business_day, seq,
               display_number, token, purpose, state, issued_at, queue_key,
               serve_started_at, finished_at)
           SELECT 'test', 'BDC', 'BDC', $1, g, 'A' || lpad(g::text, 6, '0'),
               md5('t' || g), 'apply',
               CASE WHEN g % 2 = 0 THEN 'waiting' ELSE 'done' END::ticket_state,
               $3::timestamptz + g * interval '10 ms', $3::timestamptz + g * interval '10 ms',
               CASE WHEN g % 2 = 1 THEN $3::timestamptz + g * interval '10 ms' END,
               CASE WHEN g % 2 = 1
                    THEN $3::timestamptz + g * interval '10 ms' + interval '5 min' END
           FROM generate_series($2::int, $2::int + 2 * $4::int - 1) g""",
        DAY,
        start,
        t0,
        count,
    )
    await pool.execute(
        """INSERT INTO events (hall_id, type, at, actor, ticket_id, details)
           SELECT 'test', 'ticket.issued', issued_at, 'kiosk', id,
                  jsonb_build_object('display_number', display_number, 'service_code', 'BDC')
           FROM tickets WHERE hall_id = 'test' AND seq >= $1""",
        start,
    )
    async with pool.acquire() as conn:
        await repo.sequence_events(conn, "test")
        # What autovacuum does in a running hall: this bulk load updated each tally row
        # thousands of times in one transaction, far more than a hall does between vacuums.
        await conn.execute("VACUUM ANALYZE tickets, events, queue_tallies, service_days")


Read = Callable[[asyncpg.Connection], Awaitable[object]]


async def hot_reads(pool: asyncpg.Pool, clock: FixedClock) -> dict[str, list[dict[str, Any]]]:
    """Every hot read once, with its plans."""
    async with pool.acquire() as raw:
        newest = await raw.fetchrow(
            "SELECT * , state::text AS state FROM tickets WHERE state = 'waiting'"
            " ORDER BY queue_key DESC, id DESC LIMIT 1"
        )
        assert newest is not None
        ticket = repo.ticket_from_record(newest)
        last = await raw.fetchval("SELECT last_seq FROM halls WHERE id = 'test'")
        reads: dict[str, Read] = {
            "candidates": lambda c: repo.candidates(
                c, "test", 1, ["BDC", "TAX"], appointments_from=clock.now()
            ),
            "call_heads": lambda c: repo.call_heads(
                c, "test", 1, ["BDC", "TAX"], appointments_from=clock.now()
            ),
            "queue_position": lambda c: repo.queue_position(c, ticket, [1, 2]),
            "service_stats": lambda c: repo.service_stats(c, "test", DAY),
            "waiting_counts": lambda c: repo.waiting_counts(c, "test"),
            "counters_of_hall": lambda c: repo.counters_of_hall(c, "test"),
            "recent_calls": lambda c: repo.recent_calls(c, "test", 10),
            "hall_scene": lambda c: devices_repo.hall_scene(c, "test", 50),
            "events_after": lambda c: repo.events_after(c, "test", last - 3),
            "ticket_by_number": lambda c: repo.ticket_by_number(c, "test", DAY, "A000010"),
            "head_queue_key": lambda c: repo.head_queue_key(c, "test", "BDC"),
            "counter_for_action": lambda c: repo.counter_for_action(c, "test", 1),
            "issued_today": lambda c: repo.issued_today(c, "test", "BDC", DAY),
        }
        plans: dict[str, list[dict[str, Any]]] = {}
        for name, read in reads.items():
            spy = Explaining(raw)
            await read(cast(asyncpg.Connection, spy))
            plans[name] = spy.plans
    return plans


async def test_hot_reads_touch_the_same_pages_at_ten_times_the_depth(
    pool: asyncpg.Pool, clock: FixedClock
) -> None:
    await pool.execute("UPDATE counters SET state = 'idle' WHERE hall_id = 'test'")
    await pool.execute(
        "INSERT INTO events (hall_id, type, at, actor, counter_number, details)"
        " SELECT 'test', 'ticket.called', $1, 'c001', 1, '{}' FROM generate_series(1, 10)",
        clock.now(),
    )
    await grow(pool, 1, 400, clock)
    shallow = await hot_reads(pool, clock)
    await grow(pool, 801, 4000, clock)
    deep = await hot_reads(pool, clock)
    assert await pool.fetchval("SELECT sum(waiting) FROM queue_tallies") == 4400
    report = {}
    for name in shallow:
        before = sum(pages(p) for p in shallow[name])
        after = sum(pages(p) for p in deep[name])
        report[name] = (before, after)
        for plan in deep[name]:
            for node, relation in scans(plan):
                assert not (node == "Seq Scan" and relation in ("tickets", "events")), (name, plan)
    print(report)
    # An index may gain a level between the two sizes; nothing may grow with the queue.
    grew = {name: (b, a) for name, (b, a) in report.items() if a > b + 4}
    assert not grew, grew


async def test_people_ahead_from_the_tally_matches_a_full_count(
    pool: asyncpg.Pool, clock: FixedClock
) -> None:
    """Near the back, in the middle and at the front of a long queue."""
    await grow(pool, 1, 600, clock)
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT *, state::text AS state FROM tickets WHERE state = 'waiting'"
            " ORDER BY queue_key, id"
        )
        for index in (0, 1, 250, 499, 500, 598, 599):
            ticket = repo.ticket_from_record(rows[index])
            facts = await repo.queue_position(conn, ticket, [1])
            assert facts.ahead == index, index


def indexes(plan: dict[str, Any]) -> set[str]:
    """Names of the indexes a plan reads."""
    found = {plan["Index Name"]} if "Index Name" in plan else set()
    for child in plan.get("Plans", []):
        found |= indexes(child)
    return found


async def test_reads_by_day_number_and_idempotency_key_keep_their_indexes(
    pool: asyncpg.Pool, clock: FixedClock
) -> None:
    """Migration 0100 dropped tickets_day (a prefix of tickets_number) and keeps only keyed
    tickets in the idempotency index: each read that used them still reads an index."""
    await grow(pool, 1, 400, clock)
    # Earlier days, so that one day is a small part of the table, as in a running hall.
    await pool.execute(
        """INSERT INTO tickets (hall_id, service_code, number_group, business_day, seq,
               display_number, token, purpose, state, issued_at, queue_key, finished_at)
           SELECT 'test', 'BDC', 'BDC', $1::date - d, g, 'A' || lpad(g::text, 6, '0'),
               md5('old' || d || '-' || g), 'apply', 'done', $2, $2, $2
           FROM generate_series(1, 30) d, generate_series(1, 200) g""",
        DAY,
        clock.now(),
    )
    await pool.execute(
        "UPDATE tickets SET idempotency_key = 'key-' || id, idempotency_hash = 'h'"
        " WHERE id % 50 = 0"
    )
    keyed = await pool.fetchval("SELECT max(id) FROM tickets WHERE idempotency_key IS NOT NULL")
    await pool.execute("ANALYZE tickets")
    async with pool.acquire() as conn:
        spy = Explaining(conn)
        found = await repo.ticket_by_idempotency_key(
            cast(asyncpg.Connection, spy), "test", f"key-{keyed}"
        )
        assert found is not None
        assert await repo.ticket_by_number(cast(asyncpg.Connection, spy), "test", DAY, "A000010")
        await spy.fetchval(
            "SELECT count(*) FROM tickets WHERE hall_id = $1 AND business_day = $2",
            "test",
            DAY - timedelta(days=3),
        )
        await spy.fetchval(
            "SELECT count(*) FROM tickets WHERE hall_id = $1 AND business_day BETWEEN $2 AND $3",
            "test",
            DAY - timedelta(days=5),
            DAY - timedelta(days=3),
        )
    by_key, by_number, one_day, days = spy.plans
    assert indexes(by_key) == {"tickets_idempotency_key"}, by_key
    assert indexes(by_number) == {"tickets_number"}, by_number
    for plan in (one_day, days):
        assert indexes(plan) == {"tickets_number"}, plan
        assert ("Seq Scan", "tickets") not in scans(plan), plan
    # Only keyed tickets are in the idempotency index.
    assert await pool.fetchval(
        "SELECT indexdef FROM pg_indexes WHERE indexname = 'tickets_idempotency_key'"
    ) == (
        "CREATE UNIQUE INDEX tickets_idempotency_key ON public.tickets USING btree"
        " (hall_id, idempotency_key) WHERE (idempotency_key IS NOT NULL)"
    )
    assert not await pool.fetchval(
        "SELECT count(*) FROM pg_indexes WHERE indexname = 'tickets_day'"
    )


async def test_priority_count_reads_only_priority_tickets_without_statistics(
    pool: asyncpg.Pool, clock: FixedClock
) -> None:
    """Issuing counts a service's waiting priority tickets (up to 100) in a statement whose
    generic plan is made once per connection. On a `tickets` table never analyzed (a new
    hall's first hour; autovacuum analyzes at most once a minute) that count may not read
    the service's other waiting tickets (migration 0104): the pages it touches stay the same
    at ten times the queue."""
    touched = []
    for start, count in ((1, 400), (801, 4000)):
        await grow(pool, start, count, clock)
        if start == 1:
            await pool.execute(
                "UPDATE tickets SET priority_class = 'elderly' WHERE id IN ("
                " SELECT id FROM tickets WHERE state = 'waiting' ORDER BY id LIMIT 5)"
            )
        # Forget what grow()'s ANALYZE learnt: the planner's view of a new table.
        await pool.execute(
            "DELETE FROM pg_statistic WHERE starelid = 'tickets'::regclass;"
            " UPDATE pg_class SET reltuples = -1 WHERE oid = 'tickets'::regclass"
        )
        async with pool.acquire() as conn:
            await conn.execute("SELECT pg_stat_clear_snapshot()")
            text = await conn.fetchval(
                "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT "
                + repo._priority_waiting_sql("$1", "$2"),
                "test",
                "BDC",
            )
        plan = (json.loads(text) if isinstance(text, str) else text)[0]["Plan"]
        count = await pool.fetchval(
            "SELECT " + repo._priority_waiting_sql("$1", "$2"), "test", "BDC"
        )
        assert count == 5
        touched.append(pages(plan))
    assert indexes(plan) == {"tickets_priority_waiting"}, plan
    shallow, deep = touched
    assert deep <= shallow + 4, touched
