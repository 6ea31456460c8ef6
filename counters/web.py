"""The clerk's pages (/login, /password, /counter) and the terminal's read API.

The terminal acts through the kernel's counter actions (POST /api/v1/halls/{hall}/counters/
{number}/{action}); what it reads here is one answer with everything its screen shows, read
again whenever the counter's live channel reports a change, so the screen is the database.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import asyncpg
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from counters import repo, signin, supervision, upcoming
from hall.domain.calendar import business_day
from hall.domain.errors import Forbidden, InvalidInput, NotFound
from hall.domain.policy import CounterContext
from hall.domain.tickets import COUNTER_STATE_LABELS, TICKET_STATE_LABELS, CounterState
from hall.services.directory import HallRules
from hall.storage import repo as kernel_repo
from hall.web.access import ACCESS, Principal, principal_of
from hall.web.api import API, SUPERVISOR_ROLES, parse_body
from hall.web.page_files import PageFolder
from hall.web.routes import Access, Route
from hall.web.state import CLOCK, DIRECTORY, POOL, QUEUE
from hall.web.validation import ascii_int

PAGES = Path(__file__).resolve().parent / "pages"
FOLDER = PageFolder(PAGES)
STATIC_PREFIX = "/counters/static"
# Heads read per queue and class for the call-order replay: NEXT_SHOWN of each queue and a
# few more (each is a whole ticket row; the replay stops where a lane read in full runs out).
_PER_CLASS = repo.NEXT_SHOWN + 3


def state_label(state: str, pause_reason: str | None = None) -> str:
    """窗口关闭 and 暂停服务 are different things: a paused counter says why."""
    label = COUNTER_STATE_LABELS[CounterState(state)]
    if state == CounterState.PAUSED and pause_reason:
        return f"{label}（{pause_reason}）"
    return label


class DeskCounterOut(BaseModel):
    hall: str
    hall_name: str
    number: int
    name: str
    state: str
    state_label: str


def _halls_of(request: web.Request, principal: Principal) -> list[HallRules]:
    directory = request.app[DIRECTORY]
    return [directory.hall(h.id) for h in directory.config.halls if principal.in_hall(h.id)]


def _may_work_at(principal: Principal, number: int) -> bool:
    return bool(principal.roles & SUPERVISOR_ROLES) or number in principal.counters


async def my_counters(request: web.Request) -> web.Response:
    """GET /api/v1/me/counters: the counters the signed-in staff member may work at."""
    principal = principal_of(request)
    if principal.kind != "staff":
        raise Forbidden("仅工作人员账号可以使用窗口终端")
    out: list[dict[str, Any]] = []
    for rules in _halls_of(request, principal):
        states = await repo.counter_states(request.app[POOL], rules.hall.id)
        for counter in rules.hall.counters:
            if not _may_work_at(principal, counter.number):
                continue
            state, reason = states.get(counter.number, ("closed", None))
            out.append(
                DeskCounterOut(
                    hall=rules.hall.id,
                    hall_name=rules.hall.name,
                    number=counter.number,
                    name=counter.display_name,
                    state=state,
                    state_label=state_label(state, reason),
                ).model_dump()
            )
    return web.json_response(out, headers={"Cache-Control": "no-store"})


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


async def _call_order(
    pool: asyncpg.Pool, rules: HallRules, number: int, now: datetime
) -> list[upcoming.NextUp]:
    """What call-next would call at this counter, one call after another (the kernel's
    policy replayed on the heads of its queues)."""
    config = rules.counter(number)
    policy = rules.policy
    async with pool.acquire() as conn:
        read = await kernel_repo.counter_for_action(conn, rules.hall.id, number)
        found = await kernel_repo.candidates(
            conn,
            rules.hall.id,
            number,
            [s.code for s in config.services],
            appointments_from=now + policy.appointment_early,
            per_class=_PER_CLASS,
        )
    context = CounterContext(
        number=number,
        services=tuple((s.code, s.weight) for s in config.services),
        call_order=str(config.call_order),
        normal_since_priority=0 if read is None else read.tally,
    )
    return upcoming.upcoming(
        found,
        context,
        policy,
        now,
        per_class=_PER_CLASS,
        per_queue=repo.NEXT_SHOWN,
        overall=repo.NEXT_OVERALL,
    )


async def desk(request: web.Request) -> web.Response:
    """GET …/counters/{number}/desk: everything the clerk terminal shows, read at once."""
    hall_id = request.match_info["hall"]
    number = ascii_int(request.match_info.get("number"), "number", 6)
    rules = request.app[DIRECTORY].hall(hall_id)
    config = rules.counter(number)
    pool = request.app[POOL]
    view = await request.app[QUEUE].counter(hall_id, number)
    status, ticket = view.status, view.ticket
    codes = [s.code for s in config.services]
    now = request.app[CLOCK].now()
    heads = await repo.queue_heads(pool, hall_id, number, codes)
    order = await _call_order(pool, rules, number, now)
    states = await repo.counter_states(pool, hall_id)
    names = await repo.staff_names(pool, [status.clerk] if status.clerk else [])
    services = {s.code: s.name for s in rules.hall.services}
    queues = []
    for code in codes:
        head = heads.get(code)
        oldest = head.oldest_issued_at if head else None
        queues.append(
            {
                "code": code,
                "name": services[code],
                "waiting": head.waiting if head else 0,
                "longest_wait_s": None if oldest is None else (now - oldest).total_seconds(),
                "next": [n.as_json() for n in order if n.service_code == code][: repo.NEXT_SHOWN],
            }
        )
    current = None
    if ticket is not None:
        current = {
            "id": ticket.id,
            "number": ticket.display_number,
            "service_code": ticket.service_code,
            "service_name": services.get(ticket.service_code, ticket.service_code),
            "state": str(ticket.state),
            "state_label": TICKET_STATE_LABELS[ticket.state],
            "priority_class": ticket.priority_class,
            "recall_count": ticket.recall_count,
            "issued_at": _iso(ticket.issued_at),
            "called_at": _iso(ticket.called_at),
            "serve_started_at": _iso(ticket.serve_started_at),
            "notes": await repo.ticket_notes(pool, ticket.id),
        }
    body = {
        "hall": hall_id,
        "hall_name": rules.hall.name,
        "number": number,
        "name": config.display_name,
        "state": str(status.state),
        "state_label": state_label(str(status.state), status.pause_reason),
        "state_since": _iso(status.state_since),
        "pause_reason": status.pause_reason,
        "clerk": status.clerk,
        "clerk_name": names.get(status.clerk or ""),
        "ticket": current,
        "queues": queues,
        "upcoming": [n.as_json() for n in order if n.replayed][: repo.NEXT_OVERALL],
        "sent_here": await repo.sent_here(pool, hall_id, number),
        "parked": await repo.parked(pool, hall_id, number),
        "max_recalls": rules.hall.call_policy.max_recalls,
        "pause_reasons": list(rules.hall.counter_rules.pause_reasons),
        "transfer_to_closed": rules.hall.counter_rules.transfer_to_closed,
        "counters": [
            {
                "number": c.number,
                "name": c.display_name,
                "state": states.get(c.number, ("closed", None))[0],
                "state_label": state_label(*states.get(c.number, ("closed", None))),
            }
            for c in rules.hall.counters
            if c.number != number
        ],
        "services": [{"code": s.code, "name": s.name} for s in rules.hall.services],
        "server_time": now.isoformat(),
    }
    return web.json_response(body, headers={"Cache-Control": "no-store"})


# --- pages -----------------------------------------------------------------------------------


async def login_page(request: web.Request) -> web.Response:
    return FOLDER.page("login.html", "工作人员登录")


async def password_page(request: web.Request) -> web.Response:
    return FOLDER.page("password.html", "修改密码")


async def counter_page(request: web.Request) -> web.Response:
    return FOLDER.page("counter.html", "窗口终端")


static_file = FOLDER.handler("name")


ROUTES = [
    Route("GET", "/login", login_page, "login_page", "工作人员登录页面", Access.PUBLIC,
          in_openapi=False),
    Route("GET", "/password", password_page, "password_page", "修改密码页面", Access.PUBLIC,
          in_openapi=False),
    Route("GET", "/counter", counter_page, "counter_page", "窗口终端页面", Access.PUBLIC,
          in_openapi=False),
    Route("GET", STATIC_PREFIX + "/{name}", static_file, "counters_static", "窗口终端静态文件",
          Access.PUBLIC, in_openapi=False),
    Route(
        "GET",
        f"{API}/me/counters",
        my_counters,
        "my_counters",
        "本人可以登录的窗口及其状态",
        Access.AUTHENTICATED,
        tags=("counters",),
    ),
    Route(
        "GET",
        f"{API}/halls/{{hall}}/counters/{{number}}/desk",
        desk,
        "counter_desk",
        "窗口终端所需的全部信息：状态、当前号码、所办业务的队列、可转窗口",
        Access.COUNTER_CLERK,
        tags=("counters",),
    ),
]  # fmt: skip


# --- device credentials (admin) ---------------------------------------------------------------


class DeviceCredentialsBody(BaseModel):
    """Set a credential with a value, remove it with null, leave it alone by omitting it."""

    model_config = ConfigDict(extra="forbid", strict=True)
    pin: Annotated[str, Field(pattern=r"^\d{4,12}$")] | None = None
    """Typed on a caller as ``job_no*pin``."""
    card: Annotated[str, Field(pattern=r"^[0-9A-Fa-f: ]{2,80}$")] | None = None
    """IC/RF card serial as hex (as the card reader shows it)."""
    badge: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    """The content of the staff badge's code."""


