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


SHORT_TIMEOUT_S = 300  # starting servers on a fresh durable data dir is slow on a busy CI box
LONG_TIMEOUT_S = 1800


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = str(__file__).rsplit("/", 1)[0]
    timeout = LONG_TIMEOUT_S if config.getoption("--long") else SHORT_TIMEOUT_S
    for item in items:
        if str(item.path).startswith(here + "/") and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(timeout))
