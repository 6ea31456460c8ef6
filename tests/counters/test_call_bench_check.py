"""bench/call.py's integrity check finds what it claims to find: a skipped ticket, a ticket
called twice (recalled is not called twice); a clean run reads all zeros."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from bench.call import check
from tests.access_helpers import staff_headers

Client = TestClient[web.Request, web.Application]
BASE = "/api/v1/halls/test"


async def test_the_bench_check_counts_skipped_and_doubly_called_tickets(
    client: Client, database_url: str
) -> None:
    clerk = await staff_headers(client, "c001", counters=(1, 2))

    async def post(path: str, **body: Any) -> Any:
        r = await client.post(f"{BASE}/{path}", json=body, headers=clerk)
        assert r.status in (200, 201), await r.text()
        return await r.json()

    numbers = [(await post("tickets", service="BDC"))["number"] for _ in range(4)]
    await post("counters/1/open")
    await post("counters/2/open")
    await post("counters/1/call_next")  # the oldest
    await post("counters/1/recall")
    await post("counters/1/start")
    await post("counters/1/finish")
    clean = await check(database_url, "test")
    assert clean == {
        "calls_in_database": 1,
        "tickets_called_twice": 0,
        "tickets_skipped": 0,
        "calls_while_holding": 0,
        "counters_holding_two": 0,
    }

    await post("counters/2/call", number=numbers[2])  # passes numbers[1] by
    await post("counters/2/start")
    await post("counters/2/finish")
    assert (await check(database_url, "test"))["tickets_skipped"] == 1

    assert (await post("counters/1/call_next"))["ticket"]["number"] == numbers[1]
    await post("counters/1/transfer", to_counter=2)
    await post("counters/2/call_next")  # the transferred ticket, called a second time
    found = await check(database_url, "test")
    assert (found["tickets_skipped"], found["tickets_called_twice"]) == (0, 1)
    assert (found["calls_while_holding"], found["counters_holding_two"]) == (0, 0)
