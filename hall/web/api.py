"""Handlers of the JSON API under /api/v1; they parse, call a service, and shape the answer."""

from __future__ import annotations

from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel
from pydantic_core import to_json

from hall.domain.errors import InvalidInput, NotOfferedHere
from hall.domain.tickets import COUNTER_STATE_LABELS, Ticket
from hall.services.queue import (
    ActionParams,
    CounterAction,
    CounterView,
    IssueTicket,
    QueueService,
    TicketView,
)
from hall.storage.db import OUTAGE_RETRY_AFTER_S, database_ok
from hall.web import schemas
from hall.web.access import Role, audit_with_action, principal_of
from hall.web.routes import Access, Route
from hall.web.state import CLOCK, POOL, QUEUE
from hall.web.validation import (
    ascii_int,
    check_appointment,
    check_json_depth,
    check_text_tree,
    read_body,
)

B = TypeVar("B", bound=BaseModel)
SUPERVISOR_ROLES = frozenset({Role.ADMIN, Role.MANAGER, Role.DUTY_MANAGER})
API = "/api/v1"


async def parse_body(request: web.Request, model: type[B]) -> B:
    raw = await read_body(request)
    if not raw.strip():
        raw = b"{}"
    if request.content_type not in ("application/json", "application/octet-stream", ""):
        raise InvalidInput("请求内容必须是 JSON（Content-Type: application/json）")
    check_json_depth(raw)
    body = model.model_validate_json(raw)
    if _may_hold_bad_text(raw):
        check_text_tree(body.model_dump())
    return body


def _may_hold_bad_text(raw: bytes) -> bool:
    """Whether a body the model accepted can hold text PostgreSQL refuses.

    Such text (a NUL, a lone surrogate) can only be spelt as a ``\\u`` escape or a raw NUL
    in the UTF-8 JSON text the parser accepted; a body with neither (``{}``, nearly every
    body) needs no walk over its dump.
    """
    return b"\\" in raw or b"\x00" in raw


JSON_TYPE = "application/json; charset=utf-8"
"""What ``web.Response(text=..., content_type="application/json")`` sends."""


def json(model: BaseModel, status: int = 200) -> web.Response:
    # The serializer's UTF-8 bytes as the body: the same bytes and header as text= gives,
    # without decoding to str and encoding back (about half the cost of building it).
    return web.Response(
        body=model.__pydantic_serializer__.to_json(model),
        status=status,
        headers={"Content-Type": JSON_TYPE},
    )


def json_list(models: list[Any]) -> web.Response:
    body = b"[" + b",".join(m.__pydantic_serializer__.to_json(m) for m in models) + b"]"
    return web.Response(body=body, headers={"Content-Type": JSON_TYPE})


def _ticket_fields(view: TicketView) -> dict[str, Any]:
    """A ticket answer's fields, in ``schemas.TicketOut``'s order and types."""
    t = view.ticket
    return {
        "token": view.token,
        "number": t.display_number,
        "hall": t.hall_id,
        "service": t.service_code,
        "service_name": view.service_name,
        "purpose": str(t.purpose),
        "priority_class": t.priority_class,
        "state": str(t.state),
        "state_label": view.state_label,
        "business_day": t.business_day,
        "issued_at": t.issued_at,
        "counter": t.counter_number,
        "target_counter": t.target_counter,
        "recall_count": t.recall_count,
        "people_ahead": view.people_ahead,
        "estimated_wait_s": _float(view.estimated_wait_s),
        "wait_low_s": _float(view.wait_low_s),
        "wait_high_s": _float(view.wait_high_s),
        "replayed": view.replayed,
    }


def ticket_out(view: TicketView) -> schemas.TicketOut:
    return schemas.TicketOut(**_ticket_fields(view))


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)


def ticket_json(view: TicketView, status: int = 200) -> web.Response:
    """``json(ticket_out(view), status)`` without building and validating the model: the
    same fields, written by pydantic-core's serializer with the model's handling of NaN and
    infinity (null), so the same bytes (tests/core/test_json_answers.py). Every issued
    ticket is answered with it; the model's validation was about half the answer's cost."""
    body = to_json(_ticket_fields(view), inf_nan_mode="null")
    return web.Response(body=body, status=status, headers={"Content-Type": JSON_TYPE})


def _active_fields(t: Ticket | None) -> dict[str, Any] | None:
    """A counter's active ticket's fields, in ``schemas.ActiveTicketOut``'s order."""
    if t is None:
        return None
    return {
        "id": t.id,
        "number": t.display_number,
        "service": t.service_code,
        "state": str(t.state),
        "recall_count": t.recall_count,
        "called_at": t.called_at,
        "serve_started_at": t.serve_started_at,
    }


