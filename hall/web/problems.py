"""The one place where errors become RFC 9457 problem responses."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from pydantic import ValidationError

from hall.domain.errors import HallError, InvalidInput
from hall.storage.db import CONNECTION_ERRORS, outage

log = logging.getLogger(__name__)

PROBLEM_TYPE_BASE = "urn:hall:problem:"
# Clerks read these in browsers and logs: keep Chinese readable instead of \u escapes.
dumps = functools.partial(json.dumps, ensure_ascii=False)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def problem(
    status: int, code: str, title: str, detail: str | None = None, **extra: Any
) -> web.Response:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": title,
        "status": status,
        "code": code,
    }
    if detail:
        body["detail"] = detail
    body.update({k: v for k, v in extra.items() if v is not None})
    return web.json_response(
        body, status=status, content_type="application/problem+json", dumps=dumps
    )


def from_hall_error(exc: HallError, instance: str | None = None) -> web.Response:
    response = problem(
        exc.status, exc.code, exc.title, exc.detail, instance=instance, **_jsonable(exc.fields)
    )
    if exc.status == 408:
        response.force_close()  # the client is stalled: do not wait for its next request
    retry = exc.fields.get("retry_after_s")
    if isinstance(retry, int) and retry > 0:
        response.headers["Retry-After"] = str(retry)
    return response


# Pydantic error types in the words clerks and kiosk pages show (detail is always Chinese).
_VALIDATION_ZH = {
    "missing": "缺少必填字段",
    "extra_forbidden": "不允许的字段",
    "json_invalid": "不是有效的 JSON",
    "json_type": "必须是 JSON",
    "model_type": "必须是 JSON 对象",
    "model_attributes_type": "必须是 JSON 对象",
    "dict_type": "必须是 JSON 对象",
    "list_type": "必须是数组",
    "string_type": "必须是字符串",
    "string_too_short": "太短",
    "string_too_long": "太长",
    "string_pattern_mismatch": "格式不正确",
    "int_type": "必须是整数",
    "int_parsing": "必须是整数",
    "int_from_float": "必须是整数",
    "float_type": "必须是数字",
    "bool_type": "必须是 true 或 false",
    "greater_than": "超出允许范围",
    "greater_than_equal": "超出允许范围",
    "less_than": "超出允许范围",
    "less_than_equal": "超出允许范围",
    "enum": "不是允许的取值",
    "literal_error": "不是允许的取值",
    "datetime_type": "必须是带时区的 ISO 8601 时间",
    "datetime_parsing": "必须是带时区的 ISO 8601 时间",
    "datetime_from_date_parsing": "必须是带时区的 ISO 8601 时间",
    "timezone_aware": "必须带时区",
    "recursion_loop": "嵌套过深",
}


def _zh_message(err: Any) -> str:
    if err["type"] == "value_error":
        cause = (err.get("ctx") or {}).get("error")
        if cause is not None:
            return str(cause)
    return _VALIDATION_ZH.get(err["type"], "取值不正确")


def from_validation_error(exc: ValidationError, instance: str | None = None) -> web.Response:
    errors = [
        {
            "path": ".".join(str(p) for p in err["loc"]),
            "message": _zh_message(err),
            "type": err["type"],
        }
        for err in exc.errors(include_url=False, include_input=False)
    ]
    return problem(
        InvalidInput.status,
        InvalidInput.code,
        InvalidInput.title,
        "；".join(f"{e['path'] or '请求内容'}：{e['message']}" for e in errors),
        instance=instance,
        errors=errors,
    )


def _jsonable(fields: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v if isinstance(v, (str, int, float, bool, list, dict)) else str(v)
        for k, v in fields.items()
    }


_HTTP_PROBLEMS = {
    400: ("bad_request", "请求格式不正确"),
    404: ("not_found", "接口不存在"),
    405: ("method_not_allowed", "不支持此请求方法"),
    408: ("request_timeout", "请求读取超时"),
    413: ("too_large", "请求内容过大"),
}


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except HallError as exc:
        return from_hall_error(exc, request.path)
    except ValidationError as exc:
        return from_validation_error(exc, request.path)
    except web.HTTPException as exc:
        if exc.status < 400 or not request.path.startswith("/api/"):
            raise
        code, title = _HTTP_PROBLEMS.get(exc.status, ("http_error", "请求无法处理"))
        return problem(exc.status, code, title, title, instance=request.path)
    except CONNECTION_ERRORS as exc:
        # The database went away under the request (hall.storage.db.CONNECTION_ERRORS): a
        # 503 with Retry-After, whatever layer noticed it first.
        log.warning("database unavailable: %s: %s", type(exc).__name__, exc)
        return from_hall_error(outage(), request.path)


@web.middleware
async def last_resort_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The outermost middleware: an exception nobody expected is a problem+json 500.

    The traceback goes to the log (through the PII filter), never to the client. The goal is
    that this never runs: every input error is a 4xx further in.
    """
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unexpected error in %s %s", request.method, request.path)
        return problem(500, HallError.code, HallError.title, "服务器内部错误，请稍后重试")


class _BadHttpRequestFilter(logging.Filter):
    """aiohttp logs a request it cannot parse (answered 400 by its parser) with a traceback at
    ERROR; that is the client's fault, so it becomes one WARNING line without a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError) and 400 <= (exc.code or 400) < 500:
            record.msg = "malformed HTTP request (%s) from %s: %s"
            remote = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            record.args = (exc.code, remote, exc.message)
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info, record.exc_text = None, None
        return True


_BAD_HTTP_FILTER = _BadHttpRequestFilter()


def quiet_bad_http_requests() -> None:
    """Install the filter on aiohttp's server logger (idempotent)."""
    server_log = logging.getLogger("aiohttp.server")
    if _BAD_HTTP_FILTER not in server_log.filters:
        server_log.addFilter(_BAD_HTTP_FILTER)
