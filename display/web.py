"""The hall TV page (/tv/{hall}), its files, the voice segments and the announcement stream.

The TV page is opened in a browser paired as one of the hall's configured screens (``/pair``,
kind "display"): it then shows that screen's windows, services and rows. A browser that is not
paired is sent to ``/pair`` and shows its pairing code. Staff of the hall may open the page too
(the whole hall, or ``?screen=ID``). Live data come from the kernel's websocket
(``/api/v1/halls/{hall}/live``, static/live.js); announcements from
``/api/v1/halls/{hall}/announcements`` (server-sent events), paced by the hall's queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
from collections.abc import AsyncIterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from aiohttp import web

from display.announce import Announcement, segment_dir
from display.speech import VOICE, VoiceHub
from hall.config.models import Hall, Screen
from hall.domain.errors import NotFound, Unavailable
from hall.web.access import Principal, allowed, principal_of
from hall.web.api import API
from hall.web.page_files import PageFolder
from hall.web.routes import Access, Route
from hall.web.state import CLOCK, DIRECTORY, NOTIFIER, POOL

PAGES = Path(__file__).resolve().parent / "pages"
FOLDER = PageFolder(PAGES)
SSE_KEEPALIVE_S = 15.0
_Inboxes = set[asyncio.Queue[Announcement | None]]
SSE_CLIENTS = web.AppKey("display_sse_clients", _Inboxes)


def _screen_of(request: web.Request, hall: Hall, principal: Principal) -> Screen | None:
    """The paired screen's config; staff may preview one with ``?screen=ID``."""
    wanted = principal.device_id if principal.kind == "display" else request.query.get("screen")
    if not wanted:
        return None
    screen = hall.screen(wanted)
    if screen is None:
        raise NotFound(f"大厅 {hall.id} 的配置中没有显示屏 {wanted}")
    return screen


def page_data(hall: Hall, screen: Screen | None) -> dict[str, Any]:
    """What the page needs besides the live state: names, filters, notices, voice."""
    counters = [
        c
        for c in hall.counters
        if screen is None or not screen.counters or c.number in screen.counters
    ]
    services = [
        s
        for s in hall.services
        if screen is None or not screen.services or s.code in screen.services
    ]
    texts = hall.display
    return {
        "hall": hall.id,
        "hall_name": hall.name,
        "hall_name_en": hall.name_en,
        "bilingual": texts.bilingual,
        "timezone": hall.timezone,
        "screen": None if screen is None else {"id": screen.id, "name": screen.name},
        "rows": screen.rows if screen is not None else 8,
        "counters": [{"number": c.number, "name": c.name, "name_en": c.name_en} for c in counters],
        "services": [{"code": s.code, "name": s.name, "name_en": s.name_en} for s in services],
        "notices": [*texts.notices, *(screen.notices if screen is not None else [])],
        "call_text": texts.call_text,
        "voice": {
            "enabled": texts.voice.enabled and (screen is None or screen.voice),
            "volume": texts.voice.volume / 100,
            "segments": "/display/voice/",
        },
    }


def _script_json(value: object) -> str:
    # Inside <script> text, entities are not decoded: escape what could end the element.
    return (
        json.dumps(value, ensure_ascii=False)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )


async def tv_page(request: web.Request) -> web.StreamResponse:
    """GET /tv/{hall}: the TV call page; unpaired browsers go to /pair."""
    rules = request.app[DIRECTORY].hall(request.match_info["hall"])
    principal = principal_of(request)
    if not allowed(Access.DISPLAY, principal, rules.hall.id, None):
        # Not paired as a screen of this hall (nor staff of it): pair this browser.
        raise web.HTTPSeeOther("/pair")
    data = page_data(rules.hall, _screen_of(request, rules.hall, principal))
    title = html.escape(rules.hall.name)
    body = (PAGES / "tv.html").read_text(encoding="utf-8")
    body = body.replace("{{title}}", title).replace("{{data}}", _script_json(data))
    response = web.Response(text=body, content_type="text/html", charset="utf-8")
    response.headers["Cache-Control"] = "no-store"
    return response


