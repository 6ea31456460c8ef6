"""Admin screens for one hall's calendar (holidays, 调休 make-up working days) and thresholds
(electronic supervision's alarm thresholds and deductions, each service's target wait).

The page edits only those parts; the server puts them into the running configuration, checks
the whole of it as ``hall config check`` does (every problem with its key path, e.g.
``halls[0].calendar.workdays[1]``), shows the difference key by key and applies it through the
kernel's ``apply_config``, which every running server process follows within seconds.
"""

from __future__ import annotations

import copy
from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hall.config.loader import issues_from_validation
from hall.config.models import HallConfig
from hall.domain.errors import InvalidInput, NotFound
from hall.storage.config_store import latest_config, live_refusals
from hall.web.api import API, parse_body
from hall.web.api import json as json_out
from hall.web.routes import Access, Route
from hall.web.state import DIRECTORY, POOL
from manager.admin import (
    ConfigApplyOut,
    ConfigChangeOut,
    ConfigIssueOut,
    apply_checked,
    config_changes,
)


class ServiceTarget(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    code: Annotated[str, Field(min_length=1, max_length=32)]
    name: str = ""
    target_wait_minutes: Any
    """Checked by the hall config (an integer in its range), so a bad one shows its key path."""


class SettingsBody(BaseModel):
    """What the page sends: the hall's calendar and supervision tables as the config file
    spells them, and the services' target waits. Values are checked by the config model."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    calendar: dict[str, Any]
    supervision: dict[str, Any]
    services: Annotated[list[ServiceTarget], Field(max_length=200)] = []


class SettingsOut(BaseModel):
    hall: str
    hall_name: str
    calendar: dict[str, Any]
    supervision: dict[str, Any]
    services: list[ServiceTarget]


class SettingsCheckOut(BaseModel):
    valid: bool
    issues: list[ConfigIssueOut]
    changes: list[ConfigChangeOut]
    refusals: list[str]


def _index(config: HallConfig, hall_id: str) -> int:
    for i, hall in enumerate(config.halls):
        if hall.id == hall_id:
            return i
    raise NotFound(f"大厅 {hall_id} 不存在")


def settings_of(config: HallConfig, hall_id: str) -> SettingsOut:
    hall = config.halls[_index(config, hall_id)]
    data = hall.model_dump(mode="json")
    return SettingsOut(
        hall=hall.id,
        hall_name=hall.name,
        calendar=data["calendar"],
        supervision=data["supervision"],
        services=[
            ServiceTarget(code=s.code, name=s.name, target_wait_minutes=s.target_wait_minutes)
            for s in hall.services
        ],
    )


def merged(running: HallConfig, hall_id: str, body: SettingsBody) -> dict[str, Any]:
    """The running configuration with this hall's calendar, supervision and target waits
    replaced by the page's (not validated yet)."""
    index = _index(running, hall_id)
    data = copy.deepcopy(running.model_dump(mode="json", exclude_none=True))
    hall = data["halls"][index]
    hall["calendar"] = body.calendar
    hall["supervision"] = body.supervision
    codes = {s["code"]: s for s in hall.get("services", [])}
    for target in body.services:
        if target.code not in codes:
            raise InvalidInput(f"大厅 {hall_id} 没有业务「{target.code}」", service=target.code)
        codes[target.code]["target_wait_minutes"] = target.target_wait_minutes
    return data


async def _running(request: web.Request) -> HallConfig:
    async with request.app[POOL].acquire() as conn:
        running = await latest_config(conn)
    return running if running is not None else request.app[DIRECTORY].config


async def get_settings(request: web.Request) -> web.Response:
    running = await _running(request)
    return json_out(settings_of(running, request.match_info["hall"]))


async def check_settings(request: web.Request) -> web.Response:
    hall_id = request.match_info["hall"]
    body = await parse_body(request, SettingsBody)
    running = await _running(request)
    try:
        loaded = HallConfig.model_validate(merged(running, hall_id, body))
    except ValidationError as exc:
        issues = [ConfigIssueOut(path=i.path, message=i.message) for i in
                  issues_from_validation(exc)]  # fmt: skip
        return json_out(SettingsCheckOut(valid=False, issues=issues, changes=[], refusals=[]))
    async with request.app[POOL].acquire() as conn, conn.transaction():
        refusals = await live_refusals(conn, loaded)
    return json_out(
        SettingsCheckOut(
            valid=True, issues=[], changes=config_changes(running, loaded), refusals=refusals
        )
    )


async def apply_settings(request: web.Request) -> web.Response:
    hall_id = request.match_info["hall"]
    body = await parse_body(request, SettingsBody)
    running = await _running(request)
    try:
        loaded = HallConfig.model_validate(merged(running, hall_id, body))
    except ValidationError as exc:
        issues = issues_from_validation(exc)
        raise InvalidInput(
            f"设置有 {len(issues)} 处错误，未应用",
            issues=[{"path": i.path, "message": i.message} for i in issues],
        ) from None
    async with request.app[POOL].acquire() as conn:
        return json_out(await apply_checked(conn, running, loaded))


ROUTES = [
    Route(
        "GET", f"{API}/halls/{{hall}}/settings", get_settings, "manager_settings",
        "大厅的日历（节假日、调休上班日）与阈值（电子监察、目标等待时间）", Access.ADMIN,
        response=SettingsOut, tags=("admin",),
    ),
    Route(
        "POST", f"{API}/halls/{{hall}}/settings/check", check_settings,
        "manager_settings_check", "检查日历与阈值的修改：错误及其位置、与运行配置的差异",
        Access.ADMIN, body=SettingsBody, response=SettingsCheckOut, tags=("admin",),
    ),
    Route(
        "POST", f"{API}/halls/{{hall}}/settings/apply", apply_settings,
        "manager_settings_apply", "应用日历与阈值的修改，所有运行中的服务数秒内生效",
        Access.ADMIN, body=SettingsBody, response=ConfigApplyOut, tags=("admin",),
    ),
]  # fmt: skip
