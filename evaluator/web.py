"""HTTP API of the evaluator slice: cases, ratings (web pad, phone link), 差评 tasks, outbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Literal

import asyncpg
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from evaluator import repo
from evaluator.devices import shown_session
from evaluator.domain import (
    CASE_TYPE_NAMES,
    DIMENSION_NAMES,
    LEVEL_NAMES,
    STATUS_NAMES,
    CaseStatus,
    CaseType,
    dims_mask,
    ordered_dimensions,
)
from evaluator.imports import CaseImporter, ImportResult, fetch_upstream_cases, parse_records
from evaluator.pad import SETTINGS
from evaluator.service import Evaluator, LazyHasher, NewCase
from hall.domain.errors import Forbidden, InvalidInput, NotFound
from hall.domain.pii import mask_phone
from hall.web.access import principal_of
from hall.web.api import API, SUPERVISOR_ROLES, json, json_list, parse_body
from hall.web.routes import Access, Route
from hall.web.state import CLOCK, DIRECTORY, POOL
from hall.web.validation import ascii_int

EVALUATOR = web.AppKey("evaluator", Evaluator)

_Strict = ConfigDict(extra="forbid", strict=True, frozen=True)
Text40 = Annotated[str, Field(min_length=1, max_length=40)]


# --- bodies and answers ------------------------------------------------------------------


class CaseBody(BaseModel):
    model_config = _Strict
    ticket_id: Annotated[int, Field(ge=1, le=2**53)] | None = None
    """The ticket being served at this counter (or one served here before: attach later)."""
    number: (
        Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")] | None
    ) = None
    """The upstream 办件编号; omitted: a local number is made."""
    matter: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    matter_name: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    case_type: Literal["immediate", "promised", "joint", "reported"] | None = None
    promised_days: Annotated[int, Field(ge=0, le=3650)] | None = None
    due_on: date | None = None
    applicant_name: Text40 | None = None
    applicant_phone: Annotated[str, Field(min_length=1, max_length=20)] | None = None
    source: Literal["local", "upstream"] = "local"


class StatusBody(BaseModel):
    model_config = _Strict
    status: Literal[
        "accepted", "reviewing", "completed", "delivered", "collected", "returned", "rejected"
    ]
    note: Annotated[str, Field(max_length=200)] | None = None


class ImportBody(BaseModel):
    """Cases from the upstream platform (a JSON file a manager uploads)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    cases: Annotated[list[Any], Field(max_length=5000)]


class PullBody(BaseModel):
    model_config = _Strict
    since: date | None = None
    """Only cases the platform changed on or after this day (default: all it returns)."""


class ImportErrorOut(BaseModel):
    case_number: str
    detail: str


class ImportOut(BaseModel):
    created: list[str]
    updated: list[str]
    unchanged: list[str]
    errors: list[ImportErrorOut]
    message: str


class CaseOut(BaseModel):
    id: int
    hall: str
    number: str
    source: str
    matter_code: str | None
    matter_impl_code: str | None
    matter_name: str
    case_type: str
    case_type_name: str
    promised_days: int
    accepted_on: date
    due_on: date
    status: str
    status_name: str
    ticket_id: int | None
    ticket_number: str | None
    counter: int | None
    clerk: str | None
    service_code: str | None
    applicant_name: str | None
    """Masked: only the surname is shown."""
    applicant_phone: str | None
    """Masked (138****5678)."""
    rating_id: int | None
    rating_url: str


class RatingOut(BaseModel):
    id: int
    hall: str
    level: int | None
    level_name: str
    bad: bool
    not_rated_reason: str | None
    reasons: list[str]
    reason_texts: list[str]
    comment: str | None
    channel: str
    counter: int | None
    clerk: str | None
    service_code: str | None
    ticket_id: int | None
    ticket_number: str | None
    case_id: int | None
    case_number: str | None
    task_id: int | None
    session_id: int | None
    rated_at: datetime
    rated_at_text: str
    """Local time of the hall, ``YYYY-MM-DD HH:MM``."""


