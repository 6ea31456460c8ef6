"""Access control at the web edge: who is calling, may they, CSRF, rate limits and the audit log.

Every request passes ``access_middleware``: it authenticates the caller (session cookie, bearer
session token or device token), charges anonymous callers of public endpoints to a per-address
token bucket, checks the route's ``Access`` rule against ``ACCESS_TABLE``, requires the CSRF
header on cookie-authenticated state changes, and appends an audit row for every state change
made with credentials. docs/security.md explains the rules.
"""

from __future__ import annotations

import asyncio
import enum
import hmac
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

import asyncpg
from aiohttp import web
from pydantic import ValidationError

from hall.domain.errors import Forbidden, HallError, RateLimited, Unauthorized
from hall.domain.pii import mask_text
from hall.domain.text import clean_text
from hall.security import tokens
from hall.security.logfilter import install_pii_filter
from hall.security.passwords import DEFAULT_PARAMS, ScryptParams, hash_password
from hall.security.ratelimit import BucketSpec, RateLimiter
from hall.storage import access_repo
from hall.storage.uow import PENDING_AUDIT, AuditSlot
from hall.web.pairing_kinds import kinds_of
from hall.web.problems import Handler, from_hall_error
from hall.web.routes import Access, Route, register, route_of
from hall.web.session_cache import SessionCache, cache_lifecycle
from hall.web.state import CLOCK, NOTIFIER, POOL
from hall.web.validation import ascii_int_or_none, load_json, read_body, stored_header

log = logging.getLogger(__name__)

COOKIE_NAME = "hall_session"
# Browser-based devices (hall TV, kiosk page) keep their device token in this cookie.
DEVICE_COOKIE_NAME = "hall_device"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Handlers of unauthenticated state changes (login) name the actor for the audit row here.
AUDIT_ACTOR = web.RequestKey("audit_actor", str)
# Routes charged to the login bucket whoever calls them (password guessing).
LOGIN_ROUTES = frozenset({"login", "device_login"})


class SessionExpired(Unauthorized):
    """The session passed its idle or absolute timeout."""

    code = "session_expired"
    title = "登录已过期，请重新登录"


class SessionRevoked(Unauthorized):
    """The session was ended by logout or by an administrator."""

    code = "session_revoked"
    title = "会话已失效，请重新登录"


class CsrfRejected(Forbidden):
    """A cookie-authenticated state change came without the session's CSRF token."""

    code = "csrf_rejected"
    title = "缺少或无效的 CSRF 令牌，请刷新页面后重试"


class Role(enum.StrEnum):
    """Every kind of caller the access table knows."""

    ANONYMOUS = "anonymous"  # citizens, public pages
    KIOSK = "kiosk"  # kiosk device token (取号机)
    DISPLAY = "display"  # display device token (综合屏, counter screens in a browser)
    BRIDGE = "bridge"  # firmware bridge token (edge PC driving the RS-485 bus)
    CLERK = "clerk"  # 窗口工作人员: only the counters in staff.counters
    KIOSK_OPERATOR = "kiosk_operator"  # 引导员: issues tickets for citizens
    DUTY_MANAGER = "duty_manager"  # 值班长: helps and supervises windows of the hall
    MANAGER = "manager"  # 中心管理人员: their halls
    ADMIN = "admin"  # everything, every hall


STAFF_ROLES = frozenset(
    {Role.CLERK, Role.KIOSK_OPERATOR, Role.DUTY_MANAGER, Role.MANAGER, Role.ADMIN}
)
DEVICE_ROLES = frozenset({Role.KIOSK, Role.DISPLAY, Role.BRIDGE})


class Scope(enum.Enum):
    """How far a role's grant for one Access value reaches."""

    ANY = "any"  # every hall, every counter
    HALL = "hall"  # only halls the caller belongs to (the {hall} in the path)
    COUNTER = "counter"  # only counters in the caller's staff.counters, in their halls


_ALL = dict.fromkeys(Role, Scope.ANY)
_H = Scope.HALL

