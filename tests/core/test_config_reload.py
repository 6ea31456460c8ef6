"""A loaded configuration reaches every running server process within seconds (two apps on one
database), and what running servers cannot take is refused with the reason, untouched."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from hall.app import CONFIG_FOLLOWER
from hall.config.models import HallConfig
from hall.domain.errors import ConfigNotLive
from hall.storage.config_store import apply_config, restart_needed
from hall.web.state import DIRECTORY
from tests.access_helpers import admin_headers
from tests.conftest import AppFactory


def _changed(config: HallConfig, **hall_changes: Any) -> HallConfig:
    data = config.model_dump(mode="json", exclude_none=True)
    data["halls"][0].update(hall_changes)
    return HallConfig.model_validate(data)


async def _load(pool: asyncpg.Pool, config: HallConfig) -> int:
    async with pool.acquire() as conn:
        assert await apply_config(conn, config)
        snapshot: int = await conn.fetchval("SELECT max(id) FROM config_snapshots")
    return snapshot


async def test_a_loaded_config_reaches_every_process(
    make_client: AppFactory, pool: asyncpg.Pool, config: HallConfig
) -> None:
    one, two = await make_client(), await make_client()
    data = config.model_dump(mode="json", exclude_none=True)
    services = data["halls"][0]["services"]
    services[0]["name"] = "不动产登记（新）"
    counters = data["halls"][0]["counters"]
    counters.append({"number": 7, "services": [{"code": "TAX"}]})
    snapshot = await _load(pool, _changed(config, services=services, counters=counters))

    for client in (one, two):
        await client.app[DIRECTORY].wait_for_snapshot(snapshot, timeout_s=5)
        assert client.app[CONFIG_FOLLOWER].reloads == 1
        r = await client.get("/api/v1/halls/test/services")
        names = {s["code"]: s["name"] for s in await r.json()}
        assert names["BDC"] == "不动产登记（新）"
        # The new window works at once, on either process.
        headers = await admin_headers(client)
        r = await client.post("/api/v1/halls/test/counters/7/open", json={}, headers=headers)
        assert r.status == 200, await r.text()
        r = await client.post("/api/v1/halls/test/counters/7/close", json={}, headers=headers)
        assert r.status == 200, await r.text()


async def test_removing_a_counter_with_a_ticket_in_hand_is_refused(
    make_client: AppFactory, pool: asyncpg.Pool, config: HallConfig
) -> None:
    client = await make_client()
    headers = await admin_headers(client)
    await client.post("/api/v1/halls/test/tickets", json={"service": "BDC"}, headers=headers)
    await client.post("/api/v1/halls/test/counters/1/open", json={}, headers=headers)
    r = await client.post("/api/v1/halls/test/counters/1/call_next", json={}, headers=headers)
    assert r.status == 200
    before = await pool.fetchval("SELECT count(*) FROM config_snapshots")
    data = config.model_dump(mode="json", exclude_none=True)
    data["halls"][0]["counters"] = [c for c in data["halls"][0]["counters"] if c["number"] != 1]
    data["halls"][0]["services"] = [s for s in data["halls"][0]["services"] if s["code"] != "TAX"]
    for counter in data["halls"][0]["counters"]:
        counter["services"] = [s for s in counter["services"] if s["code"] != "TAX"]
    with pytest.raises(ConfigNotLive) as refused:
        async with pool.acquire() as conn:
            await apply_config(conn, HallConfig.model_validate(data))
    assert refused.value.fields["reasons"] == [
        "不能删除大厅 test 的 1 号窗口：正在办理 A001，请先办结并关闭该窗口"
    ]
    # Untouched: the counter is still there and the running config is the same.
    assert await pool.fetchval("SELECT count(*) FROM config_snapshots") == before
    assert await pool.fetchval("SELECT active FROM counters WHERE number = 1")
    assert client.app[DIRECTORY].hall("test").counter(1).number == 1

    # A service with a waiting ticket cannot go either.
    await client.post("/api/v1/halls/test/tickets", json={"service": "TAX"}, headers=headers)
    for action in ("start", "finish", "close"):
        r = await client.post(f"/api/v1/halls/test/counters/1/{action}", json={}, headers=headers)
        assert r.status == 200, await r.text()
    with pytest.raises(ConfigNotLive) as refused:
        async with pool.acquire() as conn:
            await apply_config(conn, HallConfig.model_validate(data))
    assert refused.value.fields["reasons"] == [
        "不能删除大厅 test 的业务 TAX：还有 1 个号码在等候或办理"
    ]


async def test_what_needs_a_restart_is_named(config: HallConfig) -> None:
    data = config.model_dump(mode="json", exclude_none=True)
    data["printers"] = [{"name": "p1", "hall": "test", "kiosk": "k1", "url": "tcp://127.0.0.1:9"}]
    with_printer = HallConfig.model_validate(data)
    assert restart_needed(config, with_printer) == ["打印机（printers）的修改在服务重启后生效"]
    assert restart_needed(config, _changed(config, name="新名称")) == []
    assert restart_needed(None, with_printer) == []
