"""Use cases of the evaluator slice: cases, ratings, 差评 follow-up (I/O through evaluator.repo)."""

from __future__ import annotations

import logging
import secrets
import threading
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import asyncpg

from evaluator import repo
from evaluator.domain import (
    CASE_TYPE_NAMES,
    RATEABLE,
    CaseStatus,
    CaseType,
    DeadlineInPast,
    InvalidDimension,
    NoRatingSession,
    TaskStatus,
    case_due,
    check_case_type,
    check_dims,
    check_level,
    check_reasons,
    followup_due,
    initial_status,
    is_bad,
    next_status,
)
from hall.config.models import HallConfig, MatterKind
from hall.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from hall.ports import Clock
from hall.security.keys import PiiHasher, load_secret_key
from hall.services.directory import Directory, HallRules
from hall.storage.embedded import default_data_dir
from hall.storage.uow import acquire

log = logging.getLogger(__name__)


class AlreadyRated(Conflict):
    """A second rating of the same case or visit."""

    code = "already_rated"
    title = "已评价"


class CaseNumberTaken(Conflict):
    """The hall already has a case with this number."""

    code = "case_number_taken"
    title = "办件编号已被使用"


class LazyHasher:
    """The deployment's PII key, read on first use (finding a case by a citizen's phone)."""

    def __init__(self, data_dir: Path | None = None) -> None:
        self._data_dir = data_dir
        self._hasher: PiiHasher | None = None
        self._lock = threading.Lock()

    def get(self) -> PiiHasher:
        with self._lock:
            if self._hasher is None:
                self._hasher = PiiHasher(load_secret_key(self._data_dir or default_data_dir()))
            return self._hasher


@dataclass(frozen=True, slots=True)
class NewCase:
    hall_id: str
    counter: int | None
    ticket_id: int | None
    number: str | None
    matter: str | None
    """Implementation code (实施编码) of a catalogue matter; or None with ``matter_name``."""
    matter_name: str | None
    case_type: CaseType | None
    promised_days: int | None
    due_on: date | None
    applicant_name: str | None
    applicant_phone: str | None
    source: str = "local"


def owner_of(config: HallConfig, clerk: str | None) -> str:
    return config.evaluation.followup_owner or clerk or "unassigned"


async def record_rating(
    conn: asyncpg.Connection,
    rules: HallRules,
    config: HallConfig,
    values: dict[str, Any],
    today: date,
) -> int | None:
    """Store a rating and, for a 差评, open its follow-up task, in the caller's transaction.

    None when the visit, session or case already has a rating (nothing written)."""
    rid = await repo.insert_rating(conn, values)
    if rid is None:
        return None
    if is_bad(values.get("level")):
        await repo.open_task(
            conn,
            {
                "hall_id": values["hall_id"],
                "rating_id": rid,
                "case_id": values.get("case_id"),
                "ticket_id": values.get("ticket_id"),
                "counter": values.get("counter"),
                "clerk": values.get("clerk"),
                "owner": owner_of(config, values.get("clerk")),
                "opened_at": values["rated_at"],
                "due_on": followup_due(rules.calendar, today, config.evaluation.followup_days),
            },
        )
    return rid


