"""The kiosk key board's device role: site key 0x80 + i issues a ticket for the kiosk's i-th
service (its configured services, or the hall's in order)."""

from __future__ import annotations

from firmware_bridge.bridge import EventResult
from firmware_bridge.messages import KeyEvent
from hall.config.models import DeviceClass
from hall.services.device_roles import DeviceContext, DeviceEvent, DeviceRole
from hall.services.queue import IssueTicket
from hall.storage.uow import UnitOfWork

KIOSK_KEY_BASE = 0x80


async def handle_kiosk_key(
    ctx: DeviceContext, uow: UnitOfWork, ev: DeviceEvent
) -> EventResult | None:
    kiosk_id = ev.device.kiosk
    if not isinstance(ev.event, KeyEvent) or not kiosk_id:
        return None
    rules = ctx.directory.hall(ev.hall_id)
    kiosk = next((k for k in rules.hall.kiosks if k.id == kiosk_id), None)
    codes = (kiosk.services if kiosk and kiosk.services else None) or [
        s.code for s in rules.hall.services
    ]
    index = int(ev.event.key) - KIOSK_KEY_BASE
    if not 0 <= index < len(codes):
        return EventResult("rejected:key_refused", beep=True)
    await ctx.queue.issue(
        IssueTicket(hall_id=ev.hall_id, service_code=codes[index], kiosk=kiosk_id),
        actor=ev.actor,
        uow=uow,
    )
    return EventResult("applied")


KIOSK_KEYS = DeviceRole(DeviceClass.KIOSK, handle=handle_kiosk_key)
