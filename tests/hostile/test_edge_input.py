"""Issue 10, items 1-3: the exact hostile inputs found by hand, each now a 4xx problem."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from yarl import URL

from hall.domain.policy import Candidate, CounterContext, PolicySettings, choose_next
from hall.web.state import POOL
from tests.access_helpers import admin_headers, staff_headers
from tests.hostile.conftest import Client, assert_no_tracebacks, assert_problem

H = "/api/v1/halls/test"
NOW = "2026-11-24T10:00:00+08:00"  # the test clock, in the hall's zone


async def _problem(response: Any) -> None:
    assert_problem(response.status, response.content_type, await response.json())


# --- item 1: appointment times --------------------------------------------------------------

BAD_APPOINTMENTS: list[dict[str, Any]] = [
    {"appointment_start": "9999-12-31T23:59:59Z", "appointment_end": "9999-12-31T23:59:59Z"},
    {"appointment_start": "0001-01-01T00:00:00Z", "appointment_end": "0001-01-01T00:00:00Z"},
    {"appointment_start": "0001-01-01T00:00:00Z"},
    # end before start
    {"appointment_start": "2026-11-24T10:30:00+08:00", "appointment_end": NOW},
    # no zone
    {"appointment_start": "2026-11-24T10:00:00", "appointment_end": "2026-11-24T10:30:00"},
    # epoch integers, negative and positive
    {"appointment_start": -62135596800, "appointment_end": -62135596800},
    {"appointment_start": 1795485600},
    {"appointment_end": "2026-11-24T10:30:00+08:00"},  # an end without a start
    {"appointment_start": "2026-11-26T10:00:00+08:00"},  # two days ahead
]


@pytest.mark.parametrize("times", BAD_APPOINTMENTS)
async def test_appointment_times_out_of_range_or_shape_are_refused(
    hostile_client: Client, times: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    admin = await admin_headers(hostile_client)
    response = await hostile_client.post(
        f"{H}/tickets", json={"service": "BDC", **times}, headers=admin
    )
    await _problem(response)
    assert await hostile_client.app[POOL].fetchval("SELECT count(*) FROM tickets") == 0
    assert_no_tracebacks(caplog)


async def test_an_appointment_within_the_day_is_accepted_and_called_first(
    hostile_client: Client,
) -> None:
    admin = await admin_headers(hostile_client)
    walk_in = await hostile_client.post(f"{H}/tickets", json={"service": "BDC"}, headers=admin)
    booked = await hostile_client.post(
        f"{H}/tickets",
        json={
            "service": "BDC",
            "appointment_start": NOW,
            "appointment_end": "2026-11-24T10:30:00+08:00",
        },
        headers=admin,
    )
    assert (walk_in.status, booked.status) == (201, 201)
    await hostile_client.post(f"{H}/counters/1/open", json={"clerk": "c001"}, headers=admin)
    called = await hostile_client.post(f"{H}/counters/1/call_next", headers=admin)
    assert called.status == 200
    assert (await called.json())["ticket"]["number"] == (await booked.json())["number"]


@pytest.mark.parametrize(
    "stored",
    [datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), datetime(1, 1, 1, tzinfo=UTC)],
    ids=["max", "min"],
)
async def test_call_next_survives_any_appointment_already_stored(
    hostile_client: Client, stored: datetime
) -> None:
    """Rows written before the edge checked appointments must not stop a service calling."""
    admin = await admin_headers(hostile_client)
    for _ in range(2):
        issued = await hostile_client.post(f"{H}/tickets", json={"service": "BDC"}, headers=admin)
        assert issued.status == 201
    await hostile_client.app[POOL].execute(
        "UPDATE tickets SET appointment_start = $1, appointment_end = $1", stored
    )
    for counter in (1, 2):
        opened = await hostile_client.post(
            f"{H}/counters/{counter}/open", json={"clerk": "c001"}, headers=admin
        )
        assert opened.status == 200
        called = await hostile_client.post(f"{H}/counters/{counter}/call_next", headers=admin)
        assert called.status == 200, await called.text()


@pytest.mark.parametrize(
    "slot",
    [datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), datetime(1, 1, 1, tzinfo=UTC)],
    ids=["max", "min"],
)
def test_the_call_policy_never_overflows(slot: datetime) -> None:
    now = datetime(2026, 11, 24, 2, tzinfo=UTC)
    candidates = [
        Candidate(
            ticket_id=1,
            service_code="BDC",
            queue_key=now - timedelta(minutes=5),
            priority=False,
            target_counter=None,
            appointment_start=slot,
            appointment_end=slot,
        ),
        Candidate(
            ticket_id=2, service_code="BDC", queue_key=now, priority=False, target_counter=None
        ),
    ]
    counter = CounterContext(
        number=1, services=(("BDC", 1),), call_order="order", normal_since_priority=0
    )
    settings = PolicySettings(
        priority_ratio=3,
        max_bypass=timedelta(minutes=30),
        appointment_early=timedelta(minutes=15),
        appointment_late=timedelta(minutes=15),
    )
    choice = choose_next(candidates, counter, settings, now)
    assert choice is not None
    assert choice.reason != "appointment"  # a slot that far away is not open now


# --- item 2: 500s without login ---------------------------------------------------------------

ANONYMOUS_CASES: list[tuple[str, str, Any]] = [
    ("GET", "/api/v1/halls/xx-county/counters/%C2%B2", None),
    ("GET", f"{H}/counters/%C2%B2", None),
    ("GET", f"{H}/counters/%E2%91%A0", None),
    ("POST", "/api/v1/sessions/%C2%B2/revoke", None),
    ("GET", "/api/v1/audit?limit=%C2%B2", None),
    ("GET", "/api/v1/tickets/%00", None),
    ("GET", "/api/v1/tickets/%ED%A0%80", None),
    ("GET", "/api/v1/audit?actor=%00", None),
    ("GET", f"{H}/live?channel=counter:%C2%B2", None),
    ("POST", "/api/v1/login", b'{"job_no":"pad\\u0000min","password":"whatever-1"}'),
    ("POST", "/api/v1/login", b'{"job_no":"pad\\ud800min","password":"whatever-1"}'),
    ("POST", "/api/v1/login", b"[" * 5000 + b"]" * 5000),
    ("POST", "/api/v1/device-login", b'{"token":"hd1_\\u0000"}'),
    ("POST", f"{H}/tickets", b'{"service":"BDC","kiosk":"k\\u00001"}'),
]


@pytest.mark.parametrize(("method", "path", "body"), ANONYMOUS_CASES)
async def test_hostile_requests_without_login_are_problems(
    hostile_client: Client,
    method: str,
    path: str,
    body: bytes | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    response = await hostile_client.request(
        method,
        URL(path, encoded=True),
        data=body,
        headers={"Content-Type": "application/json"} if body is not None else {},
    )
    await _problem(response)
    assert_no_tracebacks(caplog)


STAFF_CASES: list[tuple[str, str, Any]] = [
    ("GET", f"{H}/counters/%C2%B2", None),
    ("GET", f"{H}/counters/%E2%91%A0", None),
    ("POST", f"{H}/counters/%C2%B2/open", b"{}"),
    ("POST", "/api/v1/sessions/%C2%B2/revoke", None),
    ("POST", "/api/v1/device-tokens/%E2%91%A0/revoke", None),
    ("GET", "/api/v1/audit?limit=%C2%B2", None),
    ("GET", "/api/v1/audit?before=%E2%91%A0", None),
    ("GET", "/api/v1/audit?actor=%00", None),
    ("GET", "/api/v1/audit?route=a%00", None),
    ("GET", "/api/v1/tickets/%00", None),
    ("POST", f"{H}/tickets", b'{"service":"BDC","kiosk":"k\\u00001"}'),
    ("POST", f"{H}/tickets", b'{"service":"BDC","idempotency_key":"abcdefgh\\u0000"}'),
    ("POST", f"{H}/tickets", b'{"service":"BDC","idempotency_key":"abcdefgh\\udfff"}'),
    ("POST", f"{H}/tickets", b'{"service":"B\\u0000C"}'),
    ("POST", f"{H}/counters/1/pause", b'{"reason":"\\u0000"}'),
    ("POST", f"{H}/tickets", b'{"service":' + b"[" * 5000 + b"]" * 5000 + b"}"),
    ("POST", f"{H}/counters/1/open", b"[" * 5000 + b"]" * 5000),
    ("POST", f"{H}/counters/1/open", b'{"clerk":' + b'{"a":' * 3000 + b"1" + b"}" * 3001),
    ("POST", "/api/v1/device-tokens", b"[" * 5000 + b"]" * 5000),
    ("POST", f"{H}/tickets", b'{"service":"BDC","priority_class":NaN}'),
    ("POST", f"{H}/print-jobs/%C2%B2/cancel", None),
    ("POST", f"{H}/pairings/%C2%B2%C2%B2%C2%B2%C2%B2%C2%B2%C2%B2/approve", b"{}"),
]


@pytest.mark.parametrize(("method", "path", "body"), STAFF_CASES)
async def test_hostile_requests_of_an_admin_are_problems_and_audited(
    hostile_client: Client,
    method: str,
    path: str,
    body: bytes | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    admin = await admin_headers(hostile_client)
    headers = {**admin, "Content-Type": "application/json"}
    response = await hostile_client.request(
        method, URL(path, encoded=True), data=body, headers=headers
    )
    await _problem(response)
    if method == "POST":
        status = await hostile_client.app[POOL].fetchval("SELECT status FROM audit_log")
        assert status == response.status
    assert await hostile_client.app[POOL].fetchval("SELECT count(*) FROM tickets") == 0
    assert_no_tracebacks(caplog)


async def test_undecodable_header_bytes_are_stored_cleaned(hostile_client: Client) -> None:
    """aiohttp turns non-UTF-8 header bytes into lone surrogates; the session row and the
    audit row keep a cleaned User-Agent instead of failing."""
    from tests.access_helpers import create_staff

    await create_staff(hostile_client, "c001", counters=(1,))
    # Raw bytes in a header need a raw request: the client library would refuse them.
    host, port = hostile_client.server.host, hostile_client.server.port
    import asyncio

    reader, writer = await asyncio.open_connection(host, port)
    body = b'{"job_no":"c001","password":"correct-horse-7"}'
    writer.write(
        b"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"User-Agent: kiosk \xff\xfe\r\nContent-Length: " + str(len(body)).encode() + b"\r\n"
        b"Connection: close\r\n\r\n" + body
    )
    await writer.drain()
    answer = await reader.read()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
    agent = await hostile_client.app[POOL].fetchval("SELECT user_agent FROM audit_log")
    assert agent is not None and agent.startswith("kiosk ")


async def _raw(client: Client, request: bytes) -> bytes:
    import asyncio

    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(request)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    return answer


@pytest.mark.parametrize(
    "header",
    [
        b"Authorization: Bearer hs1_\xff\xfe",
        b"Authorization: Bearer \xff",
        b"Cookie: hall_session=hs1_\xff",
        b"Cookie: hall_device=hd1_\xc3\x28",
        b"Idempotency-Key: abcdefgh\xff\xfe",
        b"Idempotency-Key: abc\x01defghi",
        b"X-Forwarded-For: \xff",
    ],
)
async def test_undecodable_credentials_and_keys_are_problems(
    hostile_client: Client, header: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    body = b'{"service":"BDC"}'
    answer = await _raw(
        hostile_client,
        b"POST /api/v1/halls/test/tickets HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\n" + header + b"\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body,
    )
    status = int(answer.split(b" ", 2)[1])
    assert 400 <= status < 500, answer[:300]
    assert_no_tracebacks(caplog)


async def test_a_csrf_header_that_is_not_utf8_is_refused(
    hostile_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.access_helpers import create_staff, open_session

    await create_staff(hostile_client, "c001", counters=(1,))
    _, token, _ = await open_session(hostile_client, "c001", "cookie")
    answer = await _raw(
        hostile_client,
        b"POST /api/v1/halls/test/counters/1/open HTTP/1.1\r\nHost: x\r\n"
        b"Cookie: hall_session=" + token.encode() + b"\r\nX-CSRF-Token: \xff\xfe\r\n"
        b"Content-Length: 0\r\nConnection: close\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 403"), answer[:300]
    assert b"csrf_rejected" in answer
    assert_no_tracebacks(caplog)


# --- item 3: refused requests are audited whatever their body holds ------------------------

REFUSED_BODIES = [
    b'{"reason": NaN}',
    b'{"reason": -Infinity}',
    b'{"reason": "\\u0000"}',
    b'{"reason": "\\ud800"}',
]


@pytest.mark.parametrize("body", REFUSED_BODIES, ids=["nan", "infinity", "nul", "surrogate"])
async def test_a_refused_request_is_audited_whatever_its_body_holds(
    hostile_client: Client, body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    clerk = await staff_headers(hostile_client, "c001", counters=(1,))
    response = await hostile_client.post(
        f"{H}/counters/2/pause", data=body, headers={**clerk, "Content-Type": "application/json"}
    )
    assert response.status == 403
    rows = await hostile_client.app[POOL].fetch("SELECT actor, status, params FROM audit_log")
    assert [(r["actor"], r["status"]) for r in rows] == [("c001", 403)]
    assert rows[0]["params"]["number"] == "2"
    assert_no_tracebacks(caplog)


# --- the last resort ------------------------------------------------------------------------


async def test_an_unexpected_exception_is_a_problem_500_without_a_traceback(
    database_url: str, pool: object, caplog: pytest.LogCaptureFixture
) -> None:
    import json

    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from hall.app import Settings, create_app
    from hall.web.routes import Access, Route, register
    from tests.factories import hall_config
    from tests.hostile.conftest import CJK

    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("secret internals")

    app = create_app(Settings(database_url=database_url, config=hall_config()))
    register(app, [Route("GET", "/api/v1/broken", broken, "broken", "坏", Access.PUBLIC)])
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/api/v1/broken")
        body = await response.text()
    assert response.status == 500
    assert response.content_type == "application/problem+json"
    assert "Traceback" not in body and "secret internals" not in body
    assert CJK.search(json.loads(body)["detail"])
    assert [r.exc_info[0] for r in caplog.records if r.exc_info] == [RuntimeError]
