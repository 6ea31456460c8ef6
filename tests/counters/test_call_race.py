"""60 clerks press 叫号 at the same instant against one shared queue, each through their own
session over HTTP: no ticket is called twice, none is skipped, no counter holds two."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from hall.config.models import HallConfig
from hall.web.state import POOL
from tests.access_helpers import staff_headers
from tests.factories import hall_config

pytestmark = pytest.mark.slow
Client = TestClient[web.Request, web.Application]
CLERKS = 60
TICKETS = 100


@pytest.fixture
def config() -> HallConfig:
    return hall_config(counters=CLERKS)


async def test_60_clerks_call_next_at_once(client: Client) -> None:
    clerks = [await staff_headers(client, f"r{n:03d}", counters=(n,)) for n in range(1, CLERKS + 1)]
    base = "/api/v1/halls/test"
    for _ in range(TICKETS):
        r = await client.post(f"{base}/tickets", json={"service": "BDC"}, headers=clerks[0])
        assert r.status == 201
    for n, headers in enumerate(clerks, 1):
        assert (await client.post(f"{base}/counters/{n}/open", headers=headers)).status == 200

    async def press(n: int, action: str) -> tuple[int, str | None]:
        r = await client.post(f"{base}/counters/{n}/{action}", headers=clerks[n - 1])
        body = await r.json()
        if r.status != 200:
            return r.status, body["code"]
        return r.status, body["ticket"]["number"] if body["ticket"] else None

    called: list[str] = []
    for _round in range(2):
        results = await asyncio.gather(*(press(n, "call_next") for n in range(1, CLERKS + 1)))
        got = [number for status, number in results if status == 200 and number]
        refused = [code for status, code in results if status != 200]
        assert set(refused) <= {"queue_empty"}, refused
        called += got
        # None skipped: the calls so far took exactly the oldest tickets.
        assert sorted(called) == [f"A{n:03d}" for n in range(1, len(called) + 1)]
        # Mid-race check: no counter holds two active tickets (the database also forbids it).
        active = await client.app[POOL].fetch(
            "SELECT counter_number, count(*) AS n FROM tickets"
            " WHERE state IN ('called', 'serving') GROUP BY 1"
        )
        assert all(r["n"] == 1 for r in active) and len(active) == len(got)
        await asyncio.gather(*(press(n, "start") for n in range(1, CLERKS + 1)))
        await asyncio.gather(*(press(n, "finish") for n in range(1, CLERKS + 1)))

    # Every ticket called exactly once, in queue order, none skipped; 20 clerks found it empty.
    assert len(called) == TICKETS
    assert sorted(called) == [f"A{n:03d}" for n in range(1, TICKETS + 1)]
    pool = client.app[POOL]
    assert (
        await pool.fetchval("SELECT count(*) FROM events WHERE type = 'ticket.called'") == TICKETS
    )
    assert await pool.fetchval("SELECT count(*) FROM tickets WHERE state = 'done'") == TICKETS
    per_counter = await pool.fetch(
        "SELECT counter_number, count(*) AS n FROM events WHERE type = 'ticket.called' GROUP BY 1"
    )
    # The first round gave every counter one; the second, 40 of them a second one.
    assert sorted(r["n"] for r in per_counter).count(2) == TICKETS - CLERKS