def _counter_fields(view: CounterView) -> dict[str, Any]:
    """A counter answer's fields, in ``schemas.CounterOut``'s order and types."""
    s = view.status
    return {
        "hall": s.hall_id,
        "number": s.number,
        "state": str(s.state),
        "state_label": COUNTER_STATE_LABELS[s.state],
        "state_since": s.state_since,
        "pause_reason": s.pause_reason,
        "clerk": s.clerk,
        "ticket": _active_fields(view.ticket),
    }


def counter_out(view: CounterView) -> schemas.CounterOut:
    return schemas.CounterOut(**_counter_fields(view))


def counter_json(view: CounterView) -> web.Response:
    """``json(counter_out(view))`` without building and validating the models, as
    ``ticket_json`` (the same bytes, tests/core/test_json_answers.py): every counter action
    is answered with it."""
    body = to_json(_counter_fields(view), inf_nan_mode="null")
    return web.Response(body=body, headers={"Content-Type": JSON_TYPE})


def _int(request: web.Request, name: str) -> int:
    return ascii_int(request.match_info.get(name), name, 6)


def actor_of(request: web.Request) -> str:
    """Who acts, for the event log: the principal the access middleware authenticated."""
    return principal_of(request).actor


def kiosk_of(request: web.Request, claimed: str | None) -> str | None:
    """A kiosk device always issues as itself; staff may name the kiosk they stand at."""
    principal = principal_of(request)
    if principal.kind == "kiosk":
        return principal.actor.rsplit("/", 1)[-1]
    return claimed


def check_kiosk_offers(request: web.Request, hall_id: str, kiosk_id: str, service: str) -> None:
    """A kiosk device issues only the services its config lists (all when it lists none)."""
    if principal_of(request).kind != "kiosk":
        return  # staff may issue any service, also when naming the kiosk they stand at
    kiosk = queue(request).directory.hall(hall_id).hall.kiosk(kiosk_id)
    if kiosk is None:
        raise NotOfferedHere(f"取号机 {kiosk_id} 未在大厅配置中", kiosk=kiosk_id)
    if kiosk.services and service not in kiosk.services:
        raise NotOfferedHere(
            "本机不提供此业务，请到其他取号机或咨询台办理", kiosk=kiosk_id, service=service
        )


def clerk_of(request: web.Request, claimed: str | None) -> str | None:
    """A clerk opens a window as themselves; supervisors may open it for a named clerk."""
    principal = principal_of(request)
    if principal.kind == "staff" and not principal.roles & SUPERVISOR_ROLES:
        return principal.actor
    return claimed


def queue(request: web.Request) -> QueueService:
    return request.app[QUEUE]


# --- handlers -------------------------------------------------------------------------------


async def healthz(request: web.Request) -> web.Response:
    db = await database_ok(request.app[POOL])
    response = json(
        schemas.HealthOut(ok=bool(db["ok"]), database=db), status=200 if db["ok"] else 503
    )
    if not db["ok"]:
        # Load balancers and watchdogs wait as long as any other request is told to.
        response.headers["Retry-After"] = str(OUTAGE_RETRY_AFTER_S)
    return response


async def list_halls(request: web.Request) -> web.Response:
    halls = queue(request).directory.config.halls
    return json_list(
        [schemas.HallOut(id=h.id, name=h.name, level=str(h.level), parent=h.parent) for h in halls]
    )


async def list_services(request: web.Request) -> web.Response:
    services = await queue(request).services(request.match_info["hall"])
    return json_list(
        [
            schemas.ServiceOut(
                code=s.code,
                name=s.name,
                prefix=s.prefix,
                waiting=s.waiting,
                estimated_wait_s=s.estimated_wait_s,
                wait_low_s=s.wait_low_s,
                wait_high_s=s.wait_high_s,
                open_now=s.open_now,
                quota_left=s.quota_left,
                purposes=list(s.purposes),
            )
            for s in services
        ]
    )


