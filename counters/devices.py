"""The caller keypad's device role: key presses become counter actions, LOGIN signs a clerk in
and opens the counter, LOGOUT closes it; the display follows the counter (the key map and
display rules are in ``counters.keypad``, sign-in in ``counters.signin``)."""

from __future__ import annotations

from counters.keypad import KeyRefused, keypad_requests, plan_key
from counters.signin import (
    METHOD_NAMES,
    SignInRefused,
    identify,
    log_sign_in,
    parse_login,
)
from firmware_bridge.bridge import EventResult
from firmware_bridge.messages import KeyEvent, LoginEvent, LogoutEvent, Request
from hall.config.models import Device, DeviceClass
from hall.domain.errors import NotFound
from hall.domain.tickets import CounterState, CounterStatus
from hall.services.device_roles import DeviceContext, DeviceEvent, DeviceRole, Scene
from hall.services.queue import ActionParams, CounterAction
from hall.storage import repo
from hall.storage.uow import UnitOfWork


async def handle_caller(ctx: DeviceContext, uow: UnitOfWork, ev: DeviceEvent) -> EventResult | None:
    counter = ev.device.counter
    if counter is None:
        return None
    if isinstance(ev.event, LoginEvent | LogoutEvent):
        return await sign_in(ctx, uow, ev)
    if not isinstance(ev.event, KeyEvent):
        return None
    status = await _locked(uow, ev, counter)
    try:
        steps = plan_key(int(ev.event.key), ev.event.arg, str(status.state))
    except KeyRefused:
        return EventResult("rejected:key_refused", beep=True)
    # One call: actions that read nothing but the counter (办结's start and finish) go to
    # PostgreSQL in one statement.
    await ctx.queue.act_steps(
        uow,
        ev.hall_id,
        counter,
        [
            (
                CounterAction(step.action),
                status.clerk or ev.actor,
                ActionParams(number=step.number, to_counter=step.to_counter, reason=step.reason),
            )
            for step in steps
        ],
    )
    return EventResult("applied")


async def sign_in(ctx: DeviceContext, uow: UnitOfWork, ev: DeviceEvent) -> EventResult | None:
    """LOGIN: check the binding and credential, open the counter for the clerk. LOGOUT: close
    it. A refusal is logged with its reason (the log row commits: nothing raises) and beeps."""
    counter = ev.device.counter
    if counter is None or not isinstance(ev.event, LoginEvent | LogoutEvent):
        return None
    login = isinstance(ev.event, LoginEvent)
    method = METHOD_NAMES.get(ev.event.method) if isinstance(ev.event, LoginEvent) else None
    job_no: str | None = None
    status = await _locked(uow, ev, counter)
    try:
        if isinstance(ev.event, LoginEvent):
            cred = parse_login(int(ev.event.method), ev.event.cred)
            job_no = await identify(uow.conn, ev.hall_id, counter, cred, ev.now)
            if status.state is CounterState.CLOSED:
                await ctx.queue.act(
                    ev.hall_id, counter, CounterAction.OPEN, job_no,
                    ActionParams(clerk=job_no), uow=uow,
                )  # fmt: skip
            elif status.clerk != job_no:
                raise SignInRefused("counter_in_use", job_no)
            # The same clerk signing in again at an open counter changes nothing.
        else:
            job_no = status.clerk
            if status.state in (CounterState.CALLING, CounterState.SERVING):
                raise SignInRefused("ticket_in_hand", job_no)
            if status.state is not CounterState.CLOSED:
                await ctx.queue.act(
                    ev.hall_id, counter, CounterAction.CLOSE, job_no or ev.actor, uow=uow
                )
    except SignInRefused as refused:
        await log_sign_in(
            uow.conn, hall_id=ev.hall_id, counter=counter, device=ev.actor, at=ev.now,
            kind="login" if login else "logout", method=method,
            job_no=refused.job_no or job_no, refusal=refused.code,
        )  # fmt: skip
        return EventResult(f"rejected:{refused.code}", beep=True)
    await log_sign_in(
        uow.conn, hall_id=ev.hall_id, counter=counter, device=ev.actor, at=ev.now,
        kind="login" if login else "logout", method=method, job_no=job_no, refusal=None,
    )  # fmt: skip
    return EventResult("applied")


async def _locked(uow: UnitOfWork, ev: DeviceEvent, counter: int) -> CounterStatus:
    """The device's counter under its row lock: as the event's key statement locked it (the
    caller role's ``locks_counter``), else locked here (a pad's LOGIN)."""
    if ev.counter is not None:
        return ev.counter
    found = await repo.counter(uow.conn, ev.hall_id, counter, for_update=True)
    if found is None:
        raise NotFound(f"{counter}号窗口不存在", counter=counter)
    return found[0]


def render_caller(scene: Scene, device: Device) -> tuple[Request, ...]:
    view = scene.counters.get(device.counter) if device.counter is not None else None
    if view is None:
        return ()
    return keypad_requests(view.state, view.ticket_number)


CALLER = DeviceRole(
    DeviceClass.CALLER,
    handle=handle_caller,
    render=render_caller,
    sign_in=sign_in,
    locks_counter=True,
)
