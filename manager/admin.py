"""Admin screens' API: staff logins and the hall configuration (check, diff, apply).

Staff: add (or update) a login with roles, halls and counters, disable/enable, reset the
password. People listed in the hall config keep the roles and halls the file gives them at
the next load; the page says so.

Configuration: the page uploads TOML text; ``check`` answers every problem with its key path,
the difference from the running configuration key by key, what running servers would refuse
(with the reason) and what takes effect only after a restart; ``apply`` loads it through the
kernel's ``apply_config``, which every running server process follows within seconds.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Annotated, Any

import asyncpg
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from hall.config.loader import ConfigError, parse_config
from hall.config.models import HallConfig, StaffRole
from hall.domain.errors import InvalidInput, NotFound, RequestTimeout
from hall.security.passwords import hash_password, password_problem
from hall.storage import access_repo
from hall.storage.config_store import apply_config, latest_config, live_refusals, restart_needed
from hall.web.access import ACCESS, principal_of, require_every_hall
from hall.web.api import API, json_list, parse_body
from hall.web.api import json as json_out
from hall.web.routes import Access, Route
from hall.web.state import CLOCK, POOL, READ_TIMEOUT

MAX_CONFIG_BYTES = 60 * 1024
"""A config upload (the example county hall is 27 KiB); the server's request limit is 64 KiB."""
_JOB_NO = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


class StaffOut(BaseModel):
    job_no: str
    name: str
    roles: list[str]
    halls: list[str]
    counters: list[int]
    active: bool
    """Listed in the hall config (or added here), as opposed to dropped by a config load."""
    has_login: bool
    disabled: bool
    origin: str | None


class StaffBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    job_no: Annotated[str, Field(min_length=1, max_length=32)]
    name: Annotated[str, Field(min_length=1, max_length=40)]
    roles: Annotated[list[StaffRole], Field(min_length=1, max_length=5)]
    halls: Annotated[list[Annotated[str, Field(max_length=32)]], Field(max_length=50)] = []
    counters: Annotated[list[Annotated[int, Field(ge=1, le=999)]], Field(max_length=200)] = []
    password: Annotated[str, Field(min_length=1, max_length=128)]


class PasswordBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    password: Annotated[str, Field(min_length=1, max_length=128)]


class ConfigIssueOut(BaseModel):
    path: str
    message: str
    line: int | None = None


class ConfigChangeOut(BaseModel):
    path: str
    before: Any = None
    after: Any = None


class ConfigCheckOut(BaseModel):
    valid: bool
    issues: list[ConfigIssueOut]
    changes: list[ConfigChangeOut]
    refusals: list[str]
    """Why running servers would refuse it now (empty: it can be applied)."""
    restart_needed: list[str]
    summary: str | None = None


class ConfigApplyOut(BaseModel):
    changed: bool
    snapshot_id: int | None
    restart_needed: list[str]


async def list_staff(request: web.Request) -> web.Response:
    principal = principal_of(request)
    rows = await request.app[POOL].fetch(
        """SELECT s.job_no, s.name, s.roles, s.halls, s.counters, s.active,
                  c.job_no IS NOT NULL AS has_login, c.disabled_at IS NOT NULL AS disabled,
                  c.origin
             FROM staff s LEFT JOIN staff_credentials c ON c.job_no = s.job_no
            ORDER BY s.job_no"""
    )
    visible = [
        r
        for r in rows
        if not principal.halls or not r["halls"] or set(r["halls"]) & set(principal.halls)
    ]
    return json_list([StaffOut(**dict(r)) for r in visible])


