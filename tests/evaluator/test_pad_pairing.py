"""A tablet pairs as the "pad" of one counter (a pairing kind the evaluator declares)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

import asyncpg

from hall.cli_devices import pair_device
from hall.ports import FixedClock
from tests.access_helpers import staff_headers
from tests.evaluator.conftest import Client, finish, serve_one

PAIRINGS = "/api/v1/halls/test/pairings"


async def _paired_pad(client: Client, counter: str) -> dict[str, Any]:
    """Pair this client's cookie jar as the pad of ``counter``; the pairing's answer."""
    manager = await staff_headers(client, "m001", roles=("manager",))
    code = (await (await client.post("/api/v1/pairing")).json())["code"]
    approved = await client.post(
        f"{PAIRINGS}/{code}/approve", json={"kind": "pad", "device_id": counter}, headers=manager
    )
    assert approved.status == 200, await approved.text()
    claimed = await client.post("/api/v1/pairing/claim")
    assert claimed.status == 200
    out: dict[str, Any] = await claimed.json()
    return out


async def test_the_manager_lists_pad_targets_and_a_paired_pad_opens_its_counter(
    client: Client,
) -> None:
    manager = await staff_headers(client, "m001", roles=("manager",))
    listed = await (await client.get(PAIRINGS, headers=manager)).json()
    pads = [(t["device_id"], t["name"]) for t in listed["targets"] if t["kind"] == "pad"]
    assert pads[:2] == [("1", "1号窗口评价器"), ("2", "2号窗口评价器")]
    assert [p[0] for p in pads] == sorted((p[0] for p in pads), key=int)  # every counter
    assert "9" not in {p[0] for p in pads}
    # A counter the hall does not have is refused in Chinese, nothing approved.
    code = (await (await client.post("/api/v1/pairing")).json())["code"]
    bad = await client.post(
        f"{PAIRINGS}/{code}/approve", json={"kind": "pad", "device_id": "9"}, headers=manager
    )
    assert bad.status == 422
    assert (await bad.json())["detail"] == "大厅 test 的配置中没有网页评价器 9"
    unknown = await client.post(
        f"{PAIRINGS}/{code}/approve", json={"kind": "printer", "device_id": "1"}, headers=manager
    )
    assert unknown.status == 422
    assert "未知的设备类型 printer" in (await unknown.json())["detail"]

    paired = await _paired_pad(client, "1")
    assert (paired["kind"], paired["next"]) == ("pad", "/pad/test?counter=1")
    me = await (await client.get("/api/v1/me")).json()
    assert (me["kind"], me["device_kind"], me["device_id"]) == ("display", "pad", "1")
    assert me["actor"] == "pad:test/1"
    listed = await (await client.get(PAIRINGS, headers=manager)).json()
    assert [(d["kind"], d["device_id"]) for d in listed["paired"]] == [("pad", "1")]


async def test_a_pad_rates_only_its_own_counter_and_revocation_ends_it(
    client: Client, pool: asyncpg.Pool
) -> None:
    await _paired_pad(client, "1")
    me = await (await client.get("/api/v1/me")).json()
    csrf = {"X-CSRF-Token": me["csrf_token"]}
    await serve_one(client)
    await finish(client)
    own = await (await client.get("/api/v1/halls/test/evaluator/counters/1/pad")).json()
    assert own["state"] == "rating"
    other = await client.get("/api/v1/halls/test/evaluator/counters/2/pad")
    assert other.status == 403
    assert (await other.json())["detail"] == "此评价器配对的是 1 号窗口，不能用于 2 号窗口"
    rated = await client.post(
        "/api/v1/halls/test/evaluator/counters/1/pad/ratings",
        json={"session": own["session"], "level": 5},
        headers=csrf,
    )
    assert rated.status == 201, await rated.text()
    row = await pool.fetchrow("SELECT level, channel, counter_number FROM ratings")
    assert row is not None and tuple(row) == (5, "web_pad", 1)

    manager = await staff_headers(client, "m001", roles=("manager",))
    token_id = await pool.fetchval("SELECT id FROM device_tokens WHERE kind = 'pad'")
    revoked = await client.post(
        f"/api/v1/halls/test/device-tokens/{token_id}/revoke", headers=manager
    )
    assert revoked.status == 204
    after = await client.get("/api/v1/halls/test/evaluator/counters/1/pad")
    assert after.status == 401


async def test_hall_device_pair_kind_pad_from_the_command_line(
    client: Client, pool: asyncpg.Pool, clock: FixedClock
) -> None:
    clock.set(datetime.now(UTC))  # the command runs on the wall clock
    code = (await (await client.post("/api/v1/pairing")).json())["code"]
    args = argparse.Namespace(code=code, kind="pad", device_id="2", hall="test")
    async with pool.acquire() as conn:
        missing = argparse.Namespace(code=code, kind="pad", device_id="7", hall="test")
        assert await pair_device(conn, missing) == 1
        assert await pair_device(conn, args) == 0
    state = await (await client.get("/api/v1/pairing")).json()
    assert (state["state"], state["kind"], state["next"]) == (
        "approved",
        "pad",
        "/pad/test?counter=2",
    )
    assert (await client.post("/api/v1/pairing/claim")).status == 200
    assert await pool.fetchval("SELECT kind || ':' || device_id FROM device_tokens") == "pad:2"
