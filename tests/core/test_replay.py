"""The event log is complete: replaying it rebuilds every ticket exactly."""

from __future__ import annotations

import random
from datetime import timedelta

import asyncpg
import pytest

from hall.config.models import HallConfig
from hall.domain.errors import HallError
from hall.domain.tickets import (
    CounterState,
    CounterStatus,
    EventType,
    apply_counter,
    replay_tickets,
)
from hall.ports import FixedClock
from hall.services.directory import Directory
from hall.services.queue import ActionParams, CounterAction, IssueTicket, QueueService
from hall.storage import repo

A = CounterAction


async def test_replay_of_a_random_day_equals_stored_state(
    pool: asyncpg.Pool, config: HallConfig, clock: FixedClock
) -> None:
    service = QueueService(pool, Directory(config), clock)
    rng = random.Random(20261124)
    counters = [1, 2, 3, 4, 90]
    for n in counters:
        await service.act("test", n, A.OPEN, "c001")
    actions = [A.CALL_NEXT, A.RECALL, A.START, A.FINISH, A.NO_SHOW, A.TRANSFER, A.PARK, A.CANCEL]
    failures = 0
    for _ in range(400):
        clock.set(clock.now() + timedelta(seconds=rng.randint(1, 40)))
        if rng.random() < 0.35:
            code = rng.choice(["BDC", "TAX", "SOC", "MED"])
            prio = "elderly" if code == "BDC" and rng.random() < 0.2 else None
            start = end = None
            if rng.random() < 0.25:  # checked in for a booked slot, open now or soon
                start = clock.now() + timedelta(minutes=rng.randint(-20, 30))
                end = start + timedelta(minutes=rng.choice([15, 30]))
            await service.issue(
                IssueTicket(
                    hall_id="test",
                    service_code=code,
                    priority_class=prio,
                    appointment_start=start,
                    appointment_end=end,
                )
            )
            continue
        counter = rng.choice(counters)
        state = await pool.fetchval(
            "SELECT state::text FROM counters WHERE hall_id = 'test' AND number = $1", counter
        )
        plausible = {
            "idle": [A.CALL_NEXT],
            "calling": [A.START, A.START, A.START, A.RECALL, A.NO_SHOW, A.CANCEL, A.PARK],
            "serving": [A.FINISH, A.FINISH, A.FINISH, A.TRANSFER, A.PARK],
        }[state]
        # Mostly what a clerk would do now, sometimes anything (illegal actions included).
        action = rng.choice(plausible) if rng.random() < 0.8 else rng.choice(actions)
        params = ActionParams(to_service=rng.choice(["BDC", "TAX", "SOC"]), reason="测试")
        if action is A.CALL_NEXT and rng.random() < 0.1:
            parked = await pool.fetchval(
                "SELECT display_number FROM tickets WHERE state = 'parked' LIMIT 1"
            )
            if parked:
                action, params = A.CALL_BACK, ActionParams(number=parked)
        try:
            await service.act("test", counter, action, "c001", params)
        except HallError:
            failures += 1  # illegal in the current state: must leave no trace

    async with pool.acquire() as conn:
        await repo.sequence_events(conn, "test")  # what every server's sequencer does
        events = [e for _, e in await repo.events_after(conn, "test", 0, limit=100_000)]
        stored = {
            t.id: t
            for t in [
                repo.ticket_from_record(r)
                for r in await conn.fetch("SELECT *, state::text AS state FROM tickets")
            ]
        }
        # The tallies kept by the statements that moved tickets equal a recount.
        tallied = await repo.waiting_counts(conn, "test")
        recount = await conn.fetch(
            "SELECT service_code, count(*) AS n FROM tickets WHERE state = 'waiting'"
            " GROUP BY service_code"
        )
        # Issued per service counts the service a ticket was issued for, whatever it was
        # transferred to later: that is what the day's quota (号源) limits.
        issued = await conn.fetch(
            """SELECT e.details->>'service_code' AS service_code, t.business_day,
                      count(*) AS n
               FROM events e JOIN tickets t ON t.id = e.ticket_id
               WHERE e.type = 'ticket.issued' GROUP BY 1, 2"""
        )
        for r in issued:
            assert (
                await repo.issued_today(conn, "test", r["service_code"], r["business_day"])
                == (r["n"])
            )
        stored_counters = {
            c.number: c
            for c in map(
                repo.counter_from_record,
                await conn.fetch("SELECT *, state::text AS state FROM counters"),
            )
        }
    assert {k: v for k, v in tallied.items() if v} == {r["service_code"]: r["n"] for r in recount}
    rebuilt = replay_tickets(events)
    assert rebuilt == stored
    states = {t.state for t in stored.values()}
    assert len(states) >= 5, states  # the scenario really exercised the lifecycle
    kinds = {e.type for e in events}
    assert {
        EventType.TICKET_RECALLED,
        EventType.TICKET_TRANSFERRED,
        EventType.TICKET_PARKED,
        EventType.TICKET_CALLED_BACK,
    } <= kinds
    assert sum(t.appointment_start is not None for t in stored.values()) >= 10
    # Counters too: every event at a counter but a call-back (which only moves the ticket)
    # folds into its status, from the closed state each counter starts the day in.
    replayed = {
        n: CounterStatus("test", n, CounterState.CLOSED, stored_counters[n].state_since)
        for n in counters
    }
    for e in events:
        if e.counter_number is not None and e.type is not EventType.TICKET_CALLED_BACK:
            replayed[e.counter_number] = apply_counter(replayed[e.counter_number], e)
    assert replayed == {n: stored_counters[n] for n in counters}
    assert failures > 0
    seqs = await pool.fetch("SELECT seq FROM events WHERE hall_id = 'test' ORDER BY seq")
    assert [r["seq"] for r in seqs] == list(range(1, len(seqs) + 1))