class TaskOut(BaseModel):
    id: int
    hall: str
    rating_id: int
    level: int
    reasons: list[str]
    case_id: int | None
    case_number: str | None
    ticket_number: str | None
    counter: int | None
    clerk: str | None
    owner: str
    status: str
    opened_at: datetime
    due_on: date
    overdue: bool
    applicant_name: str | None
    applicant_phone: str | None
    """In full only for the task's owner; masked for everyone else."""
    return_visit_at: datetime | None
    return_visit_result: str | None
    return_visit_note: str | None
    rectification: str | None
    rectified_at: datetime | None
    appeal_reason: str | None
    appealed_at: datetime | None
    appeal_outcome: str | None
    appeal_decided_at: datetime | None
    closed_at: datetime | None


class TaskBody(BaseModel):
    model_config = _Strict
    action: Literal["visit", "rectify", "appeal", "decide_appeal", "close"]
    result: Literal["satisfied", "basic", "unsatisfied"] | None = None
    note: Annotated[str, Field(max_length=500)] | None = None
    text: Annotated[str, Field(min_length=1, max_length=1000)] | None = None
    reason: Annotated[str, Field(min_length=1, max_length=500)] | None = None
    outcome: Literal["upheld", "rejected"] | None = None


class MatterOut(BaseModel):
    impl_code: str
    code: str
    name: str
    kind: str
    kind_name: str
    promised_days: int


class ReasonOut(BaseModel):
    code: str
    text: str


class PadOut(BaseModel):
    hall: str
    counter: int
    clerk: str | None
    clerk_name: str | None
    state: Literal["idle", "serving", "rating"]
    session: int | None
    ticket_number: str | None
    timeout_s: int
    """Seconds left to rate (state "rating")."""
    reasons: list[ReasonOut]
    dimensions: list[ReasonOut] = []
    """Extra dimensions to rate (code, Chinese name), in the order a pad shows them."""


class PadRatingBody(BaseModel):
    model_config = _Strict
    session: Annotated[int, Field(ge=1, le=0xFFFFFFFF)]
    level: Annotated[int, Field(ge=1, le=5)] | None
    """None: the page's timer ran out (stored as not rated)."""
    reasons: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=32)]], Field(max_length=16)
    ] = []
    dims: Annotated[dict[Annotated[str, Field(max_length=20)], Any], Field(max_length=8)] | None = (
        None
    )
    """Extra dimensions the hall uses (``evaluation.dimensions``): name → 1-5, 0 skipped."""


class RatedOut(BaseModel):
    rating_id: int
    message: str


class PhoneCaseOut(BaseModel):
    hall_name: str
    case_number: str
    matter_name: str
    status_name: str
    rated: bool
    rateable: bool
    reasons: list[ReasonOut]
    dimensions: list[ReasonOut] = []
    """Extra dimensions to rate (code, Chinese name), in the order a pad shows them."""


class PhoneRatingBody(BaseModel):
    model_config = _Strict
    level: Annotated[int, Field(ge=1, le=5)]
    reasons: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=32)]], Field(max_length=16)
    ] = []
    dims: Annotated[dict[Annotated[str, Field(max_length=20)], Any], Field(max_length=8)] | None = (
        None
    )
    """Extra dimensions the hall uses (``evaluation.dimensions``): name → 1-5, 0 skipped."""
    comment: Annotated[str, Field(max_length=200)] | None = None


class OutboxOut(BaseModel):
    id: int
    key: str
    kind: str
    ref_id: int
    state: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class OutboxSummary(BaseModel):
    pending: int
    delivered: int
    dead: int
    records: list[OutboxOut]


class AlarmOut(BaseModel):
    id: int
    hall: str
    kind: str
    ref_id: int
    message: str
    raised_at: datetime
    cleared_at: datetime | None


# --- helpers -----------------------------------------------------------------------------


def _svc(request: web.Request) -> Evaluator:
    return request.app[EVALUATOR]