class DeviceCredentialsOut(BaseModel):
    job_no: str
    kinds: list[str]
    """Which credentials the staff member has (never their values)."""


async def set_device_credentials(request: web.Request) -> web.Response:
    """PUT /api/v1/staff/{job_no}/device-credentials: PIN, card and badge, stored hashed."""
    job_no = request.match_info["job_no"]
    body = await parse_body(request, DeviceCredentialsBody)
    pool = request.app[POOL]
    now = request.app[CLOCK].now()
    params = request.app[ACCESS].settings.password_params
    async with pool.acquire() as conn, conn.transaction():
        if not await signin.staff_exists(conn, job_no):
            raise NotFound(f"工号 {job_no} 不存在或已停用")
        for kind in ("pin", "card", "badge"):
            if kind in body.model_fields_set:
                await signin.set_credential(conn, job_no, kind, getattr(body, kind), now, params)
        kinds = await conn.fetch(
            "SELECT kind FROM staff_device_credentials WHERE job_no = $1 ORDER BY kind", job_no
        )
    out = DeviceCredentialsOut(job_no=job_no, kinds=[r["kind"] for r in kinds])
    return web.json_response(out.model_dump(), headers={"Cache-Control": "no-store"})


ROUTES.append(
    Route(
        "PUT",
        f"{API}/staff/{{job_no}}/device-credentials",
        set_device_credentials,
        "device_credentials",
        "设置工作人员在呼叫器上登录用的密码(PIN)、IC卡号和工牌码（只保存哈希）",
        Access.ADMIN,
        body=DeviceCredentialsBody,
        response=DeviceCredentialsOut,
        tags=("counters",),
    )
)