ACCESS_TABLE: dict[Access, dict[Role, Scope]] = {
    Access.PUBLIC: dict(_ALL),
    # The unguessable token in the path is the credential; the public bucket stops guessing.
    Access.TICKET_TOKEN: dict(_ALL),
    Access.KIOSK: {
        Role.KIOSK: _H,
        Role.CLERK: _H,
        Role.KIOSK_OPERATOR: _H,
        Role.DUTY_MANAGER: _H,
        Role.MANAGER: _H,
        Role.ADMIN: _H,
    },
    Access.DISPLAY: {
        Role.DISPLAY: _H,
        Role.BRIDGE: _H,
        Role.CLERK: _H,
        Role.KIOSK_OPERATOR: _H,
        Role.DUTY_MANAGER: _H,
        Role.MANAGER: _H,
        Role.ADMIN: _H,
    },
    Access.COUNTER_CLERK: {
        Role.CLERK: Scope.COUNTER,
        Role.DUTY_MANAGER: _H,
        Role.MANAGER: _H,
        Role.ADMIN: _H,
    },
    Access.HALL_STAFF: {
        Role.CLERK: _H,
        Role.KIOSK_OPERATOR: _H,
        Role.DUTY_MANAGER: _H,
        Role.MANAGER: _H,
        Role.ADMIN: _H,
    },
    Access.MANAGER: {Role.MANAGER: _H, Role.ADMIN: _H},
    Access.ADMIN: {Role.ADMIN: _H},
    Access.DEVICE: {Role.KIOSK: _H, Role.DISPLAY: _H, Role.BRIDGE: _H},
    Access.AUTHENTICATED: {role: Scope.ANY for role in Role if role is not Role.ANONYMOUS},
}


_CELL = {Scope.ANY: "yes", Scope.HALL: "own hall", Scope.COUNTER: "own counter"}