async def save_staff(request: web.Request) -> web.Response:
    require_every_hall(principal_of(request))
    body = await parse_body(request, StaffBody)
    if not _JOB_NO.match(body.job_no):
        raise InvalidInput("工号只能包含字母、数字、下划线、点和连字符，最长 32 个字符")
    directory_halls = {r["id"] for r in await request.app[POOL].fetch("SELECT id FROM halls")}
    if missing := [h for h in body.halls if h not in directory_halls]:
        raise InvalidInput(f"大厅 {'、'.join(missing)} 不存在", halls=missing)
    problem = password_problem(body.password, body.job_no)
    if problem is not None:
        raise InvalidInput(problem)
    hashed = await asyncio.to_thread(hash_password, body.password)
    async with request.app[POOL].acquire() as conn:
        created = await access_repo.save_account(
            conn,
            body.job_no,
            password_hash=hashed,
            name=body.name,
            roles=[str(r) for r in body.roles],
            halls=body.halls,
            counters=body.counters,
        )
    return web.json_response({"job_no": body.job_no, "created": created}, status=201)


async def _staff_action(request: web.Request, disabled: bool) -> web.Response:
    require_every_hall(principal_of(request))
    job_no = request.match_info["job_no"]
    if not _JOB_NO.match(job_no):
        raise NotFound("工号不存在")
    if disabled and job_no == principal_of(request).actor:
        raise InvalidInput("不能停用自己的账号")
    async with request.app[POOL].acquire() as conn:
        ended = await access_repo.set_disabled(
            conn, job_no, disabled, principal_of(request).actor, request.app[CLOCK].now()
        )
    if ended is None:
        raise NotFound(f"工号 {job_no} 没有登录账号")
    request.app[ACCESS].sessions.drop(ended)  # here at once; other servers by the notice
    return web.json_response({"job_no": job_no, "disabled": disabled})


async def disable_staff(request: web.Request) -> web.Response:
    return await _staff_action(request, True)


async def enable_staff(request: web.Request) -> web.Response:
    return await _staff_action(request, False)


async def reset_password(request: web.Request) -> web.Response:
    require_every_hall(principal_of(request))
    job_no = request.match_info["job_no"]
    body = await parse_body(request, PasswordBody)
    async with request.app[POOL].acquire() as conn:
        if not _JOB_NO.match(job_no) or await access_repo.get_account(conn, job_no) is None:
            raise NotFound("工号不存在")
        problem = password_problem(body.password, job_no)
        if problem is not None:
            raise InvalidInput(problem)
        hashed = await asyncio.to_thread(hash_password, body.password)
        await access_repo.save_account(conn, job_no, password_hash=hashed)
    return web.json_response({"job_no": job_no, "password_reset": True})


async def _config_text(request: web.Request) -> str:
    if request.content_length is not None and request.content_length > MAX_CONFIG_BYTES:
        raise InvalidInput(f"配置文件不能超过 {MAX_CONFIG_BYTES // 1024} KiB")
    try:
        async with asyncio.timeout(request.app[READ_TIMEOUT]):
            raw = await request.content.read(MAX_CONFIG_BYTES + 1)
    except TimeoutError:
        raise RequestTimeout("请求内容未在规定时间内送达") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise InvalidInput(f"配置文件不能超过 {MAX_CONFIG_BYTES // 1024} KiB")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("配置文件必须是 UTF-8 编码的 TOML 文本") from None


def _flatten(value: Any, path: str, out: dict[str, Any]) -> None:
    """Key paths as the config checker writes them (halls[0].services[2].prefix)."""
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, f"{path}.{key}" if path else str(key), out)
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        for index, item in enumerate(value):
            _flatten(item, f"{path}[{index}]", out)
    else:
        out[path] = value


def config_changes(running: HallConfig | None, loaded: HallConfig) -> list[ConfigChangeOut]:
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    if running is not None:
        _flatten(running.model_dump(mode="json"), "", before)
    _flatten(loaded.model_dump(mode="json"), "", after)
    return [
        ConfigChangeOut(path=key, before=before.get(key), after=after.get(key))
        for key in sorted(set(before) | set(after))
        if json.dumps(before.get(key), sort_keys=True) != json.dumps(after.get(key), sort_keys=True)
    ]


