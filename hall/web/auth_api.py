"""Login, logout, sessions, device tokens and the audit log (endpoints under /api/v1)."""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
from datetime import datetime
from typing import NoReturn

from aiohttp import web

from hall.domain.errors import (
    AccountLocked,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthorized,
)
from hall.domain.pii import mask_text
from hall.security import tokens
from hall.security.passwords import (
    hash_password,
    needs_rehash,
    password_problem,
    verify_password,
)
from hall.storage import access_repo
from hall.storage.access_repo import SessionKind
from hall.web import auth_schemas as s
from hall.web.access import (
    ACCESS,
    AUDIT_ACTOR,
    COOKIE_NAME,
    DEVICE_COOKIE_NAME,
    client_address,
    device_csrf_token,
    principal_of,
    require_every_hall,
    require_hall,
)
from hall.web.api import API, json, json_list, parse_body
from hall.web.routes import Access, Route
from hall.web.state import CLOCK, DIRECTORY, POOL
from hall.web.validation import ascii_int, stored_header

log = logging.getLogger(__name__)

AUDIT_PAGE_MAX = 200


def _id_param(request: web.Request) -> int:
    return ascii_int(request.match_info.get("id"), "id", 18)


async def _check_password(request: web.Request, password: str, stored: str | None) -> bool:
    """scrypt off the event loop, a few at a time; a dummy hash keeps unknown users as slow."""
    state = request.app[ACCESS]
    async with state.password_slots:
        if stored is None:
            if state.dummy_hash is None:
                state.dummy_hash = await asyncio.to_thread(
                    hash_password, secrets.token_hex(8), state.settings.password_params
                )
            await asyncio.to_thread(verify_password, password, state.dummy_hash)
            return False
        return await asyncio.to_thread(verify_password, password, stored)


def _refuse_if_locked(account: access_repo.StaffAccount, now: datetime) -> None:
    if account.locked_until is not None and account.locked_until > now:
        _raise_locked(account.locked_until, now)


def _raise_locked(until: datetime, now: datetime) -> NoReturn:
    wait = max(1, math.ceil((until - now).total_seconds()))
    raise AccountLocked(
        f"密码错误次数过多，账号已锁定，请 {math.ceil(wait / 60)} 分钟后再试，或请管理员重设密码",
        retry_after_s=wait,
        locked_until=until.isoformat(),
    )


async def _count_wrong_password(request: web.Request, job_no: str, now: datetime) -> None:
    """Count a wrong password of an existing account; the one that locks it says so."""
    settings = request.app[ACCESS].settings
    locked = await access_repo.record_failed_login(
        request.app[POOL],
        job_no,
        now,
        lock_after=settings.lock_after,
        lock_for=settings.lock_for,
    )
    if locked is not None:
        log.warning("account %s locked until %s after wrong passwords", job_no, locked)
        _raise_locked(locked, now)