def _hall(request: web.Request) -> str:
    hall = request.match_info["hall"]
    request.app[DIRECTORY].hall(hall)  # 404 for an unknown hall
    return hall


def _pad_counter(request: web.Request) -> int:
    """The counter in the path; a tablet paired as a pad serves only the counter it was paired
    for (its device id), so a pad cannot read or rate another window."""
    counter = ascii_int(request.match_info.get("number"), "number", 6)
    principal = principal_of(request)
    if principal.device_kind == "pad" and principal.device_id != str(counter):
        raise Forbidden(f"此评价器配对的是 {principal.device_id} 号窗口，不能用于 {counter} 号窗口")
    return counter


def _mask_name(name: str | None) -> str | None:
    if not name:
        return None
    return name[0] + "*" * max(1, len(name) - 1)


def case_out(request: web.Request, r: asyncpg.Record) -> CaseOut:
    return CaseOut(
        id=r["id"],
        hall=r["hall_id"],
        number=r["number"],
        source=r["source"],
        matter_code=r["matter_code"],
        matter_impl_code=r["matter_impl_code"],
        matter_name=r["matter_name"],
        case_type=r["case_type"],
        case_type_name=CASE_TYPE_NAMES[CaseType(r["case_type"])],
        promised_days=r["promised_days"],
        accepted_on=r["accepted_on"],
        due_on=r["due_on"],
        status=r["status"],
        status_name=STATUS_NAMES[CaseStatus(r["status"])],
        ticket_id=r["ticket_id"],
        ticket_number=r["ticket_number"],
        counter=r["counter_number"],
        clerk=r["clerk"],
        service_code=r["service_code"],
        applicant_name=_mask_name(r["applicant_name"]),
        applicant_phone=mask_phone(r["applicant_phone"]) if r["applicant_phone"] else None,
        rating_id=r["rating_id"],
        rating_url=f"{request.scheme}://{request.host}/r/{r['rating_token']}",
    )


def _reason_texts(request: web.Request, codes: list[str]) -> list[str]:
    names = {r.code: r.text for r in request.app[DIRECTORY].config.evaluation.bad_reasons}
    return [names.get(c, c) for c in codes]


def rating_out(request: web.Request, r: asyncpg.Record) -> RatingOut:
    level = r["level"]
    codes = list(r["reason_codes"] or [])
    tz = request.app[DIRECTORY].hall(r["hall_id"]).tz
    return RatingOut(
        id=r["id"],
        hall=r["hall_id"],
        level=level,
        level_name=LEVEL_NAMES[level] if level else "未评价",
        bad=level is not None and level <= 2,
        not_rated_reason=r["not_rated_reason"],
        reasons=codes,
        reason_texts=_reason_texts(request, codes),
        comment=r["comment"],
        channel=r["channel"],
        counter=r["counter_number"],
        clerk=r["clerk"],
        service_code=r["service_code"],
        ticket_id=r["ticket_id"],
        ticket_number=r["ticket_number"],
        case_id=r["case_id"],
        case_number=r["case_number"],
        task_id=r["task_id"],
        session_id=r["session_id"],
        rated_at=r["rated_at"],
        rated_at_text=f"{r['rated_at'].astimezone(tz):%Y-%m-%d %H:%M}",
    )


