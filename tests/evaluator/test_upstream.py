"""The upstream 好差评 outbox against a fake platform that fails, times out and answers twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from hall.config.models import HallConfig
from tests.access_helpers import device_headers
from tests.evaluator.conftest import Client, clerk, evaluator_body, finish, manager, serve_one
from tests.evaluator.fake_upstream import FakeUpstream
from tests.live.helpers import write_config_toml
from tests.servers import ServerProcess

PAD = "/api/v1/halls/test/evaluator/counters/1/pad"


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    upstream = FakeUpstream()
    await upstream.start()
    try:
        yield upstream
    finally:
        await upstream.stop()


def upstream_body(fake: FakeUpstream, **extra: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "url": fake.url,
        "token": fake.token,
        "timeout_s": 0.5,
        "backoff_s": 0.02,
        "backoff_max_s": 0.2,
        "max_attempts": 50,
        "field_map": {"level": "satisfaction", "key": "idem"},
        "region_code": "510104000000",
    }
    settings.update(extra)
    return evaluator_body(upstream=settings)


@pytest.fixture
def config(fake: FakeUpstream) -> HallConfig:
    return HallConfig.model_validate(upstream_body(fake))


async def until(pool: asyncpg.Pool, sql: str, expected: object, within_s: float = 30) -> None:
    """Poll the sender's effect in the database (it runs in its own task or process)."""
    async with asyncio.timeout(within_s):
        while await pool.fetchval(sql) != expected:  # noqa: ASYNC110 - another task/process
            await asyncio.sleep(0.02)


async def rate_visits(client: Client, levels: list[int]) -> None:
    pad_headers = await device_headers(client, "display", device_id="pad1")
    for level in levels:
        await serve_one(client)
        await finish(client)
        session = (await (await client.get(PAD, headers=pad_headers)).json())["session"]
        body: dict[str, Any] = {"session": session, "level": level}
        if level <= 2:
            body["reasons"] = ["slow"]
        response = await client.post(f"{PAD}/ratings", json=body, headers=pad_headers)
        assert response.status == 201, await response.text()


async def test_every_record_reaches_the_platform_once_through_failures_garbage_and_timeouts(
    client: Client, pool: asyncpg.Pool, fake: FakeUpstream
) -> None:
    fake.script = ["fail", "fail", "garbage", "store_then_hang", "fail"]
    await rate_visits(client, [5, 2, 4])
    ticket = await serve_one(client)
    case = await (
        await client.post(
            "/api/v1/halls/test/evaluator/counters/1/cases",
            json={"ticket_id": ticket, "matter": "BDC-001"},
            headers=await clerk(client),
        )
    ).json()
    status = f"/api/v1/halls/test/cases/{case['id']}/status"
    await client.post(status, json={"status": "reviewing"}, headers=await clerk(client))

    total = await pool.fetchval("SELECT count(*) FROM upstream_outbox")
    assert total == 5  # 3 ratings, 2 case statuses
    await until(pool, "SELECT count(*) FROM upstream_outbox WHERE state = 'delivered'", total)

    keys = {r["key"] for r in await pool.fetch("SELECT key FROM upstream_outbox")}
    assert set(fake.stored) == keys  # every record, each stored once by its key
    assert max(fake.posts.values()) >= 2  # the one stored before its answer was lost came twice
    assert fake.unauthorised == 0
    rating = next(b for b in fake.stored.values() if b["record_type"] == "rating")
    assert {"satisfaction", "idem", "region_code"} <= set(rating) and "level" not in rating
    statuses = sorted(b["status_name"] for b in fake.stored.values() if "status_name" in b)
    assert statuses == ["受理", "审批"]


async def test_a_record_refused_n_times_becomes_a_dead_letter_with_an_alarm_and_can_be_retried(
    client: Client, pool: asyncpg.Pool, fake: FakeUpstream
) -> None:
    fake.mode = "fail"
    sender_config = HallConfig.model_validate(upstream_body(fake, max_attempts=3))
    from evaluator.upstream import SENDER

    client.app[SENDER].config = sender_config
    await rate_visits(client, [1])
    await until(pool, "SELECT state FROM upstream_outbox", "dead")
    boss = await manager(client)
    box = await (await client.get("/api/v1/halls/test/upstream-outbox", headers=boss)).json()
    assert (box["pending"], box["delivered"], box["dead"]) == (0, 0, 1)
    record = box["records"][0]
    assert record["attempts"] == 3 and "HTTP 503" in record["last_error"]
    alarms = await (await client.get("/api/v1/halls/test/evaluator/alarms", headers=boss)).json()
    assert [a["kind"] for a in alarms] == ["upstream_dead_letter"]
    assert "已转入死信" in alarms[0]["message"]

    fake.mode = "ok"
    retry = f"/api/v1/halls/test/upstream-outbox/{record['id']}/retry"
    assert (await client.post(retry, headers=boss)).status == 200
    await until(pool, "SELECT state FROM upstream_outbox", "delivered")
    assert list(fake.posts.values()) == [4] and len(fake.stored) == 1


@pytest.mark.slow
async def test_upstream_down_and_server_killed_then_every_record_is_delivered_exactly_once(
    database_url: str, pool: asyncpg.Pool, fake: FakeUpstream, tmp_path: Path
) -> None:
    # Up to 100 tries about 0.5 s apart: dead letters must not come before the platform is back.
    settings = upstream_body(fake, max_attempts=100, backoff_max_s=0.5)
    body = HallConfig.model_validate(settings).model_dump(mode="json", exclude_none=True)
    path = write_config_toml(body, tmp_path / "h.toml")
    args = ["serve", "--database-url", database_url, "--config", str(path)]
    fake.mode = "fail"  # the platform is down
    first = ServerProcess(args, log_path=tmp_path / "first.log")
    await first.start()
    try:
        # Records written while the platform is down (ratings from any channel end up alike).
        await pool.execute(
            """INSERT INTO ratings (hall_id, level, channel, rated_at)
               SELECT 'test', 1 + g % 5, 'phone', now() FROM generate_series(1, 30) g"""
        )
        await until(pool, "SELECT min(attempts) >= 2 FROM upstream_outbox", True)
        fake.mode = "store_then_hang"  # it comes back, but its answers get lost ...
        await fake.wait_stored(1)
        first.kill9()  # ... and the server dies in the middle of a send
    finally:
        await first.stop()
    assert (
        await pool.fetchval("SELECT count(*) FROM upstream_outbox WHERE state = 'delivered'") == 0
    )

    fake.mode = "ok"
    second = ServerProcess(args, port=first.port, log_path=tmp_path / "second.log")
    await second.start()
    try:
        await until(pool, "SELECT count(*) FROM upstream_outbox WHERE state = 'delivered'", 30)
    except TimeoutError:
        rows = await pool.fetch(
            "SELECT key, state, attempts, last_error FROM upstream_outbox"
            " WHERE state <> 'delivered'"
        )
        locks = await pool.fetch(
            "SELECT pid, state, query FROM pg_stat_activity WHERE state LIKE 'idle in%'"
        )
        raise AssertionError(f"{[dict(r) for r in rows]} {[dict(r) for r in locks]}") from None
    finally:
        await second.stop()
    keys = {r["key"] for r in await pool.fetch("SELECT key FROM upstream_outbox")}
    assert len(keys) == 30 and set(fake.stored) == keys
    assert sum(1 for n in fake.posts.values() if n > 1) >= 1  # some came twice, stored once
