"""The kiosk page (/kiosk), its API, and the citizen's ticket page (/t/{token}).

The kiosk page runs in a paired browser (device cookie, see hall/web/pairing.py): it offers
only the services its config lists, issues one ticket per tap (an idempotency key per tap, so
a retried request never issues twice), and shows the ticket on screen, with its QR code, as
a virtual ticket when the printer could not print it.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

import qrcode
import qrcode.image.svg
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from hall.config.models import Kiosk
from hall.domain.calendar import next_opening
from hall.domain.errors import Forbidden, InvalidInput, NotFound
from hall.services.directory import HallRules
from hall.services.queue import IssueTicket, TicketView
from hall.web.access import audit_with_action, principal_of
from hall.web.api import API, check_kiosk_offers, json, parse_body, ticket_out
from hall.web.page_files import PageFolder
from hall.web.routes import Access, Route
from hall.web.schemas import TicketOut
from hall.web.state import CLOCK, DIRECTORY, POOL, QUEUE
from kiosk import repo, standing
from kiosk.issuing import KioskIssuer
from kiosk.layout import service_wait_text
from kiosk.web import PRINT

PAGES = Path(__file__).resolve().parent / "pages"
FOLDER = PageFolder(PAGES)
ISSUER = web.AppKey("kiosk_issuer", KioskIssuer)
# How long the kiosk's answer waits for the printer's verdict: a ticket at 9600 baud takes
# about 0.4 s; a silent printer is declared after its 0.3 s status timeout.
PRINT_WAIT_S = 4.0
HELP_TEXT = "打印机暂时无法出票，请拍照或扫码保存号码；如需帮助请到咨询台"
OTHER_GROUP = "其他业务"
APPOINTMENT_CLASS = "appointment"
"""Taken by appointment check-in only, never chosen on the kiosk's priority list."""


class PriorityOut(BaseModel):
    code: str
    name: str


class KioskServiceOut(BaseModel):
    code: str
    name: str
    category: str
    """The group the kiosk lists it under (config ``category``; 其他业务 when unset)."""
    prefix: str
    waiting: int
    estimated_wait_s: float | None
    wait_text: str
    available: bool
    needs_id: bool
    """Limited per person a day: the page asks for the resident ID number first."""
    reason: str | None
    """Why it cannot be taken now (closed, sold out), with the next opening when known."""
    priority_classes: list[PriorityOut]
    """Priority classes a citizen may choose here (the kiosk's ``priority`` is on)."""


class KioskOut(BaseModel):
    hall: str
    hall_name: str
    kiosk: str
    kiosk_name: str
    services: list[KioskServiceOut]
    printer_notice: str | None
    """Shown above the services when the kiosk's printer cannot print now."""


class KioskTicketBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    service: Annotated[str, Field(min_length=1, max_length=32)]
    id_number: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    """Only for services with a per-person daily limit; hashed, never stored or logged."""
    priority_class: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    """A priority class the service allows, on a kiosk that offers priority tickets."""


class PrintOut(BaseModel):
    state: Literal["none", "queued", "printing", "printed", "held", "cancelled"]
    printed: bool
    message: str


class KioskTicketOut(BaseModel):
    ticket: TicketOut
    wait_text: str
    page_url: str
    qr_svg: str
    print: PrintOut
    note: str | None = None
    """A word for the citizen beside the ticket (e.g. an appointment checked in late)."""


def kiosk_of_request(request: web.Request) -> tuple[HallRules, Kiosk]:
    principal = principal_of(request)
    if principal.kind != "kiosk" or not principal.halls or principal.device_id is None:
        raise Forbidden("此页面只供已配对的取号机使用，请先在 /pair 配对")
    rules = request.app[DIRECTORY].hall(principal.halls[0])
    kiosk = rules.hall.kiosk(principal.device_id)
    if kiosk is None:
        raise Forbidden(f"取号机 {principal.device_id} 未在大厅配置中")
    return rules, kiosk


def _when(at: datetime, now: datetime, rules: HallRules) -> str:
    local, today = at.astimezone(rules.tz), now.astimezone(rules.tz).date()
    if local.date() == today:
        return f"今天 {local:%H:%M}"
    if (local.date() - today).days == 1:
        return f"明天 {local:%H:%M}"
    return f"{local.month}月{local.day}日 {local:%H:%M}"


async def kiosk_info(request: web.Request) -> web.Response:
    rules, kiosk = kiosk_of_request(request)
    now = request.app[CLOCK].now()
    overview = {s.code: s for s in await request.app[QUEUE].services(rules.hall.id)}
    codes = kiosk.services or [s.code for s in rules.hall.services]
    priority_names = {p.code: p.name for p in request.app[DIRECTORY].config.priority_classes}
    out = []
    for code in codes:
        s = overview.get(code)
        if s is None:
            continue
        svc = rules.service(code)
        reason = None
        if not s.open_now:
            opens = next_opening(now, rules.tz, rules.periods(svc), rules.calendar)
            reason = "不在办理时间" + (f"，{_when(opens, now, rules)} 开始取号" if opens else "")
        elif s.quota_left == 0:
            reason = "今日号源已取完，请明天再来"
        classes = [
            PriorityOut(code=c, name=priority_names.get(c, c))
            for c in svc.priority_classes
            if kiosk.priority and c != APPOINTMENT_CLASS
        ]
        out.append(
            KioskServiceOut(
                code=s.code,
                name=s.name,
                category=svc.category or OTHER_GROUP,
                priority_classes=classes,
                prefix=s.prefix,
                waiting=s.waiting,
                estimated_wait_s=s.estimated_wait_s,
                wait_text=service_wait_text(s.estimated_wait_s, s.wait_low_s, s.wait_high_s),
                available=reason is None,
                needs_id=svc.per_person_daily_limit is not None,
                reason=reason,
            )
        )
    states = [
        p.state
        for p in await repo.printer_states(request.app[POOL], rules.hall.id)
        if p.kiosk == kiosk.id
    ]
    notice = None
    if states and states[0] not in ("ok", "near_end", "unknown"):
        notice = "打印机暂时无法出票，取号后请拍照或扫码保存屏幕上的号码"
    body = KioskOut(
        hall=rules.hall.id,
        hall_name=rules.hall.name,
        kiosk=kiosk.id,
        kiosk_name=kiosk.name,
        services=out,
        printer_notice=notice,
    )
    response = json(body)
    response.headers["Cache-Control"] = "no-store"
    return response


