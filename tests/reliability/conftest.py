"""Crash and restart tests: real ``hall`` processes on a durable embedded PostgreSQL on disk.

Short variants run in CI; ``pytest --long`` runs the long ones (more clients, more tickets,
several crashes in one burst).
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--long",
        action="store_true",
        default=False,
        help="run the long variants of tests/reliability (minutes instead of seconds)",
    )


@pytest.fixture
def long_run(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--long"))
