"""The pool decodes jsonb with pydantic's parser: values equal to what json.loads gives."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

# What jsonb can hold, at its edges: numbers past float and int64, exponents, negative zero,
# escapes, non-BMP text, nesting, and the duplicate keys jsonb itself resolves.
SAMPLES = [
    r'{"a": [1, -0, -0.0, 0.1, 1e-400, 1.5E+3, 123456789012345678901234567890.5]}',
    r"[9223372036854775808, -99999999999999999999999999999999999999, 1.7976931348623157e308]",
    r'["\u0001\t\n\"\\/", "汉字 😀", "\ud83d\ude00", ""]',
    r'{"b": {"c": [[], {}, null, true, false]}, "a": 1, "a": 2}',
    r'"text"',
    r"3.141592653589793",
    r'[[1, "open", 12.34], [2, "paused", 0.0]]',
]


async def test_jsonb_decodes_as_json_loads_would(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        for text in SAMPLES:
            stored: str = await conn.fetchval("SELECT $1::text::jsonb::text", text)
            value: Any = await conn.fetchval("SELECT $1::text::jsonb", text)
            expected = json.loads(stored)
            assert value == expected, text
            assert json.dumps(value) == json.dumps(expected), text  # types too (1 vs 1.0)
