"""Cookie-authenticated state changes need the session's CSRF token; bearer requests do not."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.access_helpers import bearer, create_staff, login

Client = TestClient[web.Request, web.Application]
OPEN = "/api/v1/halls/test/counters/1/open"
COUNTER = "/api/v1/halls/test/counters/1"


async def counter_state(client: Client, headers: dict[str, str]) -> str:
    response = await client.get(COUNTER, headers=headers)
    state: str = (await response.json())["state"]
    return state


async def test_cookie_post_without_or_with_a_wrong_csrf_token_changes_nothing(
    access_client: Client,
) -> None:
    await create_staff(access_client, "c001", counters=(1,))
    body = await login(access_client, "c001")
    for headers in ({}, {"X-CSRF-Token": "forged"}, {"X-CSRF-Token": ""}):
        response = await access_client.post(OPEN, headers=headers)
        assert response.status == 403, headers
        assert (await response.json())["code"] == "csrf_rejected"
    assert await counter_state(access_client, {}) == "closed"  # GET needs no token

    response = await access_client.post(OPEN, headers={"X-CSRF-Token": body["csrf_token"]})
    assert response.status == 200
    assert await counter_state(access_client, {}) == "idle"


async def test_bearer_requests_need_no_csrf_token(access_client: Client) -> None:
    await create_staff(access_client, "c001", counters=(1,))
    token = (await login(access_client, "c001"))["token"]
    access_client.session.cookie_jar.clear()
    response = await access_client.post(OPEN, headers=bearer(token))
    assert response.status == 200


async def test_the_csrf_token_is_bound_to_its_session(access_client: Client) -> None:
    await create_staff(access_client, "c001", counters=(1,))
    first = await login(access_client, "c001")
    access_client.session.cookie_jar.clear()
    await login(access_client, "c001")  # a second browser: its own cookie and CSRF token
    response = await access_client.post(OPEN, headers={"X-CSRF-Token": first["csrf_token"]})
    assert response.status == 403
    assert await counter_state(access_client, {}) == "closed"


async def test_logging_in_again_from_a_logged_in_browser_needs_no_csrf_token(
    access_client: Client,
) -> None:
    await create_staff(access_client, "c001", counters=(1,))
    first = await login(access_client, "c001")  # the jar now holds a live session cookie
    second = await login(access_client, "c001")
    assert second["csrf_token"] != first["csrf_token"]
