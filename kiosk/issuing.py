"""Issuing at a kiosk with the per-person daily limit (服务的每人每日取号上限).

A service with ``per_person_daily_limit`` needs the citizen's resident ID number. Its keyed
hash (never the number) is counted under a per-person advisory lock and stored with the
ticket in one transaction, so two kiosks cannot both give a person the last allowed ticket.
"""

from __future__ import annotations

import threading
from pathlib import Path

import asyncpg

from hall.domain.calendar import business_day
from hall.domain.errors import Conflict, InvalidInput
from hall.ports import Clock
from hall.security.keys import PiiHasher, load_secret_key
from hall.services.directory import Directory
from hall.services.queue import IssueTicket, QueueService, TicketView
from hall.storage.embedded import default_data_dir
from hall.storage.uow import UnitOfWork, run_in_transaction
from kiosk import repo


class IdNumberRequired(InvalidInput):
    """The service limits tickets per person: the kiosk must send an ID number."""

    code = "id_number_required"
    title = "此业务需要输入身份证号码"


class PersonLimitReached(Conflict):
    """This person has taken as many tickets for the service today as it allows."""

    code = "person_daily_limit"
    title = "今日取号次数已达上限"


class _LazyHasher:
    """The deployment's key is read (or created) only when a limited service is first used."""

    def __init__(self, data_dir: Path | None = None) -> None:
        self._data_dir = data_dir
        self._hasher: PiiHasher | None = None
        self._lock = threading.Lock()

    def get(self) -> PiiHasher:
        with self._lock:
            if self._hasher is None:
                self._hasher = PiiHasher(load_secret_key(self._data_dir or default_data_dir()))
            return self._hasher


class KioskIssuer:
    def __init__(
        self,
        pool: asyncpg.Pool,
        directory: Directory,
        queue: QueueService,
        clock: Clock,
        hasher: PiiHasher | None = None,
    ) -> None:
        self.pool = pool
        self.directory = directory
        self.queue = queue
        self.clock = clock
        self._fixed = hasher
        self._lazy = _LazyHasher()

    def hasher(self) -> PiiHasher:
        return self._fixed or self._lazy.get()

    def needs_id(self, hall_id: str, service: str) -> bool:
        svc = self.directory.hall(hall_id).service(service)
        return svc.per_person_daily_limit is not None

    async def issue(self, cmd: IssueTicket, actor: str, id_number: str | None) -> TicketView:
        rules = self.directory.hall(cmd.hall_id)
        svc = rules.service(cmd.service_code)
        limit = svc.per_person_daily_limit
        if limit is None:
            return await self.queue.issue(cmd, actor=actor)
        if not id_number:
            raise IdNumberRequired(f"「{svc.name}」每人每日限取 {limit} 个号，请输入身份证号码")
        id_hash = self.hasher().id_number(id_number)  # InvalidInput for a wrong number
        day = business_day(self.clock.now(), rules.tz, rules.hall.day_boundary)

        async def work(uow: UnitOfWork) -> TicketView:
            conn = uow.conn
            await repo.lock_person(conn, f"{cmd.hall_id}/{svc.code}/{day}/{id_hash}")
            if cmd.idempotency_key is None or not await _replay(conn, cmd):
                taken = await repo.tickets_of_person(conn, cmd.hall_id, svc.code, day, id_hash)
                if taken >= limit:
                    raise PersonLimitReached(
                        f"您今天已取「{svc.name}」{taken} 个号，每人每日限 {limit} 个",
                        limit=limit,
                    )
            view = await self.queue.issue(cmd, actor=actor, uow=uow)
            await repo.add_person_ticket(conn, view.ticket.id, cmd.hall_id, svc.code, day, id_hash)
            return view

        view, _ = await run_in_transaction(self.pool, work)
        return view


async def _replay(conn: asyncpg.Connection, cmd: IssueTicket) -> bool:
    """True when this tap's idempotency key already has its ticket (a retry, not a new one)."""
    found: bool = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM tickets WHERE hall_id = $1 AND idempotency_key = $2)",
        cmd.hall_id,
        cmd.idempotency_key,
    )
    return found