def task_out(request: web.Request, r: asyncpg.Record) -> TaskOut:
    today = request.app[CLOCK].now().astimezone(request.app[DIRECTORY].hall(r["hall_id"]).tz)
    owner = principal_of(request).actor == r["owner"]
    phone = r["applicant_phone"]
    return TaskOut(
        id=r["id"],
        hall=r["hall_id"],
        rating_id=r["rating_id"],
        level=r["level"],
        reasons=list(r["reason_codes"] or []),
        case_id=r["case_id"],
        case_number=r["case_number"],
        ticket_number=r["ticket_number"],
        counter=r["counter_number"],
        clerk=r["clerk"],
        owner=r["owner"],
        status=r["status"],
        opened_at=r["opened_at"],
        due_on=r["due_on"],
        overdue=r["status"] != "closed" and today.date() > r["due_on"],
        applicant_name=r["applicant_name"] if owner else _mask_name(r["applicant_name"]),
        applicant_phone=phone if owner or not phone else mask_phone(phone),
        return_visit_at=r["return_visit_at"],
        return_visit_result=r["return_visit_result"],
        return_visit_note=r["return_visit_note"],
        rectification=r["rectification"],
        rectified_at=r["rectified_at"],
        appeal_reason=r["appeal_reason"],
        appealed_at=r["appealed_at"],
        appeal_outcome=r["appeal_outcome"],
        appeal_decided_at=r["appeal_decided_at"],
        closed_at=r["closed_at"],
    )


def _query_int(request: web.Request, name: str, digits: int = 12) -> int | None:
    raw = request.query.get(name)
    return None if raw in (None, "") else ascii_int(raw, name, digits)


def _query_text(request: web.Request, name: str, max_len: int = 64) -> str | None:
    raw = request.query.get(name)
    if raw in (None, ""):
        return None
    assert raw is not None
    if len(raw) > max_len or not raw.isprintable():
        raise InvalidInput(f"参数 {name} 不正确", parameter=name)
    return raw


def _query_date(request: web.Request, name: str) -> date | None:
    raw = _query_text(request, name, 10)
    if raw is None:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(f"参数 {name} 必须是 YYYY-MM-DD 日期", parameter=name) from None
    if not date(2000, 1, 1) <= day <= date(2999, 12, 31):
        raise InvalidInput(f"参数 {name} 超出可查询的日期范围", parameter=name)
    return day


# --- handlers: cases ---------------------------------------------------------------------


async def create_case(request: web.Request) -> web.Response:
    hall = _hall(request)
    counter = ascii_int(request.match_info.get("number"), "number", 6)
    body = await parse_body(request, CaseBody)
    row = await _svc(request).create_case(
        NewCase(
            hall_id=hall,
            counter=counter,
            ticket_id=body.ticket_id,
            number=body.number,
            matter=body.matter,
            matter_name=body.matter_name,
            case_type=CaseType(body.case_type) if body.case_type else None,
            promised_days=body.promised_days,
            due_on=body.due_on,
            applicant_name=body.applicant_name,
            applicant_phone=body.applicant_phone,
            source=body.source,
        ),
        principal_of(request).actor,
    )
    return json(case_out(request, row), status=201)


async def find_cases(request: web.Request) -> web.Response:
    hall = _hall(request)
    number = _query_text(request, "number")
    ticket = _query_int(request, "ticket_id")
    ticket_number = _query_text(request, "ticket", 16)
    phone = _query_text(request, "phone", 20)
    if number is None and ticket is None and ticket_number is None and phone is None:
        raise InvalidInput("请按办件编号、排队号或手机号查询")
    rows = await _svc(request).find_cases(
        hall, number=number, ticket_id=ticket, ticket_number=ticket_number, phone=phone
    )
    return json_list([case_out(request, r) for r in rows])


async def get_case(request: web.Request) -> web.Response:
    hall = _hall(request)
    case_id = ascii_int(request.match_info.get("case"), "case", 12)
    row = await repo.case_by_id(request.app[POOL], hall, case_id)
    if row is None:
        raise NotFound("办件不存在")
    return json(case_out(request, row))


async def case_status(request: web.Request) -> web.Response:
    hall = _hall(request)
    case_id = ascii_int(request.match_info.get("case"), "case", 12)
    body = await parse_body(request, StatusBody)
    row = await _svc(request).set_status(
        hall, case_id, CaseStatus(body.status), principal_of(request).actor, body.note
    )
    return json(case_out(request, row))


