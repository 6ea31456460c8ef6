"""Wrong passwords lock an account for a while; staff change their own password."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from hall.ports import FixedClock
from hall.security.passwords import password_problem
from tests.access_helpers import PASSWORD, bearer, create_staff, login

Client = TestClient[web.Request, web.Application]


async def try_login(client: Client, job_no: str, password: str) -> tuple[int, dict[str, Any]]:
    response = await client.post("/api/v1/login", json={"job_no": job_no, "password": password})
    client.session.cookie_jar.clear()
    body: dict[str, Any] = await response.json(content_type=None)
    if response.status == 423:
        body["retry_after"] = response.headers.get("Retry-After")
    return response.status, body


async def test_five_wrong_passwords_lock_the_account_for_fifteen_minutes(
    access_client: Client, clock: FixedClock
) -> None:
    await create_staff(access_client, "c001", counters=(1,))
    for _ in range(4):
        assert (await try_login(access_client, "c001", "wrong-pass-1"))[0] == 401

    status, body = await try_login(access_client, "c001", "wrong-pass-1")
    assert status == 423
    assert body["code"] == "account_locked"
    assert body["retry_after"] == "900"
    assert "15 分钟" in body["detail"]
    # While locked even the right password is not tried.
    clock.set(clock.now() + timedelta(minutes=14))
    status, body = await try_login(access_client, "c001", PASSWORD)
    assert status == 423
    assert body["retry_after"] == "60"

    clock.set(clock.now() + timedelta(minutes=1))
    assert (await try_login(access_client, "c001", PASSWORD))[0] == 200
    # A good login starts the count again: four more wrong ones do not lock.
    for _ in range(4):
        assert (await try_login(access_client, "c001", "wrong-pass-1"))[0] == 401
    assert (await try_login(access_client, "c001", PASSWORD))[0] == 200


async def test_an_admin_setting_a_new_password_unlocks_the_account(
    access_client: Client,
) -> None:
    await create_staff(access_client, "c001", counters=(1,))
    for _ in range(5):
        await try_login(access_client, "c001", "wrong-pass-1")
    assert (await try_login(access_client, "c001", PASSWORD))[0] == 423

    await create_staff(access_client, "c001", counters=(1,), password="reset-by-admin-2")

    assert (await try_login(access_client, "c001", "reset-by-admin-2"))[0] == 200


async def test_unknown_job_numbers_never_lock_and_answer_like_wrong_passwords(
    access_client: Client,
) -> None:
    for _ in range(7):
        status, body = await try_login(access_client, "nobody", "wrong-pass-1")
        assert (status, body["detail"]) == (401, "工号或密码错误")


async def test_changing_the_password_ends_the_other_logins(access_client: Client) -> None:
    await create_staff(access_client, "c001", counters=(1,))
    here = bearer((await login(access_client, "c001"))["token"])
    elsewhere = bearer((await login(access_client, "c001"))["token"])
    access_client.session.cookie_jar.clear()
    url = "/api/v1/me/password"

    wrong = await access_client.post(
        url,
        json={"current_password": "not-it-1", "new_password": "new-secret-9"},
        headers=here,
    )
    assert wrong.status == 422
    assert (await wrong.json())["detail"] == "当前密码不正确"
    weak = await access_client.post(
        url, json={"current_password": PASSWORD, "new_password": "abcdefgh"}, headers=here
    )
    assert weak.status == 422
    assert "至少两类" in (await weak.json())["detail"]

    done = await access_client.post(
        url, json={"current_password": PASSWORD, "new_password": "new-secret-9"}, headers=here
    )

    assert done.status == 204, await done.text()
    assert (await access_client.get("/api/v1/me", headers=here)).status == 200
    assert (await access_client.get("/api/v1/me", headers=elsewhere)).status == 401
    assert (await try_login(access_client, "c001", PASSWORD))[0] == 401
    assert (await try_login(access_client, "c001", "new-secret-9"))[0] == 200


async def test_wrong_current_passwords_count_towards_the_lock(access_client: Client) -> None:
    await create_staff(access_client, "c001", counters=(1,))
    here = bearer((await login(access_client, "c001"))["token"])
    access_client.session.cookie_jar.clear()
    body = {"current_password": "guess-000-1", "new_password": "new-secret-9"}
    for _ in range(4):
        response = await access_client.post("/api/v1/me/password", json=body, headers=here)
        assert response.status == 422

    response = await access_client.post("/api/v1/me/password", json=body, headers=here)

    assert response.status == 423
    assert (await try_login(access_client, "c001", PASSWORD))[0] == 423


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short-1", "密码至少需要 8 个字符"),
        ("onlyletters", "密码需包含字母、数字、符号中的至少两类"),
        ("1234567890", "密码需包含字母、数字、符号中的至少两类"),
        ("xx-C001-yy", "密码不能包含工号"),
        ("letters-and-digits-1", None),
        ("密码是中文加数字2026", None),
    ],
)
def test_password_rules(password: str, problem: str | None) -> None:
    assert password_problem(password, "c001") == problem
