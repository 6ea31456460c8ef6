"""A caller's key decides on its counter as the key's statement locked and read it: no read of
its own, none for the render after the commit, and still right when the lock had to wait
for another transaction that changed the counter."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from asyncpg.connection import LoggedQuery

from firmware_bridge.bridge import EventResult
from firmware_bridge.constants import KeyCode
from firmware_bridge.messages import KeyEvent
from hall.domain.errors import HallError
from hall.domain.tickets import CounterState
from hall.services.devices import CounterRender, DeviceService, ReadPoint
from hall.services.queue import ActionParams, CounterAction
from hall.storage import repo
from hall.storage.db import connect_pool
from hall.storage.uow import UnitOfWork
from hall.web.state import POOL, QUEUE
from tests.bridge.conftest import AppMaker, Client, fetch, hub_of, issue
from tests.bridge.test_desired_passes import config, settled, up
from tests.bridge.test_device_service import UID_CALLER
from tests.bridge.test_key_render import CALLER, STRIP, ready
from tests.waiting import eventually

__all__ = ["config"]  # the bus config of test_desired_passes: strip 1 and caller 2 at counter 1


async def statements_of(
    client: Client, database_url: str, press: Callable[[DeviceService], Awaitable[EventResult]]
) -> tuple[EventResult, list[str]]:
    """What one device event sent to PostgreSQL, on a service whose pool has one connection."""
    svc = hub_of(client).service
    pool = await connect_pool(database_url, min_size=1, max_size=1)
    sent: list[str] = []
    try:
        async with pool.acquire() as conn:
            conn.add_query_logger(lambda q: sent.append(" ".join(q.query.split())))
        own = DeviceService(pool, svc.directory, svc.queue, svc.clock, list(svc.roles.values()))
        own.on_render = lambda render: None  # as the hub sets it: the key's render is made
        result = await press(own)
    finally:
        async with asyncio.timeout(10):
            await pool.close()
    return result, sent


def kinds(statements: list[str]) -> list[str]:
    """The statements by kind, in the order sent."""
    names = {
        "BEGIN": "begin",
        "COMMIT": "commit",
        "WITH k AS MATERIALIZED": "key+lock",
        "SELECT h.* FROM unnest": "heads",
        "WITH lc AS": "write",
    }
    out = []
    for s in statements:
        if "pg_catalog" in s or "set_config('jit'" in s:
            continue  # asyncpg's type introspection on a fresh connection
        found = [kind for prefix, kind in names.items() if s.startswith(prefix)]
        out.append(found[0] if found else s)
    return out


async def test_a_call_and_a_finish_are_their_key_statement_their_writes_and_commit(
    make_app: AppMaker, database_url: str
) -> None:
    client = await ready(make_app)

    called, on_call = await statements_of(
        client,
        database_url,
        lambda s: s.handle_event(up(2, UID_CALLER, KeyEvent(KeyCode.CALL_NEXT), 2)),
    )
    # 办结 on a called ticket starts and finishes it: two actions, one write.
    finished, on_finish = await statements_of(
        client,
        database_url,
        lambda s: s.handle_event(up(2, UID_CALLER, KeyEvent(KeyCode.FINISH), 3)),
    )

    assert (called.outcome, finished.outcome) == ("applied", "applied")
    assert kinds(on_call) == ["begin", "key+lock", "heads", "write", "commit"]
    assert kinds(on_finish) == ["begin", "key+lock", "write", "commit"]
    truth = (await hub_of(client).service.desired_pass("test", fresh=True)).states
    await settled(hub_of(client))
    assert hub_of(client).pushed(*STRIP) == truth[STRIP]


async def test_each_key_renders_its_counter_as_a_full_read_does(make_app: AppMaker) -> None:
    """The key's render comes from the counter as its actions' writes left it, not from a read:
    after each key, what was pushed equals a full pass read afresh."""
    client = await ready(make_app)
    await issue(client)
    await issue(client)
    hub = hub_of(client)
    renders: list[CounterRender] = []

    def rendering(render: CounterRender) -> None:
        renders.append(render)
        hub.apply_render(render)

    hub.service.on_render = rendering
    keys = [
        KeyEvent(KeyCode.CALL_NEXT),
        KeyEvent(KeyCode.RECALL),
        KeyEvent(KeyCode.FINISH),  # start and finish
        KeyEvent(KeyCode.CALL_NEXT),
        KeyEvent(KeyCode.HOLD),  # parked: the counter is idle again
        KeyEvent(KeyCode.CALL_BACK, "A002"),  # back in the queue, the counter unchanged
        KeyEvent(KeyCode.CALL_NEXT),
        KeyEvent(KeyCode.FINISH),
        KeyEvent(KeyCode.CALL_NEXT),
        KeyEvent(KeyCode.NO_SHOW),
        KeyEvent(KeyCode.PAUSE),
        KeyEvent(KeyCode.RESUME),
        KeyEvent(KeyCode.CALL_SPECIFIC, "A004"),
        KeyEvent(KeyCode.FINISH),
        KeyEvent(KeyCode.FINISH),  # nothing to finish: refused, nothing rendered
    ]
    seen = []
    for seq, key in enumerate(keys, start=2):
        before = len(renders)
        result = await hub.service.handle_event(up(2, UID_CALLER, key, seq))
        truth = (await hub.service.desired_pass("test", fresh=True)).states
        seen.append((key.key, result.outcome))
        if result.outcome == "applied":
            assert len(renders) == before + 1, key
            assert renders[-1].states[STRIP] == truth[STRIP], key
            assert renders[-1].states[CALLER] == truth[CALLER], key
            assert renders[-1].point.locked
        await settled(hub)

    assert [outcome for _, outcome in seen] == ["applied"] * 14 + ["rejected:no_active_ticket"]


async def test_a_key_whose_lock_waited_for_a_call_decides_on_that_call(
    make_app: AppMaker,
) -> None:
    """The key's statement reads the counter's ticket in its own snapshot, taken before it
    waited for the lock: a transaction that called a ticket meanwhile is seen (the counter's
    version changed), and the key's render is ordered after that transaction."""
    client = await ready(make_app)
    hub = hub_of(client)
    renders: list[CounterRender] = []
    hub.service.on_render = renders.append
    pool = client.app[POOL]

    async with UnitOfWork(pool) as uow:
        # A call holding the counter's lock, not yet committed.
        await client.app[QUEUE].act("test", 1, CounterAction.CALL_NEXT, "tests", uow=uow)
        other = int(await uow.conn.fetchval("SELECT pg_current_xact_id()::text"))
        recall = asyncio.create_task(
            hub.service.handle_event(up(2, UID_CALLER, KeyEvent(KeyCode.RECALL), 2))
        )

        async def waiting() -> bool:
            rows = await fetch(
                client,
                """SELECT 1 FROM pg_stat_activity
                   WHERE wait_event_type = 'Lock' AND query LIKE '%claim_device_event%'""",
            )
            return bool(rows)

        await eventually(waiting, "the key to wait for the counter's lock")
        await uow.commit()
    result = await recall

    assert result.outcome == "applied"  # the ticket the other transaction called: recalled
    rows = await fetch(
        client, "SELECT display_number, recall_count FROM tickets WHERE state = 'called'"
    )
    assert [(r["display_number"], r["recall_count"]) for r in rows] == [("A001", 1)]
    assert renders[-1].point.includes(other)
    truth = (await hub.service.desired_pass("test", fresh=True)).states
    assert renders[-1].states[STRIP] == truth[STRIP]
    await settled(hub)


