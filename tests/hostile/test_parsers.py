"""Hypothesis on the parsers hostile input reaches: each either parses or refuses in its own
documented way, never with another exception.

(The HB/1 frame decoder has its own properties in tests/firmware_bridge/test_codec.py.)
"""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_bridge.emulators.printer import EscPosPrinter
from hall.config.loader import ConfigError, parse_config
from hall.domain.errors import InvalidInput
from hall.domain.policy import Candidate, PolicySettings, appointment_open
from hall.domain.text import MAX_JSON_DEPTH, clean_json, clean_text, text_problem
from hall.web.schemas import IssueTicketBody
from hall.web.validation import (
    MAX_PARAM_LEN,
    ascii_int,
    check_appointment,
    check_params,
    check_text_tree,
    json_depth,
    load_json,
)

EXAMPLES = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Any code point, lone surrogates and NUL included.
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
JSON_LEAF = st.none() | st.booleans() | st.integers() | st.floats() | ANY_TEXT
JSON = st.recursive(
    JSON_LEAF,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4),
    max_leaves=30,
)
EXAMPLE_CONFIG = (Path(__file__).resolve().parents[2] / "examples" / "county-hall.toml").read_text(
    "utf-8"
)


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


# --- path and query parameters ---------------------------------------------------------------


@EXAMPLES
@given(raw=ANY_TEXT)
def test_ids_are_ascii_digits_or_refused(raw: str) -> None:
    if raw.isascii() and raw.isdigit() and len(raw) <= 6:
        assert ascii_int(raw, "id", 6) == int(raw)
    else:
        with pytest.raises(InvalidInput):
            ascii_int(raw, "id", 6)


@EXAMPLES
@given(segment=ANY_TEXT, query=st.dictionaries(ANY_TEXT, ANY_TEXT, max_size=3))
def test_path_and_query_values_pass_only_when_storable(segment: str, query: dict[str, str]) -> None:
    from urllib.parse import quote

    encoded = "&".join(
        f"{quote(k, errors='surrogatepass')}={quote(v, errors='surrogatepass')}"
        for k, v in query.items()
    )
    path = "/api/v1/tickets/" + quote(segment, safe="", errors="surrogatepass")
    request = make_mocked_request("GET", path + ("?" + encoded if encoded else ""))
    request.match_info.update({"token": segment})  # what the router would have matched
    values = [segment, *request.query.values(), *request.query]
    if any(text_problem(v) is not None or len(v) > MAX_PARAM_LEN for v in values):
        with pytest.raises(InvalidInput):
            check_params(request)
    else:
        check_params(request)


# --- JSON bodies and messages -------------------------------------------------------------------


@EXAMPLES
@given(raw=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_load_json_refuses_only_with_invalid_input(raw: bytes) -> None:
    with contextlib.suppress(InvalidInput):
        load_json(raw)


@EXAMPLES
@given(value=JSON)
def test_load_json_reads_what_it_should_and_bounds_nesting(value: Any) -> None:
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False)
    except ValueError:
        return  # NaN: not JSON
    raw = text.encode("utf-8", "surrogatepass")
    depth = _depth(value)
    if depth > MAX_JSON_DEPTH:
        with pytest.raises(InvalidInput):
            load_json(raw)
    else:
        try:
            assert load_json(raw) == value
        except InvalidInput:
            assert "\\ud" in text.lower() or any(0xD800 <= ord(c) <= 0xDFFF for c in text)


@EXAMPLES
@given(depth=st.integers(0, 6000), kind=st.sampled_from(["[", '{"a":']))
def test_json_depth_counts_nesting_outside_strings(depth: int, kind: str) -> None:
    close = "]" if kind == "[" else "}"
    inner = "1" if kind != "[" else ""
    raw = (kind * depth + inner + close * depth).encode()
    assert json_depth(raw) == depth or (depth <= MAX_JSON_DEPTH and json_depth(raw) >= depth)
    quoted = ('"' + kind * depth + '"').encode()
    assert json_depth(quoted) <= MAX_JSON_DEPTH