async def test_events_cannot_be_changed_or_deleted(
    pool: asyncpg.Pool, config: HallConfig, clock: FixedClock
) -> None:
    service = QueueService(pool, Directory(config), clock)
    await service.issue(IssueTicket(hall_id="test", service_code="BDC"))
    # Committed without a seq; the sequencer numbers it once.
    assert await pool.fetchval("SELECT seq FROM events") is None
    for statement in ("UPDATE events SET actor = 'someone else'", "DELETE FROM events"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await pool.execute(statement)
    # Numbering must not smuggle in another change.
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await pool.execute("UPDATE events SET seq = 1, actor = 'someone else'")
    async with pool.acquire() as conn:
        assert await repo.sequence_events(conn, "test") == 1
        assert await repo.sequence_events(conn, "test") == 1  # nothing left to number
    for statement in (
        "UPDATE events SET seq = 7",
        "UPDATE events SET seq = NULL",
        "UPDATE events SET actor = 'someone else'",
        "DELETE FROM events",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await pool.execute(statement)
    assert await pool.fetchval("SELECT count(*) FROM events WHERE seq = 1") == 1
    assert await pool.fetchval("SELECT last_seq FROM halls WHERE id = 'test'") == 1


async def test_two_events_of_a_hall_never_share_a_seq(
    pool: asyncpg.Pool, config: HallConfig, clock: FixedClock
) -> None:
    """Numbered events are unique per hall (migration 0103: the unique index holds numbered
    events only), and a refused update changes nothing (the append-only check fires after
    the update, and still aborts the statement)."""
    service = QueueService(pool, Directory(config), clock)
    for _ in range(2):
        await service.issue(IssueTicket(hall_id="test", service_code="BDC"))
    # Numbering alone passes the append-only check; the same seq twice does not pass the index.
    with pytest.raises(asyncpg.UniqueViolationError):
        await pool.execute("UPDATE events SET seq = 5")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await pool.execute("UPDATE events SET actor = 'someone else'")
    rows = await pool.fetch("SELECT seq, actor FROM events ORDER BY id")
    assert [(r["seq"], r["actor"]) for r in rows] == [(None, "kiosk")] * 2
    async with pool.acquire() as conn:
        assert await repo.sequence_events(conn, "test") == 2
    await pool.execute(
        "INSERT INTO events (hall_id, type, at, actor) VALUES ('test', 'x', now(), 't')"
    )
    with pytest.raises(asyncpg.UniqueViolationError):
        await pool.execute("UPDATE events SET seq = 1 WHERE seq IS NULL")
    assert await pool.fetchval("SELECT count(*) FROM events WHERE seq = 1") == 1


async def test_sequencer_numbers_events_in_commit_order_of_conflicting_writes(
    pool: asyncpg.Pool, config: HallConfig, clock: FixedClock
) -> None:
    """Events numbered in several sequencer runs, interleaved with writes, come out gap-free
    and in the order their writes were made, each ticket's events in lifecycle order."""
    service = QueueService(pool, Directory(config), clock)
    await service.act("test", 1, A.OPEN, "c001")
    async with pool.acquire() as conn:
        for round_ in range(3):
            for _ in range(3):
                await service.issue(IssueTicket(hall_id="test", service_code="BDC"))
            for action in (A.CALL_NEXT, A.START, A.FINISH):
                await service.act("test", 1, action, "c001")
            assert await repo.sequence_events(conn, "test") == 1 + 6 * (round_ + 1)
        rows = await conn.fetch(
            "SELECT seq, id, type, ticket_id FROM events WHERE hall_id = 'test' ORDER BY seq"
        )
    assert [r["seq"] for r in rows] == list(range(1, 20))
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    first = [r["type"] for r in rows if r["ticket_id"] == rows[1]["ticket_id"]]
    assert first == ["ticket.issued", "ticket.called", "ticket.started", "ticket.finished"]
