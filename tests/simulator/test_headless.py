"""A simulated day through the real queue service and database, on an injected clock."""

from __future__ import annotations

from datetime import date

import asyncpg
import pytest

from hall.cli import EXAMPLE_CONFIG, demo_config
from hall.config.loader import load_config
from hall.config.models import HallConfig
from simulator.headless import accuracy, outcomes, simulate
from simulator.plan import Behaviour
from tests.conftest import reset_database

HALL = "xx-county"
SMALL = Behaviour(tickets_per_day=120)


@pytest.fixture
def config() -> HallConfig:
    return demo_config(load_config(EXAMPLE_CONFIG), any_hour=False)


async def _history(pool: asyncpg.Pool) -> list[tuple[object, ...]]:
    rows = await pool.fetch(
        "SELECT type, at, counter_number, details->>'display_number' FROM events"
        " WHERE hall_id = $1 ORDER BY id",
        HALL,
    )
    return [tuple(r) for r in rows]


async def test_a_simulated_day_issues_calls_serves_and_rates(
    pool: asyncpg.Pool, config: HallConfig
) -> None:
    stats = await simulate(
        pool, config, hall_id=HALL, start=date(2026, 11, 24), days=1, seed=11, behaviour=SMALL
    )
    assert stats.issued == 120 and stats.refused == 0 and stats.errors == 0
    counts = dict(
        await pool.fetch(
            "SELECT state::text, count(*) FROM tickets WHERE hall_id = $1 GROUP BY 1", HALL
        )
    )
    # Clerks stay until their queues are empty: everyone was called in the end.
    assert "waiting" not in counts and "called" not in counts and "serving" not in counts
    assert counts["done"] == stats.finished > 100
    assert counts.get("no_show", 0) == stats.no_shows
    ratings = await pool.fetchval("SELECT count(*) FROM ratings WHERE hall_id = $1", HALL)
    assert ratings == stats.ratings > 50
    types = {r[0] for r in await _history(pool)}
    assert {
        "counter.paused",
        "counter.closed",
        "ticket.transferred",
    } <= types or stats.transfers == 0
    assert "counter.paused" in types
    # Every ticket called was given an estimate at issue, measured against its wait.
    found = await outcomes(pool, HALL)
    assert len(found) == stats.issued
    acc = accuracy(found)
    assert acc.tickets == stats.issued and acc.mean_wait_s >= 0


async def test_the_same_seed_replays_the_same_day(pool: asyncpg.Pool, config: HallConfig) -> None:
    async def run() -> list[tuple[object, ...]]:
        async with pool.acquire() as conn:
            await reset_database(conn, config)
        await simulate(
            pool, config, hall_id=HALL, start=date(2026, 11, 24), days=1, seed=5, behaviour=SMALL
        )
        return await _history(pool)

    first = await run()
    assert len(first) > 500
    assert await run() == first
