"""The start page ``/``: this deployment's halls and, for each, the pages the installed feature
slices declare (``Feature.pages``), grouped by who uses them; plus ``GET
/api/v1/page-hooks/{slot}``, the ES modules features plug into another feature's page."""

from __future__ import annotations

import enum
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web
from pydantic import BaseModel

from hall.domain.errors import NotFound
from hall.web.routes import Access, Route, register
from hall.web.state import DIRECTORY

_SLOT = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")


def _local(path: str) -> bool:
    # "//host/x" is a protocol-relative URL to another server, not a path on this one.
    return path.startswith("/") and not path.startswith("//")


class Audience(enum.StrEnum):
    CITIZEN = "citizen"
    CLERK = "clerk"
    DEVICE = "device"
    MANAGER = "manager"


_HEADINGS = {
    Audience.CITIZEN: "办事群众",
    Audience.CLERK: "窗口工作人员",
    Audience.DEVICE: "大厅设备（需配对）",
    Audience.MANAGER: "大厅管理",
}


@dataclass(frozen=True, slots=True)
class PageLink:
    """A page a feature serves; ``{hall}`` in ``path`` is replaced by each hall's id."""

    path: str
    title: str
    audience: Audience

    def __post_init__(self) -> None:
        if not _local(self.path):
            raise ValueError(f"page path must be a path on this server: {self.path!r}")


@dataclass(frozen=True, slots=True)
class PageHook:
    """An ES module that ``slot`` of another feature's page imports and mounts.

    The slot's owner documents what ``mount(container, ctx)`` receives and may return (e.g.
    ``counter.finish``: see docs/architecture.md "Page hooks").
    """

    slot: str
    module: str

    def __post_init__(self) -> None:
        if not _SLOT.match(self.slot):
            raise ValueError(f"bad page-hook slot {self.slot!r}")
        if not _local(self.module):
            raise ValueError(f"page-hook module must be a path on this server: {self.module!r}")


KERNEL_PAGES = (
    PageLink("/pair", "设备配对（取号机、电视、评价平板）", Audience.DEVICE),
    PageLink("/admin/devices", "设备配对管理（批准配对码、吊销设备）", Audience.MANAGER),
)

PAGES = web.AppKey("pages", tuple[PageLink, ...])
HOOKS = web.AppKey("page_hooks", tuple[PageHook, ...])


class PageHooksOut(BaseModel):
    modules: list[str]


def add_pages(app: web.Application, pages: Sequence[PageLink], hooks: Sequence[PageHook]) -> None:
    app[PAGES] = (*app.get(PAGES, KERNEL_PAGES), *pages)
    app[HOOKS] = (*app.get(HOOKS, ()), *hooks)


def _link(page: PageLink, hall_id: str) -> str:
    href = html.escape(page.path.replace("{hall}", hall_id))
    return f'<li><a href="{href}">{html.escape(page.title)}</a></li>'


async def start_page(request: web.Request) -> web.Response:
    directory = request.app[DIRECTORY]
    pages = request.app.get(PAGES, KERNEL_PAGES)
    sections: list[str] = []
    for hall_id in directory.hall_ids():
        hall = directory.hall(hall_id).hall
        groups: list[str] = []
        for audience in Audience:
            links = [_link(p, hall_id) for p in pages if p.audience is audience]
            if links:
                groups.append(
                    f'<div class="group"><h3>{_HEADINGS[audience]}</h3><ul>{"".join(links)}</ul>'
                    "</div>"
                )
        sections.append(
            f'<section class="hall" data-hall="{html.escape(hall_id)}">'
            f"<h2>{html.escape(hall.name)}</h2>{''.join(groups)}</section>"
        )
    body = _TEMPLATE.replace("{{halls}}", "".join(sections) or "<p>尚未配置大厅。</p>")
    return web.Response(text=body, content_type="text/html", charset="utf-8")


async def page_hooks(request: web.Request) -> web.Response:
    slot = request.match_info["slot"]
    if not _SLOT.match(slot):
        raise NotFound("没有这个页面插槽", slot=slot[:64])
    modules = [h.module for h in request.app.get(HOOKS, ()) if h.slot == slot]
    return web.json_response(PageHooksOut(modules=modules).model_dump())


_TEMPLATE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>排队叫号系统</title>
<style>
body{font-family:"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:0;background:#f3f5f8;
color:#1d2733}
header{background:#b71c1c;color:#fff;padding:18px 32px;font-size:26px;font-weight:600}
main{padding:24px 32px;display:grid;gap:24px;
grid-template-columns:repeat(auto-fill,minmax(520px,1fr))}
.hall{background:#fff;border-radius:10px;padding:8px 24px 20px;box-shadow:0 1px 4px #0002}
.hall h2{font-size:24px;border-bottom:2px solid #e3e7ee;padding-bottom:10px}
.group h3{font-size:17px;color:#5a6573;margin:14px 0 6px}
ul{margin:0;padding:0;list-style:none;display:flex;flex-wrap:wrap;gap:10px}
a{display:inline-block;padding:10px 16px;border-radius:8px;background:#eef3fb;color:#0b4f9c;
text-decoration:none;font-size:18px}
a:hover,a:focus{background:#0b4f9c;color:#fff;outline:none}
</style></head>
<body><header>政务服务大厅 排队叫号系统</header><main>{{halls}}</main></body></html>
"""


ROUTES = [
    Route(
        "GET", "/", start_page, "start_page", "首页：各大厅的页面", Access.PUBLIC, in_openapi=False
    ),
    Route(
        "GET",
        "/api/v1/page-hooks/{slot}",
        page_hooks,
        "page_hooks",
        "页面插槽要加载的模块（如窗口办结时的办件表单）",
        Access.PUBLIC,
        response=PageHooksOut,
        tags=("pages",),
    ),
]


def setup_start_page(app: web.Application) -> None:
    register(app, ROUTES)
