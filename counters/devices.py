"""The caller keypad's device role: key presses become counter actions; the display follows
the counter (the key map and display rules are in ``counters.keypad``)."""

from __future__ import annotations

from counters.keypad import KeyRefused, keypad_requests, plan_key
from firmware_bridge.bridge import EventResult
from firmware_bridge.messages import KeyEvent, Request
from hall.config.models import Device, DeviceClass
from hall.domain.errors import NotFound
from hall.services.device_roles import DeviceContext, DeviceEvent, DeviceRole, Scene
from hall.services.queue import ActionParams, CounterAction
from hall.storage import repo
from hall.storage.uow import UnitOfWork


async def handle_caller(ctx: DeviceContext, uow: UnitOfWork, ev: DeviceEvent) -> EventResult | None:
    counter = ev.device.counter
    if not isinstance(ev.event, KeyEvent) or counter is None:
        return None
    found = await repo.counter(uow.conn, ev.hall_id, counter, for_update=True)
    if found is None:
        raise NotFound(f"{counter}号窗口不存在", counter=counter)
    status, _ = found
    try:
        steps = plan_key(int(ev.event.key), ev.event.arg, str(status.state))
    except KeyRefused:
        return EventResult("rejected:key_refused", beep=True)
    for step in steps:
        await ctx.queue.act(
            ev.hall_id,
            counter,
            CounterAction(step.action),
            status.clerk or ev.actor,
            ActionParams(number=step.number, to_counter=step.to_counter, reason=step.reason),
            uow=uow,
        )
    return EventResult("applied")


def render_caller(scene: Scene, device: Device) -> tuple[Request, ...]:
    view = scene.counters.get(device.counter) if device.counter is not None else None
    if view is None:
        return ()
    return keypad_requests(view.state, view.ticket_number)


CALLER = DeviceRole(DeviceClass.CALLER, handle=handle_caller, render=render_caller)