class Evaluator:
    def __init__(
        self, pool: asyncpg.Pool, directory: Directory, clock: Clock, hasher: LazyHasher
    ) -> None:
        self.pool = pool
        self.directory = directory
        self.clock = clock
        self.hasher = hasher

    @property
    def config(self) -> HallConfig:
        return self.directory.config

    def today(self, rules: HallRules) -> date:
        return self.clock.now().astimezone(rules.tz).date()

    # --- cases ---------------------------------------------------------------------------

    async def create_case(self, new: NewCase, actor: str) -> asyncpg.Record:
        rules = self.directory.hall(new.hall_id)
        today = self.today(rules)
        matter_code = impl_code = None
        if new.matter is not None:
            matter = next((m for m in self.config.matters if m.impl_code == new.matter), None)
            if matter is None:
                raise InvalidInput(f"事项 {new.matter} 不在事项目录中")
            matter_code, impl_code, name = matter.code, matter.impl_code, matter.name
            default_type = (
                CaseType.IMMEDIATE if matter.kind is MatterKind.IMMEDIATE else CaseType.PROMISED
            )
            case_type = new.case_type or default_type
            days = new.promised_days if new.promised_days is not None else matter.promised_days
        else:
            if not new.matter_name:
                raise InvalidInput("请选择事项")
            name = new.matter_name
            case_type = new.case_type or CaseType.IMMEDIATE
            days = new.promised_days or 0
        check_case_type(case_type, days)
        due = case_due(rules.calendar, today, days)
        if new.due_on is not None:
            if new.due_on < today:
                raise DeadlineInPast(f"办结期限不能早于今天（{new.due_on.isoformat()}）")
            due = new.due_on
        phone_key = phone = None
        if new.applicant_phone:
            phone_key = self.hasher.get().phone(new.applicant_phone)
            phone = new.applicant_phone.strip()
        async with acquire(self.pool) as conn, conn.transaction():
            ticket = None
            if new.ticket_id is not None:
                if new.counter is None:
                    raise InvalidInput("关联排队号时需要窗口号")
                ticket = await repo.ticket_at_counter(conn, new.hall_id, new.ticket_id, new.counter)
                if ticket is None:
                    raise NotFound("该排队号没有在本窗口办理过，不能关联办件")
                if ticket["state"] not in ("called", "serving", "done"):
                    raise Conflict("该排队号未在办理中，不能创建办件")
            try:
                return await repo.insert_case(
                    conn,
                    {
                        "hall_id": new.hall_id,
                        "number": new.number,
                        "source": new.source,
                        "matter_code": matter_code,
                        "matter_impl_code": impl_code,
                        "matter_name": name,
                        "case_type": str(case_type),
                        "promised_days": days,
                        "accepted_on": today,
                        "due_on": due,
                        "status": str(initial_status(case_type, days)),
                        "ticket_id": new.ticket_id,
                        "ticket_number": ticket["display_number"] if ticket else None,
                        "counter_number": new.counter,
                        "clerk": (ticket["clerk"] if ticket else None) or _clerk(actor),
                        "service_code": ticket["service_code"] if ticket else None,
                        "applicant_name": new.applicant_name,
                        "applicant_phone": phone,
                        "applicant_key": phone_key,
                        "rating_token": secrets.token_urlsafe(18),
                        "now": self.clock.now(),
                        "actor": actor,
                    },
                )
            except asyncpg.UniqueViolationError:
                raise CaseNumberTaken(f"办件编号 {new.number} 已被本大厅使用") from None

    async def set_status(
        self, hall_id: str, case_id: int, target: CaseStatus, actor: str, note: str | None
    ) -> asyncpg.Record:
        async with acquire(self.pool) as conn, conn.transaction():
            case = await repo.case_by_id(conn, hall_id, case_id)
            if case is None:
                raise NotFound("办件不存在")
            current = CaseStatus(case["status"])
            next_status(current, target)
            if not await repo.set_case_status(
                conn, case_id, str(current), str(target), self.clock.now(), actor, note
            ):
                raise Conflict("办件状态已被他人修改，请刷新后重试")
            out = await repo.case_by_id(conn, hall_id, case_id)
            assert out is not None
            return out

    async def find_cases(
        self,
        hall_id: str,
        *,
        number: str | None = None,
        ticket_id: int | None = None,
        ticket_number: str | None = None,
        phone: str | None = None,
    ) -> list[asyncpg.Record]:
        self.directory.hall(hall_id)
        key = self.hasher.get().phone(phone) if phone else None
        return await repo.find_cases(
            self.pool,
            hall_id,
            number=number,
            ticket_id=ticket_id,
            ticket_number=ticket_number,
            applicant_key=key,
        )

    # --- ratings -------------------------------------------------------------------------

    async def rate_session(
        self,
        hall_id: str,
        counter: int,
        session_id: int,
        level: int | None,
        reason_codes: list[str],
        channel: str,
        device: str | None,
        dims: dict[str, object] | None = None,
    ) -> int:
        """A web pad's rating of the session open at ``counter`` (level None = timeout)."""
        rules = self.directory.hall(hall_id)
        levels = None
        if level is not None:
            check_level(level)
            check_reasons(level, reason_codes, self.config.evaluation.bad_reasons)
            levels = check_dims(dims, self.config.evaluation.dimensions)
        elif dims:
            raise InvalidDimension("未评价时不能提交分项评价")
        async with acquire(self.pool) as conn, conn.transaction():
            rid = await rate_pad_session(
                conn,
                rules,
                self.config,
                session_id=session_id,
                counter=counter,
                level=level,
                reasons_mask=0,
                reason_codes=reason_codes,
                dims=levels,
                channel=channel,
                device=device,
                now=self.clock.now(),
                today=self.today(rules),
            )
        if rid == "unknown_session":
            raise NoRatingSession("本窗口当前没有待评价的服务，评价未记录")
        if rid == "already_rated":
            raise AlreadyRated("本次服务已评价，不能重复评价")
        assert isinstance(rid, int)
        return rid

    async def rate_case(
        self,
        token: str,
        level: int,
        reason_codes: list[str],
        comment: str | None,
        dims: dict[str, object] | None = None,
    ) -> int:
        """A rating by phone link or QR for a case (一事一评)."""
        check_level(level)
        check_reasons(level, reason_codes, self.config.evaluation.bad_reasons)
        levels = check_dims(dims, self.config.evaluation.dimensions)
        async with acquire(self.pool) as conn, conn.transaction():
            case = await repo.case_by_token(conn, token)
            if case is None:
                raise NotFound("评价链接无效，请核对二维码")
            if case["rating_id"] is not None:
                raise AlreadyRated(f"办件 {case['number']} 已评价，不能重复评价")
            if CaseStatus(case["status"]) not in RATEABLE:
                raise Conflict("办件尚未办结，办结后再评价")
            rules = self.directory.hall(case["hall_id"])
            rid = await record_rating(
                conn,
                rules,
                self.config,
                {
                    "hall_id": case["hall_id"],
                    "counter": case["counter_number"],
                    "clerk": case["clerk"],
                    "level": level,
                    "channel": "phone",
                    "rated_at": self.clock.now(),
                    "case_id": case["id"],
                    "service_code": case["service_code"],
                    "reason_codes": reason_codes,
                    "comment": comment,
                    "dims": levels,
                },
                self.today(rules),
            )
        if rid is None:
            raise AlreadyRated(f"办件 {case['number']} 已评价，不能重复评价")
        return rid

    # --- 差评 follow-up --------------------------------------------------------------------

    async def task_action(
        self, hall_id: str, task_id: int, action: str, actor: str, body: dict[str, Any]
    ) -> asyncpg.Record:
        now = self.clock.now()
        async with acquire(self.pool) as conn, conn.transaction():
            rows = await repo.tasks(conn, hall_id, task_id=task_id)
            if not rows:
                raise NotFound("差评处理任务不存在")
            task = rows[0]
            if task["status"] == TaskStatus.CLOSED and action != "decide_appeal":
                raise Conflict("该差评处理任务已办结")
            changes: dict[str, Any]
            if action == "visit":
                changes = {
                    "return_visit_at": now,
                    "return_visit_result": body["result"],
                    "return_visit_note": body.get("note"),
                    "status": TaskStatus.RECTIFIED
                    if task["status"] == TaskStatus.RECTIFIED
                    else TaskStatus.VISITED,
                }
            elif action == "rectify":
                changes = {
                    "rectification": body["text"],
                    "rectified_at": now,
                    "status": TaskStatus.RECTIFIED,
                }
            elif action == "appeal":
                if task["appealed_at"] is not None:
                    raise Conflict("该差评已申诉过")
                changes = {"appeal_reason": body["reason"], "appealed_at": now}
            elif action == "decide_appeal":
                if task["appealed_at"] is None:
                    raise Conflict("该差评没有申诉，无需复核")
                if task["appeal_outcome"] is not None:
                    raise Conflict("申诉已复核")
                changes = {
                    "appeal_outcome": body["outcome"],
                    "appeal_decided_at": now,
                    "appeal_decided_by": actor,
                }
            elif action == "close":
                unfinished = task["return_visit_at"] is None or task["rectified_at"] is None
                if unfinished and task["appeal_outcome"] != "upheld":
                    raise Conflict("回访和整改都完成后才能办结（申诉成立的除外）")
                changes = {"status": TaskStatus.CLOSED, "closed_at": now}
            else:  # pragma: no cover - the routes name the actions
                raise InvalidInput("未知操作")
            await repo.update_task(conn, hall_id, task_id, changes)
            if changes.get("status") == TaskStatus.CLOSED:
                await repo.clear_alarm(conn, "bad_rating_overdue", task_id, now)
            out = await repo.tasks(conn, hall_id, task_id=task_id)
            return out[0]

    async def sweep_overdue(self) -> int:
        """Raise one alarm per overdue 差评 task; returns how many were raised."""
        raised = 0
        now = self.clock.now()
        async with acquire(self.pool) as conn:
            for hall_id in self.directory.hall_ids():
                today = self.today(self.directory.hall(hall_id))
                for task in await repo.overdue_tasks(conn, today):
                    if task["hall_id"] != hall_id:
                        continue
                    async with conn.transaction():
                        if await repo.raise_alarm(
                            conn,
                            hall_id,
                            "bad_rating_overdue",
                            task["id"],
                            f"差评处理超期：任务 {task['id']}"
                            f"（{task['counter_number'] or '-'}号窗口），"
                            f"期限 {task['due_on'].isoformat()}，负责人 {task['owner']}",
                            now,
                        ):
                            raised += 1
        return raised


