"""Exactly-once device events (docs/protocol.md §8.3, §15.4) under concurrent delivery, refusal,
a busy registry and new boots, against the real database."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from firmware_bridge.constants import KeyCode
from firmware_bridge.messages import KeyEvent
from hall.services.devices import DeviceService
from hall.storage.db import connect_pool
from hall.storage.devices_repo import outcome_of
from hall.web.state import POOL
from tests.bridge.conftest import AppMaker, Client, fetch, issue, open_counter
from tests.bridge.test_device_service import UID_CALLER, config, service, up

__all__ = ["config"]  # the bus config of test_device_service


async def called(client: Client) -> list[str]:
    rows = await fetch(client, "SELECT display_number FROM tickets WHERE state = 'called'")
    return sorted(r["display_number"] for r in rows)


async def test_two_deliveries_of_one_key_at_once_have_one_effect(make_app: AppMaker) -> None:
    client, svc = await service(make_app)
    await issue(client)
    await issue(client)
    await open_counter(client)
    press = up(2, UID_CALLER, KeyEvent(KeyCode.CALL_NEXT))

    results = await asyncio.gather(svc.handle_event(press), svc.handle_event(press))

    assert sorted(r.outcome for r in results) == ["applied", "duplicate"]
    assert await called(client) == ["A001"]


async def test_two_refused_deliveries_at_once_store_one_refusal(make_app: AppMaker) -> None:
    client, svc = await service(make_app)
    await open_counter(client)
    press = up(2, UID_CALLER, KeyEvent(KeyCode.CALL_NEXT))

    results = await asyncio.gather(svc.handle_event(press), svc.handle_event(press))

    assert sorted(r.outcome for r in results) == ["duplicate", "rejected:queue_empty"]
    stored = await outcome_of(client.app[POOL], UID_CALLER, 7, 2)
    assert stored == "rejected:queue_empty"
    # A ticket arrives; the refused press delivered again still calls nobody.
    await issue(client)
    again = await svc.handle_event(press)
    assert again.outcome == "duplicate"
    assert await called(client) == []


async def test_a_registry_update_holding_the_device_row_does_not_delay_a_key(
    make_app: AppMaker,
) -> None:
    """The registry writer locks device rows for a whole report; a key from such a device is
    keyed without reading that row under a lock."""
    client, svc = await service(make_app)
    await issue(client)
    await open_counter(client)
    async with client.app[POOL].acquire() as other, other.transaction():
        await other.execute("SELECT 1 FROM devices WHERE bus = 'b1' AND address = 2 FOR UPDATE")
        async with asyncio.timeout(5):
            result = await svc.handle_event(up(2, UID_CALLER, KeyEvent(KeyCode.CALL_NEXT)))
    assert result.outcome == "applied"
    assert await called(client) == ["A001"]


async def store_key(client: Client, evt_seq: int, age: timedelta, now: datetime) -> None:
    await client.app[POOL].execute(
        """INSERT INTO device_events_seen (device_uid, boot_id, evt_seq, hall_id, evt_type,
                                           outcome, processed_at)
           VALUES ($1, 7, $2, 'test', 1, 'applied', $3)""",
        UID_CALLER,
        evt_seq,
        now - age,
    )


async def test_a_new_boot_forgets_day_old_keys_of_its_boot_id(make_app: AppMaker) -> None:
    client, svc = await service(make_app)
    await issue(client)
    await issue(client)
    await open_counter(client)
    now = svc.clock.now()
    await store_key(client, 2, timedelta(days=2), now)  # boot 7, 65535 boots ago
    await store_key(client, 3, timedelta(hours=1), now)  # boot 7, an hour ago

    # The registry does not know boot 7 (the device's boot is another): day-old keys go.
    fresh = await svc.handle_event(up(2, UID_CALLER, KeyEvent(KeyCode.CALL_NEXT), evt_seq=2))
    recent = await svc.handle_event(up(2, UID_CALLER, KeyEvent(KeyCode.CALL_NEXT), evt_seq=3))

    assert (fresh.outcome, recent.outcome) == ("applied", "duplicate")
    assert await called(client) == ["A001"]


async def test_the_running_boot_keeps_its_keys_until_its_first_event(
    make_app: AppMaker,
) -> None:
    client, svc = await service(make_app)
    await issue(client)
    await issue(client)
    await open_counter(client)
    await fetch(client, "UPDATE devices SET boot_id = 7 WHERE bus = 'b1' AND address = 2")
    now = svc.clock.now()
    await store_key(client, 1, timedelta(days=2), now)
    await store_key(client, 2, timedelta(days=2), now)

    kept = await svc.handle_event(up(2, UID_CALLER, KeyEvent(KeyCode.CALL_NEXT), evt_seq=2))
    first = await svc.handle_event(up(2, UID_CALLER, KeyEvent(KeyCode.CALL_NEXT), evt_seq=1))

    assert (kept.outcome, first.outcome) == ("duplicate", "applied")
    assert await called(client) == ["A001"]


async def test_a_key_is_stored_and_its_counter_locked_in_one_statement(
    make_app: AppMaker, database_url: str
) -> None:
    """The key's round trips: the statement that stores a caller's key also locks its counter,
    and the counter action follows at once (no statement of its own for the lock). A
    duplicate has no effect."""
    client, svc = await service(make_app)
    await issue(client)
    await open_counter(client)
    pool = await connect_pool(database_url, min_size=1, max_size=1)
    sent: list[str] = []
    try:
        async with pool.acquire() as conn:
            conn.add_query_logger(lambda q: sent.append(" ".join(q.query.split())))
        own = DeviceService(pool, svc.directory, svc.queue, svc.clock, list(svc.roles.values()))
        press = up(2, UID_CALLER, KeyEvent(KeyCode.CALL_NEXT))

        first = await own.handle_event(press)
        key = [s for s in sent if "claim_device_event" in s]
        after_key = sent[sent.index(key[0]) + 1]  # the action's next statement (its heads)
        sent.clear()
        again = await own.handle_event(press)
        duplicate = list(sent)
    finally:
        async with asyncio.timeout(10):
            await pool.close()

    assert first.outcome == "applied"
    assert await called(client) == ["A001"]
    assert len(key) == 1
    assert "FOR UPDATE" in key[0]
    assert "FOR UPDATE" not in after_key
    assert again.outcome == "duplicate"
    assert await called(client) == ["A001"]
    assert [s for s in duplicate if "claim_device_event" in s] == key