async def issue_ticket(request: web.Request) -> web.Response:
    body = await parse_body(request, schemas.IssueTicketBody)
    key = request.headers.get("Idempotency-Key") or body.idempotency_key
    if key is not None and not 8 <= len(key) <= 80:
        raise InvalidInput("Idempotency-Key 长度必须在 8 到 80 之间")
    check_appointment(body.appointment_start, body.appointment_end, request.app[CLOCK].now())
    kiosk = kiosk_of(request, body.kiosk)
    if kiosk is not None:
        check_kiosk_offers(request, request.match_info["hall"], kiosk, body.service)
    await audit_with_action(request, 201)  # a replay commits nothing and is audited after
    view = await queue(request).issue(
        IssueTicket(
            hall_id=request.match_info["hall"],
            service_code=body.service,
            purpose=body.purpose,
            priority_class=body.priority_class,
            appointment_start=body.appointment_start,
            appointment_end=body.appointment_end,
            kiosk=kiosk,
            idempotency_key=key,
        ),
        actor=actor_of(request),
    )
    return ticket_json(view, status=200 if view.replayed else 201)


async def ticket_status(request: web.Request) -> web.Response:
    view = await queue(request).ticket_status(request.match_info["token"])
    return ticket_json(view)


async def snapshot(request: web.Request) -> web.Response:
    snap = await queue(request).snapshot(request.match_info["hall"])
    return web.json_response(snap)


async def counter_status(request: web.Request) -> web.Response:
    view = await queue(request).counter(request.match_info["hall"], _int(request, "number"))
    return counter_json(view)


async def counter_action(request: web.Request) -> web.Response:
    raw_action = request.match_info["action"]
    try:
        action = CounterAction(raw_action)
    except ValueError:
        raise InvalidInput(f"未知的窗口操作 {raw_action}", action=raw_action) from None
    body = await parse_body(request, schemas.CounterActionBody)
    await audit_with_action(request, 200)
    view = await queue(request).act(
        request.match_info["hall"],
        _int(request, "number"),
        action,
        actor_of(request),
        ActionParams(
            clerk=clerk_of(request, body.clerk),
            number=body.number,
            to_service=body.to_service,
            to_counter=body.to_counter,
            reason=body.reason,
        ),
    )
    return counter_json(view)


async def openapi(request: web.Request) -> web.Response:
    from hall.web.openapi import build_openapi

    return web.json_response(build_openapi(request.app))


ROUTES = [
    Route(
        "GET",
        "/healthz",
        healthz,
        "healthz",
        "健康检查（数据库状态）",
        Access.PUBLIC,
        response=schemas.HealthOut,
        tags=("system",),
    ),
    Route(
        "GET",
        f"{API}/openapi.json",
        openapi,
        "openapi",
        "OpenAPI 3.1 文档",
        Access.PUBLIC,
        tags=("system",),
        in_openapi=False,
    ),
    Route(
        "GET",
        f"{API}/halls",
        list_halls,
        "halls",
        "大厅列表",
        Access.PUBLIC,
        response=schemas.HallOut,
        response_list=True,
        tags=("halls",),
    ),
    Route(
        "GET",
        f"{API}/halls/{{hall}}/services",
        list_services,
        "services",
        "业务列表，含等候人数与预计等候时间",
        Access.PUBLIC,
        response=schemas.ServiceOut,
        response_list=True,
        tags=("tickets",),
    ),
    Route(
        "POST",
        f"{API}/halls/{{hall}}/tickets",
        issue_ticket,
        "issue_ticket",
        "取号（支持 Idempotency-Key）",
        Access.KIOSK,
        body=schemas.IssueTicketBody,
        response=schemas.TicketOut,
        tags=("tickets",),
    ),
    Route(
        "GET",
        f"{API}/tickets/{{token}}",
        ticket_status,
        "ticket_status",
        "凭二维码令牌查询号码状态",
        Access.TICKET_TOKEN,
        response=schemas.TicketOut,
        tags=("tickets",),
    ),
    Route(
        "GET",
        f"{API}/halls/{{hall}}/snapshot",
        snapshot,
        "snapshot",
        "大厅实时快照",
        Access.DISPLAY,
        response=schemas.SnapshotOut,
        tags=("halls",),
    ),
    Route(
        "GET",
        f"{API}/halls/{{hall}}/counters/{{number}}",
        counter_status,
        "counter",
        "窗口状态",
        Access.COUNTER_CLERK,
        response=schemas.CounterOut,
        tags=("counters",),
    ),
    Route(
        "POST",
        f"{API}/halls/{{hall}}/counters/{{number}}/{{action}}",
        counter_action,
        "counter_action",
        "窗口操作：open, call_next, call, recall, no_show, start, finish, transfer, park, "
        "call_back, cancel, pause, resume, close",
        Access.COUNTER_CLERK,
        body=schemas.CounterActionBody,
        response=schemas.CounterOut,
        tags=("counters",),
    ),
]