async def rate_pad_session(
    conn: asyncpg.Connection,
    rules: HallRules,
    config: HallConfig,
    *,
    session_id: int,
    counter: int,
    level: int | None,
    reasons_mask: int,
    reason_codes: list[str],
    dims: list[int] | None,
    channel: str,
    device: str | None,
    now: datetime,
    today: date,
) -> int | str:
    """A rating (or timeout) of pad session ``session_id`` at ``counter``: the rating id, or
    ``"unknown_session"`` / ``"already_rated"`` (nothing written; refusals are logged)."""
    hall_id = rules.hall.id
    session = await repo.session(conn, hall_id, session_id) if session_id else None
    if session is None or session.counter != counter or session.finished_at is None:
        log.warning(
            "rating refused: session %#x is not open on the pad of %s/%s (device %s)",
            session_id,
            hall_id,
            counter,
            device,
        )
        return "unknown_session"
    if session.rated:
        return "already_rated"
    case_id = await repo.unrated_case_of_visit(conn, hall_id, session.ticket_id, counter)
    rid = await record_rating(
        conn,
        rules,
        config,
        {
            "hall_id": hall_id,
            "ticket_id": session.ticket_id,
            "counter": counter,
            "clerk": session.clerk,
            "level": level,
            "not_rated_reason": None if level is not None else "timeout",
            "reasons": reasons_mask,
            "dims": dims,
            "channel": channel,
            "device_uid": device,
            "rated_at": now,
            "session_id": session_id,
            "case_id": case_id,
            "service_code": session.service_code,
            "reason_codes": reason_codes,
        },
        today,
    )
    return "already_rated" if rid is None else rid


def _clerk(actor: str) -> str | None:
    """Staff act under their job number; devices and the system under ``kind:...``."""
    return None if ":" in actor else actor


def case_type_name(value: str) -> str:
    return CASE_TYPE_NAMES[CaseType(value)]


def forbid_other_hall(principal_halls: tuple[str, ...], hall_id: str) -> None:
    if principal_halls and hall_id not in principal_halls:
        raise Forbidden("无权访问其他大厅的数据")
