"""Static files and the plain hall TV page that shows live calls (hall/web/static)."""

from __future__ import annotations

import html
import json
from pathlib import Path

from aiohttp import web

from hall.domain.errors import NotFound
from hall.web.routes import Access, Route, register
from hall.web.state import DIRECTORY

STATIC_DIR = Path(__file__).resolve().parent / "static"
_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}


async def static_file(request: web.Request) -> web.StreamResponse:
    """GET /static/{path}: files under hall/web/static only."""
    name = request.match_info["path"]
    path = (STATIC_DIR / name).resolve()
    if not path.is_relative_to(STATIC_DIR) or not path.is_file():
        raise NotFound("文件不存在")
    response = web.FileResponse(path)
    content_type = _TYPES.get(path.suffix)
    if content_type is not None:
        response.content_type = content_type
        response.charset = "utf-8"
    response.headers["Cache-Control"] = "no-cache"
    return response


async def tv_page(request: web.Request) -> web.Response:
    """GET /tv/{hall}: the hall screen (综合屏) fed by /static/live.js."""
    rules = request.app[DIRECTORY].hall(request.match_info["hall"])
    services = {s.code: s.name for s in rules.hall.services}
    # Inside <script> text, entities are not decoded: escape what could end the element.
    data = (
        json.dumps({"hall": rules.hall.id, "services": services}, ensure_ascii=False)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )
    title = html.escape(rules.hall.name)
    body = (STATIC_DIR / "tv.html").read_text(encoding="utf-8")
    body = body.replace("{{title}}", title).replace("{{data}}", data)
    return web.Response(text=body, content_type="text/html", charset="utf-8")


def setup_pages(app: web.Application) -> None:
    register(
        app,
        [
            Route(
                "GET",
                "/static/{path:.+}",
                static_file,
                "static",
                "静态文件",
                Access.PUBLIC,
                in_openapi=False,
            ),
            Route(
                "GET",
                "/tv/{hall}",
                tv_page,
                "tv",
                "大厅综合屏页面",
                Access.PUBLIC,
                in_openapi=False,
            ),
        ],
    )
