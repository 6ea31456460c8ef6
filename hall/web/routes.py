"""The route table: every HTTP endpoint with its bodies and access rule.

The OpenAPI document, the router and the authorisation checks are all generated from this one
table, so an endpoint cannot exist without a declared access rule.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from pydantic import BaseModel

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Access(enum.StrEnum):
    """Who may call an endpoint; enforced by the access middleware."""

    PUBLIC = "public"  # anyone, rate-limited
    TICKET_TOKEN = "ticket_token"  # anyone holding the ticket's unguessable token
    KIOSK = "kiosk"  # a registered kiosk device, or staff issuing on a citizen's behalf
    DISPLAY = "display"  # display devices and staff of the hall
    COUNTER_CLERK = "counter_clerk"  # a clerk assigned to the counter in the path
    HALL_STAFF = "hall_staff"  # any staff member of the hall in the path
    MANAGER = "manager"  # managers of the hall in the path, and admins
    ADMIN = "admin"
    DEVICE = "device"  # bridge / device tokens
    AUTHENTICATED = "authenticated"  # any logged-in user (own session endpoints)


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    name: str
    summary: str
    access: Access
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    response_list: bool = False
    tags: tuple[str, ...] = ()
    in_openapi: bool = True


ROUTES_KEY = web.AppKey("routes", list[Route])


def register(app: web.Application, routes: list[Route]) -> None:
    """Add routes to the router and to the app's route table."""
    table = app.get(ROUTES_KEY)
    if table is None:
        table = []
        app[ROUTES_KEY] = table
    for route in routes:
        app.router.add_route(route.method, route.path, route.handler, name=route.name)
        table.append(route)


def route_of(request: web.Request) -> Route | None:
    """The table entry that matched this request."""
    info = request.match_info
    name = info.route.name if info.route is not None else None
    if name is None:
        return None
    for route in request.app[ROUTES_KEY]:
        if route.name == name:
            return route
    return None
