"""The rating pad's device role: ratings of the session this pad was given, and the pad's
screen from its counter and rating session (the screen rules are in ``evaluator.pad``)."""

from __future__ import annotations

from datetime import datetime
from typing import cast

import asyncpg

from evaluator import repo
from evaluator.domain import dims_of_frame, reasons_of_mask
from evaluator.pad import SETTINGS, PadView, pad_requests
from evaluator.service import rate_pad_session
from firmware_bridge.bridge import EventResult
from firmware_bridge.messages import RatingEvent, RatingTimeoutEvent, Request
from hall.config.models import Device, DeviceClass
from hall.services.device_roles import DeviceContext, DeviceEvent, DeviceRole, Scene
from hall.storage.uow import UnitOfWork


async def handle_pad(ctx: DeviceContext, uow: UnitOfWork, ev: DeviceEvent) -> EventResult | None:
    event, counter = ev.event, ev.device.counter
    if not isinstance(event, RatingEvent | RatingTimeoutEvent) or counter is None:
        return None
    rules = ctx.directory.hall(ev.hall_id)
    config = ctx.directory.config
    rated = isinstance(event, RatingEvent)
    level = event.level if isinstance(event, RatingEvent) else None
    mask = event.reasons if isinstance(event, RatingEvent) else 0
    codes = reasons_of_mask(mask, config.evaluation.bad_reasons) if level in (1, 2) else []
    # HB1.md §12.4: accepted only for the session the host opened for this pad's counter,
    # once its visit was finished there, and only once.
    result = await rate_pad_session(
        uow.conn,
        rules,
        config,
        session_id=event.session_id,
        counter=counter,
        level=level if rated else None,
        reasons_mask=mask,
        reason_codes=codes,
        dims=dims_of_frame(event.dims, config.evaluation.dimensions)
        if isinstance(event, RatingEvent)
        else None,
        channel="pad",
        device=ev.uid,
        now=ev.now,
        today=ev.now.astimezone(rules.tz).date(),
    )
    if isinstance(result, int):
        return EventResult("applied")
    return EventResult(f"rejected:{result}")


async def load_sessions(conn: asyncpg.Connection, hall_id: str) -> object:
    return await repo.latest_sessions(conn, hall_id)


def shown_session(
    newest_first: list[repo.PadSession], now: datetime, timeout_s: float
) -> repo.PadSession | None:
    """The session a pad shows: the newest, unless the visit before it was finished less than
    ``timeout_s`` ago and is not rated yet. The citizen who just left the desk still gets to
    rate when the clerk calls the next number at once (a quick 叫号 must not cut the rating
    short); the next visit's card shows once it is rated or timed out."""
    if not newest_first:
        return None
    newest = newest_first[0]
    for older in newest_first[1:2]:
        if (
            newest.finished_at is None
            and older.finished_at is not None
            and not older.rated
            and (now - older.finished_at).total_seconds() < timeout_s
        ):
            return older
    return newest


def render_pad(scene: Scene, device: Device) -> tuple[Request, ...]:
    view = scene.counters.get(device.counter) if device.counter is not None else None
    if view is None:
        return ()
    sessions = cast(dict[int, list[repo.PadSession]], scene.extras.get(DeviceClass.PAD, {}))
    session = shown_session(sessions.get(view.number, []), scene.now, SETTINGS.timeout_s)
    matter = None
    if view.service_code is not None:
        matter = scene.rules.service(view.service_code).name
    return pad_requests(
        PadView(
            counter=view.number,
            state=view.state,
            clerk_no=view.clerk,
            clerk_name=scene.staff_names.get(view.clerk or ""),
            ticket_id=view.ticket_id,
            ticket_number=view.ticket_number,
            matter=matter,
            session_id=session.id if session else None,
            session_ticket=session.ticket_id if session else None,
            session_finished_at=session.finished_at if session else None,
            session_rated=session.rated if session else False,
        ),
        scene.now,
        SETTINGS.timeout_s,
    )


PAD = DeviceRole(DeviceClass.PAD, handle=handle_pad, render=render_pad, load=load_sessions)
