"""Ticket lookup by number (排队进度查询): a citizen without the ticket's QR code types the
number printed on it and sees where it stands today.

It answers what the hall's TV already shows anyone in the room (a number, its service, its
state, the window calling it) plus the place in the queue: nothing personal, and never the
ticket's token, which is what the citizen's ticket page and its QR code hold.
"""

from __future__ import annotations

import re

from aiohttp import web

from hall.domain.errors import InvalidInput
from hall.web.api import API, json
from hall.web.routes import Access, Route
from hall.web.state import CLOCK, DIRECTORY, POOL, QUEUE
from kiosk import standing
from kiosk.follow import TicketLiveOut, live_view
from kiosk.pages import FOLDER

NUMBER = re.compile(r"[A-Z]{0,3}[0-9]{1,6}")
"""A printed number: a service prefix of up to three letters and up to six digits."""


async def lookup(request: web.Request) -> web.Response:
    rules = request.app[DIRECTORY].hall(request.match_info["hall"])
    number = request.query.get("number", "").strip().upper()
    if not NUMBER.fullmatch(number):
        raise InvalidInput("请输入号票上的号码，例如 A023", parameter="number")
    view = await request.app[QUEUE].ticket_status_by_number(rules.hall.id, number)
    said = await standing.read(request.app[POOL], rules, view, request.app[CLOCK].now())
    response = json(live_view(view, said))
    response.headers["Cache-Control"] = "no-store"
    return response


async def lookup_page(request: web.Request) -> web.Response:
    request.app[DIRECTORY].hall(request.match_info["hall"])  # 404 for a hall that is not here
    return FOLDER.page("lookup.html", "排队进度查询")


ROUTES = [
    Route(
        "GET",
        "/lookup/{hall}",
        lookup_page,
        "lookup_page",
        "排队进度查询页面（输入号码）",
        Access.PUBLIC,
        in_openapi=False,
    ),
    Route(
        "GET",
        f"{API}/halls/{{hall}}/lookup",
        lookup,
        "ticket_lookup",
        "按号码查询今日排队进度（?number=A023；不含个人信息）",
        Access.PUBLIC,
        response=TicketLiveOut,
        tags=("kiosk",),
    ),
]
