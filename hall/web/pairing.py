"""Device pairing for browser devices (kiosk page, hall TV, web pads): no token in any URL.

Which kinds of device exist (kiosk, display, pad, …) is declared by the features
(``Feature.pairing_kinds``, hall.web.pairing_kinds); this module names none of them.

1. A browser opens ``/pair``; the page asks ``POST /api/v1/pairing`` for a six-digit code and
   gets an HttpOnly pairing cookie (its secret) with it. The code is shown in large type.
2. A manager of the hall (or an admin) approves the code for a configured device of one kind:
   ``POST /api/v1/halls/{hall}/pairings/{code}/approve`` or ``hall device pair CODE``.
3. The page, polling ``GET /api/v1/pairing``, sees the approval and calls
   ``POST /api/v1/pairing/claim``: the server creates the device token and sets it as the
   device cookie (the one ``/api/v1/device-login`` sets), once. Revoking the token (admin API)
   ends the page's access as for any device token.

The admin page ``/admin/devices`` (static/devices.html) does step 2 in a browser for a hall's
managers: it lists the codes waiting, approves one for a configured device, and lists and
revokes the hall's paired devices.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from hall.config.models import Hall
from hall.domain.errors import InvalidInput, NotFound
from hall.security import tokens
from hall.storage import access_repo, pairing_repo
from hall.web.access import ACCESS, DEVICE_COOKIE_NAME, client_address, principal_of
from hall.web.api import API, json, parse_body
from hall.web.auth_api import DEVICE_COOKIE_MAX_AGE
from hall.web.pairing_kinds import PairingKinds, kinds_of
from hall.web.routes import Access, Route, register
from hall.web.state import CLOCK, DIRECTORY, POOL
from hall.web.validation import ascii_int

PAIRING_COOKIE = "hall_pairing"
PAIRING_TTL = timedelta(minutes=10)
STATIC = Path(__file__).resolve().parent / "static"


class PairingOut(BaseModel):
    state: Literal["waiting", "approved", "paired"]
    code: str
    expires_at: datetime
    kind: str | None = None
    hall: str | None = None
    device_id: str | None = None
    next: str | None = None
    """Where the page goes once paired (the kind's page, e.g. /kiosk or the hall's TV page)."""


class ApproveBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    kind: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,15}$")]
    """One of the installed pairing kinds or an alias (``tv`` is another name for ``display``)."""
    device_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,32}$")]


def device_name(kinds: PairingKinds, hall: Hall, kind: str, device_id: str) -> str:
    """The configured name of the device; InvalidInput when the kind or device is unknown."""
    return kinds.get(kind).name_of(hall, device_id)


def next_page(
    kinds: PairingKinds, kind: str | None, hall: str | None, device: str | None
) -> str | None:
    found = kinds.find(kind)
    if found is None or not hall or not device:
        return None
    return found.next_page(hall, device)


def _out(kinds: PairingKinds, p: pairing_repo.Pairing) -> PairingOut:
    state: Literal["waiting", "approved", "paired"] = (
        "paired" if p.claimed_at else "approved" if p.approved_at else "waiting"
    )
    return PairingOut(
        state=state,
        code=p.code,
        expires_at=p.expires_at,
        kind=p.kind,
        hall=p.hall_id,
        device_id=p.device_id,
        next=next_page(kinds, p.kind, p.hall_id, p.device_id),
    )


async def _current(request: web.Request) -> pairing_repo.Pairing:
    secret = request.cookies.get(PAIRING_COOKIE, "")
    found = (
        await pairing_repo.by_secret(request.app[POOL], tokens.token_hash(secret))
        if 20 <= len(secret) <= 100
        else None
    )
    now = request.app[CLOCK].now()
    if found is None or (found.claimed_at is None and found.expires_at <= now):
        raise NotFound("配对码已失效，请刷新页面获取新的配对码")
    return found


class PendingOut(BaseModel):
    code: str
    created_at: datetime
    expires_at: datetime
    user_agent: str | None
    ip: str | None


class TargetOut(BaseModel):
    """A configured device a code can be approved for."""

    kind: str
    label: str
    """The kind's name in Chinese (取号机, 大厅电视/显示屏, 网页评价器)."""
    device_id: str
    name: str
    paired: int
    """Live device tokens it has now."""


class PairedOut(BaseModel):
    id: int
    kind: str
    device_id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None


