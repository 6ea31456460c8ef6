"""Static files shared by pages of every slice (hall/web/static), e.g. the live client."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from hall.domain.errors import NotFound
from hall.web.routes import Access, Route, register

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
        ],
    )
