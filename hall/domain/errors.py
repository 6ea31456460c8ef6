"""Domain exceptions: one root, shallow leaves, each with a stable code and an HTTP status.

The web edge maps every ``HallError`` to an RFC 9457 problem response in one place
(``hall.web.problems``); messages are zh-CN because clerks and citizens read them.
"""

from __future__ import annotations

from typing import Any, ClassVar


class HallError(Exception):
    """Root of every error the hall core raises on purpose."""

    code: ClassVar[str] = "hall_error"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "服务器内部错误"

    def __init__(self, detail: str | None = None, **fields: Any) -> None:
        self.detail = detail or self.title
        self.fields = fields
        super().__init__(self.detail)


class InvalidInput(HallError):
    """A request or config value is malformed."""

    code = "invalid_input"
    status = 422
    title = "请求内容不正确"


class RequestTimeout(InvalidInput):
    """The request body did not arrive within the read timeout (a slow or stalled client)."""

    code = "request_timeout"
    status = 408
    title = "请求读取超时"


class NotFound(HallError):
    """The named hall, service, counter or ticket does not exist."""

    code = "not_found"
    status = 404
    title = "对象不存在"


class Conflict(HallError):
    """The action is not allowed in the object's current state."""

    code = "conflict"
    status = 409
    title = "当前状态不允许此操作"


class IllegalTransition(Conflict):
    """A ticket or counter cannot move from its state by this action."""

    code = "illegal_transition"


class QuotaExhausted(Conflict):
    """The service has issued every number allowed today."""

    code = "quota_exhausted"
    title = "该业务今日号源已取完"


class OutsideHours(Conflict):
    """Tickets are refused outside business hours."""

    code = "outside_hours"
    title = "当前不在办公时间"


class QueueEmpty(Conflict):
    """Call-next found nobody waiting for this counter."""

    code = "queue_empty"
    title = "当前没有等候的号码"


class CounterBusy(Conflict):
    """The counter already has an active ticket."""

    code = "counter_busy"
    title = "窗口当前有正在处理的号码"


class NoActiveTicket(Conflict):
    """The counter has no called or serving ticket to act on."""

    code = "no_active_ticket"
    title = "窗口当前没有正在处理的号码"


class PurposeNotAllowed(Conflict):
    """The service does not accept this visit purpose."""

    code = "purpose_not_allowed"
    title = "该业务不受理此类事项"


class IdempotencyMismatch(Conflict):
    """An idempotency key was reused with a different request body."""

    code = "idempotency_mismatch"
    title = "幂等键已用于不同的请求"


class ConfigNotLive(Conflict):
    """A configuration change that running servers cannot take now (e.g. removing a counter
    with a ticket in hand); the running configuration is untouched."""

    code = "config_not_live"
    title = "此配置修改不能在运行中生效"


class Unauthorized(HallError):
    """No valid credentials were presented."""

    code = "unauthorized"
    status = 401
    title = "请先登录"


class Forbidden(HallError):
    """The caller's role does not allow this action."""

    code = "forbidden"
    status = 403
    title = "无权执行此操作"


class NotOfferedHere(Forbidden):
    """A kiosk asked for a service its config does not list (or is not configured)."""

    code = "not_offered_here"
    title = "本机不提供此业务"


class RateLimited(HallError):
    """Too many requests from this client."""

    code = "rate_limited"
    status = 429
    title = "请求过于频繁，请稍后再试"


class AccountLocked(HallError):
    """Too many wrong passwords: no login is tried until the lock runs out."""

    code = "account_locked"
    status = 423
    title = "账号已锁定"


class Unavailable(HallError):
    """A dependency (database, device bus) is not reachable now."""

    code = "unavailable"
    status = 503
    title = "服务暂不可用"
