"""Numbering and calling stay correct under concurrency, across server processes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from hall.config.models import HallConfig
from hall.ports import SystemClock
from hall.services.directory import Directory
from hall.services.queue import CounterAction, IssueTicket, QueueService
from tests.access_helpers import admin_bearer_in
from tests.factories import hall_config
from tests.servers import ServerProcess

pytestmark = pytest.mark.slow


@pytest.fixture
def config() -> HallConfig:
    return hall_config(counters=50)


async def test_200_tickets_through_two_processes_are_unique_and_contiguous(
    pool: asyncpg.Pool, database_url: str, tmp_path: Path
) -> None:
    servers = [
        ServerProcess(["serve", "--database-url", database_url], log_path=tmp_path / f"s{i}.log")
        for i in range(2)
    ]
    await asyncio.gather(*(s.start() for s in servers))
    headers = await admin_bearer_in(pool)
    try:
        async with aiohttp.ClientSession(headers=headers) as session:

            async def take(i: int) -> str:
                url = f"{servers[i % 2].url}/api/v1/halls/test/tickets"
                async with session.post(url, json={"service": "BDC"}) as resp:
                    assert resp.status == 201, await resp.text()
                    number: str = (await resp.json())["number"]
                    return number

            numbers = await asyncio.gather(*(take(i) for i in range(200)))
    finally:
        await asyncio.gather(*(s.stop() for s in servers))

    assert sorted(numbers) == [f"A{n:03d}" for n in range(1, 201)]
    stored = await pool.fetchval("SELECT count(DISTINCT seq) FROM tickets")
    assert stored == 200
    issued_events = await pool.fetchval("SELECT count(*) FROM events WHERE type = 'ticket.issued'")
    assert issued_events == 200


async def test_50_counters_calling_at_once_never_share_a_ticket(
    pool: asyncpg.Pool, config: HallConfig
) -> None:
    service = QueueService(pool, Directory(config), SystemClock())
    for _ in range(80):
        await service.issue(IssueTicket(hall_id="test", service_code="BDC"))
    counters = range(1, 51)
    await asyncio.gather(*(service.act("test", n, CounterAction.OPEN, "c001") for n in counters))

    views = await asyncio.gather(
        *(service.act("test", n, CounterAction.CALL_NEXT, "c001") for n in counters)
    )

    called = [v.ticket.display_number for v in views if v.ticket is not None]
    assert len(called) == 50
    assert len(set(called)) == 50
    # The first 50 in queue order were called, nobody jumped ahead.
    assert sorted(called) == [f"A{n:03d}" for n in range(1, 51)]
    active = await pool.fetch(
        "SELECT counter_number, count(*) FROM tickets WHERE state = 'called' GROUP BY 1"
    )
    assert len(active) == 50
    assert all(r["count"] == 1 for r in active)


async def test_database_refuses_a_second_active_ticket_per_counter(
    pool: asyncpg.Pool, config: HallConfig
) -> None:
    service = QueueService(pool, Directory(config), SystemClock())
    for _ in range(2):
        await service.issue(IssueTicket(hall_id="test", service_code="BDC"))
    await pool.execute("UPDATE tickets SET state = 'called', counter_number = 7 WHERE id = 1")
    with pytest.raises(asyncpg.UniqueViolationError):
        await pool.execute("UPDATE tickets SET state = 'called', counter_number = 7 WHERE id = 2")
