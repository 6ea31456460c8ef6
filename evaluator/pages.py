"""Pages of the evaluator slice: the web rating pad, the phone rating page, the managers'
rating list, and the counter terminal's finish-form module (page hook ``counter.finish``)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from hall.domain.errors import NotFound
from hall.web.page_files import PageFolder
from hall.web.routes import Access, Route

PAGES = Path(__file__).resolve().parent / "pages"
FOLDER = PageFolder(PAGES)
CASE_FORM = "/evaluator/static/case-form.js"
"""The module the counter terminal imports into its finish panel (contract.md)."""


async def pad_page(request: web.Request) -> web.Response:
    return FOLDER.page("pad.html", "服务评价")


async def phone_page(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    if not 10 <= len(token) <= 64:
        raise NotFound("评价链接无效，请核对二维码")
    return FOLDER.page("rate.html", "办件评价")


async def ratings_page(request: web.Request) -> web.Response:
    return FOLDER.page("ratings.html", "好差评")


static_file = FOLDER.handler("path")


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
