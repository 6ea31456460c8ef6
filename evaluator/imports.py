"""Cases imported from the upstream platform (keypad-only windows whose cases are registered
upstream): a pull over HTTP JSON (``evaluation.upstream.cases_url``) or a JSON file a manager
uploads. Each record creates or updates the hall's case with that upstream case number, so
importing the same records again changes nothing; a record that names a ticket (its number on
the day of acceptance) is linked to it, with the counter and clerk that served it.

Imported status changes are the platform's own: their case events carry the actor
``upstream:import`` and are not sent back upstream (migration 0053).
"""

from __future__ import annotations

import secrets
from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Annotated, Any

import aiohttp
import asyncpg
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from evaluator import repo
from evaluator.domain import (
    CASE_FLOW,
    STATUS_NAMES,
    CaseStatus,
    CaseType,
    case_due,
    check_case_type,
)
from hall.config.models import HallConfig, MatterKind, Upstream
from hall.domain.errors import HallError, InvalidInput, Unavailable
from hall.services.directory import HallRules
from hall.storage.uow import acquire

ACTOR = "upstream:import"
MAX_RECORDS = 5000
"""Records per import (a day's cases of a large hall fit many times over)."""


class UpstreamCase(BaseModel):
    """One case as the platform describes it (our field names; ``field_map`` renames)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    case_number: Annotated[str, Field(min_length=1, max_length=64)]
    matter_impl_code: Annotated[str, Field(min_length=1, max_length=40)] | None = None
    matter_name: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    case_type: CaseType | None = None
    promised_days: Annotated[int, Field(ge=0, le=3650)] | None = None
    accepted_on: Annotated[date, Field(ge=date(2000, 1, 1), le=date(2099, 12, 31))]
    due_on: Annotated[date, Field(ge=date(2000, 1, 1), le=date(2109, 12, 31))] | None = None
    status: CaseStatus = CaseStatus.ACCEPTED
    completed_at: AwareDatetime | None = None
    """When it was completed (办结), for the on-time and on-the-spot rates."""
    ticket_number: Annotated[str, Field(min_length=1, max_length=16)] | None = None
    """The queue ticket (e.g. A012) of the visit, on the day of acceptance."""
    window: Annotated[int, Field(ge=1, le=999)] | None = None
    clerk: Annotated[str, Field(min_length=1, max_length=20)] | None = None
    applicant_name: Annotated[str, Field(max_length=40)] | None = None
    applicant_phone: Annotated[str, Field(max_length=20)] | None = None


@dataclass
class ImportResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    """(case number or record position, Chinese reason) of each record not imported."""


def _path(current: CaseStatus, target: CaseStatus) -> list[CaseStatus] | None:
    """The shortest walk through the case flow from ``current`` to ``target`` (steps after
    ``current``); None when the flow cannot get there (a status never goes back)."""
    seen = {current: [current]}
    todo = deque([current])
    while todo:
        at = todo.popleft()
        if at is target:
            return seen[at][1:]
        for nxt in sorted(CASE_FLOW[at]):
            if nxt not in seen:
                seen[nxt] = [*seen[at], nxt]
                todo.append(nxt)
    return None


def parse_records(
    raw: Any, upstream: Upstream | None
) -> tuple[list[UpstreamCase], list[tuple[str, str]]]:
    """Records from a JSON document (a list, or an object with ``cases``), renamed back from
    the platform's field names; malformed records are reported, not raised."""
    items = raw.get("cases") if isinstance(raw, dict) else raw
    if not isinstance(items, list):
        raise InvalidInput("导入内容应为办件数组，或含 cases 数组的 JSON 对象")
    if len(items) > MAX_RECORDS:
        raise InvalidInput(f"一次最多导入 {MAX_RECORDS} 条办件")
    back = {theirs: ours for ours, theirs in (upstream.field_map if upstream else {}).items()}
    good: list[UpstreamCase] = []
    bad: list[tuple[str, str]] = []
    for i, item in enumerate(items, 1):
        if not isinstance(item, dict):
            bad.append((f"第 {i} 条", "不是 JSON 对象"))
            continue
        renamed = {back.get(k, k): v for k, v in item.items()}
        try:
            good.append(UpstreamCase.model_validate(renamed))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "记录"
            number = renamed.get("case_number")
            label = str(number)[:64] if isinstance(number, str) and number else f"第 {i} 条"
            bad.append((label, f"字段 {where} 不正确"))
    return good, bad


