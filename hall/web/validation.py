"""Validation at the web edge: what a request may carry before any handler or query sees it.

One middleware checks every path parameter, query parameter and the headers we store; the
JSON helpers bound nesting and refuse text PostgreSQL cannot hold. The rules (docs/security.md):

- ids in paths and queries are ASCII digits (``int("²")`` and ``int("①")`` raise);
- text has no NUL (PostgreSQL ``text`` cannot hold it) and no lone surrogate (not UTF-8);
- path and query values are at most ``MAX_PARAM_LEN`` characters;
- JSON bodies and messages nest at most ``MAX_JSON_DEPTH`` levels;
- appointment times carry a zone, lie within ``APPOINTMENT_WINDOW`` of now, and end after
  they start.

Every refusal is an ``InvalidInput`` (422 problem+json with a Chinese detail).
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from hall.domain.errors import InvalidInput, RequestTimeout
from hall.domain.text import MAX_JSON_DEPTH, clean_text, text_problem
from hall.web.problems import Handler
from hall.web.state import READ_TIMEOUT

MAX_BODY = 16 * 1024
MAX_PARAM_LEN = 200
MAX_HEADER_TEXT = 300  # stored headers (User-Agent) are cut to this length
APPOINTMENT_WINDOW = timedelta(hours=24)
"""An appointment checked in at a kiosk is for today: its slot lies within a day of now."""

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def json_depth(raw: bytes) -> int:
    """How deep arrays and objects nest in the JSON text ``raw`` (strings skipped); an upper
    bound when that is at most ``MAX_JSON_DEPTH``."""
    opens = raw.count(b"[") + raw.count(b"{")
    if opens <= MAX_JSON_DEPTH:
        return opens  # fast path (nearly every body): an upper bound is enough
    depth = deepest = 0
    for byte in _STRING.sub(b'""', raw):
        if byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        elif byte in b"]}":
            depth -= 1
    return deepest


async def read_body(request: web.Request) -> bytes:
    """The raw body, at most ``MAX_BODY`` bytes, arriving within the read timeout."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise InvalidInput("请求内容过大")
    if request.content.is_eof():
        # All of it has arrived (nearly every body: it comes with the headers) or it was read
        # before: reading cannot wait, so no timer is armed (a tenth of a drain request's
        # middleware CPU went into arming and cancelling one, twice per request).
        return await request.read()
    try:
        async with asyncio.timeout(request.app[READ_TIMEOUT]):
            return await request.read()
    except TimeoutError:
        raise RequestTimeout("请求内容未在规定时间内送达") from None


def check_json_depth(raw: bytes) -> None:
    if json_depth(raw) > MAX_JSON_DEPTH:
        raise InvalidInput(f"JSON 嵌套层数不能超过 {MAX_JSON_DEPTH}")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# ``json.loads`` with ``parse_constant`` builds a decoder (and its scanner) for every call,
# about a third of its time on an issue request's body (audited by the access middleware).
_DECODER = json.JSONDecoder(parse_constant=_no_constant)


def load_json(raw: bytes | str) -> Any:
    """``json.loads`` with bounded nesting and no NaN/Infinity; InvalidInput when malformed."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    check_json_depth(data)
    try:
        # What json.loads does with bytes, with the one decoder.
        return _DECODER.decode(data.decode(json.detect_encoding(data), "surrogatepass"))
    except (ValueError, RecursionError):
        raise InvalidInput("请求内容不是有效的 JSON") from None


def check_text_tree(value: Any, path: str = "") -> None:
    """Refuse NUL and lone surrogates anywhere in a parsed body (strings, keys, lists)."""
    if isinstance(value, str):
        problem = text_problem(value)
        if problem is not None:
            raise InvalidInput(f"{path or '请求内容'}{problem}", parameter=path or None)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text_tree(str(key), path)
            check_text_tree(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            check_text_tree(item, f"{path}.{i}" if path else str(i))


def ascii_int(raw: str | None, name: str, max_digits: int) -> int:
    """An id from a path or query: ASCII digits only, at most ``max_digits`` of them."""
    if raw is None or not (raw.isascii() and raw.isdigit()) or len(raw) > max_digits:
        raise InvalidInput(f"{name} 必须是不超过 {max_digits} 位的数字", parameter=name)
    return int(raw)


def ascii_int_or_none(raw: str | None, max_digits: int) -> int | None:
    """Like ``ascii_int`` but None instead of an error (for access checks)."""
    if raw is None or not (raw.isascii() and raw.isdigit()) or len(raw) > max_digits:
        return None
    return int(raw)


def stored_header(request: web.Request, name: str) -> str | None:
    """A header we store (User-Agent): cut to length, with bytes PostgreSQL refuses replaced.

    aiohttp decodes header bytes that are not UTF-8 as lone surrogates."""
    value = request.headers.get(name)
    if value is None:
        return None
    return clean_text(value[:MAX_HEADER_TEXT])


def check_appointment(start: datetime | None, end: datetime | None, now: datetime) -> None:
    """An appointment slot: zoned times, within a day of now, end after start."""
    if start is None:
        if end is not None:
            raise InvalidInput("有 appointment_end 时必须同时给出 appointment_start")
        return
    for name, value in (("appointment_start", start), ("appointment_end", end)):
        if value is None:
            continue
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidInput(f"{name} 必须带时区，例如 2026-11-24T10:00:00+08:00", parameter=name)
        # Differences of two datetimes never overflow; value ± window could.
        if abs(value - now) > APPOINTMENT_WINDOW:
            raise InvalidInput(f"{name} 必须在当前时间前后 24 小时之内", parameter=name)
    if end is not None and end <= start:
        raise InvalidInput(
            "appointment_end 必须晚于 appointment_start", parameter="appointment_end"
        )


def check_params(request: web.Request) -> None:
    """Refuse path, query and header values the rules above do not allow."""
    for name, value in request.match_info.items():
        _check_param(name, value)
    for name, value in request.query.items():
        _check_param(name, name, "参数名")
        _check_param(name, value)
    key = request.headers.get("Idempotency-Key")
    if key is not None and (not key.isascii() or not key.isprintable()):
        raise InvalidInput("Idempotency-Key 只能包含可见的 ASCII 字符", parameter="Idempotency-Key")


def _check_param(name: str, value: str, what: str = "") -> None:
    label = clean_text(name[:40])
    if len(value) > MAX_PARAM_LEN:
        raise InvalidInput(f"参数 {label} 过长（最多 {MAX_PARAM_LEN} 个字符）", parameter=label)
    problem = text_problem(value)
    if problem is not None:
        raise InvalidInput(f"参数 {label}{what}{problem}", parameter=label)


@web.middleware
async def edge_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse path and query parameters (and stored headers) no handler can use."""
    check_params(request)
    return await handler(request)
