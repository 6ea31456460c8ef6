"""The rating pad's device role: ratings of the session this pad was given, and the pad's
screen from its counter (the screen rules are in ``evaluator.pad``)."""

from __future__ import annotations

from evaluator.pad import PadView, pad_requests, ticket_of_session
from firmware_bridge.bridge import EventResult
from firmware_bridge.messages import RatingEvent, RatingTimeoutEvent, Request
from hall.config.models import Device, DeviceClass
from hall.services.device_roles import DeviceContext, DeviceEvent, DeviceRole, Scene
from hall.storage import devices_repo
from hall.storage.uow import UnitOfWork


async def handle_pad(ctx: DeviceContext, uow: UnitOfWork, ev: DeviceEvent) -> EventResult | None:
    event, counter = ev.event, ev.device.counter
    if not isinstance(event, RatingEvent | RatingTimeoutEvent) or counter is None:
        return None
    # HB1.md §12.4: accepted only for the session this pad was given, i.e. a visit finished here.
    ticket = await devices_repo.finished_at_counter(
        uow.conn, ev.hall_id, counter, ticket_of_session(event.session_id)
    )
    if ticket is None:
        return EventResult("rejected:unknown_session")
    rated = isinstance(event, RatingEvent)
    stored = await devices_repo.insert_rating(
        uow.conn,
        hall_id=ev.hall_id,
        ticket_id=ticket.id,
        counter=counter,
        clerk=ticket.clerk,
        level=event.level if isinstance(event, RatingEvent) else None,
        not_rated_reason=None if rated else "timeout",
        reasons=event.reasons if isinstance(event, RatingEvent) else 0,
        dims=list(event.dims) if isinstance(event, RatingEvent) and event.dims else None,
        device_uid=ev.uid,
        rated_at=ev.now,
    )
    return EventResult("applied" if stored else "rejected:already_rated")


def render_pad(scene: Scene, device: Device) -> tuple[Request, ...]:
    view = scene.counters.get(device.counter) if device.counter is not None else None
    if view is None:
        return ()
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
            last_done_id=view.last_done_id,
            last_done_at=view.last_done_at,
            last_done_rated=view.last_done_rated,
        ),
        scene.now,
    )


PAD = DeviceRole(DeviceClass.PAD, handle=handle_pad, render=render_pad)