class CaseImporter:
    """Applies upstream records to one hall's cases, one transaction per record."""

    def __init__(self, pool: asyncpg.Pool, config: HallConfig, rules: HallRules) -> None:
        self.pool, self.config, self.rules = pool, config, rules

    async def run(self, records: list[UpstreamCase], now: datetime) -> ImportResult:
        result = ImportResult()
        for rec in records:
            try:
                async with acquire(self.pool) as conn, conn.transaction():
                    outcome = await self._one(conn, rec, now)
            except HallError as exc:
                result.errors.append((rec.case_number, exc.detail))
                continue
            except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError):
                result.errors.append((rec.case_number, "记录内容不符合办件规则，未导入"))
                continue
            getattr(result, outcome).append(rec.case_number)
        return result

    async def _one(self, conn: asyncpg.Connection, rec: UpstreamCase, now: datetime) -> str:
        hall = self.rules.hall.id
        found = await conn.fetchrow(
            "SELECT id, status, ticket_id FROM cases WHERE hall_id = $1 AND number = $2 FOR UPDATE",
            hall,
            rec.case_number,
        )
        if found is None:
            case = await self._create(conn, rec, now)
            await self._walk(conn, case["id"], CaseStatus(case["status"]), rec, now)
            return "created"
        changed = await self._walk(conn, found["id"], CaseStatus(found["status"]), rec, now)
        if found["ticket_id"] is None and rec.ticket_number:
            ticket = await self._ticket(conn, rec)
            if ticket is not None:
                await conn.execute(
                    """UPDATE cases SET ticket_id = $2, ticket_number = $3,
                         counter_number = coalesce(counter_number, $4),
                         clerk = coalesce(clerk, $5), service_code = $6, updated_at = $7
                       WHERE id = $1""",
                    found["id"],
                    ticket["id"],
                    ticket["display_number"],
                    ticket["counter_number"],
                    ticket["clerk"],
                    ticket["service_code"],
                    now,
                )
                changed = True
        return "updated" if changed else "unchanged"

    async def _ticket(self, conn: asyncpg.Connection, rec: UpstreamCase) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await conn.fetchrow(
            """SELECT t.id, t.display_number, t.service_code,
                      coalesce(s.counter_number, t.counter_number) AS counter_number, s.clerk
               FROM tickets t
               LEFT JOIN LATERAL (SELECT counter_number, clerk FROM pad_sessions p
                                  WHERE p.ticket_id = t.id ORDER BY p.n DESC LIMIT 1) s ON true
               WHERE t.hall_id = $1 AND t.business_day = $2 AND t.display_number = $3""",
            self.rules.hall.id,
            rec.accepted_on,
            rec.ticket_number,
        )
        return row

    async def _create(
        self, conn: asyncpg.Connection, rec: UpstreamCase, now: datetime
    ) -> asyncpg.Record:
        matter = None
        if rec.matter_impl_code is not None:
            matter = next(
                (m for m in self.config.matters if m.impl_code == rec.matter_impl_code), None
            )
            if matter is None and rec.matter_name is None:
                raise InvalidInput(f"事项 {rec.matter_impl_code} 不在事项目录中")
        name = rec.matter_name or (matter.name if matter else None)
        if not name:
            raise InvalidInput("办件缺少事项名称或事项编码")
        if matter is not None:
            default = (
                CaseType.IMMEDIATE if matter.kind is MatterKind.IMMEDIATE else CaseType.PROMISED
            )
            case_type = rec.case_type or default
            days = rec.promised_days if rec.promised_days is not None else matter.promised_days
        else:
            days = rec.promised_days or 0
            case_type = rec.case_type or (CaseType.IMMEDIATE if days == 0 else CaseType.PROMISED)
        check_case_type(case_type, days)
        due = rec.due_on or case_due(self.rules.calendar, rec.accepted_on, days)
        if due < rec.accepted_on:
            raise InvalidInput(f"办结期限 {due.isoformat()} 早于受理日期")
        ticket = await self._ticket(conn, rec) if rec.ticket_number else None
        return await repo.insert_case(
            conn,
            {
                "hall_id": self.rules.hall.id,
                "number": rec.case_number,
                "source": "upstream",
                "matter_code": matter.code if matter else None,
                "matter_impl_code": matter.impl_code if matter else rec.matter_impl_code,
                "matter_name": name,
                "case_type": str(case_type),
                "promised_days": days,
                "accepted_on": rec.accepted_on,
                "due_on": due,
                "status": str(CaseStatus.ACCEPTED),
                "ticket_id": ticket["id"] if ticket else None,
                "ticket_number": ticket["display_number"] if ticket else None,
                "counter_number": rec.window or (ticket["counter_number"] if ticket else None),
                "clerk": rec.clerk or (ticket["clerk"] if ticket else None),
                "service_code": ticket["service_code"] if ticket else None,
                "applicant_name": rec.applicant_name or None,
                "applicant_phone": rec.applicant_phone or None,
                "applicant_key": None,
                "rating_token": secrets.token_urlsafe(18),
                "now": now,
                "actor": ACTOR,
            },
        )

    async def _walk(
        self,
        conn: asyncpg.Connection,
        case_id: int,
        current: CaseStatus,
        rec: UpstreamCase,
        now: datetime,
    ) -> bool:
        """Move the case to the record's status through the flow; False when already there."""
        if current is rec.status:
            return False
        steps = _path(current, rec.status)
        if steps is None:
            raise InvalidInput(
                f"办件 {rec.case_number} 的状态不能从“{STATUS_NAMES[current]}”"
                f"变为“{STATUS_NAMES[rec.status]}”"
            )
        at = current
        for step in steps:
            when = rec.completed_at if step is CaseStatus.COMPLETED and rec.completed_at else now
            moved = await repo.set_case_status(
                conn, case_id, str(at), str(step), when, ACTOR, "上游平台导入"
            )
            if not moved:
                raise InvalidInput(f"办件 {rec.case_number} 正在被修改，请稍后重新导入")
            at = step
        return True


async def fetch_upstream_cases(upstream: Upstream, hall_id: str, since: date | None) -> Any:
    """GET the platform's cases of the hall (``cases_url``); the parsed JSON document."""
    if upstream.cases_url is None:
        raise InvalidInput("配置中没有上游办件接口（evaluation.upstream.cases_url）")
    headers = {"Accept": "application/json"}
    if upstream.token:
        headers["Authorization"] = f"Bearer {upstream.token}"
    params = {"hall": hall_id}
    if upstream.region_code:
        params["region"] = upstream.region_code
    if since is not None:
        params["since"] = since.isoformat()
    timeout = aiohttp.ClientTimeout(total=upstream.timeout_s)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(upstream.cases_url, params=params, headers=headers) as resp,
        ):
            if resp.status != 200:
                raise Unavailable(f"上游平台拒绝了办件查询（HTTP {resp.status}），请稍后再试")
            return await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise Unavailable(f"无法从上游平台取得办件：{type(exc).__name__}") from None
