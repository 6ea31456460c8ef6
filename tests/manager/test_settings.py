"""Admin screens for a hall's calendar and thresholds: checked with every problem's key
path, shown as a difference, applied live; the running config is untouched by bad input."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient

from tests.access_helpers import admin_headers, staff_headers

URL = "/api/v1/halls/test/settings"


async def _current(client: TestClient[Any, Any], headers: dict[str, str]) -> dict[str, Any]:
    r = await client.get(URL, headers=headers)
    assert r.status == 200, await r.text()
    body: dict[str, Any] = await r.json()
    return {k: body[k] for k in ("calendar", "supervision", "services")}


async def test_a_holiday_and_a_make_up_day_are_checked_then_applied_live(
    client: TestClient[Any, Any],
) -> None:
    admin = await admin_headers(client)
    body = await _current(client, admin)
    assert body["calendar"]["working_weekdays"] == [1, 2, 3, 4, 5]
    body["calendar"]["holidays"] = ["2026-12-31", "2027-01-01"]
    body["calendar"]["workdays"] = ["2027-01-04"]
    body["supervision"]["idle_with_queue_minutes"] = 7
    body["supervision"]["deductions"]["unattended"] = 3
    body["services"][0]["target_wait_minutes"] = 25

    r = await client.post(f"{URL}/check", json=body, headers=admin)
    assert r.status == 200, await r.text()
    check = await r.json()
    assert check["valid"] and check["refusals"] == []
    changed = {c["path"]: (c["before"], c["after"]) for c in check["changes"]}
    assert changed["halls[0].supervision.idle_with_queue_minutes"] == (10, 7)
    assert changed["halls[0].supervision.deductions.unattended"] == (5, 3)
    assert changed["halls[0].services[0].target_wait_minutes"][1] == 25
    assert changed["halls[0].calendar.holidays"] == ([], ["2026-12-31", "2027-01-01"])

    r = await client.post(f"{URL}/apply", json=body, headers=admin)
    assert r.status == 200, await r.text()
    assert (await r.json())["changed"] is True
    assert await _current(client, admin) == body
    # The server follows the applied config (by its notify channel) within seconds: the
    # dashboard's target wait becomes the new one.
    code = body["services"][0]["code"]

    async def target() -> float:
        r = await client.get("/api/v1/halls/test/dashboard", headers=admin)
        services = {s["code"]: s for s in (await r.json())["services"]}
        return float(services[code]["target_wait_s"])

    async with asyncio.timeout(5):
        while await target() != 25 * 60:  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def test_bad_settings_show_every_problem_with_its_key_path(
    client: TestClient[Any, Any],
) -> None:
    admin = await admin_headers(client)
    before = await _current(client, admin)
    body = await _current(client, admin)
    body["calendar"]["holidays"] = ["2027-01-04"]
    body["calendar"]["workdays"] = ["2027-01-04"]  # both a holiday and a make-up day
    body["calendar"]["working_weekdays"] = [1, 2, 8]
    body["supervision"]["unattended_minutes"] = 0
    body["services"][0]["target_wait_minutes"] = "二十"

    r = await client.post(f"{URL}/check", json=body, headers=admin)
    check = await r.json()
    assert check["valid"] is False
    paths = {i["path"] for i in check["issues"]}
    assert {
        "halls[0].calendar.working_weekdays[2]",
        "halls[0].supervision.unattended_minutes",
        "halls[0].services[0].target_wait_minutes",
    } <= paths
    r = await client.post(f"{URL}/apply", json=body, headers=admin)
    assert r.status == 422
    problem = await r.json()
    assert "未应用" in problem["detail"] and len(problem["issues"]) == len(check["issues"])
    assert await _current(client, admin) == before  # the running config is untouched

    body = await _current(client, admin)
    body["calendar"]["workdays"] = ["2027-01-04"]
    body["calendar"]["holidays"] = ["2027-01-04"]
    check = await (await client.post(f"{URL}/check", json=body, headers=admin)).json()
    assert [i["path"] for i in check["issues"]] == ["halls[0].calendar.workdays[0]"]


async def test_unknown_service_hall_and_roles_are_refused(client: TestClient[Any, Any]) -> None:
    admin = await admin_headers(client)
    body = await _current(client, admin)
    body["services"] = [{"code": "NOPE", "target_wait_minutes": 10}]
    r = await client.post(f"{URL}/check", json=body, headers=admin)
    assert r.status == 422 and "NOPE" in (await r.json())["detail"]
    r = await client.post(f"{URL}/check", json={"calendar": []}, headers=admin)
    assert r.status == 422
    r = await client.get("/api/v1/halls/nowhere/settings", headers=admin)
    assert r.status in (403, 404)
    clerk = await staff_headers(client, "c09", roles=("clerk",), halls=("test",))
    assert (await client.get(URL, headers=clerk)).status == 403
