"""Appointment routes: hall managers (or the booking platform's import) add bookings; a kiosk
checks one in by booking code or phone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from hall.web.access import principal_of
from hall.web.api import API, json, parse_body
from hall.web.routes import Access, Route
from hall.web.schemas import ZonedTime
from hall.web.state import CLOCK, DIRECTORY, QUEUE
from kiosk.appointments import AppointmentDesk
from kiosk.pages import ISSUER, KioskTicketOut, kiosk_of_request, ticket_response

DESK = web.AppKey("kiosk_appointments", AppointmentDesk)


class BookingBody(BaseModel):
    # Not strict: the zoned times arrive as ISO strings (ZonedTime checks their shape).
    model_config = ConfigDict(extra="forbid", strict=False, frozen=True)
    code: Annotated[str, Field(strict=True, pattern=r"^[0-9A-Za-z]{4,16}$")]
    service: Annotated[str, Field(strict=True, min_length=1, max_length=32)]
    slot_start: ZonedTime
    slot_end: ZonedTime
    phone: Annotated[str, Field(strict=True, min_length=1, max_length=20)] | None = None
    """Kept only as a keyed hash (for check-in by phone) and masked."""
    name: Annotated[str, Field(strict=True, min_length=1, max_length=40)] | None = None
    """Kept only masked (张*)."""


class AppointmentOut(BaseModel):
    code: str
    service: str
    slot_start: datetime
    slot_end: datetime
    phone: str | None
    name: str | None
    checked_in_at: datetime | None


class CheckInBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    code: Annotated[str, Field(pattern=r"^[0-9A-Za-z]{4,16}$")] | None = None
    phone: Annotated[str, Field(min_length=1, max_length=20)] | None = None


async def desk(app: web.Application) -> AsyncIterator[None]:
    """Task: the appointment desk (after the kiosk's issuer)."""
    app[DESK] = AppointmentDesk(app[ISSUER], app[QUEUE])
    yield


async def add_booking(request: web.Request) -> web.Response:
    rules = request.app[DIRECTORY].hall(request.match_info["hall"])
    body = await parse_body(request, BookingBody)
    saved = await request.app[DESK].book(
        rules,
        code=body.code,
        service=body.service,
        slot_start=body.slot_start,
        slot_end=body.slot_end,
        phone=body.phone,
        name=body.name,
        by=principal_of(request).actor,
        now=request.app[CLOCK].now(),
    )
    out = AppointmentOut(
        code=saved.code,
        service=saved.service_code,
        slot_start=saved.slot_start,
        slot_end=saved.slot_end,
        phone=saved.phone_masked,
        name=saved.name_masked,
        checked_in_at=saved.checked_in_at,
    )
    return json(out, status=201)


async def check_in(request: web.Request) -> web.Response:
    rules, kiosk = kiosk_of_request(request)
    body = await parse_body(request, CheckInBody)
    done = await request.app[DESK].check_in(
        rules,
        kiosk.id,
        list(kiosk.services),
        code=body.code,
        phone=body.phone,
        actor=principal_of(request).actor,
        now=request.app[CLOCK].now(),
    )
    return await ticket_response(request, rules, done.view, done.note)


ROUTES = [
    Route(
        "POST",
        f"{API}/halls/{{hall}}/appointments",
        add_booking,
        "kiosk_add_appointment",
        "导入或修改一条预约（预约码、业务、时段；手机号只存哈希与掩码）",
        Access.MANAGER,
        body=BookingBody,
        response=AppointmentOut,
        tags=("kiosk",),
    ),
    Route(
        "POST",
        f"{API}/kiosk/appointments",
        check_in,
        "kiosk_check_in",
        "本取号机预约签到（预约码或手机号），出号并等待出票结果",
        Access.KIOSK,
        body=CheckInBody,
        response=KioskTicketOut,
        tags=("kiosk",),
    ),
]
