"""Text PostgreSQL can store: no NUL, no lone surrogates, no NaN in JSON (standard library)."""

from __future__ import annotations

import math
from typing import Any

MAX_JSON_DEPTH = 16
"""Deepest nesting of arrays and objects accepted in a JSON body or message, and kept in
stored JSON (deeper parts are cut to a marker)."""


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text, or None when it can."""
    if "\x00" in value:
        return "不能包含 NUL 字符"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "包含无效的 Unicode 字符（孤立代理项）"
    return None


def clean_text(value: str) -> str:
    """``value`` with NUL and lone surrogates replaced by U+FFFD, so it can always be stored."""
    if text_problem(value) is None:
        return value
    return "".join("\ufffd" if ch == "\x00" or 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in value)


def clean_json(value: Any) -> Any:
    """A JSON value PostgreSQL's jsonb accepts: clean text, no NaN or infinities, no deep
    nesting (cut to a marker string)."""
    return _clean(value, 0)


def _clean(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if depth >= MAX_JSON_DEPTH:
        return "…"
    if isinstance(value, dict):
        return {clean_text(str(k)): _clean(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v, depth + 1) for v in value]
    return clean_text(str(value))
