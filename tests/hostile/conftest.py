"""Fixtures of the hostile-input tests: two halls, roomy rate limits, log checks."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.access.conftest import config as two_hall_config
from tests.access.conftest import roomy_settings
from tests.conftest import AppFactory

Client = TestClient[web.Request, web.Application]
CJK = re.compile(r"[\u4e00-\u9fff]")

config = two_hall_config  # hall 'test' (kiosk k1, screen s1) and hall 'north'


@pytest.fixture
async def hostile_client(make_client: AppFactory) -> Client:
    return await make_client(access=roomy_settings())


def assert_problem(status: int, content_type: str, body: dict[str, Any]) -> None:
    """A 4xx problem+json whose detail a Chinese-speaking clerk can read."""
    assert 400 <= status < 500, (status, body)
    assert content_type == "application/problem+json", content_type
    assert body["status"] == status
    assert CJK.search(body.get("detail", "")), body


def assert_no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    bad = [
        r.getMessage()
        for r in caplog.records
        if r.exc_info is not None or r.levelno >= logging.ERROR
    ]
    assert not bad, bad
