"""Credentials for the core API tests, and a LISTEN connection of their own."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from hall.storage.notify import Notifier
from tests.access_helpers import admin_headers, device_headers, staff_headers

Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def admin(client: Client) -> dict[str, str]:
    return await admin_headers(client)


@pytest.fixture
async def clerk(client: Client) -> dict[str, str]:
    """Clerk c001, assigned to counters 1 and 2 of hall 'test'."""
    return await staff_headers(client, "c001", counters=(1, 2))


@pytest.fixture
async def kiosk(client: Client) -> dict[str, str]:
    return await device_headers(client, "kiosk", device_id="k1")


@pytest.fixture
async def notifier(database_url: str) -> AsyncIterator[Notifier]:
    """A LISTEN connection that retries fast."""
    notifier = Notifier(check_s=0.5, backoff_s=(0.05, 0.2))
    notifier.start(database_url)
    try:
        yield notifier
    finally:
        await notifier.close()