def qr_svg(data: str) -> str:
    """An inline SVG QR code (no raster, no script)."""
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2)
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue().decode("utf-8")


def page_url(request: web.Request, rules: HallRules, token: str) -> str:
    configured = rules.hall.ticket.page_url
    if configured:
        return configured.replace("{token}", token)
    return f"{request.scheme}://{request.host}/t/{token}"


async def kiosk_issue(request: web.Request) -> web.Response:
    rules, kiosk = kiosk_of_request(request)
    body = await parse_body(request, KioskTicketBody)
    key = request.headers.get("Idempotency-Key")
    if key is None or not 8 <= len(key) <= 80:
        raise InvalidInput("每次取号需要 8 到 80 个字符的 Idempotency-Key")
    check_kiosk_offers(request, rules.hall.id, kiosk.id, body.service)
    if body.priority_class is not None and (
        not kiosk.priority or body.priority_class == APPOINTMENT_CLASS
    ):
        raise InvalidInput("本机不提供优先取号，请到咨询台办理", priority_class=body.priority_class)
    await audit_with_action(request, 201)
    view = await request.app[ISSUER].issue(
        IssueTicket(
            hall_id=rules.hall.id,
            service_code=body.service,
            kiosk=kiosk.id,
            idempotency_key=key,
            priority_class=body.priority_class,
        ),
        principal_of(request).actor,
        body.id_number,
    )
    return await ticket_response(request, rules, view)


async def ticket_response(
    request: web.Request, rules: HallRules, view: TicketView, note: str | None = None
) -> web.Response:
    """The kiosk's answer for a ticket: it, its page and QR, and the printer's verdict."""
    # Its print job is committed with it: the printer starts now, not at the NOTIFY's echo.
    request.app[PRINT].wake(rules.hall.id, kiosk_of_request(request)[1].id)
    job = await request.app[PRINT].wait_settled(view.ticket.id, PRINT_WAIT_S)
    if job is None:
        printed = PrintOut(
            state="none", printed=False, message="本机不出纸质票，请拍照或扫码保存号码"
        )
    elif job.state == "printed":
        printed = PrintOut(state="printed", printed=True, message="请取走您的小票")
    elif job.state in ("queued", "printing"):
        printed = PrintOut(state=job.state, printed=False, message="正在出票，请稍候")
    else:
        printed = PrintOut(state=job.state, printed=False, message=HELP_TEXT)
    url = page_url(request, rules, view.token)
    said = await standing.read(request.app[POOL], rules, view, request.app[CLOCK].now())
    ticket = ticket_out(view)
    if said is not None:
        ticket = ticket.model_copy(update={"people_ahead": said.people_ahead})
    out = KioskTicketOut(
        ticket=ticket,
        wait_text="" if said is None else said.wait_text,
        page_url=url,
        qr_svg=qr_svg(url),
        print=printed,
        note=note or (None if said is None else said.note),
    )
    response = json(out, status=200 if view.replayed else 201)
    response.headers["Cache-Control"] = "no-store"
    return response


async def issuing(app: web.Application) -> AsyncIterator[None]:
    """Task: the kiosk's issuer (per-person limits) for the app's lifetime."""
    app[ISSUER] = KioskIssuer(app[POOL], app[DIRECTORY], app[QUEUE], app[CLOCK])
    yield


# --- pages -----------------------------------------------------------------------------------


async def kiosk_page(request: web.Request) -> web.Response:
    return FOLDER.page("kiosk.html", "自助取号")


async def ticket_page(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    if not 10 <= len(token) <= 64:
        raise NotFound("未找到该号码，请确认二维码是否正确")
    return FOLDER.page("ticket.html", "我的排队号")


page_file = FOLDER.handler("path")


ROUTES = [
    Route("GET", "/kiosk", kiosk_page, "kiosk_page", "取号机页面", Access.PUBLIC, in_openapi=False),
    Route(
        "GET",
        "/kiosk/{path:[A-Za-z0-9_.-]+}",
        page_file,
        "kiosk_files",
        "取号机页面的脚本与样式",
        Access.PUBLIC,
        in_openapi=False,
    ),
    Route(
        "GET",
        "/t/{token}",
        ticket_page,
        "ticket_page",
        "市民排队号页面",
        Access.PUBLIC,
        in_openapi=False,
    ),
    Route(
        "GET",
        f"{API}/kiosk",
        kiosk_info,
        "kiosk_info",
        "本取号机：大厅、可取的业务、等候人数与原因",
        Access.KIOSK,
        response=KioskOut,
        tags=("kiosk",),
    ),
    Route(
        "POST",
        f"{API}/kiosk/tickets",
        kiosk_issue,
        "kiosk_issue",
        "本取号机取号（必须带 Idempotency-Key），等待出票结果",
        Access.KIOSK,
        body=KioskTicketBody,
        response=KioskTicketOut,
        tags=("kiosk",),
    ),
]
