"""Admin screens: staff logins, config check (problems with key paths, diff, refusals), and a
config applied from the admin page reaching a second server process."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from hall.config.models import HallConfig
from hall.web.state import POOL
from tests.access_helpers import admin_bearer_in, admin_headers, login
from tests.browser import browser_test, chromium_page, staff_login
from tests.live.helpers import to_toml, write_config_toml
from tests.servers import ServerProcess

TEXT = {"Content-Type": "text/plain; charset=utf-8"}


def _toml(config: HallConfig, **hall_changes: Any) -> str:
    data = config.model_dump(mode="json", exclude_none=True)
    data["halls"][0].update(hall_changes)
    return to_toml(data)


async def test_staff_add_disable_enable_and_reset(client: TestClient[Any, Any]) -> None:
    admin = await admin_headers(client)
    body = {"job_no": "c777", "name": "李四", "roles": ["clerk"], "counters": [1],
            "password": "short"}  # fmt: skip
    r = await client.post("/api/v1/staff", json=body, headers=admin)
    assert r.status == 422 and "至少" in (await r.json())["detail"]
    body["password"] = "window-pass-77"
    r = await client.post("/api/v1/staff", json=body, headers=admin)
    assert r.status == 201 and (await r.json())["created"]
    await login(client, "c777", "window-pass-77")
    r = await client.get("/api/v1/me")
    assert r.status == 200

    r = await client.post("/api/v1/staff/c777/disable", json={}, headers=admin)
    assert r.status == 200
    r = await client.get("/api/v1/me")  # the open session ended at once
    assert r.status == 401
    client.session.cookie_jar.clear()
    r = await client.post("/api/v1/login", json={"job_no": "c777", "password": "window-pass-77"})
    assert r.status == 401 and "停用" in (await r.json())["detail"]

    assert (await client.post("/api/v1/staff/c777/enable", json={}, headers=admin)).status == 200
    r = await client.post(
        "/api/v1/staff/c777/password", json={"password": "another-pass-88"}, headers=admin
    )
    assert r.status == 200
    await login(client, "c777", "another-pass-88")
    rows = await (await client.get("/api/v1/staff", headers=admin)).json()
    row = next(s for s in rows if s["job_no"] == "c777")
    assert row == {**row, "name": "李四", "roles": ["clerk"], "counters": [1], "disabled": False}
    r = await client.post("/api/v1/staff/nobody/disable", json={}, headers=admin)
    assert r.status == 404


async def test_config_check_shows_problems_with_key_paths(
    client: TestClient[Any, Any], config: HallConfig
) -> None:
    admin = await admin_headers(client)
    services = config.model_dump(mode="json", exclude_none=True)["halls"][0]["services"]
    services[1]["prefix"] = "bad"
    r = await client.post(
        "/api/v1/config/check", data=_toml(config, services=services), headers={**admin, **TEXT}
    )
    body = await r.json()
    assert r.status == 200 and body["valid"] is False
    assert [i["path"] for i in body["issues"]] == ["halls[0].services[1].prefix"]
    r = await client.post("/api/v1/config/check", data="[[halls]\n", headers={**admin, **TEXT})
    assert (await r.json())["issues"][0]["line"] == 1

    r = await client.post(
        "/api/v1/config/check", data=_toml(config, name="新大厅名"), headers={**admin, **TEXT}
    )
    body = await r.json()
    assert body["valid"] and body["refusals"] == [] and body["restart_needed"] == []
    assert body["changes"] == [
        {"path": "halls[0].name", "before": "测试县政务服务中心", "after": "新大厅名"}
    ]
    r = await client.post(
        "/api/v1/config/apply", data=_toml(config, services=services), headers={**admin, **TEXT}
    )
    assert r.status == 422
    assert (await r.json())["issues"][0]["path"] == "halls[0].services[1].prefix"
    assert await client.app[POOL].fetchval("SELECT count(*) FROM config_snapshots") == 1


async def test_a_refused_change_says_why(client: TestClient[Any, Any], config: HallConfig) -> None:
    admin = await admin_headers(client)
    await client.post("/api/v1/halls/test/tickets", json={"service": "BDC"}, headers=admin)
    await client.post("/api/v1/halls/test/counters/1/open", json={}, headers=admin)
    await client.post("/api/v1/halls/test/counters/1/call_next", json={}, headers=admin)
    counters = config.model_dump(mode="json", exclude_none=True)["halls"][0]["counters"]
    text = _toml(config, counters=[c for c in counters if c["number"] != 1])
    r = await client.post("/api/v1/config/check", data=text, headers={**admin, **TEXT})
    assert (await r.json())["refusals"] == [
        "不能删除大厅 test 的 1 号窗口：正在办理 A001，请先办结并关闭该窗口"
    ]
    r = await client.post("/api/v1/config/apply", data=text, headers={**admin, **TEXT})
    assert r.status == 409
    problem = await r.json()
    assert problem["code"] == "config_not_live" and len(problem["reasons"]) == 1


@pytest.fixture
async def two_servers(
    database_url: str, pool: asyncpg.Pool, config: HallConfig, tmp_path: Path
) -> AsyncIterator[tuple[ServerProcess, ServerProcess]]:
    path = write_config_toml(config.model_dump(mode="json", exclude_none=True), tmp_path / "h.toml")
    procs = [
        ServerProcess(
            ["serve", "--database-url", database_url, "--config", str(path)],
            env={"HALL_SECRET_KEY": "ef" * 32},
            log_path=tmp_path / f"server{n}.log",
        )
        for n in (1, 2)
    ]
    for proc in procs:
        await proc.start()
    try:
        yield procs[0], procs[1]
    finally:
        for proc in procs:
            if proc.proc is not None and proc.proc.poll() is None:
                proc.proc.send_signal(signal.SIGCONT)
            await proc.stop()


@browser_test
async def test_a_config_applied_from_the_page_reaches_a_second_process(
    two_servers: tuple[ServerProcess, ServerProcess], pool: asyncpg.Pool, config: HallConfig
) -> None:
    first, second = two_servers
    await admin_bearer_in(pool, "root")
    services = config.model_dump(mode="json", exclude_none=True)["halls"][0]["services"]
    services[0]["name"] = "不动产登记（改）"
    text = _toml(config, services=services)
    async with aiohttp.ClientSession() as api, chromium_page(1366, 900) as (page, errors):
        await page.goto(f"{first.url}/manage/admin.html")
        await staff_login(page, "root", "#admin:not([hidden])")
        await page.fill("#config-text", text)
        await page.click("#check")
        await page.wait_for_selector(".changes", timeout=10_000)
        assert "halls[0].services[0].name" in (await page.text_content(".changes") or "")
        await page.click("#apply")
        await page.wait_for_selector("#applied", timeout=10_000)

        async def name_on(server: ServerProcess) -> str:
            async with api.get(f"{server.url}/api/v1/halls/test/services") as r:
                return str((await r.json())[0]["name"])

        # The other process's HTTP answer is the observable: ask it until it changes, within
        # the 5 s the issue allows ("within seconds").
        async with asyncio.timeout(5):
            while await name_on(second) != "不动产登记（改）":  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        assert await name_on(first) == "不动产登记（改）"
        assert errors == []


@browser_test
async def test_calendar_and_thresholds_from_the_page_reach_a_second_process(
    two_servers: tuple[ServerProcess, ServerProcess], pool: asyncpg.Pool
) -> None:
    """A bad date is shown with its key path and nothing changes; a good target wait and a
    holiday applied on the first server are what the second one's dashboard uses."""
    first, second = two_servers
    bearer = await admin_bearer_in(pool, "root")
    async with aiohttp.ClientSession() as api, chromium_page(1366, 900) as (page, errors):
        await page.goto(f"{first.url}/manage/settings.html?hall=test")
        await staff_login(page, "root", "#settings-main:not([hidden])")

        await page.fill("#holidays", "2027-01-01\n2027-02-30")
        await page.click("#check")
        await page.wait_for_selector(".issues", timeout=10_000)
        assert "halls[0].calendar.holidays[1]" in (await page.text_content(".issues") or "")
        assert await page.is_disabled("#apply")

        await page.fill("#holidays", "2027-01-01")
        await page.fill("#workdays", "2027-01-04")
        await page.fill("input[name=target][data-code=BDC]", "33")
        await page.click("#check")
        await page.wait_for_selector(".changes", timeout=10_000)
        changes = await page.text_content(".changes") or ""
        assert "halls[0].services[0].target_wait_minutes" in changes
        assert "halls[0].calendar.holidays" in changes
        await page.click("#apply")
        await page.wait_for_selector("#applied", timeout=10_000)

        async def target_on(server: ServerProcess) -> float:
            url = f"{server.url}/api/v1/halls/test/dashboard"
            async with api.get(url, headers=bearer) as r:
                assert r.status == 200, await r.text()
                services = (await r.json())["services"]
                return float(next(s for s in services if s["code"] == "BDC")["target_wait_s"])

        async with asyncio.timeout(5):  # "within seconds"
            while await target_on(second) != 33 * 60:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        assert await target_on(first) == 33 * 60
        assert errors == []
