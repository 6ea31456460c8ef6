"""A ticket's life through the HTTP API, as kiosk, clerk and citizen see it."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

Client = TestClient[web.Request, web.Application]
H = "/api/v1/halls/test"


async def issue(
    client: Client, headers: dict[str, str], service: str = "BDC", **body: Any
) -> dict[str, Any]:
    resp = await client.post(f"{H}/tickets", json={"service": service, **body}, headers=headers)
    assert resp.status == 201, await resp.text()
    data: dict[str, Any] = await resp.json()
    return data


async def act(
    client: Client,
    headers: dict[str, str],
    counter: int,
    action: str,
    status: int = 200,
    **body: Any,
) -> dict[str, Any]:
    resp = await client.post(f"{H}/counters/{counter}/{action}", json=body, headers=headers)
    data: dict[str, Any] = await resp.json()
    assert resp.status == status, data
    return data


async def test_issue_call_serve_finish(
    client: Client, kiosk: dict[str, str], clerk: dict[str, str]
) -> None:
    first = await issue(client, kiosk)
    second = await issue(client, kiosk)
    assert (first["number"], second["number"]) == ("A001", "A002")
    assert second["people_ahead"] == 1

    opened = await act(client, clerk, 1, "open")
    assert opened["clerk"] == "c001"  # the logged-in clerk, not a name from the body
    called = await act(client, clerk, 1, "call_next")
    assert called["state"] == "calling"
    assert called["ticket"]["number"] == "A001"

    status = await (await client.get(f"/api/v1/tickets/{first['token']}")).json()
    assert status["state"] == "called"
    assert status["counter"] == 1

    await act(client, clerk, 1, "recall")
    await act(client, clerk, 1, "start")
    done = await act(client, clerk, 1, "finish")
    assert done["state"] == "idle"
    assert done["ticket"] is None

    status = await (await client.get(f"/api/v1/tickets/{first['token']}")).json()
    assert status["state"] == "done"
    assert status["recall_count"] == 1

    waiting = await (await client.get(f"/api/v1/tickets/{second['token']}")).json()
    assert waiting["people_ahead"] == 0


async def test_snapshot_shows_counters_and_calls(
    client: Client, kiosk: dict[str, str], clerk: dict[str, str]
) -> None:
    await issue(client, kiosk)
    await act(client, clerk, 2, "open")
    await act(client, clerk, 2, "call_next")
    snap = await (await client.get(f"{H}/snapshot", headers=clerk)).json()
    counter = next(c for c in snap["counters"] if c["number"] == 2)
    assert counter["state"] == "calling"
    assert counter["ticket"]["number"] == "A001"
    assert snap["recent_calls"][0] == {**snap["recent_calls"][0], "number": "A001", "counter": 2}
    assert snap["seq"] == 3  # issued, opened, called


async def test_openapi_lists_every_route(client: Client) -> None:
    doc = await (await client.get("/api/v1/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    assert "/api/v1/halls/{hall}/tickets" in doc["paths"]
    body = doc["paths"]["/api/v1/halls/{hall}/tickets"]["post"]["requestBody"]
    schema_ref = body["content"]["application/json"]["schema"]["$ref"]
    assert schema_ref.endswith("IssueTicketBody")
    assert "service" in doc["components"]["schemas"]["IssueTicketBody"]["properties"]


async def test_openapi_says_which_endpoints_need_credentials(client: Client) -> None:
    doc = await (await client.get("/api/v1/openapi.json")).json()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearer"] == {**schemes["bearer"], "type": "http", "scheme": "bearer"}
    assert schemes["session_cookie"]["name"] == "hall_session"
    paths = doc["paths"]
    # Anyone may log in or follow a ticket by its token; a counter needs a signed-in caller.
    assert paths["/api/v1/login"]["post"]["security"] == [{}]
    assert paths["/api/v1/tickets/{token}"]["get"]["security"] == [{}]
    action = paths["/api/v1/halls/{hall}/counters/{number}/{action}"]["post"]
    assert {"bearer": []} in action["security"]
    assert {} not in action["security"]
    assert action["x-access"] == "counter_clerk"


async def test_healthz_reports_database(client: Client) -> None:
    resp = await client.get("/healthz")
    assert resp.status == 200
    assert (await resp.json())["database"]["ok"] is True
