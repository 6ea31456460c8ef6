"""Bad input at every endpoint: a problem+json answer with a stable code, and no change."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

Client = TestClient[web.Request, web.Application]
H = "/api/v1/halls/test"


async def fingerprint(pool: asyncpg.Pool) -> tuple[Any, ...]:
    """Everything a request could have changed."""
    return (
        await pool.fetch("SELECT * FROM tickets ORDER BY id"),
        # Not their seqs: the sequencer numbers earlier events whenever it gets to them.
        await pool.fetch(
            "SELECT id, hall_id, type, at, actor, ticket_id, counter_number, details"
            " FROM events ORDER BY id"
        ),
        await pool.fetch("SELECT * FROM counters ORDER BY hall_id, number"),
        await pool.fetch("SELECT * FROM number_counters ORDER BY 1, 2, 3"),
        await pool.fetch("SELECT * FROM queue_tallies ORDER BY 1, 2, 3"),
    )


CASES: list[tuple[str, str, Any, int, str]] = [
    # method, path, body (bytes for raw), expected status, expected code
    ("POST", f"{H}/tickets", {"service": "BDC", "colour": "red"}, 422, "invalid_input"),
    ("POST", f"{H}/tickets", {"service": 7}, 422, "invalid_input"),
    ("POST", f"{H}/tickets", {}, 422, "invalid_input"),
    ("POST", f"{H}/tickets", b"{not json", 422, "invalid_input"),
    ("POST", f"{H}/tickets", b"[1, 2]", 422, "invalid_input"),
    ("POST", f"{H}/tickets", {"service": "NOPE"}, 404, "not_found"),
    ("POST", f"{H}/tickets", {"service": "BDC", "purpose": "bribe"}, 422, "invalid_input"),
    ("POST", f"{H}/tickets", {"service": "SOC", "purpose": "collect"}, 409, "purpose_not_allowed"),
    ("POST", f"{H}/tickets", {"service": "BDC", "priority_class": "vip"}, 422, "invalid_input"),
    ("POST", f"{H}/tickets", {"service": "BDC", "idempotency_key": "short"}, 422, "invalid_input"),
    ("POST", "/api/v1/halls/nowhere/tickets", {"service": "BDC"}, 404, "not_found"),
    ("GET", "/api/v1/tickets/not-a-real-token", None, 404, "not_found"),
    ("GET", "/api/v1/halls/nowhere/services", None, 404, "not_found"),
    ("GET", "/api/v1/halls/nowhere/snapshot", None, 404, "not_found"),
    ("GET", f"{H}/counters/999", None, 404, "not_found"),
    ("GET", f"{H}/counters/abc", None, 422, "invalid_input"),
    ("POST", f"{H}/counters/1/dance", {}, 422, "invalid_input"),
    ("POST", f"{H}/counters/1/call_next", {}, 409, "illegal_transition"),
    ("POST", f"{H}/counters/1/finish", {}, 409, "no_active_ticket"),
    ("POST", f"{H}/counters/1/open", {"clerk": 5}, 422, "invalid_input"),
    ("POST", f"{H}/counters/1/open", {"shift": "am"}, 422, "invalid_input"),
    ("POST", f"{H}/counters/1/call", {"number": "A001; DROP TABLE"}, 422, "invalid_input"),
    ("POST", f"{H}/counters/999/open", {}, 404, "not_found"),
    ("POST", f"{H}/counters/1/pause", {}, 422, "invalid_input"),
    ("POST", f"{H}/counters/1/pause", {"reason": "午休"}, 409, "illegal_transition"),
    ("DELETE", f"{H}/tickets", None, 405, "method_not_allowed"),
    ("GET", "/api/v1/no/such/endpoint", None, 404, "not_found"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "code"), CASES)
async def test_bad_request_is_a_problem_and_changes_nothing(
    client: Client,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    method: str,
    path: str,
    body: Any,
    status: int,
    code: str,
) -> None:
    # Some state to protect: a waiting ticket.
    resp = await client.post(f"{H}/tickets", json={"service": "BDC"}, headers=admin)
    assert resp.status == 201
    before = await fingerprint(pool)
    if isinstance(body, bytes):
        resp = await client.request(
            method, path, data=body, headers={**admin, "Content-Type": "application/json"}
        )
    else:
        resp = await client.request(method, path, json=body, headers=admin)
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/problem+json"
    problem = await resp.json()
    assert problem["code"] == code
    assert problem["status"] == status
    assert problem["type"].endswith(code)
    assert problem["title"]
    assert await fingerprint(pool) == before


async def test_too_large_body_is_refused(
    client: Client, pool: asyncpg.Pool, admin: dict[str, str]
) -> None:
    before = await fingerprint(pool)
    resp = await client.post(
        f"{H}/tickets",
        data=b"{" + b" " * 200_000 + b"}",
        headers={**admin, "Content-Type": "application/json"},
    )
    assert resp.status in (413, 422)
    assert resp.content_type == "application/problem+json"
    assert await fingerprint(pool) == before


async def test_idempotent_issue_returns_the_same_ticket(
    client: Client, pool: asyncpg.Pool, kiosk: dict[str, str]
) -> None:
    headers = {**kiosk, "Idempotency-Key": "kiosk1-0001-abcdef"}
    first = await client.post(f"{H}/tickets", json={"service": "BDC"}, headers=headers)
    again = await client.post(f"{H}/tickets", json={"service": "BDC"}, headers=headers)
    assert (first.status, again.status) == (201, 200)
    a, b = await first.json(), await again.json()
    assert a["number"] == b["number"] and a["token"] == b["token"] and b["replayed"] is True
    other = await client.post(f"{H}/tickets", json={"service": "TAX"}, headers=headers)
    assert other.status == 409
    assert (await other.json())["code"] == "idempotency_mismatch"
    assert await pool.fetchval("SELECT count(*) FROM tickets") == 1