async def check_config(request: web.Request) -> web.Response:
    require_every_hall(principal_of(request))
    text = await _config_text(request)
    try:
        loaded = parse_config(text, source="upload")
    except ConfigError as exc:
        issues = [ConfigIssueOut(path=i.path, message=i.message, line=i.line) for i in exc.issues]
        return json_out(
            ConfigCheckOut(valid=False, issues=issues, changes=[], refusals=[], restart_needed=[])
        )
    async with request.app[POOL].acquire() as conn:
        running = await latest_config(conn)
        async with conn.transaction():  # the check locks rows; release them at once
            refusals = await live_refusals(conn, loaded)
    from hall.config.check import summary

    return json_out(
        ConfigCheckOut(
            valid=True,
            issues=[],
            changes=config_changes(running, loaded),
            refusals=refusals,
            restart_needed=restart_needed(running, loaded),
            summary=summary(loaded),
        )
    )


async def apply_uploaded_config(request: web.Request) -> web.Response:
    require_every_hall(principal_of(request))
    text = await _config_text(request)
    try:
        loaded = parse_config(text, source="upload")
    except ConfigError as exc:
        raise InvalidInput(
            f"配置有 {len(exc.issues)} 处错误，未应用",
            issues=[{"path": i.path, "message": i.message} for i in exc.issues],
        ) from None
    async with request.app[POOL].acquire() as conn:
        running = await latest_config(conn)
        return json_out(await apply_checked(conn, running, loaded))


async def apply_checked(
    conn: asyncpg.Connection, running: HallConfig | None, loaded: HallConfig
) -> ConfigApplyOut:
    """Apply a config that passed its checks (every running process follows within seconds);
    what changed and what only a restart can do. ConfigNotLive: 409 with the reasons."""
    changed = await apply_config(conn, loaded)
    snapshot = await conn.fetchval("SELECT max(id) FROM config_snapshots")
    return ConfigApplyOut(
        changed=changed,
        snapshot_id=snapshot,
        restart_needed=restart_needed(running, loaded) if changed else [],
    )


async def running_config(request: web.Request) -> web.Response:
    require_every_hall(principal_of(request))
    async with request.app[POOL].acquire() as conn:
        row = await conn.fetchrow(
            "SELECT id, loaded_at, body FROM config_snapshots ORDER BY id DESC LIMIT 1"
        )
    if row is None:
        raise NotFound("尚未加载配置")
    return web.json_response(
        {"snapshot_id": row["id"], "loaded_at": row["loaded_at"].isoformat(), "config": row["body"]}
    )


ROUTES = [
    Route(
        "GET", f"{API}/staff", list_staff, "manager_staff", "人员列表", Access.ADMIN,
        response=StaffOut, response_list=True, tags=("admin",),
    ),
    Route(
        "POST", f"{API}/staff", save_staff, "manager_staff_save",
        "新增或更新人员（角色、大厅、窗口、密码）", Access.ADMIN, body=StaffBody, tags=("admin",),
    ),
    Route(
        "POST", f"{API}/staff/{{job_no}}/disable", disable_staff, "manager_staff_disable",
        "停用账号（立即结束其登录）", Access.ADMIN, tags=("admin",),
    ),
    Route(
        "POST", f"{API}/staff/{{job_no}}/enable", enable_staff, "manager_staff_enable",
        "启用账号", Access.ADMIN, tags=("admin",),
    ),
    Route(
        "POST", f"{API}/staff/{{job_no}}/password", reset_password, "manager_staff_password",
        "重置密码", Access.ADMIN, body=PasswordBody, tags=("admin",),
    ),
    Route(
        "GET", f"{API}/config", running_config, "manager_config", "当前运行的大厅配置",
        Access.ADMIN, tags=("admin",),
    ),
    Route(
        "POST", f"{API}/config/check", check_config, "manager_config_check",
        "检查上传的配置（TOML 文本）：错误及其位置、与运行配置的差异、不能在线生效的修改",
        Access.ADMIN, response=ConfigCheckOut, tags=("admin",), in_openapi=False,
    ),
    Route(
        "POST", f"{API}/config/apply", apply_uploaded_config, "manager_config_apply",
        "应用上传的配置（TOML 文本），所有运行中的服务数秒内生效", Access.ADMIN,
        response=ConfigApplyOut, tags=("admin",), in_openapi=False,
    ),
]  # fmt: skip
