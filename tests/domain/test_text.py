"""Text PostgreSQL can store (hall.domain.text): what is refused, with which message, and how
stored JSON (audit details, device event data) is cleaned. The messages are shown to users in
a 422 problem; stored JSON is shown back on the manager console."""

from __future__ import annotations

import math

import pytest

from hall.domain.text import MAX_JSON_DEPTH, clean_json, clean_text, text_problem


def test_storable_text_has_no_problem() -> None:
    assert text_problem("") is None
    assert text_problem("张三 A001 \ufffd 😀") is None


def test_nul_is_refused_with_its_message() -> None:
    assert text_problem("a\x00b") == "不能包含 NUL 字符"


def test_lone_surrogate_is_refused_with_its_message() -> None:
    assert text_problem("a\ud800") == "包含无效的 Unicode 字符（孤立代理项）"
    # NUL is reported first when both are present.
    assert text_problem("\x00\udfff") == "不能包含 NUL 字符"


def test_clean_text_replaces_only_nul_and_surrogates() -> None:
    assert clean_text("a\x00b\ud800c\udfffd") == "a\ufffdb\ufffdc\ufffdd"
    # The code points just outside the surrogate range are kept.
    assert clean_text("\ud7ff\ue000\x00") == "\ud7ff\ue000\ufffd"
    text = "张三 😀"
    assert clean_text(text) is text


def test_clean_json_keeps_plain_values() -> None:
    assert clean_json(None) is None
    assert clean_json(True) is True
    assert clean_json(0) == 0 and clean_json(-7) == -7
    assert clean_json(1.5) == 1.5
    assert clean_json("ok") == "ok"


def test_clean_json_writes_non_finite_floats_as_text() -> None:
    assert clean_json(math.inf) == "inf"
    assert clean_json(-math.inf) == "-inf"
    assert clean_json(math.nan) == "nan"


def test_clean_json_cleans_keys_values_and_other_objects() -> None:
    value = {"k\x00": ["v\ud800", ("t", 1)], 3: {"x": b"\x00"}}
    assert clean_json(value) == {"k\ufffd": ["v\ufffd", ["t", 1]], "3": {"x": "b'\\x00'"}}


def _nested(depth: int) -> object:
    value: object = "leaf"
    for _ in range(depth):
        value = [value]
    return value


def _depth(value: object) -> int:
    depth = 0
    while isinstance(value, list):
        depth += 1
        value = value[0]
    return depth


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH])
def test_clean_json_keeps_nesting_up_to_the_limit(depth: int) -> None:
    assert clean_json(_nested(depth)) == _nested(depth)


def test_clean_json_cuts_deeper_nesting_to_a_marker() -> None:
    cleaned = clean_json(_nested(MAX_JSON_DEPTH + 3))
    assert _depth(cleaned) == MAX_JSON_DEPTH
    inner = cleaned
    for _ in range(MAX_JSON_DEPTH):
        assert isinstance(inner, list)
        inner = inner[0]
    assert inner == "…"
    # Leaves at the limit are still kept as they are.
    assert clean_json({"a": _nested(MAX_JSON_DEPTH - 1)}) == {"a": _nested(MAX_JSON_DEPTH - 1)}


def test_nested_objects_count_towards_the_depth_too() -> None:
    value: object = "leaf"
    for _ in range(MAX_JSON_DEPTH + 1):
        value = {"k": value}
    cleaned = clean_json(value)
    for _ in range(MAX_JSON_DEPTH):
        assert isinstance(cleaned, dict)
        cleaned = cleaned["k"]
    assert cleaned == "…"


def test_json_depth_limit_is_the_documented_one() -> None:
    # docs/security.md, docs/live.md and docs/hardware.md promise 16 levels.
    assert MAX_JSON_DEPTH == 16
