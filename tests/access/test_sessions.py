"""Staff login, the session cookie and bearer token, timeouts, logout and revocation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from hall.ports import FixedClock
from hall.security.passwords import DEFAULT_PARAMS, ScryptParams
from hall.storage.config_store import apply_config
from hall.web.access import COOKIE_NAME
from hall.web.state import POOL
from tests.access.conftest import roomy_settings
from tests.access_helpers import PASSWORD, admin_headers, bearer, create_staff, login
from tests.conftest import AppFactory
from tests.factories import hall_config

Client = TestClient[web.Request, web.Application]


async def me(client: Client, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    response = await client.get("/api/v1/me", headers=headers)
    body: dict[str, Any] = await response.json(content_type=None)
    return response.status, body


async def test_login_sets_a_strict_http_only_cookie_and_returns_bearer_and_csrf(
    access_client: Client,
) -> None:
    await create_staff(access_client, "c001", roles=("clerk",), counters=(1,))
    response = await access_client.post(
        "/api/v1/login", json={"job_no": "c001", "password": PASSWORD}
    )
    assert response.status == 200
    body = await response.json()
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=")
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Path=/" in cookie
    assert body["token"] not in cookie, "the page cookie and the API token are different secrets"
    assert body["counters"] == [1]
    assert body["token_type"] == "Bearer"

    status, page = await me(access_client)  # the cookie jar sends the cookie
    assert status == 200
    assert (page["actor"], page["session_kind"]) == ("c001", "cookie")
    assert page["csrf_token"] == body["csrf_token"]

    access_client.session.cookie_jar.clear()
    status, api = await me(access_client, bearer(body["token"]))
    assert status == 200
    assert (api["actor"], api["session_kind"], api["csrf_token"]) == ("c001", "bearer", None)


async def test_wrong_password_and_unknown_job_no_get_the_same_answer(
    access_client: Client,
) -> None:
    await create_staff(access_client, "c001")
    wrong = await access_client.post("/api/v1/login", json={"job_no": "c001", "password": "nope"})
    unknown = await access_client.post(
        "/api/v1/login", json={"job_no": "zz9", "password": PASSWORD}
    )
    assert wrong.status == unknown.status == 401
    assert (await wrong.json())["detail"] == (await unknown.json())["detail"] == "工号或密码错误"
    assert "Set-Cookie" not in wrong.headers


async def test_idle_sessions_expire_and_use_keeps_them_alive(
    make_client: AppFactory, clock: FixedClock
) -> None:
    client = await make_client(access=roomy_settings(session_idle=timedelta(minutes=30)))
    await create_staff(client, "c001")
    token = (await login(client, "c001"))["token"]
    client.session.cookie_jar.clear()
    start = clock.now()
    for minutes in (29, 58, 87):  # each request within 30 minutes of the previous one
        clock.set(start + timedelta(minutes=minutes))
        assert (await me(client, bearer(token)))[0] == 200
    clock.set(start + timedelta(minutes=87 + 31))
    status, body = await me(client, bearer(token))
    assert status == 401
    assert body["code"] == "session_expired"


async def test_sessions_end_at_the_absolute_timeout_however_busy(
    make_client: AppFactory, clock: FixedClock
) -> None:
    client = await make_client(
        access=roomy_settings(session_idle=timedelta(hours=1), session_absolute=timedelta(hours=8))
    )
    await create_staff(client, "c001")
    token = (await login(client, "c001"))["token"]
    start = clock.now()
    for half_hours in range(1, 16):
        clock.set(start + timedelta(minutes=30 * half_hours))
        assert (await me(client, bearer(token)))[0] == 200, f"after {half_hours / 2} h"
    clock.set(start + timedelta(hours=8))
    status, body = await me(client, bearer(token))
    assert (status, body["code"]) == (401, "session_expired")


async def test_logout_ends_both_the_cookie_and_the_bearer_session(access_client: Client) -> None:
    await create_staff(access_client, "c001")
    body = await login(access_client, "c001")
    token, csrf = body["token"], body["csrf_token"]

    response = await access_client.post("/api/v1/logout", headers={"X-CSRF-Token": csrf})
    assert response.status == 204
    assert (
        f'{COOKIE_NAME}=""' in response.headers["Set-Cookie"]
        or "Max-Age=0" in (response.headers["Set-Cookie"])
    )
    access_client.session.cookie_jar.clear()
    status, problem = await me(access_client, bearer(token))
    assert (status, problem["code"]) == (401, "session_revoked")


async def test_a_revoked_session_is_refused_at_once(access_client: Client) -> None:
    await create_staff(access_client, "c001")
    token = (await login(access_client, "c001"))["token"]
    access_client.session.cookie_jar.clear()
    admin = await admin_headers(access_client)
    session_id = (await me(access_client, bearer(token)))[1]["session_id"]

    listed = await (await access_client.get("/api/v1/sessions", headers=admin)).json()
    assert session_id in [s["id"] for s in listed]
    response = await access_client.post(f"/api/v1/sessions/{session_id}/revoke", headers=admin)
    assert response.status == 200
    assert session_id in (await response.json())["revoked"]

    status, problem = await me(access_client, bearer(token))
    assert (status, problem["code"]) == (401, "session_revoked")
    listed = await (await access_client.get("/api/v1/sessions", headers=admin)).json()
    assert session_id not in [s["id"] for s in listed]
    missing = await access_client.post("/api/v1/sessions/999999/revoke", headers=admin)
    assert missing.status == 404


async def test_staff_dropped_from_the_config_cannot_log_in_but_cli_accounts_can(
    access_client: Client,
) -> None:
    await create_staff(access_client, "c001")  # listed in the hall config
    await create_staff(access_client, "boss", roles=("admin",), halls=())  # created by the CLI
    clerk_token = (await login(access_client, "c001"))["token"]
    access_client.session.cookie_jar.clear()

    without_c001 = hall_config().model_copy(update={"staff": []})
    async with access_client.app[POOL].acquire() as conn:
        await apply_config(conn, without_c001)

    assert (await me(access_client, bearer(clerk_token)))[0] == 401
    refused = await access_client.post(
        "/api/v1/login", json={"job_no": "c001", "password": PASSWORD}
    )
    assert refused.status == 401
    assert (await login(access_client, "boss"))["roles"] == ["admin"]


async def test_weak_password_hashes_are_upgraded_at_login(make_client: AppFactory) -> None:
    client = await make_client(access=roomy_settings(password_params=DEFAULT_PARAMS))
    await create_staff(client, "c001")  # hashed with the cheap test parameters
    await login(client, "c001")
    stored = await client.app[POOL].fetchval(
        "SELECT password_hash FROM staff_credentials WHERE job_no = 'c001'"
    )
    assert stored.split("$")[1] == DEFAULT_PARAMS.encode()
    assert ScryptParams.decode(stored.split("$")[1]) == DEFAULT_PARAMS
    client.session.cookie_jar.clear()
    assert (await login(client, "c001"))["job_no"] == "c001"  # the new hash verifies


async def test_tokens_are_stored_only_as_hashes(access_client: Client) -> None:
    await create_staff(access_client, "c001")
    body = await login(access_client, "c001")
    cookie = access_client.session.cookie_jar.filter_cookies(access_client.make_url("/"))
    secrets_issued = [body["token"], cookie[COOKIE_NAME].value]
    dump = await access_client.app[POOL].fetchval("SELECT string_agg(t::text, ' ') FROM sessions t")
    assert dump
    for secret in secrets_issued:
        assert secret not in dump
    stored_pw = await access_client.app[POOL].fetchval(
        "SELECT password_hash FROM staff_credentials"
    )
    assert PASSWORD not in stored_pw


async def test_a_bootstrap_admin_is_created_only_when_no_admin_exists(
    make_client: AppFactory,
) -> None:
    client = await make_client(access=roomy_settings(bootstrap_admin=("root", "first-boot-1")))
    body = await login(client, "root", "first-boot-1")
    assert body["roles"] == ["admin"]

    other = await make_client(access=roomy_settings(bootstrap_admin=("root2", "second-boot")))
    refused = await other.post("/api/v1/login", json={"job_no": "root2", "password": "second-boot"})
    assert refused.status == 401
