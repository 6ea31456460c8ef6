"""Fixtures of the access-control tests: a config with kiosks, screens and a second hall."""

from __future__ import annotations

import copy

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from hall.config.models import HallConfig
from hall.security.ratelimit import BucketSpec
from hall.web.access import AccessSettings
from tests.access_helpers import FAST_SCRYPT
from tests.conftest import AppFactory
from tests.factories import hall_config

Client = TestClient[web.Request, web.Application]


@pytest.fixture
def config() -> HallConfig:
    """Hall 'test' with kiosk k1 and screen s1, and a second hall 'north' built the same way."""
    base = hall_config(
        extra_hall={
            "kiosks": [{"id": "k1", "name": "一号取号机"}],
            "screens": [{"id": "s1", "name": "大厅综合屏"}],
        }
    )
    body = base.model_dump(mode="json", exclude_unset=True)
    north = copy.deepcopy(body["halls"][0])
    north.update(id="north", name="北区便民服务中心")
    body["halls"].append(north)
    return HallConfig.model_validate(body)


def roomy_settings(**overrides: object) -> AccessSettings:
    """Cheap password hashing and rate limits no test run reaches, unless overridden."""
    settings = AccessSettings(
        password_params=FAST_SCRYPT,
        public_rate=BucketSpec(10_000, 1_000),
        login_rate=BucketSpec(10_000, 1_000),
    )
    for key, value in overrides.items():
        setattr(settings, key, value)
    return settings


@pytest.fixture
async def access_client(make_client: AppFactory) -> Client:
    return await make_client(access=roomy_settings())