async def _import(request: web.Request, hall: str, raw: Any) -> web.Response:
    config = request.app[DIRECTORY].config
    records, bad = parse_records(raw, config.evaluation.upstream)
    importer = CaseImporter(request.app[POOL], config, request.app[DIRECTORY].hall(hall))
    result: ImportResult = await importer.run(records, request.app[CLOCK].now())
    errors = [*bad, *result.errors]
    out = ImportOut(
        created=result.created,
        updated=result.updated,
        unchanged=result.unchanged,
        errors=[ImportErrorOut(case_number=n, detail=d) for n, d in errors],
        message=(
            f"新建 {len(result.created)} 件，更新 {len(result.updated)} 件，"
            f"无变化 {len(result.unchanged)} 件" + (f"，{len(errors)} 件未导入" if errors else "")
        ),
    )
    return json(out)


async def import_cases(request: web.Request) -> web.Response:
    """Create or update cases by upstream case number from an uploaded JSON document."""
    hall = _hall(request)
    body = await parse_body(request, ImportBody)
    return await _import(request, hall, body.cases)


async def pull_cases(request: web.Request) -> web.Response:
    """Fetch the hall's cases from the platform (``cases_url``) and import them."""
    hall = _hall(request)
    body = await parse_body(request, PullBody)
    upstream = request.app[DIRECTORY].config.evaluation.upstream
    if upstream is None:
        raise InvalidInput("配置中没有上游好差评平台（evaluation.upstream）")
    raw = await fetch_upstream_cases(upstream, hall, body.since)
    return await _import(request, hall, raw)


async def list_matters(request: web.Request) -> web.Response:
    """Matters of the catalogue routed to this hall (and to ``service`` when given)."""
    hall = _hall(request)
    service = _query_text(request, "service", 32)
    out = []
    for m in request.app[DIRECTORY].config.matters:
        routes = [r for r in m.routes if r.hall == hall]
        if m.routes and not routes:
            continue
        if service and routes and not any(service in r.services for r in routes):
            continue
        kind = CaseType.IMMEDIATE if m.kind.value == "immediate" else CaseType.PROMISED
        out.append(
            MatterOut(
                impl_code=m.impl_code,
                code=m.code,
                name=m.name,
                kind=str(kind),
                kind_name=CASE_TYPE_NAMES[kind],
                promised_days=m.promised_days,
            )
        )
    return json_list(out)


# --- handlers: ratings -------------------------------------------------------------------


async def list_ratings(request: web.Request) -> web.Response:
    hall = _hall(request)
    rules = request.app[DIRECTORY].hall(hall)
    level = _query_int(request, "level", 1)
    if level is not None and level not in LEVEL_NAMES:
        raise InvalidInput("评价等级必须是 1 到 5", parameter="level")
    rated_raw = _query_text(request, "rated", 5)
    if rated_raw not in (None, "true", "false"):
        raise InvalidInput("参数 rated 只能是 true 或 false", parameter="rated")
    start, end = _query_date(request, "from"), _query_date(request, "to")
    since = datetime.combine(start, time(), rules.tz) if start else None
    until = datetime.combine(end + timedelta(days=1), time(), rules.tz) if end else None
    rows = await repo.list_ratings(
        request.app[POOL],
        hall,
        counter=_query_int(request, "counter", 6),
        clerk=_query_text(request, "clerk", 32),
        service=_query_text(request, "service", 32),
        level=level,
        rated=None if rated_raw is None else rated_raw == "true",
        since=since,
        until=until,
    )
    return json_list([rating_out(request, r) for r in rows])


def _reasons(request: web.Request) -> list[ReasonOut]:
    return [
        ReasonOut(code=r.code, text=r.text)
        for r in request.app[DIRECTORY].config.evaluation.bad_reasons
    ]


def _dimensions(request: web.Request) -> list[ReasonOut]:
    configured = request.app[DIRECTORY].config.evaluation.dimensions
    return [ReasonOut(code=d, text=DIMENSION_NAMES[d]) for d in ordered_dimensions(configured)]


