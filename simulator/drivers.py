"""Drivers: how simulated people reach the hall.

``ServiceDriver`` calls the queue use cases of ``hall.services.queue`` on a pool, the way the
HTTP handlers do, on whatever clock the service was built with (the headless engine moves a
``FixedClock``). ``HttpDriver`` goes through the HTTP API as kiosks and counter terminals do.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import aiohttp
import asyncpg

from evaluator import repo as evaluator_repo
from hall.config.models import Purpose
from hall.domain.errors import HallError, QueueEmpty
from hall.services.queue import ActionParams, CounterAction, IssueTicket, QueueService
from simulator.engine import DriverError, QueueEmptyError, TicketRef
from simulator.plan import Citizen


class ServiceDriver:
    """Headless: the real queue service on the real database, no HTTP."""

    def __init__(self, service: QueueService, hall_id: str, kiosk: str | None = None) -> None:
        self.service = service
        self.hall_id = hall_id
        self.kiosk = kiosk
        self.pool: asyncpg.Pool = service.pool

    async def issue(self, citizen: Citizen, at: datetime) -> TicketRef:
        slot = citizen.appointment
        try:
            view = await self.service.issue(
                IssueTicket(
                    hall_id=self.hall_id,
                    service_code=citizen.service,
                    purpose=Purpose(citizen.purpose),
                    priority_class=citizen.priority_class,
                    appointment_start=slot[0] if slot else None,
                    appointment_end=slot[1] if slot else None,
                    kiosk=self.kiosk,
                ),
                actor="sim",
            )
        except HallError as exc:
            raise DriverError(str(exc)) from exc
        t = view.ticket
        return TicketRef(t.display_number, t.service_code, t.id, view.token)

    async def act(
        self,
        counter: int,
        action: str,
        at: datetime,
        *,
        clerk: str | None = None,
        reason: str | None = None,
        to_service: str | None = None,
    ) -> TicketRef | None:
        try:
            view = await self.service.act(
                self.hall_id,
                counter,
                CounterAction(action),
                clerk or f"sim{counter:02d}",
                ActionParams(clerk=clerk, reason=reason, to_service=to_service),
            )
        except QueueEmpty as exc:
            raise QueueEmptyError() from exc
        except HallError as exc:
            raise DriverError(f"{counter} {action}: {exc}") from exc
        t = view.ticket
        return None if t is None else TicketRef(t.display_number, t.service_code, t.id)

    async def rate(self, counter: int, ticket: TicketRef, level: int, at: datetime) -> None:
        if ticket.ticket_id is None:
            return
        async with self.pool.acquire() as conn:
            # As the pad's use case stores a rating (evaluator.repo), without its device.
            await evaluator_repo.insert_rating(
                conn,
                {
                    "hall_id": self.hall_id,
                    "ticket_id": ticket.ticket_id,
                    "counter": counter,
                    "clerk": f"sim{counter:02d}",
                    "level": level,
                    "channel": "pad",
                    "rated_at": at,
                },
            )


class HttpDriver:
    """Through the HTTP API: a kiosk device token issues, one logged-in clerk per counter
    acts (``clerk_headers`` maps a counter to its session headers). Ratings go through
    ``rate_hook`` (a pad emulator, in ``hall demo``) when one is given."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base: str,
        hall_id: str,
        kiosk_headers: dict[str, str],
        clerk_headers: dict[int, dict[str, str]],
        *,
        kiosk: str | None = None,
        server_time: Any = None,
        rate_hook: Any = None,
    ) -> None:
        self.session = session
        self.base = base.rstrip("/")
        self.hall_id = hall_id
        self.kiosk_headers = kiosk_headers
        self.clerk_headers = clerk_headers
        self.kiosk = kiosk
        self.server_time = server_time or (lambda at: at)
        self.rate_hook = rate_hook

    async def _post(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
        url = f"{self.base}/api/v1/halls/{self.hall_id}{path}"
        try:
            async with self.session.post(url, json=body, headers=headers) as resp:
                text = await resp.text()
                data = json.loads(text) if text else {}
                if resp.status >= 400:
                    code = data.get("code") if isinstance(data, dict) else None
                    if code == "queue_empty":
                        raise QueueEmptyError()
                    raise DriverError(f"{resp.status} {path}: {data.get('detail', text)}")
                return data
        except aiohttp.ClientError as exc:
            raise DriverError(f"{path}: {exc}") from exc

    async def issue(self, citizen: Citizen, at: datetime) -> TicketRef:
        body: dict[str, Any] = {"service": citizen.service, "purpose": citizen.purpose}
        if citizen.priority_class:
            body["priority_class"] = citizen.priority_class
        if citizen.appointment:
            body["appointment_start"] = self.server_time(citizen.appointment[0]).isoformat()
            body["appointment_end"] = self.server_time(citizen.appointment[1]).isoformat()
        if self.kiosk:
            body["kiosk"] = self.kiosk
        data = await self._post("/tickets", body, self.kiosk_headers)
        return TicketRef(data["number"], data["service"], None, data["token"])

    async def act(
        self,
        counter: int,
        action: str,
        at: datetime,
        *,
        clerk: str | None = None,
        reason: str | None = None,
        to_service: str | None = None,
    ) -> TicketRef | None:
        body: dict[str, Any] = {}
        if reason:
            body["reason"] = reason
        if to_service:
            body["to_service"] = to_service
        data = await self._post(
            f"/counters/{counter}/{action}", body, self.clerk_headers.get(counter, {})
        )
        t = data.get("ticket") if isinstance(data, dict) else None
        if not t:
            return None
        return TicketRef(t["number"], t["service"], t.get("id"))

    async def rate(self, counter: int, ticket: TicketRef, level: int, at: datetime) -> None:
        if self.rate_hook is not None:
            await self.rate_hook(counter, ticket, level)
