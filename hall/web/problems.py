"""The one place where errors become RFC 9457 problem responses."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
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
    retry = exc.fields.get("retry_after_s")
    if isinstance(retry, int) and retry > 0:
        response.headers["Retry-After"] = str(retry)
    return response


def from_validation_error(exc: ValidationError, instance: str | None = None) -> web.Response:
    errors = [
        {
            "path": ".".join(str(p) for p in err["loc"]),
            "message": err["msg"],
            "type": err["type"],
        }
        for err in exc.errors(include_url=False, include_input=False)
    ]
    return problem(
        InvalidInput.status,
        InvalidInput.code,
        InvalidInput.title,
        "; ".join(f"{e['path'] or '(body)'}: {e['message']}" for e in errors),
        instance=instance,
        errors=errors,
    )


def _jsonable(fields: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v if isinstance(v, (str, int, float, bool, list, dict)) else str(v)
        for k, v in fields.items()
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
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
            exc.status, "http_error"
        )
        return problem(exc.status, code, exc.reason, instance=request.path)
    except CONNECTION_ERRORS as exc:
        # The database went away under the request (hall.storage.db.CONNECTION_ERRORS): a
        # 503 with Retry-After, whatever layer noticed it first.
        log.warning("database unavailable: %s: %s", type(exc).__name__, exc)
        return from_hall_error(outage(), request.path)
