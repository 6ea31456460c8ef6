"""The phone rating page with the hall's extra dimensions (服务效率, 服务态度) in Chromium."""

from __future__ import annotations

import aiohttp
import asyncpg
import pytest

from hall.config.models import HallConfig
from tests.access_helpers import admin_bearer_in
from tests.browser import chromium_page
from tests.evaluator.conftest import evaluator_body
from tests.evaluator.test_browser import (  # noqa: F401 - the server fixture
    Hall,
    pytestmark,
    server,
)
from tests.servers import ServerProcess


@pytest.fixture
def config() -> HallConfig:
    return HallConfig.model_validate(evaluator_body(dimensions=["efficiency", "attitude"]))


async def test_the_phone_page_sends_the_dimensions_picked_with_the_level(
    server: ServerProcess,  # noqa: F811
    pool: asyncpg.Pool,
) -> None:
    admin = await admin_bearer_in(pool, "eval-admin")
    async with (
        aiohttp.ClientSession(headers=admin) as api,
        chromium_page(390, 844) as (page, errors),
    ):
        hall = Hall(api, server.url)
        await hall.post("/counters/1/open", {"clerk": "c001"})
        await hall.visit(finish=False)
        active = await pool.fetchval("SELECT id FROM tickets")
        case = await hall.post(
            "/evaluator/counters/1/cases", {"ticket_id": active, "matter": "BDC-002"}
        )  # 即办件: completed at once, rateable by its link
        await page.goto(case["rating_url"])
        await page.wait_for_selector(".dims select[name=efficiency]", timeout=10_000)
        assert await page.locator(".dims label").all_text_contents() == [
            "服务效率 未评5 非常满意4 满意3 基本满意2 不满意1 非常不满意",
            "服务态度 未评5 非常满意4 满意3 基本满意2 不满意1 非常不满意",
        ]
        await page.select_option(".dims select[name=attitude]", "3")
        await page.click(".levels button[data-level='4']")
        await page.wait_for_selector("text=感谢您的评价", timeout=10_000)
        row = await pool.fetchrow("SELECT level, dims, channel FROM ratings")
        assert row is not None and tuple(row) == (4, [0, 3], "phone")
        assert errors == []
