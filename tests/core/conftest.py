"""Credentials for the core API tests."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

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