async def pad_state(request: web.Request) -> web.Response:
    hall = _hall(request)
    counter = _pad_counter(request)
    rules = request.app[DIRECTORY].hall(hall)
    rules.counter(counter)
    pool = request.app[POOL]
    row = await pool.fetchrow(
        "SELECT state::text AS state, clerk FROM counters WHERE hall_id = $1 AND number = $2",
        hall,
        counter,
    )
    sessions = await repo.latest_sessions(pool, hall)
    now = request.app[CLOCK].now()
    s = shown_session(sessions.get(counter, []), now, SETTINGS.timeout_s)
    state: Literal["idle", "serving", "rating"] = "idle"
    left = 0
    clerk = row["clerk"] if row and row["state"] != "closed" else None
    if clerk and s is not None and not s.rated:
        if s.finished_at is None:
            active = await pool.fetchval(
                "SELECT state::text FROM tickets WHERE id = $1", s.ticket_id
            )
            state = "serving" if active in ("called", "serving") else "idle"
        else:
            left = int(SETTINGS.timeout_s - (now - s.finished_at).total_seconds())
            state = "rating" if left >= 1 else "idle"
    staff = {p.job_no: p.name for p in request.app[DIRECTORY].config.staff}
    out = PadOut(
        hall=hall,
        counter=counter,
        clerk=clerk,
        clerk_name=staff.get(clerk or ""),
        state=state,
        session=s.id if s is not None and state != "idle" else None,
        ticket_number=s.ticket_number if s is not None and state != "idle" else None,
        timeout_s=max(left, 0),
        reasons=_reasons(request),
        dimensions=_dimensions(request),
    )
    response = json(out)
    response.headers["Cache-Control"] = "no-store"
    return response


async def pad_rate(request: web.Request) -> web.Response:
    hall = _hall(request)
    counter = _pad_counter(request)
    if principal_of(request).kind != "display":
        # domain.md §4: voluntary, never rated for the citizen: only the tablet itself rates.
        raise Forbidden("评价只能由市民在评价平板上提交，工作人员不能代为评价")
    body = await parse_body(request, PadRatingBody)
    rid = await _svc(request).rate_session(
        hall,
        counter,
        body.session,
        body.level,
        list(body.reasons),
        "web_pad",
        principal_of(request).actor,
        body.dims,
    )
    message = "感谢您的评价" if body.level is not None else "未评价"
    return json(RatedOut(rating_id=rid, message=message), status=201)