async def login(request: web.Request) -> web.Response:
    body = await parse_body(request, s.LoginBody)
    request[AUDIT_ACTOR] = body.job_no
    pool = request.app[POOL]
    state = request.app[ACCESS]
    settings = state.settings
    now = request.app[CLOCK].now()
    account = await access_repo.get_account(pool, body.job_no)
    if account is not None:
        _refuse_if_locked(account, now)
    stored = account.password_hash if account is not None else None
    ok = await _check_password(request, body.password, stored)
    if not ok or account is None or stored is None:
        if account is not None and stored is not None:
            await _count_wrong_password(request, account.job_no, now)
        raise Unauthorized("工号或密码错误")
    if not account.enabled:
        raise Unauthorized("账号已停用，请联系管理员")
    if account.failed_logins:
        await access_repo.clear_failed_logins(pool, account.job_no)
    if needs_rehash(stored, settings.password_params):
        upgraded = await asyncio.to_thread(hash_password, body.password, settings.password_params)
        await access_repo.set_password_hash(pool, account.job_no, upgraded)

    expires = now + settings.session_absolute
    login_id = secrets.token_hex(12)
    cookie_token = tokens.new_token(tokens.SESSION_PREFIX)
    bearer_token = tokens.new_token(tokens.SESSION_PREFIX)
    csrf = secrets.token_urlsafe(24)
    user_agent = stored_header(request, "User-Agent")
    async with pool.acquire() as conn, conn.transaction():
        pairs: tuple[tuple[SessionKind, str], ...] = (
            ("cookie", cookie_token),
            ("bearer", bearer_token),
        )
        for kind, token in pairs:
            session_id = await access_repo.create_session(
                conn,
                login_id=login_id,
                job_no=account.job_no,
                kind=kind,
                token_hash=tokens.token_hash(token),
                csrf_token=csrf if kind == "cookie" else None,
                now=now,
                expires_at=expires,
                user_agent=user_agent,
                ip=client_address(request),
            )
    response = json(
        s.LoginOut(
            job_no=account.job_no,
            name=account.name,
            roles=list(account.roles),
            halls=list(account.halls),
            counters=list(account.counters),
            token=bearer_token,
            csrf_token=csrf,
            session_id=session_id,
            expires_at=expires,
            idle_timeout_s=int(settings.session_idle.total_seconds()),
        )
    )
    response.set_cookie(
        COOKIE_NAME,
        cookie_token,
        max_age=int(settings.session_absolute.total_seconds()),
        path="/",
        httponly=True,
        samesite="Strict",
        secure=settings.cookie_secure,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


async def logout(request: web.Request) -> web.Response:
    principal = principal_of(request)
    if principal.session_id is None:
        if principal.session_kind != "cookie":
            raise Conflict("设备令牌不能注销，请由管理员吊销")
        response = web.Response(status=204)  # a browser device forgets its token
        response.del_cookie(DEVICE_COOKIE_NAME, path="/")
        return response
    revoked = await access_repo.revoke_login(
        request.app[POOL], principal.session_id, principal.actor, request.app[CLOCK].now()
    )
    request.app[ACCESS].sessions.drop(revoked or [principal.session_id])
    response = web.Response(status=204)
    response.del_cookie(COOKIE_NAME, path="/")
    return response


# Browsers cap cookie lifetimes at 400 days; a device token lives until it is revoked.
DEVICE_COOKIE_MAX_AGE = 400 * 24 * 3600


async def device_login(request: web.Request) -> web.Response:
    """Store a device token in an HttpOnly cookie, for a hall TV or kiosk running in a browser."""
    body = await parse_body(request, s.DeviceLoginBody)
    device = await access_repo.find_device_token(
        request.app[POOL], tokens.token_hash(body.token), request.app[CLOCK].now()
    )
    if device is None or not body.token.startswith(tokens.DEVICE_PREFIX):
        raise Unauthorized("设备令牌无效或已吊销")
    actor = f"{device.kind}:{device.hall_id}/{device.device_id}"
    request[AUDIT_ACTOR] = actor
    response = json(
        s.MeOut(
            kind=device.kind,
            actor=actor,
            name=device.name,
            roles=[device.kind],
            halls=[device.hall_id],
            counters=[],
            session_kind="cookie",
            csrf_token=device_csrf_token(body.token),
            device_id=device.device_id,
        )
    )
    response.set_cookie(
        DEVICE_COOKIE_NAME,
        body.token,
        max_age=DEVICE_COOKIE_MAX_AGE,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.app[ACCESS].settings.cookie_secure,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


async def change_password(request: web.Request) -> web.Response:
    """The signed-in staff member sets a new password; their other logins end."""
    body = await parse_body(request, s.PasswordChangeBody)
    principal = principal_of(request)
    if principal.kind != "staff" or principal.session_id is None:
        raise Forbidden("仅工作人员账号可以修改密码")
    pool = request.app[POOL]
    now = request.app[CLOCK].now()
    account = await access_repo.get_account(pool, principal.actor)
    if account is None or account.password_hash is None:
        raise Forbidden("该账号不能修改密码")
    _refuse_if_locked(account, now)
    if not await _check_password(request, body.current_password, account.password_hash):
        await _count_wrong_password(request, account.job_no, now)
        raise InvalidInput("当前密码不正确", parameter="current_password")
    problem = password_problem(body.new_password, account.job_no)
    if problem is None and body.new_password == body.current_password:
        problem = "新密码不能与当前密码相同"
    if problem is not None:
        raise InvalidInput(problem, parameter="new_password")
    settings = request.app[ACCESS].settings
    new_hash = await asyncio.to_thread(hash_password, body.new_password, settings.password_params)
    async with pool.acquire() as conn, conn.transaction():
        await access_repo.set_password_hash(conn, account.job_no, new_hash)
        await access_repo.clear_failed_logins(conn, account.job_no)
        await access_repo.revoke_other_logins(conn, principal.session_id, account.job_no, now)
    return web.Response(status=204)


async def me(request: web.Request) -> web.Response:
    p = principal_of(request)
    return json(
        s.MeOut(
            kind=p.kind,
            actor=p.actor,
            name=p.name,
            roles=sorted(str(r) for r in p.roles),
            halls=list(p.halls),
            counters=list(p.counters),
            session_id=p.session_id,
            session_kind=p.session_kind,
            csrf_token=p.csrf_token,
            device_id=p.device_id,
            device_kind=p.device_kind,
        )
    )


async def list_sessions(request: web.Request) -> web.Response:
    require_every_hall(principal_of(request))
    rows = await access_repo.live_sessions(request.app[POOL], request.app[CLOCK].now())
    return json_list([s.SessionOut(**r) for r in rows])


async def revoke_session(request: web.Request) -> web.Response:
    require_every_hall(principal_of(request))
    revoked = await access_repo.revoke_login(
        request.app[POOL], _id_param(request), principal_of(request).actor, request.app[CLOCK].now()
    )
    if revoked is None:
        raise NotFound("会话不存在", id=request.match_info["id"])
    request.app[ACCESS].sessions.drop(revoked)
    return json(s.RevokedOut(revoked=revoked))


async def create_device_token(request: web.Request) -> web.Response:
    body = await parse_body(request, s.DeviceTokenBody)
    require_hall(principal_of(request), body.hall)
    rules = request.app[DIRECTORY].hall(body.hall)
    hall = rules.hall
    name = body.name
    if body.kind == "kiosk":
        kiosk = hall.kiosk(body.device_id)
        if kiosk is None:
            raise InvalidInput(f"大厅 {hall.id} 的配置中没有取号机 {body.device_id}")
        name = name or kiosk.name
    elif body.kind == "display":
        screen = hall.screen(body.device_id)
        if screen is None:
            raise InvalidInput(f"大厅 {hall.id} 的配置中没有显示屏 {body.device_id}")
        name = name or screen.name
    token = tokens.new_token(tokens.DEVICE_PREFIX)
    device = await access_repo.create_device_token(
        request.app[POOL],
        kind=body.kind,
        hall_id=hall.id,
        device_id=body.device_id,
        name=name or body.device_id,
        token_hash=tokens.token_hash(token),
        created_by=principal_of(request).actor,
        now=request.app[CLOCK].now(),
    )
    out = s.DeviceTokenOut(
        id=device.id,
        kind=device.kind,
        hall=device.hall_id,
        device_id=device.device_id,
        name=device.name,
        created_at=device.created_at,
        token=token,
    )
    response = json(out, status=201)
    response.headers["Cache-Control"] = "no-store"
    return response


async def revoke_device_token(request: web.Request) -> web.Response:
    principal = principal_of(request)
    done = await access_repo.revoke_device_token(
        request.app[POOL],
        _id_param(request),
        principal.actor,
        request.app[CLOCK].now(),
        halls=principal.halls,
    )
    if not done:
        raise NotFound("设备令牌不存在", id=request.match_info["id"])
    return web.Response(status=204)


def _query_int(request: web.Request, name: str, default: int | None) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    return ascii_int(raw, name, 18)


async def audit(request: web.Request) -> web.Response:
    require_every_hall(principal_of(request))
    limit = min(_query_int(request, "limit", 50) or 50, AUDIT_PAGE_MAX)
    rows = await access_repo.audit_page(
        request.app[POOL],
        before_id=_query_int(request, "before", None),
        limit=limit + 1,
        # Actors are stored masked (a job number may look like a phone number).
        actor=mask_text(request.query["actor"]) if request.query.get("actor") else None,
        route=request.query.get("route") or None,
    )
    items = [s.AuditOut(**r) for r in rows[:limit]]
    more = len(rows) > limit
    return json(s.AuditPageOut(items=items, next_before=items[-1].id if more and items else None))


ROUTES = [
    Route(
        "POST",
        f"{API}/login",
        login,
        "login",
        "工号密码登录：设置会话 Cookie，并返回 Bearer 令牌和 CSRF 令牌",
        Access.PUBLIC,
        body=s.LoginBody,
        response=s.LoginOut,
        tags=("auth",),
    ),
    Route(
        "POST",
        f"{API}/logout",
        logout,
        "logout",
        "注销当前登录（Cookie 与 Bearer 会话一并失效）",
        Access.AUTHENTICATED,
        tags=("auth",),
    ),
    Route(
        "POST",
        f"{API}/device-login",
        device_login,
        "device_login",
        "浏览器设备（大厅电视、取号页面）以设备令牌登录：令牌存入 HttpOnly Cookie",
        Access.PUBLIC,
        body=s.DeviceLoginBody,
        response=s.MeOut,
        tags=("auth",),
    ),
    Route(
        "POST",
        f"{API}/me/password",
        change_password,
        "change_password",
        "修改本人密码（需当前密码；本账号的其他登录随即失效）",
        Access.AUTHENTICATED,
        body=s.PasswordChangeBody,
        tags=("auth",),
    ),
    Route(
        "GET",
        f"{API}/me",
        me,
        "me",
        "当前登录身份",
        Access.AUTHENTICATED,
        response=s.MeOut,
        tags=("auth",),
    ),
    Route(
        "GET",
        f"{API}/sessions",
        list_sessions,
        "sessions",
        "有效会话列表（管理员）",
        Access.ADMIN,
        response=s.SessionOut,
        response_list=True,
        tags=("auth",),
    ),
    Route(
        "POST",
        f"{API}/sessions/{{id}}/revoke",
        revoke_session,
        "revoke_session",
        "吊销会话（管理员）",
        Access.ADMIN,
        response=s.RevokedOut,
        tags=("auth",),
    ),
    Route(
        "POST",
        f"{API}/device-tokens",
        create_device_token,
        "create_device_token",
        "为取号机、显示屏或桥接设备创建令牌（管理员，令牌只显示一次）",
        Access.ADMIN,
        body=s.DeviceTokenBody,
        response=s.DeviceTokenOut,
        tags=("auth",),
    ),
    Route(
        "POST",
        f"{API}/device-tokens/{{id}}/revoke",
        revoke_device_token,
        "revoke_device_token",
        "吊销设备令牌（管理员）",
        Access.ADMIN,
        tags=("auth",),
    ),
    Route(
        "GET",
        f"{API}/audit",
        audit,
        "audit",
        "审计日志，按时间倒序分页（管理员）",
        Access.ADMIN,
        response=s.AuditPageOut,
        tags=("auth",),
    ),
]
