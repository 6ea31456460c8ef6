"""The report and staffing API: figures after real tickets, exports, and bad input refused in
Chinese (never a 500)."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from hall.ports import FixedClock
from hall.web.state import POOL
from tests.access_helpers import admin_headers, staff_headers

DAY = "2026-11-24"  # the clock fixture's business day
URL = "/api/v1/halls/test/reports"


async def _serve_two(client: TestClient[Any, Any], headers: dict[str, str]) -> None:
    for service in ("BDC", "BDC", "TAX"):
        r = await client.post(
            "/api/v1/halls/test/tickets", json={"service": service}, headers=headers
        )
        assert r.status == 201, await r.text()
    base = "/api/v1/halls/test/counters/1"
    assert (await client.post(f"{base}/open", json={"clerk": "c001"}, headers=headers)).ok
    for action in ("call_next", "start", "finish", "call_next", "no_show"):
        r = await client.post(f"{base}/{action}", json={}, headers=headers)
        assert r.ok, await r.text()


async def test_report_counts_what_happened(client: TestClient[Any, Any]) -> None:
    headers = await admin_headers(client)
    await _serve_two(client, headers)
    r = await client.get(URL, params={"from": DAY, "to": DAY, "by": "service"}, headers=headers)
    assert r.status == 200, await r.text()
    body = await r.json()
    rows = {row["key"]: row for row in body["rows"]}
    assert rows["BDC"]["issued"] == 2
    assert rows["BDC"]["served"] == 1
    assert rows["BDC"]["no_show"] == 1
    assert rows["BDC"]["label"] == "不动产登记"
    assert rows["TAX"]["issued"] == 1 and rows["TAX"]["served"] == 0
    assert body["total"]["issued"] == 3
    # No case was accepted and no 差评 given: no rate, no 差评 counted.
    assert body["cases"] == {
        "on_time_rate": None,
        "on_the_spot_rate": None,
        "bad_ratings": 0,
        "rectified_rate": None,
        "return_visit_rate": None,
        "closed_on_time_rate": None,
    }
    assert [key for key, _ in body["case_labels"]] == list(body["cases"])

    r = await client.get(URL, params={"from": DAY, "by": "clerk"}, headers=headers)
    clerk_rows = (await r.json())["rows"]
    assert [(row["key"], row["served"], row["no_show"]) for row in clerk_rows] == [("c001", 1, 1)]
    assert clerk_rows[0]["label"] == "王小明"


async def test_exports(client: TestClient[Any, Any]) -> None:
    headers = await admin_headers(client)
    await _serve_two(client, headers)
    params = {"from": DAY, "to": DAY, "by": "counter"}

    r = await client.get(URL, params={**params, "format": "csv"}, headers=headers)
    assert r.status == 200
    assert "attachment" in r.headers["Content-Disposition"]
    raw = await r.read()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads the Chinese as UTF-8
    lines = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert lines[1][:4] == ["编码", "名称", "取号数", "办结数"]
    assert lines[2][:2] == ["1", "1号窗口"] and lines[2][3] == "1"
    assert lines[-2][1] == "合计"

    r = await client.get(URL, params={**params, "format": "xlsx"}, headers=headers)
    assert r.status == 200
    book = zipfile.ZipFile(io.BytesIO(await r.read()))
    strings = book.read("xl/sharedStrings.xml").decode()
    assert "1号窗口" in strings and "办结数" in strings
    sheet = book.read("xl/worksheets/sheet1.xml").decode()
    assert re.search(r'<c r="D3"[^>]*><v>1</v>', sheet)  # served at window 1

    r = await client.get(URL, params={**params, "format": "html"}, headers=headers)
    page = await r.text()
    assert r.content_type == "text/html"
    assert "测试县政务服务中心 运行报表（按窗口） 2026-11-24" in page
    assert "@page" in page


async def _problem(client: TestClient[Any, Any], params: dict[str, str], headers: Any) -> str:
    r = await client.get(URL, params=params, headers=headers)
    assert r.status == 422, await r.text()
    assert r.content_type == "application/problem+json"
    detail: str = (await r.json())["detail"]
    return detail


async def test_bad_periods_and_options_are_refused_in_chinese(
    client: TestClient[Any, Any],
) -> None:
    headers = await admin_headers(client)
    detail = await _problem(client, {"from": "2026-11-24", "to": "2026-11-01"}, headers)
    assert "结束日期 2026-11-01 早于开始日期 2026-11-24" in detail
    detail = await _problem(client, {"from": "2024-01-01", "to": "2026-01-01"}, headers)
    assert "超过上限 366 天" in detail
    assert "不是有效日期" in await _problem(client, {"from": "2026-13-01"}, headers)
    assert "不是有效日期" in await _problem(client, {"from": "２０２６-11-01"}, headers)
    assert "缺少开始日期" in await _problem(client, {}, headers)
    assert "未知的统计维度" in await _problem(client, {"from": DAY, "by": "x"}, headers)
    assert "未知的导出格式" in await _problem(client, {"from": DAY, "format": "pdf"}, headers)
    r = await client.get(
        "/api/v1/halls/test/staffing", params={"from": DAY, "goal": "150"}, headers=headers
    )
    assert r.status == 422
    r = await client.get("/api/v1/halls/nope/reports", params={"from": DAY}, headers=headers)
    assert r.status == 404


async def test_clerks_may_not_read_reports(client: TestClient[Any, Any]) -> None:
    clerk = await staff_headers(client, "c001", counters=(1,))
    r = await client.get(URL, params={"from": DAY}, headers=clerk)
    assert r.status == 403
    manager = await staff_headers(client, "m001", roles=("manager",))
    r = await client.get(URL, params={"from": DAY}, headers=manager)
    assert r.status == 200


async def test_staffing_advice_next_to_counters_working(client: TestClient[Any, Any]) -> None:
    headers = await admin_headers(client)
    await _serve_two(client, headers)
    r = await client.get("/api/v1/halls/test/staffing", params={"from": DAY}, headers=headers)
    assert r.status == 200, await r.text()
    rows = await r.json()
    bdc = next(row for row in rows if row["service"] == "BDC" and row["hour"] == 10)
    assert bdc["arrivals_per_hour"] == 2.0
    assert bdc["counters_working"] == 1.0
    assert bdc["needed"] >= 1
    assert bdc["target_wait_s"] == 1200.0


async def test_dashboard_figures_and_a_wait_alarm_acknowledged(
    client: TestClient[Any, Any], clock: FixedClock
) -> None:
    headers = await admin_headers(client)
    await _serve_two(client, headers)  # leaves TAX waiting
    url = "/api/v1/halls/test/dashboard"
    body = await (await client.get(url, headers=headers)).json()
    services = {s["code"]: s for s in body["services"]}
    assert services["TAX"]["waiting"] == 1 and services["BDC"]["served_today"] == 1
    window = next(c for c in body["counters"] if c["number"] == 1)
    assert (window["state_label"], window["clerk"], window["served_today"]) == ("空闲", "c001", 1)
    assert sum(n or 0 for n in body["charts"]["arrivals"]) == 3
    assert body["alarms"] == []

    clock.set(clock.now() + timedelta(minutes=25))  # TAX's target wait is 20 minutes
    body = await (await client.get(url, headers=headers)).json()
    kinds = {a["kind"]: a for a in body["alarms"]}
    assert kinds["queue_wait"]["message"] == "「税务」最长等待 25 分钟，超过目标 20 分钟"
    # Idle windows are the counters slice's electronic supervision: its open alarms show.
    await client.app[POOL].execute(
        """INSERT INTO supervision_alarms (hall_id, kind, counter_number, raised_at, detail)
           VALUES ('test', 'idle_with_queue', 1, $1, '空闲 25 分钟，1 人等候')""",
        clock.now(),
    )
    body = await (await client.get(url, headers=headers)).json()
    kinds = {a["kind"]: a for a in body["alarms"]}
    assert kinds["supervision"]["message"] == "电子监察：1号窗口 空闲 25 分钟，1 人等候"
    key = kinds["queue_wait"]["key"]
    r = await client.post("/api/v1/halls/test/alarms/ack", json={"key": key}, headers=headers)
    assert r.status == 200
    body = await (await client.get(url, headers=headers)).json()
    assert [a["acked"] for a in body["alarms"] if a["key"] == key] == [True]