async def phone_case(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    row = await repo.case_by_token(request.app[POOL], token) if len(token) <= 64 else None
    if row is None:
        raise NotFound("评价链接无效，请核对二维码")
    status = CaseStatus(row["status"])
    from evaluator.domain import RATEABLE

    out = PhoneCaseOut(
        hall_name=request.app[DIRECTORY].hall(row["hall_id"]).hall.name,
        case_number=row["number"],
        matter_name=row["matter_name"],
        status_name=STATUS_NAMES[status],
        rated=row["rating_id"] is not None,
        rateable=status in RATEABLE and row["rating_id"] is None,
        reasons=_reasons(request),
        dimensions=_dimensions(request),
    )
    response = json(out)
    response.headers["Cache-Control"] = "no-store"
    return response


async def phone_rate(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    if len(token) > 64:
        raise NotFound("评价链接无效，请核对二维码")
    body = await parse_body(request, PhoneRatingBody)
    rid = await _svc(request).rate_case(
        token, body.level, list(body.reasons), body.comment, body.dims
    )
    return json(RatedOut(rating_id=rid, message="感谢您的评价"), status=201)


# --- handlers: 差评 tasks, alarms, outbox -------------------------------------------------


async def list_tasks(request: web.Request) -> web.Response:
    hall = _hall(request)
    open_only = request.query.get("open") == "true"
    rows = await repo.tasks(request.app[POOL], hall, open_only=open_only)
    return json_list([task_out(request, r) for r in rows])


async def task_action(request: web.Request) -> web.Response:
    hall = _hall(request)
    task_id = ascii_int(request.match_info.get("task"), "task", 12)
    body = await parse_body(request, TaskBody)
    needed: dict[str, Any] = {
        "visit": body.result,
        "rectify": body.text,
        "appeal": body.reason,
        "decide_appeal": body.outcome,
        "close": True,
    }
    if needed[body.action] is None:
        field = {"visit": "result", "rectify": "text", "appeal": "reason"}.get(
            body.action, "outcome"
        )
        raise InvalidInput(f"此操作需要填写 {field}", parameter=field)
    principal = principal_of(request)
    if body.action == "decide_appeal" and not principal.roles & SUPERVISOR_ROLES:
        raise Forbidden("申诉复核须由中心管理人员或值班长决定")
    row = await _svc(request).task_action(
        hall, task_id, body.action, principal.actor, body.model_dump()
    )
    return json(task_out(request, row))


async def list_alarms(request: web.Request) -> web.Response:
    hall = _hall(request)
    rows = await repo.alarms(
        request.app[POOL], hall, active_only=request.query.get("all") != "true"
    )
    return json_list(
        [
            AlarmOut(
                id=r["id"],
                hall=r["hall_id"],
                kind=r["kind"],
                ref_id=r["ref_id"],
                message=r["message"],
                raised_at=r["raised_at"],
                cleared_at=r["cleared_at"],
            )
            for r in rows
        ]
    )


async def outbox_state(request: web.Request) -> web.Response:
    hall = _hall(request)
    state = _query_text(request, "state", 10)
    if state not in (None, "pending", "delivered", "dead"):
        raise InvalidInput("参数 state 只能是 pending、delivered 或 dead", parameter="state")
    pool = request.app[POOL]
    counts = await repo.outbox_counts(pool, hall)
    rows = await repo.outbox(pool, hall, state=state)
    return json(
        OutboxSummary(
            **counts, records=[OutboxOut(**{k: r[k] for k in OutboxOut.model_fields}) for r in rows]
        )
    )


async def outbox_retry(request: web.Request) -> web.Response:
    hall = _hall(request)
    record = ascii_int(request.match_info.get("record"), "record", 12)
    async with request.app[POOL].acquire() as conn:
        if not await repo.retry_dead(conn, hall, record):
            raise NotFound("没有这条死信记录")
        await conn.execute("SELECT pg_notify($1, $2)", repo.OUTBOX_CHANNEL, hall)
    return web.json_response({"ok": True})


async def evaluator_service(app: web.Application) -> AsyncIterator[None]:
    """Task: the evaluator's use cases (and the pad timeout from the config)."""
    directory = app[DIRECTORY]
    SETTINGS.timeout_s = directory.config.evaluation.rating_timeout_s
    SETTINGS.dims_mask = dims_mask(directory.config.evaluation.dimensions)
    app[EVALUATOR] = Evaluator(app[POOL], directory, app[CLOCK], LazyHasher())
    yield


H = f"{API}/halls/{{hall}}"
ROUTES = [
    Route(
        "POST",
        f"{H}/evaluator/counters/{{number}}/cases",
        create_case,
        "evaluator_create_case",
        "本窗口创建办件（关联正在办理或已办理的排队号）",
        Access.COUNTER_CLERK,
        body=CaseBody,
        response=CaseOut,
        tags=("cases",),
    ),
    Route(
        "GET",
        f"{H}/evaluator/matters",
        list_matters,
        "evaluator_matters",
        "可建办件的事项（按业务筛选）",
        Access.HALL_STAFF,
        response=MatterOut,
        response_list=True,
        tags=("cases",),
    ),
    Route(
        "GET",
        f"{H}/cases",
        find_cases,
        "evaluator_find_cases",
        "按办件编号、排队号或手机号（脱敏显示）查找办件",
        Access.HALL_STAFF,
        response=CaseOut,
        response_list=True,
        tags=("cases",),
    ),
    Route(
        "GET",
        f"{H}/cases/{{case}}",
        get_case,
        "evaluator_get_case",
        "办件详情",
        Access.HALL_STAFF,
        response=CaseOut,
        tags=("cases",),
    ),
    Route(
        "POST",
        f"{H}/cases/import",
        import_cases,
        "evaluator_import_cases",
        "导入上游平台的办件（按上游办件编号新建或更新，可重复导入）",
        Access.MANAGER,
        body=ImportBody,
        response=ImportOut,
        tags=("cases",),
    ),
    Route(
        "POST",
        f"{H}/cases/pull",
        pull_cases,
        "evaluator_pull_cases",
        "从上游平台拉取本大厅的办件并导入",
        Access.MANAGER,
        body=PullBody,
        response=ImportOut,
        tags=("cases",),
    ),
    Route(
        "POST",
        f"{H}/cases/{{case}}/status",
        case_status,
        "evaluator_case_status",
        "办件状态流转（受理→审批→办结→送达/领取，退件，不予受理）",
        Access.HALL_STAFF,
        body=StatusBody,
        response=CaseOut,
        tags=("cases",),
    ),
    Route(
        "GET",
        f"{H}/ratings",
        list_ratings,
        "evaluator_list_ratings",
        "评价列表（按窗口、工作人员、业务、等级、时段筛选）",
        Access.MANAGER,
        response=RatingOut,
        response_list=True,
        tags=("ratings",),
    ),
    Route(
        "GET",
        f"{H}/evaluator/counters/{{number}}/pad",
        pad_state,
        "evaluator_pad_state",
        "网页评价器：本窗口的服务与待评价会话",
        Access.DISPLAY,
        response=PadOut,
        tags=("ratings",),
    ),
    Route(
        "POST",
        f"{H}/evaluator/counters/{{number}}/pad/ratings",
        pad_rate,
        "evaluator_pad_rate",
        "网页评价器提交评价（level 为空表示超时未评价）",
        Access.DISPLAY,
        body=PadRatingBody,
        response=RatedOut,
        tags=("ratings",),
    ),
    Route(
        "GET",
        f"{API}/rate/{{token}}",
        phone_case,
        "evaluator_phone_case",
        "手机评价：办件信息",
        Access.TICKET_TOKEN,
        response=PhoneCaseOut,
        tags=("ratings",),
    ),
    Route(
        "POST",
        f"{API}/rate/{{token}}",
        phone_rate,
        "evaluator_phone_rate",
        "手机评价：提交（一事一评）",
        Access.TICKET_TOKEN,
        body=PhoneRatingBody,
        response=RatedOut,
        tags=("ratings",),
    ),
    Route(
        "GET",
        f"{H}/bad-rating-tasks",
        list_tasks,
        "evaluator_list_tasks",
        "差评处理任务（市民联系方式仅对负责人显示）",
        Access.HALL_STAFF,
        response=TaskOut,
        response_list=True,
        tags=("ratings",),
    ),
    Route(
        "POST",
        f"{H}/bad-rating-tasks/{{task}}",
        task_action,
        "evaluator_task_action",
        "差评处理：回访、整改、申诉、申诉复核、办结",
        Access.HALL_STAFF,
        body=TaskBody,
        response=TaskOut,
        tags=("ratings",),
    ),
    Route(
        "GET",
        f"{H}/evaluator/alarms",
        list_alarms,
        "evaluator_alarms",
        "评价告警：差评超期、上报死信",
        Access.MANAGER,
        response=AlarmOut,
        response_list=True,
        tags=("ratings",),
    ),
    Route(
        "GET",
        f"{H}/upstream-outbox",
        outbox_state,
        "evaluator_outbox",
        "好差评上报队列：待发、已送达、死信",
        Access.MANAGER,
        response=OutboxSummary,
        tags=("ratings",),
    ),
    Route(
        "POST",
        f"{H}/upstream-outbox/{{record}}/retry",
        outbox_retry,
        "evaluator_outbox_retry",
        "重新上报一条死信",
        Access.MANAGER,
        tags=("ratings",),
    ),
]
