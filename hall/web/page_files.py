"""A feature's folder of page files (HTML, CSS, ES modules): how every slice serves them."""

from __future__ import annotations

import html
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from hall.domain.errors import NotFound

TYPES: Mapping[str, str] = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}

_INCLUDE = re.compile(r'<!--#include ([A-Za-z0-9_.-]+\.part\.html)((?: \w+="[^"]*")*) -->')
_PARAM = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True)
class PageFolder:
    """Files under ``root`` with a listed suffix, never anything outside it; ``no-cache`` so a
    hall's screens pick up a new release at their next load, except under ``immutable_dir``
    (a versioned vendored library)."""

    root: Path
    types: Mapping[str, str] = field(default_factory=lambda: TYPES)
    immutable_dir: str | None = None

    def page(self, name: str, title: str) -> web.Response:
        """An HTML page of the folder with its ``{{title}}`` filled in."""
        text = self._html(self.root / name)
        return self._html_response(text.replace("{{title}}", html.escape(title)))

    def _html(self, path: Path) -> str:
        """An HTML file with its ``<!--#include NAME.part.html key="value" -->`` lines replaced
        by that part of the folder, ``{{key}}`` in it filled in: markup several pages share
        (a login form) is written once, with no build step."""

        def part(m: re.Match[str]) -> str:
            text = (self.root / m.group(1)).read_text(encoding="utf-8")
            for key, value in _PARAM.findall(m.group(2)):
                text = text.replace("{{" + key + "}}", value)
            return text.rstrip("\n")

        return _INCLUDE.sub(part, path.read_text(encoding="utf-8"))

    @staticmethod
    def _html_response(text: str) -> web.Response:
        response = web.Response(text=text, content_type="text/html", charset="utf-8")
        response.headers["Cache-Control"] = "no-cache"
        return response

    def file(self, name: str) -> web.StreamResponse:
        path = (self.root / name).resolve()
        if (
            not path.is_relative_to(self.root)
            or not path.is_file()
            or path.suffix not in self.types
        ):
            raise NotFound("文件不存在")
        if path.suffix == ".html":
            return self._html_response(self._html(path))
        response = web.FileResponse(path)
        response.content_type = self.types[path.suffix]
        response.charset = "utf-8"
        immutable = self.immutable_dir is not None and path.is_relative_to(
            self.root / self.immutable_dir
        )
        response.headers["Cache-Control"] = (
            "public, max-age=31536000, immutable" if immutable else "no-cache"
        )
        return response

    def handler(self, param: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """A route handler serving the file named by the path parameter ``param``."""

        async def serve(request: web.Request) -> web.StreamResponse:
            return self.file(request.match_info[param])

        return serve
