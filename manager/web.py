"""The manager's HTTP API: reports (JSON, CSV, XLSX, printable HTML) and staffing advice."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Literal
from urllib.parse import quote

from aiohttp import web
from pydantic import BaseModel

from hall.domain.errors import InvalidInput
from hall.services.directory import HallRules
from hall.web.api import API, json
from hall.web.routes import Access, Route
from hall.web.state import DIRECTORY, POOL
from manager import export
from manager.periods import Period, parse_period
from manager.reports import Dimension, Report, build_report, parse_dimension, staff_names
from manager.staffing import staffing

FORMATS = ("json", "csv", "xlsx", "html")


class ReportRowOut(BaseModel):
    key: str
    label: str
    issued: int | None
    served: int
    no_show: int
    cancelled: int
    transferred: int
    wait_p50_s: float | None
    wait_p90_s: float | None
    wait_max_s: float | None
    service_p50_s: float | None
    service_p90_s: float | None
    service_max_s: float | None
    service_level: float | None
    rated: int
    satisfied: int
    bad: int
    satisfaction: float | None


class ReportOut(BaseModel):
    hall: str
    hall_name: str
    first: date
    last: date
    by: Literal["hall", "day", "service", "counter", "clerk"]
    rows: list[ReportRowOut]
    total: ReportRowOut
    cases: dict[str, float | None] | None
    """按时办结率 / 现场办结率; null until the evaluator's case view exists."""


class StaffingRowOut(BaseModel):
    service: str
    service_name: str
    hour: int
    arrivals_per_hour: float
    service_s: float
    target_wait_s: float
    needed: int
    counters_working: float
    predicted_level: float


def _rules(request: web.Request) -> HallRules:
    return request.app[DIRECTORY].hall(request.match_info["hall"])


def _period(request: web.Request) -> Period:
    return parse_period(request.query.get("from"), request.query.get("to"))


async def report(request: web.Request) -> web.StreamResponse:
    rules = _rules(request)
    period = _period(request)
    by = parse_dimension(request.query.get("by"))
    fmt = request.query.get("format", "json")
    if fmt not in FORMATS:
        raise InvalidInput(
            f"未知的导出格式「{fmt[:10]}」，可选：json、csv、xlsx、html", format=fmt[:10]
        )
    async with request.app[POOL].acquire() as conn:
        names = await staff_names(conn) if by is Dimension.CLERK else {}
        found = await build_report(conn, rules, period, by, names)
    if fmt == "csv":
        return _download(export.to_csv(found), found, "csv", "text/csv; charset=utf-8")
    if fmt == "xlsx":
        return _download(
            export.to_xlsx(found),
            found,
            "xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
    if fmt == "html":
        return web.Response(text=export.to_html(found), content_type="text/html")
    return json(report_out(found))


def report_out(found: Report) -> ReportOut:
    return ReportOut(
        hall=found.hall_id,
        hall_name=found.hall_name,
        first=found.period.first,
        last=found.period.last,
        by=found.by.value,
        rows=[ReportRowOut(**asdict(r)) for r in found.rows],
        total=ReportRowOut(**asdict(found.total)),
        cases=found.cases,
    )


def _download(body: bytes, found: Report, ext: str, content_type: str) -> web.Response:
    name = f"report-{found.hall_id}-{found.by.value}-{found.period.first}-{found.period.last}"
    response = web.Response(body=body)
    response.headers["Content-Type"] = content_type
    response.headers["Content-Disposition"] = (
        f"attachment; filename=\"{name}.{ext}\"; filename*=UTF-8''{quote(name)}.{ext}"
    )
    return response


async def staffing_advice(request: web.Request) -> web.Response:
    rules = _rules(request)
    period = _period(request)
    raw = request.query.get("goal", "80")
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 99:
        raise InvalidInput("目标服务水平 goal 必须是 1 到 99 之间的整数（百分比）", goal=raw[:10])
    async with request.app[POOL].acquire() as conn:
        rows = await staffing(conn, rules, period, int(raw) / 100)
    body = "[" + ",".join(StaffingRowOut(**asdict(r)).model_dump_json() for r in rows) + "]"
    return web.Response(text=body, content_type="application/json")


ROUTES = [
    Route(
        "GET",
        f"{API}/halls/{{hall}}/reports",
        report,
        "manager_report",
        "运行报表：?from=2026-11-01&to=2026-11-30&by=service|counter|clerk|day|hall"
        "&format=json|csv|xlsx|html",
        Access.MANAGER,
        response=ReportOut,
        tags=("manager",),
    ),
    Route(
        "GET",
        f"{API}/halls/{{hall}}/staffing",
        staffing_advice,
        "manager_staffing",
        "窗口配置建议（Erlang C）：?from=&to=&goal=80",
        Access.MANAGER,
        response=StaffingRowOut,
        response_list=True,
        tags=("manager",),
    ),
]
