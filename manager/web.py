"""The manager's HTTP API: reports (JSON, CSV, XLSX, printable HTML) and staffing advice."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from hall.domain.errors import InvalidInput
from hall.services.directory import HallRules
from hall.web.access import principal_of
from hall.web.api import API, json, json_list, parse_body
from hall.web.page_files import TYPES, PageFolder
from hall.web.routes import Access, Route
from hall.web.state import CLOCK, DIRECTORY, POOL, QUEUE
from manager import dashboard, export, overview
from manager.periods import Period, parse_period
from manager.reports import (
    CASE_FIGURES,
    Dimension,
    Report,
    build_report,
    parse_dimension,
    roll_up,
    staff_names,
)
from manager.staffing import staffing

FORMATS = ("json", "csv", "xlsx", "html")
ROLL_PER_REPORT_DAYS = 62
"""At most this many days are rolled up inside one report request (a bound on its time)."""


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
    alarms: int | None
    deducted: float | None
    score: float | None


class ReportOut(BaseModel):
    hall: str
    hall_name: str
    first: date
    last: date
    by: Literal["hall", "day", "service", "counter", "clerk"]
    rows: list[ReportRowOut]
    total: ReportRowOut
    cases: dict[str, float | None] | None
    """按时办结率 / 现场办结率 and the 差评 follow-up figures; null without the evaluator."""
    case_labels: list[tuple[str, str]]
    """(key, Chinese label) of the case figures, in the order to show them."""


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
    today = request.app[CLOCK].now().astimezone(rules.tz).date()
    async with request.app[POOL].acquire() as conn:
        # Roll up what can be of the period's last days (the task keeps the rest rolled); a
        # long period's older days that are not rolled are worked out from the event log.
        await roll_up(conn, rules, today, period.each_day()[-ROLL_PER_REPORT_DAYS:])
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
        case_labels=list(CASE_FIGURES),
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
    return json_list([StaffingRowOut(**asdict(r)) for r in rows])


class AlarmOut(BaseModel):
    key: str
    kind: str
    severity: Literal["warning", "critical"]
    message: str
    since: datetime | None
    acked: bool


class DashboardOut(BaseModel):
    hall: str
    hall_name: str
    day: date
    now: datetime
    services: list[dict[str, Any]]
    counters: list[dict[str, Any]]
    charts: dict[str, Any]
    alarms: list[AlarmOut]


class AckBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    key: Annotated[str, Field(min_length=1, max_length=200)]


async def dashboard_data(request: web.Request) -> web.Response:
    rules = _rules(request)
    now = request.app[CLOCK].now()
    overview = await request.app[QUEUE].services(rules.hall.id)
    async with request.app[POOL].acquire() as conn:
        data = await dashboard.figures(conn, rules, now, overview)
        alarms = await dashboard.alarms(conn, rules, now, data)
    return json(DashboardOut(**data, alarms=[AlarmOut(**asdict(a)) for a in alarms]))


async def acknowledge(request: web.Request) -> web.Response:
    rules = _rules(request)
    body = await parse_body(request, AckBody)
    now = request.app[CLOCK].now()
    async with request.app[POOL].acquire() as conn:
        await dashboard.acknowledge(conn, rules.hall.id, body.key, principal_of(request).actor, now)
    return web.json_response({"key": body.key, "acked": True})


class HallFiguresOut(BaseModel):
    issued: int
    served: int
    no_show: int
    waiting: int
    longest_wait_s: float | None
    rated: int
    satisfied: int
    bad: int
    satisfaction: float | None


class HallNodeOut(BaseModel):
    hall: str
    name: str
    level: str
    parent: str | None
    depth: int
    day: date
    own: HallFiguresOut
    total: HallFiguresOut
    """This hall and every hall under it."""
    halls: int


class OverviewOut(BaseModel):
    now: datetime
    halls: list[HallNodeOut]


def _figures_out(f: overview.HallFigures) -> HallFiguresOut:
    return HallFiguresOut(**asdict(f), satisfaction=f.satisfaction)


async def overview_data(request: web.Request) -> web.Response:
    now = request.app[CLOCK].now()
    config = request.app[DIRECTORY].config
    async with request.app[POOL].acquire() as conn:
        nodes = await overview.overview(conn, config, principal_of(request).halls, now)
    return json(
        OverviewOut(
            now=now,
            halls=[
                HallNodeOut(
                    hall=n.hall, name=n.name, level=n.level, parent=n.parent, depth=n.depth,
                    day=n.day, own=_figures_out(n.own), total=_figures_out(n.total),
                    halls=n.halls,
                )
                for n in nodes
            ],
        )
    )  # fmt: skip


PAGES = Path(__file__).resolve().parent / "pages"
FOLDER = PageFolder(
    PAGES,
    {**TYPES, ".txt": "text/plain"},
    immutable_dir="vendor",  # a vendored library never changes under its versioned folder
)


async def manage_page(request: web.Request) -> web.StreamResponse:
    return FOLDER.file("manage.html")


page_file = FOLDER.handler("path")


ROUTES = [
    Route(
        "GET", "/manage", manage_page, "manage_page", "管理看板", Access.PUBLIC, in_openapi=False
    ),
    Route(
        "GET",
        "/manage/{path:[A-Za-z0-9_./-]+}",
        page_file,
        "manage_files",
        "管理看板的脚本、样式与图表库",
        Access.PUBLIC,
        in_openapi=False,
    ),
    Route(
        "GET",
        f"{API}/halls/{{hall}}/dashboard",
        dashboard_data,
        "manager_dashboard",
        "管理看板数据：业务、窗口、告警与图表",
        Access.MANAGER,
        response=DashboardOut,
        tags=("manager",),
    ),
    Route(
        "GET",
        f"{API}/overview",
        overview_data,
        "manager_overview",
        "多大厅总览：今日各大厅及其下级大厅（乡镇→县→市）的汇总数字",
        Access.MANAGER,
        response=OverviewOut,
        tags=("manager",),
    ),
    Route(
        "POST",
        f"{API}/halls/{{hall}}/alarms/ack",
        acknowledge,
        "manager_alarm_ack",
        "确认告警",
        Access.MANAGER,
        body=AckBody,
        tags=("manager",),
    ),
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