@EXAMPLES
@given(value=JSON)
def test_cleaned_json_is_always_storable(value: Any) -> None:
    cleaned = clean_json(value)
    text = json.dumps(cleaned, allow_nan=False, ensure_ascii=False)
    text.encode("utf-8")  # no lone surrogates
    assert "\\u0000" not in text
    assert _depth(cleaned) <= MAX_JSON_DEPTH + 1


@EXAMPLES
@given(value=JSON)
def test_the_body_text_check_refuses_exactly_unstorable_strings(value: Any) -> None:
    try:
        check_text_tree(value)
        refused = False
    except InvalidInput:
        refused = True
    assert refused == any(text_problem(s) is not None for s in _strings(value))


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


@EXAMPLES
@given(text=ANY_TEXT)
def test_clean_text_only_replaces_what_postgresql_refuses(text: str) -> None:
    cleaned = clean_text(text)
    assert text_problem(cleaned) is None
    assert len(cleaned) == len(text)
    if text_problem(text) is None:
        assert cleaned == text


# --- appointment times ---------------------------------------------------------------------------

ANY_TIME = st.datetimes(timezones=st.none() | st.timezones())


@EXAMPLES
@given(start=st.none() | ANY_TIME, end=st.none() | ANY_TIME)
def test_appointment_checks_refuse_only_with_invalid_input(
    start: datetime | None, end: datetime | None
) -> None:
    now = datetime(2026, 11, 24, 2, tzinfo=UTC)
    try:
        check_appointment(start, end, now)
    except InvalidInput:
        return
    if start is not None:
        assert start.utcoffset() is not None and abs(start - now) <= timedelta(hours=24)
        assert end is None or end > start


@EXAMPLES
@given(raw=JSON_LEAF | st.datetimes().map(datetime.isoformat))
def test_appointment_fields_take_only_zoned_iso_text(raw: Any) -> None:
    body = json.dumps({"service": "BDC", "appointment_start": raw}, default=str)
    try:
        parsed = IssueTicketBody.model_validate_json(body).appointment_start
    except ValueError:
        return  # pydantic's ValidationError is a ValueError: a 422
    assert raw is None or (isinstance(raw, str) and parsed is not None and parsed.tzinfo)


@EXAMPLES
@given(start=ANY_TIME, end=st.none() | ANY_TIME, now=ANY_TIME)
def test_the_appointment_window_never_raises(
    start: datetime, end: datetime | None, now: datetime
) -> None:
    candidate = Candidate(
        ticket_id=1,
        service_code="BDC",
        queue_key=datetime(2026, 11, 24, tzinfo=UTC),
        priority=False,
        target_counter=None,
        appointment_start=start,
        appointment_end=end,
    )
    policy = PolicySettings(
        priority_ratio=3,
        max_bypass=timedelta(minutes=30),
        appointment_early=timedelta(minutes=240),
        appointment_late=timedelta(minutes=240),
    )
    appointment_open(candidate, policy, now)


# --- the config loader ---------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=300))
def test_config_text_parses_or_raises_config_error(text: str) -> None:
    with contextlib.suppress(ConfigError):
        parse_config(text)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_mangled_example_config_parses_or_raises_config_error(data: st.DataObject) -> None:
    lines = EXAMPLE_CONFIG.splitlines()
    i = data.draw(st.integers(0, len(lines) - 1))
    replacement = data.draw(
        st.sampled_from(["", "x = ", "[[halls]]", 'id = "\\u0000"', "number = -1", "]]"])
        | st.text(max_size=30)
    )
    lines[i] = replacement if data.draw(st.booleans()) else lines[i] + replacement
    with contextlib.suppress(ConfigError):
        parse_config("\n".join(lines))


# --- the ESC/POS printer emulator's stream parser ------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(stream=st.binary(max_size=400), cut=st.integers(0, 400))
def test_the_printer_parser_takes_any_bytes_in_any_split(stream: bytes, cut: int) -> None:
    whole, split = EscPosPrinter(), EscPosPrinter()
    answers = whole.feed(stream)
    answers_split = split.feed(stream[:cut]) + split.feed(stream[cut:])
    assert answers == answers_split
    assert [j.lines for j in whole.jobs] == [j.lines for j in split.jobs]