def test_a_render_under_the_counters_lock_stands_against_one_that_did_not_see_it() -> None:
    # Two device events' renders of one counter, neither of whose reads saw the other's
    # transaction: 101 held the counter's lock; 103 (a pad's rating, say) did not, so it
    # changed nothing of the counter and only lacks 101's change.
    locked_101 = ReadPoint.parse("100:105:103", own=101, locked=True)
    unlocked_103 = ReadPoint.parse("100:104:101", own=103)
    assert not unlocked_103.newer_than(locked_101)
    assert locked_101.newer_than(unlocked_103)
    # Without the lock, the later one stands (as before).
    assert ReadPoint.parse("100:104:101", own=103).newer_than(
        ReadPoint.parse("100:105:103", own=101)
    )
    # One that saw the other's commit stands either way.
    assert ReadPoint.parse("102:110:", own=103).newer_than(locked_101)
    assert not locked_101.newer_than(ReadPoint.parse("102:110:", own=103))


async def test_steps_decided_on_the_held_counter_are_written_as_one_by_one(
    make_app: AppMaker,
) -> None:
    """Start and finish in one statement leave the ticket, the counter and the events as two
    writes would, and the transaction's counter (its version too) as PostgreSQL has it."""
    client = await ready(make_app)
    queue, pool = client.app[QUEUE], client.app[POOL]
    tests = "tests"
    sent: list[str] = []
    async with UnitOfWork(pool) as uow:
        await queue.act("test", 1, CounterAction.CALL_NEXT, tests, uow=uow)

        def log(q: LoggedQuery) -> None:
            sent.append(" ".join(q.query.split()))

        uow.conn.add_query_logger(log)
        view = await queue.act_steps(
            uow,
            "test",
            1,
            [
                (CounterAction.START, tests, ActionParams()),
                (CounterAction.FINISH, tests, ActionParams()),
            ],
        )
        held = uow.counters[("test", 1)]
        stored = await uow.conn.fetchval(
            "SELECT version FROM counters WHERE hall_id = 'test' AND number = 1"
        )
        # The next action of the transaction decides on the held counter: no read.
        await queue.act_steps(
            uow, "test", 1, [(CounterAction.PAUSE, tests, ActionParams(reason="午休"))]
        )
        uow.conn.remove_query_logger(log)
        await uow.commit()

    assert view is not None and view.status.state is CounterState.IDLE
    assert held.version == stored
    assert kinds([s for s in sent if not s.startswith("SELECT version")]) == ["write", "write"]
    events = await fetch(
        client,
        """SELECT e.type, e.details->>'from_state' AS from_state FROM events e
           JOIN tickets t ON t.id = e.ticket_id WHERE t.display_number = 'A001' ORDER BY e.id""",
    )
    assert [(r["type"], r["from_state"]) for r in events] == [
        ("ticket.issued", None),
        ("ticket.called", "idle"),
        ("ticket.started", "calling"),
        ("ticket.finished", "serving"),
    ]
    ticket = (
        await fetch(
            client,
            """SELECT state::text, serve_started_at IS NOT NULL AS started, finished_at IS NOT NULL
                      AS finished FROM tickets WHERE display_number = 'A001'""",
        )
    )[0]
    assert (ticket["state"], ticket["started"], ticket["finished"]) == ("done", True, True)
    counter = (await fetch(client, "SELECT state::text, version FROM counters WHERE number = 1"))[0]
    assert (counter["state"], counter["version"]) == ("paused", held.version + 1)


async def test_steps_before_a_refused_one_are_written_as_act_leaves_them(
    make_app: AppMaker,
) -> None:
    client = await ready(make_app)
    queue, pool = client.app[QUEUE], client.app[POOL]
    pause = (CounterAction.PAUSE, "tests", ActionParams(reason="午休"))
    async with UnitOfWork(pool) as uow:
        # The counter held, as a caller key's statement holds it.
        await uow.conn.execute("SELECT 1 FROM counters WHERE hall_id = 'test' FOR UPDATE")
        read = await repo.counter_for_action(uow.conn, "test", 1)
        assert read is not None
        uow.counters[("test", 1)] = read
        refused = False
        try:
            await queue.act_steps(uow, "test", 1, [pause, pause])  # paused twice: refused
        except HallError:
            refused = True
        state = await uow.conn.fetchval(
            "SELECT state::text FROM counters WHERE hall_id = 'test' AND number = 1"
        )

    assert refused
    assert state == "paused"