async def tv_status(request: web.Request) -> web.Response:
    """GET /tv/{hall}/status: answers 200 while this browser may show the hall (the page
    asks when its live link drops, to tell "not paired" from "server unreachable")."""
    request.app[DIRECTORY].hall(request.match_info["hall"])
    principal = principal_of(request)
    out = {"paired": principal.kind == "display", "device": principal.device_id}
    return web.json_response(out, headers={"Cache-Control": "no-store"})


page_file = FOLDER.handler("path")


async def voice_file(request: web.Request) -> web.StreamResponse:
    """GET /display/voice/{name}.wav: a voice segment (public: sounds, no data)."""
    root = segment_dir().resolve()
    path = (root / f"{request.match_info['name']}.wav").resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise NotFound("语音文件不存在")
    response = web.FileResponse(path)
    response.content_type = "audio/wav"
    response.headers["Cache-Control"] = "max-age=86400"
    return response


def announcement_json(item: Announcement, lengths: dict[str, float]) -> str:
    out = asdict(item)
    out["seconds"] = round(item.seconds(lengths), 3)
    out["text"] = item.text()
    return json.dumps(out, ensure_ascii=False)


async def announcements(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/halls/{hall}/announcements: with ``Accept: text/event-stream``, server-sent
    events, one ``announce`` per call when the hall's queue reaches it (never two at once);
    otherwise the latest announcements of this process as JSON."""
    hall_id = request.match_info["hall"]
    request.app[DIRECTORY].hall(hall_id)
    hub = request.app[VOICE]
    if "text/event-stream" not in request.headers.get("Accept", ""):
        # Not an event stream client: the latest announcements this process ran, as JSON.
        return web.json_response(
            [
                {
                    **json.loads(announcement_json(p.announcement, dict(hub.lengths))),
                    "silent": p.silent,
                }
                for p in hub.played(hall_id)[-20:]
            ],
            headers={"Cache-Control": "no-store"},
        )
    inbox: asyncio.Queue[Announcement | None] = asyncio.Queue()
    clients = request.app.get(SSE_CLIENTS)
    if clients is None:
        raise Unavailable("语音服务未启动")
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    lengths = dict(hub.lengths)
    clients.add(inbox)
    try:
        async with hub.listen(hall_id, inbox.put_nowait):
            await response.write(b": ok\n\n")
            while True:
                try:
                    item = await asyncio.wait_for(inbox.get(), SSE_KEEPALIVE_S)
                except TimeoutError:
                    await response.write(b": ping\n\n")
                    continue
                if item is None:
                    break
                data = announcement_json(item, lengths)
                await response.write(f"event: announce\ndata: {data}\n\n".encode())
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        clients.discard(inbox)
    return response


async def end_streams(app: web.Application) -> None:
    """The server is stopping: end every announcement stream (browsers reconnect later)."""
    for inbox in list(app.get(SSE_CLIENTS, ())):
        inbox.put_nowait(None)


async def voice_task(app: web.Application) -> AsyncIterator[None]:
    hub = VoiceHub(app[POOL], app[DIRECTORY], app[NOTIFIER], app[CLOCK])
    app[VOICE] = hub
    app[SSE_CLIENTS] = set()
    await hub.start()
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            await hub.stop()


ROUTES = (
    Route("GET", "/tv/{hall}", tv_page, "tv", "大厅叫号电视页面", Access.PUBLIC, in_openapi=False),
    Route(
        "GET",
        "/tv/{hall}/status",
        tv_status,
        "tv_status",
        "电视页面的配对状态",
        Access.DISPLAY,
        in_openapi=False,
    ),
    Route(
        "GET",
        "/display/voice/{name:[A-Za-z0-9_]+}.wav",
        voice_file,
        "display_voice",
        "叫号语音片段",
        Access.PUBLIC,
        in_openapi=False,
    ),
    Route(
        "GET",
        "/display/{path:[A-Za-z0-9_.-]+}",
        page_file,
        "display_files",
        "电视页面的脚本与样式",
        Access.PUBLIC,
        in_openapi=False,
    ),
    Route(
        "GET",
        f"{API}/halls/{{hall}}/announcements",
        announcements,
        "display_announcements",
        "语音叫号（服务器推送事件）：按大厅队列逐条播报，不重叠",
        Access.DISPLAY,
        in_openapi=False,  # an endless event stream; described in docs/display.md
    ),
)
