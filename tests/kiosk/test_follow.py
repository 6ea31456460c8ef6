"""The ticket page's long poll: it answers when the ticket changes, holds while nothing does,
and says only what the ticket's holder may see."""

from __future__ import annotations

import asyncio

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from kiosk import follow
from tests.access_helpers import admin_bearer_in, admin_headers
from tests.servers import ServerProcess

Client = TestClient[web.Request, web.Application]
FIELDS = {
    "version",
    "number",
    "service_name",
    "state",
    "state_label",
    "people_ahead",
    "wait_text",
    "counter",
    "call_text",
    "note",
    "final",
}


async def issue(client: Client, headers: dict[str, str]) -> str:
    resp = await client.post("/api/v1/halls/test/tickets", json={"service": "BDC"}, headers=headers)
    assert resp.status == 201
    token: str = (await resp.json())["token"]
    return token


async def test_the_poll_answers_when_the_ticket_is_called(client: Client) -> None:
    admin = await admin_headers(client, "follow-admin")
    mine = await issue(client, admin)
    theirs = await issue(client, admin)
    url = f"/api/v1/tickets/{theirs}/follow"

    first = await (await client.get(url)).json()  # no version yet: at once
    assert set(first) == FIELDS  # no token, no hall, nothing about anyone else
    assert first["number"] == "A002" and first["people_ahead"] == 1
    assert first["call_text"] is None
    assert first["wait_text"] == "办理此业务的窗口尚未开放，请稍候"  # none open

    waiting = asyncio.ensure_future(client.get(url, params={"since": first["version"]}))
    opened = await client.post("/api/v1/halls/test/counters/1/open", json={}, headers=admin)
    assert opened.status == 200
    changed = await (await asyncio.wait_for(waiting, 10)).json()
    assert changed["version"] != first["version"]
    assert changed["wait_text"].startswith("预计等候约") or changed["wait_text"].startswith("即将")

    # Calling the first ticket moves the second one up; calling it shows its window.
    await client.post("/api/v1/halls/test/counters/1/call_next", json={}, headers=admin)
    await client.post("/api/v1/halls/test/counters/1/no_show", json={}, headers=admin)
    waiting = asyncio.ensure_future(client.get(url, params={"since": changed["version"]}))
    called = await client.post("/api/v1/halls/test/counters/1/call_next", json={}, headers=admin)
    assert called.status == 200
    last = await (await asyncio.wait_for(waiting, 10)).json()
    for _ in range(5):  # several changes may come one answer at a time
        if last["call_text"]:
            break
        resp = await asyncio.wait_for(client.get(url, params={"since": last["version"]}), 10)
        last = await resp.json()
    assert (last["state"], last["call_text"], last["counter"]) == ("called", "请到1号窗口", 1)
    assert last["people_ahead"] is None

    # The other ticket is over: its poll answers at once as final.
    done = await (await client.get(f"/api/v1/tickets/{mine}/follow?since=x")).json()
    assert done["final"] is True and "过号" in done["note"]


async def test_the_poll_holds_while_nothing_changes(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(follow, "HOLD_S", 0.6)
    admin = await admin_headers(client, "follow-admin2")
    token = await issue(client, admin)
    url = f"/api/v1/tickets/{token}/follow"
    first = await (await client.get(url)).json()
    loop = asyncio.get_running_loop()
    started = loop.time()
    same = await (await client.get(url, params={"since": first["version"]})).json()
    assert loop.time() - started >= 0.5  # held, not answered at once
    assert same == first


async def test_odd_follow_input_is_a_clear_4xx(client: Client) -> None:
    assert (await client.get("/api/v1/tickets/short/follow")).status == 404
    assert (await client.get("/api/v1/tickets/" + "x" * 30 + "/follow")).status == 404
    resp = await client.get("/api/v1/tickets/" + "x" * 30 + "/follow?since=" + "v" * 65)
    assert resp.status == 422


@pytest.mark.slow
async def test_a_stopping_server_answers_held_polls_at_once(
    page_server: ServerProcess, pool: asyncpg.Pool
) -> None:
    admin = await admin_bearer_in(pool, "follow-stop")
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{page_server.url}/api/v1/halls/test/tickets", json={"service": "BDC"}, headers=admin
        ) as resp:
            token = (await resp.json())["token"]
        url = f"{page_server.url}/api/v1/tickets/{token}/follow"
        async with session.get(url) as resp:
            version = (await resp.json())["version"]
        held = asyncio.ensure_future(session.get(url, params={"since": version}))
        await asyncio.wait([held], timeout=1)  # it holds (nothing changes)
        assert not held.done()
        loop = asyncio.get_running_loop()
        started = loop.time()
        await page_server.stop()
        assert loop.time() - started < 10  # not the poll's 25 s hold, nor the 20 s kill
        assert page_server.proc is not None and page_server.proc.returncode == 0
        answer = await asyncio.wait_for(held, 5)
        assert answer.status == 200
        assert (await answer.json())["version"] == version
