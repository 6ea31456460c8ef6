"""Pages of the evaluator slice: the web rating pad, the phone rating page, the managers'
rating list, and the counter terminal's finish-form module (page hook ``counter.finish``)."""

from __future__ import annotations

import html
from pathlib import Path

from aiohttp import web

from hall.domain.errors import NotFound
from hall.web.routes import Access, Route

PAGES = Path(__file__).resolve().parent / "pages"
_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}
CASE_FORM = "/evaluator/static/case-form.js"
"""The module the counter terminal imports into its finish panel (contract.md)."""


def _page(name: str, title: str) -> web.Response:
    text = (PAGES / name).read_text(encoding="utf-8").replace("{{title}}", html.escape(title))
    response = web.Response(text=text, content_type="text/html", charset="utf-8")
    response.headers["Cache-Control"] = "no-cache"
    return response


async def pad_page(request: web.Request) -> web.Response:
    return _page("pad.html", "服务评价")


async def phone_page(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    if not 10 <= len(token) <= 64:
        raise NotFound("评价链接无效，请核对二维码")
    return _page("rate.html", "办件评价")


async def ratings_page(request: web.Request) -> web.Response:
    return _page("ratings.html", "好差评")


async def static_file(request: web.Request) -> web.StreamResponse:
    name = request.match_info["path"]
    path = (PAGES / name).resolve()
    if not path.is_relative_to(PAGES) or not path.is_file() or path.suffix not in _TYPES:
        raise NotFound("文件不存在")
    response = web.FileResponse(path)
    response.content_type = _TYPES[path.suffix]
    response.charset = "utf-8"
    response.headers["Cache-Control"] = "no-cache"
    return response


ROUTES = [
    Route(
        "GET", "/pad", pad_page, "evaluator_pad_page", "网页评价器", Access.PUBLIC, in_openapi=False
    ),
    Route(
        "GET",
        "/pad/{hall}",
        pad_page,
        "evaluator_hall_pad_page",
        "网页评价器（指定大厅）",
        Access.PUBLIC,
        in_openapi=False,
    ),
    Route(
        "GET",
        "/r/{token}",
        phone_page,
        "evaluator_phone_page",
        "手机评价",
        Access.PUBLIC,
        in_openapi=False,
    ),
    Route(
        "GET",
        "/ratings",
        ratings_page,
        "evaluator_ratings_page",
        "好差评管理",
        Access.PUBLIC,
        in_openapi=False,
    ),
    Route(
        "GET",
        "/evaluator/static/{path:[A-Za-z0-9_.-]+}",
        static_file,
        "evaluator_static",
        "评价模块的脚本与样式",
        Access.PUBLIC,
        in_openapi=False,
    ),
]
