"""Appointments (预约): bookings imported from the booking platform, checked in at a kiosk.

A citizen checks in by booking code or by phone. On time (from the hall's early window to the
slot's end plus the late window) the ticket carries the slot, so call-next serves it when the
slot begins, with the ``appointment`` priority class where the service allows it; a citizen
who comes later joins the normal queue (domain brief §3.3), and one who comes on another day is
told the day. Check-in issues the ticket and marks the booking in one transaction; checking in
again answers with the same ticket.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from hall.domain.calendar import business_day
from hall.domain.errors import Conflict, InvalidInput, NotFound, NotOfferedHere
from hall.domain.pii import mask_phone
from hall.services.directory import HallRules
from hall.services.queue import IssueTicket, QueueService, TicketView
from hall.storage.uow import UnitOfWork, run_in_transaction
from kiosk import repo
from kiosk.issuing import KioskIssuer

APPOINTMENT_CLASS = "appointment"


@dataclass(frozen=True, slots=True)
class CheckedIn:
    view: TicketView
    note: str


def mask_name(name: str) -> str:
    """``张*`` / ``欧阳**``: the family name's first character only."""
    name = name.strip()
    return name[:1] + "*" * max(1, len(name) - 1) if name else ""


def _when(at: datetime, rules: HallRules) -> str:
    local = at.astimezone(rules.tz)
    return f"{local.month}月{local.day}日 {local:%H:%M}"


class AppointmentDesk:
    def __init__(self, issuer: KioskIssuer, queue: QueueService) -> None:
        self.issuer = issuer
        self.queue = queue

    async def book(
        self,
        rules: HallRules,
        *,
        code: str,
        service: str,
        slot_start: datetime,
        slot_end: datetime,
        phone: str | None,
        name: str | None,
        by: str,
        now: datetime,
    ) -> repo.AppointmentRow:
        rules.service(service)  # NotFound for an unknown service
        if slot_end <= slot_start:
            raise InvalidInput("预约结束时间必须晚于开始时间", parameter="slot_end")
        phone_hash = self.issuer.hasher().phone(phone) if phone else None
        saved = await repo.save_appointment(
            self.issuer.pool,
            hall_id=rules.hall.id,
            code=code.upper(),
            service=service,
            slot_start=slot_start,
            slot_end=slot_end,
            phone_hash=phone_hash,
            phone_masked=mask_phone(phone) if phone else None,
            name_masked=mask_name(name) if name else None,
            by=by,
            now=now,
        )
        if saved is None:
            raise Conflict(f"预约 {code} 已签到，不能修改", appointment=code)
        return saved

    async def check_in(
        self,
        rules: HallRules,
        kiosk_id: str,
        offered: list[str],
        *,
        code: str | None,
        phone: str | None,
        actor: str,
        now: datetime,
    ) -> CheckedIn:
        if (code is None) == (phone is None):
            raise InvalidInput("请输入预约码或预约手机号码")
        phone_hash = self.issuer.hasher().phone(phone) if phone else None
        day = business_day(now, rules.tz, rules.hall.day_boundary)
        day_start = datetime.combine(day, rules.hall.day_boundary, rules.tz)
        policy = rules.hall.call_policy
        early = timedelta(minutes=policy.appointment_early_minutes)
        late = timedelta(minutes=policy.appointment_late_minutes)

        async def work(uow: UnitOfWork) -> CheckedIn:
            found = await repo.appointment_for_check_in(
                uow.conn,
                rules.hall.id,
                code=code.upper() if code else None,
                phone_hash=phone_hash,
                day_start=day_start,
                day_end=day_start + timedelta(days=1),
            )
            if found is None:
                raise NotFound("未找到今天的预约，请核对预约码或手机号码，或到咨询台询问")
            svc = rules.service(found.service_code)
            if offered and found.service_code not in offered:
                raise NotOfferedHere(
                    f"您预约的「{svc.name}」请到其他取号机或咨询台签到", service=svc.code
                )
            slot_day = business_day(found.slot_start, rules.tz, rules.hall.day_boundary)
            if found.ticket_id is None and slot_day != day:
                raise Conflict(
                    f"您预约的是 {_when(found.slot_start, rules)}，请在预约当天签到",
                    appointment=found.code,
                )
            on_time = now <= found.slot_end + late
            cmd = IssueTicket(
                hall_id=rules.hall.id,
                service_code=svc.code,
                priority_class=APPOINTMENT_CLASS
                if on_time and APPOINTMENT_CLASS in svc.priority_classes
                else None,
                appointment_start=found.slot_start if on_time else None,
                appointment_end=found.slot_end if on_time else None,
                kiosk=kiosk_id,
                idempotency_key=f"appointment-{found.id}",
            )
            if found.ticket_id is not None:
                token = await repo.token_of_ticket(uow.conn, found.ticket_id)
                view = await self.queue.ticket_status(token)
                return CheckedIn(replace(view, replayed=True), "您已签到，这是您的号码")
            view = await self.queue.issue(cmd, actor=actor, uow=uow)
            await repo.mark_checked_in(uow.conn, found.id, view.ticket.id, now)
            if not on_time:
                note = "已超过预约时段，已为您取普通号排队"
            elif now < found.slot_start - early:
                note = f"签到成功，请于 {_when(found.slot_start, rules)} 前后留意叫号"
            else:
                note = "签到成功，预约号将优先叫号"
            return CheckedIn(view, note)

        result, _ = await run_in_transaction(self.issuer.pool, work)
        return result