def access_table_markdown() -> str:
    """ACCESS_TABLE as the Markdown table docs/security.md shows (a test keeps them equal)."""
    roles = list(Role)
    lines = [
        "| Access | " + " | ".join(r.value for r in roles) + " |",
        "|---|" + "---|" * len(roles),
    ]
    for access, grants in ACCESS_TABLE.items():
        cells = [_CELL[grants[r]] if r in grants else "-" for r in roles]
        lines.append(f"| `{access.value}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller; ``actor`` is what the event and audit logs record."""

    kind: Literal["anonymous", "staff", "kiosk", "display", "bridge"]
    actor: str
    roles: frozenset[Role]
    halls: tuple[str, ...] = ()
    """Staff: empty means every hall (as in the hall config). Devices: their one hall."""
    counters: tuple[int, ...] = ()
    name: str = ""
    session_id: int | None = None
    session_kind: Literal["cookie", "bearer"] | None = None
    csrf_token: str | None = None
    device_token_id: int | None = None
    device_id: str | None = None
    device_kind: str | None = None
    """Devices: the token's kind (``kind`` is the access role it acts with, e.g. a pad's is
    ``display``)."""

    @property
    def authenticated(self) -> bool:
        return self.kind != "anonymous"

    def in_hall(self, hall: str | None) -> bool:
        return hall is None or not self.halls or hall in self.halls


ANONYMOUS = Principal(kind="anonymous", actor="anonymous", roles=frozenset({Role.ANONYMOUS}))
PRINCIPAL = web.RequestKey("principal", Principal)


def principal_of(request: web.Request) -> Principal:
    """The caller the access middleware authenticated (anonymous outside the route table)."""
    found = request.get(PRINCIPAL)
    return found if isinstance(found, Principal) else ANONYMOUS


_STAFF_ROLE_NAMES = frozenset(r.value for r in STAFF_ROLES)


def staff_roles(names: tuple[str, ...]) -> frozenset[Role]:
    """Staff roles from the database; unknown names grant nothing."""
    return frozenset(Role(n) for n in names if n in _STAFF_ROLE_NAMES)


def require_every_hall(principal: Principal) -> None:
    """Deployment-wide administration (all sessions, the whole audit log) is for admins of
    every hall; an admin limited to some halls administers only those."""
    if principal.halls:
        raise Forbidden("此操作仅限负责全部大厅的管理员")


def require_hall(principal: Principal, hall: str) -> None:
    """A hall named in a body (not the path) must be one of the caller's halls."""
    if not principal.in_hall(hall):
        raise Forbidden(f"无权管理大厅 {hall}")


def allowed(access: Access, principal: Principal, hall: str | None, counter: int | None) -> bool:
    """Whether ``principal`` may call an endpoint with this rule for this hall and counter."""
    grants = ACCESS_TABLE[access]
    for role in principal.roles:
        scope = grants.get(role)
        if scope is None:
            continue
        if scope is Scope.ANY:
            return True
        if not principal.in_hall(hall):
            continue
        if scope is Scope.HALL:
            return True
        if scope is Scope.COUNTER and counter is not None and counter in principal.counters:
            return True
    return False


@dataclass
class AccessSettings:
    """Timeouts, cookie flags, rate limits and password cost; defaults suit a hall LAN."""

    session_idle: timedelta = timedelta(hours=1)
    """A session unused this long ends (a clerk away over lunch logs in again)."""
    session_absolute: timedelta = timedelta(hours=12)
    """Every session ends this long after login, used or not (one working day)."""
    cookie_secure: bool = False
    """Set the Secure flag; enable when the hall serves HTTPS (most LAN installs do not)."""
    public_rate: BucketSpec = field(default_factory=lambda: BucketSpec(60, 5))
    """Per remote address, anonymous callers of public and ticket-token endpoints."""
    login_rate: BucketSpec = field(default_factory=lambda: BucketSpec(10, 0.2))
    """Per remote address, login attempts (10 at once, then one every 5 s)."""
    lock_after: int = 5
    """Wrong passwords in a row (login or password change) that lock an account."""
    lock_for: timedelta = timedelta(minutes=15)
    """How long a locked account refuses logins; an admin setting a new password unlocks it."""
    password_params: ScryptParams = DEFAULT_PARAMS
    """scrypt cost for new and upgraded password hashes."""
    concurrent_logins: int = 2
    """Password checks running at once; each scrypt call takes tens of MiB."""
    trusted_proxies: frozenset[str] = frozenset()
    """Addresses of reverse proxies (the extranet gateway) whose X-Forwarded-For is believed."""
    allowed_origins: frozenset[str] = frozenset()
    """Origins (``scheme://host[:port]``) other than the server's own whose pages may open the
    websockets; a browser handshake from any other origin gets 403. Clients that send no
    Origin (the bridge, scripts) are not affected."""
    bootstrap_admin: tuple[str, str] | None = None
    """(job number, password) of an admin created at start-up when no admin can log in yet."""
    session_cache_s: float = 5.0
    """How long a looked-up session is trusted without asking the database again; logout,
    revocation and account changes reach every server's cache at once (hall.web.session_cache),
    this bounds changes made behind the server's back. 0 turns the cache off."""


# Sessions record last use at most this often, so a busy terminal does not write every request.
TOUCH_INTERVAL = timedelta(seconds=30)


class AccessState:
    """Per-app access objects: settings, buckets, the login semaphore."""

    def __init__(self, settings: AccessSettings) -> None:
        self.settings = settings
        self.public = RateLimiter(settings.public_rate)
        self.login = RateLimiter(settings.login_rate)
        self.password_slots = asyncio.Semaphore(settings.concurrent_logins)
        self.dummy_hash: str | None = None
        self.sessions = SessionCache(settings.session_cache_s)
        self.principals: dict[tuple[bytes, str], tuple[access_repo.SessionRow, Principal]] = {}
        """The principal last built for a session, with the row it was built from."""


ACCESS = web.AppKey("access", AccessState)


# --- authentication -------------------------------------------------------------------------


async def _session_principal(
    request: web.Request, token: str, kind: Literal["cookie", "bearer"]
) -> Principal:
    pool = request.app[POOL]
    now = request.app[CLOCK].now()
    state = request.app[ACCESS]
    idle = state.settings.session_idle
    key = (tokens.token_hash(token), kind)
    row = state.sessions.get(key)
    # The cache only accepts: a cached session that looks over its time is asked for again.
    if row is None or now >= row.expires_at or now - row.last_seen_at >= idle:
        generation = state.sessions.generation
        row = await access_repo.find_session(pool, key[0], kind)
        if row is None:
            raise Unauthorized("登录凭据无效，请重新登录")
        if row.revoked_at is not None:
            raise SessionRevoked()
        if now >= row.expires_at or now - row.last_seen_at >= idle:
            raise SessionExpired()
        if not row.staff.enabled:
            raise Unauthorized("账号已停用")
        state.sessions.put(key, row, generation)
    if now - row.last_seen_at >= TOUCH_INTERVAL:
        await access_repo.touch_session(pool, row.id, now)
        state.sessions.touched(key, now)
    # The principal depends on the row alone: one built from this very row object (the
    # cache hands the same one out until it is dropped, touched or looked up again) is
    # reused instead of being built again on every request (about 10 µs).
    built = state.principals.get(key)
    if built is not None and built[0] is row:
        return built[1]
    principal = session_principal(row, kind)
    if len(state.principals) >= state.sessions.max_entries:
        state.principals.clear()
    state.principals[key] = (row, principal)
    return principal


def session_principal(row: access_repo.SessionRow, kind: Literal["cookie", "bearer"]) -> Principal:
    """The staff principal a session row stands for (validity is the caller's check)."""
    staff = row.staff
    return Principal(
        kind="staff",
        actor=staff.job_no,
        roles=staff_roles(staff.roles),
        halls=staff.halls,
        counters=staff.counters,
        name=staff.name,
        session_id=row.id,
        session_kind=kind,
        csrf_token=row.csrf_token,
    )


def device_csrf_token(token: str) -> str:
    """The CSRF token of a device cookie: derived from the token, so only its holder knows it."""
    return hmac.new(token.encode(), b"hall-device-csrf", "sha256").hexdigest()[:32]


async def _device_principal(
    request: web.Request, token: str, via: Literal["cookie", "bearer"] = "bearer"
) -> Principal:
    now = request.app[CLOCK].now()
    device = await access_repo.find_device_token(request.app[POOL], tokens.token_hash(token), now)
    if device is None:
        raise Unauthorized("设备令牌无效或已吊销")
    role: Literal["kiosk", "display", "bridge"]
    if device.kind == "kiosk":
        role = "kiosk"
    elif device.kind == "display":
        role = "display"
    elif device.kind == "bridge":
        role = "bridge"
    else:  # a feature's pairing kind acts with the device role it declares
        declared = kinds_of(request.app).find(device.kind)
        if declared is None:
            raise Unauthorized("设备令牌的类型已不再支持，请重新配对")
        role = declared.access
    return Principal(
        kind=role,
        actor=f"{device.kind}:{device.hall_id}/{device.device_id}",
        roles=frozenset({Role(role)}),
        device_kind=device.kind,
        halls=(device.hall_id,),
        name=device.name,
        session_kind=via,
        csrf_token=device_csrf_token(token) if via == "cookie" else None,
        device_token_id=device.id,
        device_id=device.device_id,
    )


async def authenticate(request: web.Request) -> Principal:
    """The caller behind the request's credentials; raises Unauthorized for bad credentials."""
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("Authorization 头格式应为 Bearer <令牌>")
        if not token.isascii():  # tokens are ASCII; header bytes that are not UTF-8 too
            raise Unauthorized("登录凭据无效，请重新登录")
        if token.startswith(tokens.DEVICE_PREFIX):
            return await _device_principal(request, token)
        if token.startswith(tokens.SESSION_PREFIX):
            return await _session_principal(request, token, "bearer")
        raise Unauthorized("登录凭据无效，请重新登录")
    cookie = request.cookies.get(COOKIE_NAME)
    if cookie and not cookie.isascii():
        raise Unauthorized("登录凭据无效，请重新登录")
    if cookie:
        return await _session_principal(request, cookie, "cookie")
    device_cookie = request.cookies.get(DEVICE_COOKIE_NAME)
    if device_cookie and device_cookie.startswith(tokens.DEVICE_PREFIX) and device_cookie.isascii():
        return await _device_principal(request, device_cookie, "cookie")
    return ANONYMOUS


# --- the middleware -------------------------------------------------------------------------


def client_address(request: web.Request) -> str | None:
    """The caller's address: the peer, or the X-Forwarded-For hop a trusted proxy appended."""
    remote = request.remote
    trusted = request.app[ACCESS].settings.trusted_proxies
    if remote is None or remote not in trusted:
        return remote
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    # Walk back from the nearest hop; the first address that is not one of our proxies is the
    # client as far as we can tell (anything further left is client-supplied).
    for hop in reversed(hops):
        if hop not in trusted:
            return hop
    return remote


def _counter_param(request: web.Request) -> int | None:
    return ascii_int_or_none(request.match_info.get("number"), 6)


class OriginRejected(Forbidden):
    """A browser on another site tried to open a websocket (cross-site websocket hijacking)."""

    code = "origin_rejected"
    title = "不允许从其他网站连接"


def check_origin(request: web.Request, settings: AccessSettings) -> None:
    """Refuse a websocket handshake whose ``Origin`` is neither this server nor allowed.

    Browsers always send Origin on a websocket handshake and a page cannot forge it; the
    bridge and other programs send none and are authenticated by their tokens alone. The
    host and port are compared (a TLS-terminating proxy changes the scheme the server sees).
    """
    if request.headers.get("Upgrade", "").lower() != "websocket":
        return
    origin = request.headers.get("Origin")
    if origin is None:
        return
    origin = origin.strip().lower()
    if origin in {o.lower().rstrip("/") for o in settings.allowed_origins}:
        return
    _, sep, netloc = origin.partition("://")
    if sep and netloc and netloc == request.host.lower():
        return
    raise OriginRejected(f"来源 {clean_text(origin[:100])} 不能连接本服务器的实时推送")


def _rate_limited(request: web.Request, wait: int) -> web.Response:
    return from_hall_error(RateLimited(retry_after_s=wait), request.path)


def _status_of(exc: BaseException) -> int:
    if isinstance(exc, asyncio.CancelledError):
        return 499  # the client went away; whether the action completed is in the event log
    if isinstance(exc, HallError):
        return exc.status
    if isinstance(exc, ValidationError):
        return 422
    if isinstance(exc, web.HTTPException):
        return exc.status
    return 500


# Body fields worth keeping in the audit row; never passwords or tokens. Text is PII-masked.
AUDIT_BODY_KEYS = frozenset(
    {
        "service", "purpose", "priority_class", "kiosk", "clerk", "number", "to_service",
        "to_counter", "reason", "kind", "hall", "device_id", "bus", "address", "job_no",
    }
)  # fmt: skip


async def _audit_params(request: web.Request) -> dict[str, Any]:
    params: dict[str, Any] = {k: v for k, v in request.match_info.items() if k != "token"}
    if not request.body_exists or request.content_type != "application/json":
        return params
    try:
        # Already read by the handler (cached), unless the request was refused before.
        raw = await read_body(request)
        if b'"' not in raw:
            return params  # no string, so no key to keep ("{}": every counter action)
        body = load_json(raw)
    except (HallError, UnicodeDecodeError, web.HTTPException):
        return params
    if isinstance(body, dict):
        for key in AUDIT_BODY_KEYS & body.keys():
            value = body[key]
            if isinstance(value, str):
                params[key] = mask_text(value[:200])
            elif isinstance(value, int | float | bool) or value is None:
                params[key] = value
    return params


async def _audit_entry(
    request: web.Request, route: Route, principal: Principal, actor: str, status: int
) -> access_repo.AuditEntry:
    return access_repo.AuditEntry(
        at=request.app[CLOCK].now(),
        actor=actor,
        actor_kind=principal.kind,
        session_id=principal.session_id,
        route=route.name,
        method=request.method,
        path=request.path,
        params=await _audit_params(request),
        remote=client_address(request),
        user_agent=stored_header(request, "User-Agent"),
        status=status,
    )


async def audit_with_action(request: web.Request, status: int) -> None:
    """Commit this request's audit row in the action's own transaction.

    ``status`` is what the handler answers once the action has committed. The first unit of
    work of the request that commits events writes the row in its last statement, so the action
    and its audit row commit together. If nothing commits, or the answer ends up different
    (a later failure), the middleware writes a row with the real status afterwards, as for
    every other request.
    """
    slot = PENDING_AUDIT.get()
    route = route_of(request)
    principal = principal_of(request)
    if slot is None or route is None or not principal.authenticated:
        return
    slot.entry = await _audit_entry(request, route, principal, principal.actor, status)


async def _audit(
    request: web.Request, route: Route, principal: Principal, actor: str, status: int
) -> None:
    entry = await _audit_entry(request, route, principal, actor, status)
    try:
        await access_repo.append_audit(request.app[POOL], entry)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        # One line per lost row: during a database outage every request lands here, and a
        # traceback each would bury the log (the outage itself is logged by the pool).
        log.error(
            "audit row lost: %s %s by %s -> %d (%s: %s)",
            entry.method,
            entry.path,
            actor,
            status,
            type(exc).__name__,
            exc,
        )


def _unlisted(request: web.Request) -> bool:
    """A matched route that is not in the route table (static files are the only legal kind)."""
    info = request.match_info
    if info.http_exception is not None or info.route is None:
        return False
    return not isinstance(info.route.resource, web.StaticResource)


def _refusal(access: Access, principal: Principal, request: web.Request) -> str | None:
    """Why a staff member is refused, in words they can act on (None: the generic text)."""
    hall = request.match_info.get("hall")
    if principal.kind != "staff":
        return None
    if not principal.in_hall(hall):
        return f"您不属于大厅 {clean_text(str(hall)[:32])}"
    counter = _counter_param(request)
    if access is Access.COUNTER_CLERK and counter is not None:
        return f"您未被分配到 {counter} 号窗口"
    return None


@web.middleware
async def access_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    route = route_of(request)
    if route is None:
        if _unlisted(request):
            log.error("route %s is not in the route table; denied", request.match_info.route)
            raise Forbidden("该接口未声明访问规则")
        request[PRINCIPAL] = ANONYMOUS
        return await handler(request)

    state = request.app[ACCESS]
    now_s = request.app[CLOCK].now().timestamp()
    remote = client_address(request) or "unknown"
    auth_error: Unauthorized | None = None
    try:
        principal = await authenticate(request)
    except Unauthorized as exc:
        principal, auth_error = ANONYMOUS, exc
    request[PRINCIPAL] = principal

    if route.name in LOGIN_ROUTES:
        wait = state.login.take(remote, now_s)
    elif auth_error is not None or (
        not principal.authenticated and route.access in (Access.PUBLIC, Access.TICKET_TOKEN)
    ):
        wait = state.public.take(remote, now_s)
    else:
        wait = 0
    if wait:
        return _rate_limited(request, wait)

    audited = request.method in UNSAFE_METHODS
    slot = AuditSlot() if audited and principal.authenticated else None
    slot_token = PENDING_AUDIT.set(slot)
    status = 500
    try:
        check_origin(request, state.settings)
        if not allowed(
            route.access, principal, request.match_info.get("hall"), _counter_param(request)
        ):
            if not principal.authenticated:
                raise auth_error or Unauthorized()
            raise Forbidden(_refusal(route.access, principal, request))
        # Public endpoints (login) act with no one's authority, so there is nothing to forge.
        if (
            request.method in UNSAFE_METHODS
            and principal.session_kind == "cookie"
            and route.access is not Access.PUBLIC
        ):
            sent = request.headers.get(CSRF_HEADER, "")
            expected = principal.csrf_token or ""
            if (
                not expected
                or not sent.isascii()
                or not hmac.compare_digest(sent.encode(), expected.encode())
            ):
                raise CsrfRejected()
        response = await handler(request)
        status = response.status
        return response
    except BaseException as exc:
        status = _status_of(exc)
        raise
    finally:
        PENDING_AUDIT.reset(slot_token)
        actor = request.get(AUDIT_ACTOR) or (principal.actor if principal.authenticated else None)
        committed = slot is not None and slot.committed
        if committed and slot is not None and slot.entry is not None:
            committed = slot.entry.status == status  # else record what was really answered
        if audited and actor is not None and not committed:
            await _audit(request, route, principal, str(actor), status)


async def _bootstrap_admin(app: web.Application) -> None:
    """Create the configured first admin unless some admin can already log in."""
    settings = app[ACCESS].settings
    if settings.bootstrap_admin is None:
        return
    job_no, password = settings.bootstrap_admin
    async with app[POOL].acquire() as conn:
        if await access_repo.admin_exists(conn):
            return
        password_hash = await asyncio.to_thread(hash_password, password, settings.password_params)
        await access_repo.save_account(
            conn, job_no, password_hash=password_hash, name="管理员", roles=["admin"], halls=[]
        )
    log.warning("created the bootstrap admin %s; change its password", job_no)


def setup_access(app: web.Application, settings: AccessSettings | None = None) -> None:
    """Install the access middleware, the auth endpoints and the PII log filter."""
    from hall.web import auth_api

    install_pii_filter()
    app[ACCESS] = AccessState(settings or AccessSettings())
    app.middlewares.append(access_middleware)
    if app[ACCESS].settings.session_cache_s > 0:
        app.cleanup_ctx.append(cache_lifecycle(app[ACCESS].sessions, NOTIFIER))
    # Runs after every cleanup_ctx start-up step, so the pool exists.
    app.on_startup.append(_bootstrap_admin)
    register(app, auth_api.ROUTES)