# --- hardware sign-in lockouts ---------------------------------------------------------------


def _lock_json(lock: signin.Lock) -> dict[str, Any]:
    return {
        "job_no": lock.job_no,
        "counter": lock.counter,
        "kind": "pin" if lock.job_no is not None else "card_or_badge",
        "failures": lock.failures,
        "last_at": lock.last_at.isoformat(),
        "until": lock.until.isoformat(),
    }


async def _locks_body(request: web.Request, conn: asyncpg.Connection, hall_id: str) -> Any:
    found = await signin.locks(conn, hall_id, request.app[CLOCK].now())
    names = await repo.staff_names(conn, [x.job_no for x in found if x.job_no])
    return [_lock_json(x) | {"name": names.get(x.job_no or "")} for x in found]


async def sign_in_locks(request: web.Request) -> web.Response:
    """GET …/sign-in-locks: hardware sign-in lockouts in force in the hall."""
    hall_id = request.match_info["hall"]
    request.app[DIRECTORY].hall(hall_id)
    async with request.app[POOL].acquire() as conn:
        body = await _locks_body(request, conn, hall_id)
    return web.json_response(body, headers={"Cache-Control": "no-store"})


async def _unlock(
    request: web.Request, job_no: str | None, counter: int | None, missing: str
) -> web.Response:
    hall_id = request.match_info["hall"]
    request.app[DIRECTORY].hall(hall_id)
    actor = principal_of(request).actor
    async with request.app[POOL].acquire() as conn, conn.transaction():
        # One release at a time per hall: two admins pressing at once record one unlock.
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext('sign_in_unlock:' || $1))", hall_id
        )
        released = await signin.unlock(
            conn, hall_id, job_no=job_no, counter=counter, now=request.app[CLOCK].now(),
            actor=actor,
        )  # fmt: skip
        if not released:
            raise NotFound(missing)
        body = await _locks_body(request, conn, hall_id)
    return web.json_response({"released": True, "locks": body})


