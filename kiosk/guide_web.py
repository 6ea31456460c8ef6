"""The kiosk's service guide API: find a matter, read its guide, print its notice slip."""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from hall.domain.errors import InvalidInput, NotFound
from hall.web.api import API, json, parse_body
from hall.web.routes import Access, Route
from hall.web.state import DIRECTORY
from kiosk import guide
from kiosk.pages import PRINT_WAIT_S, PrintOut, kiosk_of_request
from kiosk.web import PRINT

QUERY_MAX = 40


class ServiceRefOut(BaseModel):
    code: str
    name: str


class CategoryOut(BaseModel):
    code: str
    label: str
    count: int


class MatterOut(BaseModel):
    code: str
    """The implementation code (实施编码): the matter's id in this deployment."""
    name: str
    department: str
    category: str
    kind_text: str
    services: list[ServiceRefOut]


class GuideOut(BaseModel):
    categories: list[CategoryOut]
    matters: list[MatterOut]


class MaterialOut(BaseModel):
    name: str
    text: str
    original: bool
    copies: int
    required: bool
    note: str | None


class MatterDetailOut(MatterOut):
    time_limit_text: str
    promised_days: int
    legal_days: int
    fees: list[str]
    materials: list[MaterialOut]
    conditions: list[str]
    process: list[str]
    legal_basis: str | None
    guide: str
    visits_text: str
    online_text: str
    appointment: bool
    zone: str | None
    phone: str | None


class NoticeBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    matter: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]


class NoticeOut(BaseModel):
    matter: str
    print: PrintOut


def _entries(request: web.Request) -> list[guide.GuideEntry]:
    rules, kiosk = kiosk_of_request(request)
    return guide.entries_for(request.app[DIRECTORY].config, rules.hall, kiosk)


def _summary(e: guide.GuideEntry) -> MatterOut:
    return MatterOut(
        code=e.matter.impl_code,
        name=e.matter.name,
        department=e.department,
        category=e.category,
        kind_text=guide.kind_text(e.matter),
        services=[ServiceRefOut(code=c, name=n) for c, n in e.services],
    )


def _entry(request: web.Request) -> guide.GuideEntry:
    code = request.match_info["code"]
    found = next((e for e in _entries(request) if e.matter.impl_code == code), None)
    if found is None:
        raise NotFound("本机的办事指南中没有这个事项", matter=code[:64])
    return found


async def guide_list(request: web.Request) -> web.Response:
    entries = _entries(request)
    query = request.query.get("q", "")
    if len(query) > QUERY_MAX:
        raise InvalidInput(f"搜索词最多 {QUERY_MAX} 个字", parameter="q")
    category = request.query.get("category", "")
    service = request.query.get("service", "")
    found = guide.find(entries, query, category)
    if service:
        found = [e for e in found if any(code == service for code, _ in e.services)]
    out = GuideOut(
        categories=[
            CategoryOut(code=c, label=label, count=n) for c, label, n in guide.categories(entries)
        ],
        matters=[_summary(e) for e in found],
    )
    response = json(out)
    response.headers["Cache-Control"] = "no-store"
    return response


async def guide_detail(request: web.Request) -> web.Response:
    e = _entry(request)
    m = e.matter
    out = MatterDetailOut(
        **_summary(e).model_dump(),
        time_limit_text=guide.time_limit_text(m),
        promised_days=m.promised_days,
        legal_days=m.legal_days,
        fees=guide.fees_text(m),
        materials=[
            MaterialOut(
                name=x.name,
                text=guide.material_text(x),
                original=x.original,
                copies=x.copies,
                required=x.required,
                note=x.note,
            )
            for x in m.materials
        ],
        conditions=list(m.conditions),
        process=list(m.process),
        legal_basis=m.legal_basis,
        guide=m.guide,
        visits_text=guide.visits_text(m),
        online_text=guide.ONLINE_LABELS[m.online],
        appointment=m.appointment,
        zone=e.zone,
        phone=e.phone,
    )
    response = json(out)
    response.headers["Cache-Control"] = "no-store"
    return response


async def print_notice(request: web.Request) -> web.Response:
    rules, kiosk = kiosk_of_request(request)
    body = await parse_body(request, NoticeBody)
    entries = guide.entries_for(request.app[DIRECTORY].config, rules.hall, kiosk)
    if not any(e.matter.impl_code == body.matter for e in entries):
        raise NotFound("本机的办事指南中没有这个事项", matter=body.matter)
    service = request.app[PRINT]
    job_id = await service.notice(rules.hall.id, kiosk.id, body.matter)
    job = await service.wait_job(job_id, PRINT_WAIT_S)
    if job is not None and job.state == "printed":
        printed = PrintOut(state="printed", printed=True, message="请取走您的告知单")
    elif job is not None and job.state in ("queued", "printing"):
        printed = PrintOut(state=job.state, printed=False, message="正在打印，请稍候")
    else:
        printed = PrintOut(
            state="cancelled", printed=False, message="打印机暂时无法打印，请拍照保存本页"
        )
    return json(NoticeOut(matter=body.matter, print=printed), status=201)


ROUTES = [
    Route(
        "GET",
        f"{API}/kiosk/guide",
        guide_list,
        "kiosk_guide",
        "本取号机的办事指南：分类与事项（?q= 汉字或拼音、?category=、?service=）",
        Access.KIOSK,
        response=GuideOut,
        tags=("kiosk",),
    ),
    Route(
        "GET",
        f"{API}/kiosk/guide/{{code}}",
        guide_detail,
        "kiosk_guide_matter",
        "一个事项的办事指南：条件、材料、流程、收费、时限",
        Access.KIOSK,
        response=MatterDetailOut,
        tags=("kiosk",),
    ),
    Route(
        "POST",
        f"{API}/kiosk/notices",
        print_notice,
        "kiosk_notice",
        "在本机打印一次性告知单（材料清单），等待出纸结果",
        Access.KIOSK,
        body=NoticeBody,
        response=NoticeOut,
        tags=("kiosk",),
    ),
]
