"""The start page lists every hall with the pages of the installed features; page hooks let
one feature's page load another feature's module."""

from __future__ import annotations

import re

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from hall.app import FEATURES, Settings, create_app
from hall.config.models import HallConfig
from hall.web.start_page import Audience, PageHook, PageLink, add_pages
from tests.conftest import AppFactory


async def test_the_start_page_lists_each_hall_with_the_features_pages(
    make_client: AppFactory, config: HallConfig
) -> None:
    client = await make_client()
    response = await client.get("/")
    assert response.status == 200
    text = await response.text()
    halls = re.findall(r'<section class="hall" data-hall="([^"]+)"><h2>([^<]+)</h2>', text)
    assert halls == [(h.id, h.name) for h in config.halls]
    declared = [p for f in FEATURES for p in f.pages]
    assert declared, "no feature declares a page"
    for page in declared:
        for hall in config.halls:
            assert f'href="{page.path.replace("{hall}", hall.id)}"' in text
    assert 'href="/pair"' in text
    assert 'href="/admin/devices"' in text


async def test_page_hooks_list_the_modules_of_a_slot(
    database_url: str, config: HallConfig, pool: object
) -> None:
    app = create_app(Settings(database_url=database_url, config=config))
    add_pages(
        app,
        [PageLink("/x/{hall}", "测试页", Audience.MANAGER)],
        [PageHook("counter.finish", "/x/form.js"), PageHook("other.slot", "/x/other.js")],
    )
    client: TestClient[web.Request, web.Application] = TestClient(TestServer(app))
    await client.start_server()
    try:
        hooks = await client.get("/api/v1/page-hooks/counter.finish")
        installed = [
            h.module for f in FEATURES for h in f.page_hooks if h.slot == "counter.finish"
        ]  # the features' own hooks (e.g. the evaluator's case form) come first
        assert (await hooks.json()) == {"modules": [*installed, "/x/form.js"]}
        assert (await (await client.get("/api/v1/page-hooks/none")).json()) == {"modules": []}
        bad = await client.get("/api/v1/page-hooks/%3Cscript%3E")
        assert bad.status == 404 and bad.content_type == "application/problem+json"
        hall = config.halls[0].id
        assert f'href="/x/{hall}">测试页' in await (await client.get("/")).text()
    finally:
        await client.close()


def test_a_page_link_or_hook_with_a_foreign_address_is_refused() -> None:
    with pytest.raises(ValueError, match="path on this server"):
        PageLink("https://example.com/", "外部", Audience.CITIZEN)
    with pytest.raises(ValueError, match="path on this server"):
        PageHook("counter.finish", "//cdn.example.com/x.js")