async def unlock_staff(request: web.Request) -> web.Response:
    """POST …/sign-in-locks/staff/{job_no}/unlock: a clerk may sign in on a caller again."""
    job_no = request.match_info["job_no"]
    return await _unlock(request, job_no, None, f"工号 {job_no} 当前没有被锁定")


async def unlock_counter(request: web.Request) -> web.Response:
    """POST …/sign-in-locks/counters/{number}/unlock: cards and badges work there again."""
    number = ascii_int(request.match_info.get("number"), "number", 6)
    request.app[DIRECTORY].hall(request.match_info["hall"]).counter(number)
    return await _unlock(request, None, number, f"{number}号窗口的刷卡登录当前没有被锁定")


LOCKS = f"{API}/halls/{{hall}}/sign-in-locks"
ROUTES += [
    Route("GET", LOCKS, sign_in_locks, "sign_in_locks",
          "呼叫器登录锁定（密码、卡或工牌错误次数过多）", Access.MANAGER, tags=("counters",)),
    Route("POST", LOCKS + "/staff/{job_no}/unlock", unlock_staff, "sign_in_unlock_staff",
          "解除工作人员的呼叫器登录锁定（记入审计日志）", Access.MANAGER, tags=("counters",)),
    Route("POST", LOCKS + "/counters/{number}/unlock", unlock_counter, "sign_in_unlock_counter",
          "解除窗口的刷卡/工牌登录锁定（记入审计日志）", Access.MANAGER, tags=("counters",)),
]  # fmt: skip


# --- supervision (电子监察) -----------------------------------------------------------------


async def supervision_alarms(request: web.Request) -> web.Response:
    """GET …/supervision/alarms[?open=1][&limit=N]: alarms of the hall, newest first."""
    hall_id = request.match_info["hall"]
    request.app[DIRECTORY].hall(hall_id)
    only_open = request.query.get("open") in ("1", "true")
    limit = min(ascii_int(request.query.get("limit", "200"), "limit", 4), 1000)
    rows = await request.app[POOL].fetch(
        """SELECT id, kind, counter_number, clerk, ticket_id, raised_at, cleared_at, detail, points
           FROM supervision_alarms WHERE hall_id = $1 AND ($2 = false OR cleared_at IS NULL)
           ORDER BY raised_at DESC, id DESC LIMIT $3""",
        hall_id,
        only_open,
        limit,
    )
    body = [
        {
            "id": r["id"],
            "kind": r["kind"],
            "label": supervision.KINDS.get(r["kind"], r["kind"]),
            "counter": r["counter_number"],
            "clerk": r["clerk"],
            "ticket_id": r["ticket_id"],
            "raised_at": r["raised_at"].isoformat(),
            "cleared_at": _iso(r["cleared_at"]),
            "detail": r["detail"],
            "points": r["points"],
        }
        for r in rows
    ]
    return web.json_response(body, headers={"Cache-Control": "no-store"})


async def supervision_day(request: web.Request) -> web.Response:
    """GET …/supervision/day[?date=YYYY-MM-DD]: per clerk and per counter figures of a day."""
    rules = request.app[DIRECTORY].hall(request.match_info["hall"])
    raw = request.query.get("date")
    if raw is None:
        now = request.app[CLOCK].now()
        day = business_day(now, rules.tz, rules.hall.day_boundary)
    else:
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            raise InvalidInput("date 应为 YYYY-MM-DD", parameter="date") from None
    async with request.app[POOL].acquire() as conn:
        body = await supervision.day_figures(conn, rules, day)
    return web.json_response(body, headers={"Cache-Control": "no-store"})


ROUTES += [
    Route(
        "GET",
        f"{API}/halls/{{hall}}/supervision/alarms",
        supervision_alarms,
        "supervision_alarms",
        "电子监察告警（open=1 只列未解除的）",
        Access.MANAGER,
        tags=("supervision",),
    ),
    Route(
        "GET",
        f"{API}/halls/{{hall}}/supervision/day",
        supervision_day,
        "supervision_day",
        "电子监察日统计：每位工作人员的登录/退出时间、各原因暂停时长、办结数、告警与扣分",
        Access.MANAGER,
        tags=("supervision",),
    ),
]