class DevicesOut(BaseModel):
    hall: str
    hall_name: str
    pending: list[PendingOut]
    targets: list[TargetOut]
    paired: list[PairedOut]


# --- handlers ---------------------------------------------------------------------------------


async def pair_page(request: web.Request) -> web.Response:
    body = (STATIC / "pair.html").read_text(encoding="utf-8")
    response = web.Response(text=body, content_type="text/html", charset="utf-8")
    response.headers["Cache-Control"] = "no-store"
    return response


async def start_pairing(request: web.Request) -> web.Response:
    now = request.app[CLOCK].now()
    secret = secrets.token_urlsafe(32)
    async with request.app[POOL].acquire() as conn:
        for _ in range(20):
            pairing = await pairing_repo.start(
                conn,
                code=f"{secrets.randbelow(1_000_000):06d}",
                secret_hash=tokens.token_hash(secret),
                now=now,
                expires_at=now + PAIRING_TTL,
                user_agent=request.headers.get("User-Agent", "")[:200] or None,
                ip=client_address(request),
            )
            if pairing is not None:
                break
        else:
            raise InvalidInput("暂时无法生成配对码，请稍后再试")
    response = json(_out(kinds_of(request.app), pairing), status=201)
    response.set_cookie(
        PAIRING_COOKIE,
        secret,
        max_age=int(PAIRING_TTL.total_seconds()),
        path=f"{API}/pairing",
        httponly=True,
        samesite="Strict",
        secure=request.app[ACCESS].settings.cookie_secure,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


async def pairing_status(request: web.Request) -> web.Response:
    response = json(_out(kinds_of(request.app), await _current(request)))
    response.headers["Cache-Control"] = "no-store"
    return response


async def claim_pairing(request: web.Request) -> web.Response:
    pairing = await _current(request)
    if pairing.approved_at is None or pairing.claimed_at is not None:
        raise NotFound("配对码尚未批准或已使用")
    assert pairing.hall_id and pairing.device_id
    kinds = kinds_of(request.app)
    kind = kinds.get(pairing.kind or "").kind
    hall = request.app[DIRECTORY].hall(pairing.hall_id).hall
    name = device_name(kinds, hall, kind, pairing.device_id)
    now = request.app[CLOCK].now()
    token = tokens.new_token(tokens.DEVICE_PREFIX)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        device = await access_repo.create_device_token(
            conn,
            kind=kind,
            hall_id=pairing.hall_id,
            device_id=pairing.device_id,
            name=name,
            token_hash=tokens.token_hash(token),
            created_by=f"pairing:{pairing.id}",
            now=now,
        )
        if not await pairing_repo.claim(conn, pairing.id, device.id, now):
            raise NotFound("配对码尚未批准或已使用")
    out = _out(kinds, pairing).model_copy(update={"state": "paired"})
    response = json(out)
    response.set_cookie(
        DEVICE_COOKIE_NAME,
        token,
        max_age=DEVICE_COOKIE_MAX_AGE,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.app[ACCESS].settings.cookie_secure,
    )
    response.del_cookie(PAIRING_COOKIE, path=f"{API}/pairing")
    response.headers["Cache-Control"] = "no-store"
    return response


async def approve_pairing(request: web.Request) -> web.Response:
    hall = request.app[DIRECTORY].hall(request.match_info["hall"]).hall
    code = request.match_info["code"]
    if not (len(code) == 6 and code.isascii() and code.isdigit()):
        raise InvalidInput("配对码是 6 位数字", parameter="code")
    body = await parse_body(request, ApproveBody)
    kinds = kinds_of(request.app)
    kind = kinds.get(body.kind).kind
    device_name(kinds, hall, kind, body.device_id)
    pairing = await pairing_repo.approve(
        request.app[POOL],
        code=code,
        kind=kind,
        hall_id=hall.id,
        device_id=body.device_id,
        by=principal_of(request).actor,
        now=request.app[CLOCK].now(),
    )
    if pairing is None:
        raise NotFound(f"没有等待批准的配对码 {code}（可能已过期）", pairing_code=code)
    return json(_out(kinds, pairing))


async def devices_page(request: web.Request) -> web.Response:
    body = (STATIC / "devices.html").read_text(encoding="utf-8")
    response = web.Response(text=body, content_type="text/html", charset="utf-8")
    response.headers["Cache-Control"] = "no-store"
    return response


async def hall_devices(request: web.Request) -> web.Response:
    """What the admin page shows: codes waiting, configured targets, paired devices."""
    hall = request.app[DIRECTORY].hall(request.match_info["hall"]).hall
    pool = request.app[POOL]
    waiting = await pairing_repo.pending(pool, request.app[CLOCK].now())
    tokens_ = await access_repo.device_tokens_of_hall(pool, hall.id)
    count: dict[tuple[str, str], int] = {}
    for t in tokens_:
        count[t.kind, t.device_id] = count.get((t.kind, t.device_id), 0) + 1
    targets = [
        TargetOut(
            kind=k.kind,
            label=k.label_zh,
            device_id=device_id,
            name=name,
            paired=count.get((k.kind, device_id), 0),
        )
        for k in kinds_of(request.app).all
        for device_id, name in k.targets(hall)
    ]
    out = DevicesOut(
        hall=hall.id,
        hall_name=hall.name,
        pending=[_pending_out(p) for p in waiting],
        targets=targets,
        paired=[
            PairedOut(
                id=t.id,
                kind=t.kind,
                device_id=t.device_id,
                name=t.name,
                created_at=t.created_at,
                last_used_at=t.last_used_at,
            )
            for t in tokens_
        ],
    )
    response = json(out)
    response.headers["Cache-Control"] = "no-store"
    return response


def _pending_out(p: pairing_repo.Pending) -> PendingOut:
    return PendingOut(
        code=p.code,
        created_at=p.created_at,
        expires_at=p.expires_at,
        user_agent=p.user_agent,
        ip=p.ip,
    )


async def revoke_hall_device(request: web.Request) -> web.Response:
    """Revoke one of the hall's device tokens: its pages lose access at their next request."""
    hall = request.app[DIRECTORY].hall(request.match_info["hall"]).hall
    token_id = ascii_int(request.match_info.get("id"), "id", 18)
    done = await access_repo.revoke_device_token(
        request.app[POOL],
        token_id,
        principal_of(request).actor,
        request.app[CLOCK].now(),
        halls=[hall.id],
    )
    if not done:
        raise NotFound("该大厅没有这个设备令牌", id=str(token_id))
    return web.Response(status=204)


ROUTES = [
    Route(
        "GET",
        "/admin/devices",
        devices_page,
        "devices_page",
        "设备配对管理页面",
        Access.PUBLIC,
        in_openapi=False,
    ),
    Route(
        "GET",
        f"{API}/halls/{{hall}}/pairings",
        hall_devices,
        "pairing_list",
        "等待批准的配对码、可配对的设备（取号机、显示屏、评价器等）、已配对的设备",
        Access.MANAGER,
        response=DevicesOut,
        tags=("devices",),
    ),
    Route(
        "POST",
        f"{API}/halls/{{hall}}/device-tokens/{{id}}/revoke",
        revoke_hall_device,
        "hall_device_revoke",
        "吊销本大厅的一个设备令牌（已配对的取号机、显示屏、评价器等）",
        Access.MANAGER,
        tags=("devices",),
    ),
    Route("GET", "/pair", pair_page, "pair_page", "设备配对页面", Access.PUBLIC, in_openapi=False),
    Route(
        "POST",
        f"{API}/pairing",
        start_pairing,
        "pairing_start",
        "浏览器设备申请配对码（设置配对 Cookie）",
        Access.PUBLIC,
        response=PairingOut,
        tags=("devices",),
    ),
    Route(
        "GET",
        f"{API}/pairing",
        pairing_status,
        "pairing_status",
        "本浏览器的配对状态（凭配对 Cookie）",
        Access.PUBLIC,
        response=PairingOut,
        tags=("devices",),
    ),
    Route(
        "POST",
        f"{API}/pairing/claim",
        claim_pairing,
        "pairing_claim",
        "已批准的配对：领取设备 Cookie",
        Access.PUBLIC,
        response=PairingOut,
        tags=("devices",),
    ),
    Route(
        "POST",
        f"{API}/halls/{{hall}}/pairings/{{code}}/approve",
        approve_pairing,
        "pairing_approve",
        "批准配对码，绑定到配置中的一台设备（取号机、显示屏、评价器等）",
        Access.MANAGER,
        body=ApproveBody,
        response=PairingOut,
        tags=("devices",),
    ),
]


def setup_pairing(app: web.Application) -> None:
    register(app, ROUTES)
