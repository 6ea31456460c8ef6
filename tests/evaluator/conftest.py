"""Fixtures of the evaluator slice: a hall with a matter catalogue, a clerk at counter 1."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from hall.config.models import HallConfig
from hall.services.queue import ActionParams, CounterAction, IssueTicket
from hall.web.state import POOL, QUEUE
from tests.access_helpers import staff_headers
from tests.factories import hall_config

Client = TestClient[web.Request, web.Application]

# 2026 National Day (Oct 1-7, per the State Council's notice for that year is assumed here as
# test data), with Sunday Sep 27 and Saturday Oct 10 as make-up working days.
HOLIDAYS = [date(2026, 10, d) for d in range(1, 8)]
WORKDAYS = [date(2026, 9, 27), date(2026, 10, 10)]


def evaluator_body(**evaluation: Any) -> dict[str, Any]:
    base = hall_config(extra_hall={"calendar": {"holidays": HOLIDAYS, "workdays": WORKDAYS}})
    body: dict[str, Any] = base.model_dump(mode="json", by_alias=True, exclude_unset=True)
    body["departments"] = [{"code": "ZRZY", "name": "自然资源局"}]
    body["matters"] = [
        {
            "code": "11000000000000000001",
            "impl_code": "BDC-001",
            "name": "不动产首次登记",
            "department": "ZRZY",
            "kind": "promised",
            "legal_days": 30,
            "promised_days": 5,
        },
        {
            "code": "11000000000000000002",
            "impl_code": "BDC-002",
            "name": "不动产登记资料查询",
            "department": "ZRZY",
            "kind": "immediate",
            "legal_days": 1,
            "promised_days": 0,
        },
    ]
    body["staff"].append(
        {"job_no": "m001", "name": "李主任", "roles": ["manager"], "halls": ["test"]}
    )
    north = copy.deepcopy(body["halls"][0])  # a second hall, built the same way
    north.update(id="north", name="北区便民服务中心")
    body["halls"].append(north)
    if evaluation:
        body["evaluation"] = evaluation
    return body


@pytest.fixture
def config() -> HallConfig:
    return HallConfig.model_validate(evaluator_body())


async def serve_one(client: Client, counter: int = 1, service: str = "BDC") -> int:
    """Issue a ticket and have c001 call and start it at ``counter``; the ticket's id."""
    queue = client.app[QUEUE]
    view = await queue.issue(IssueTicket(hall_id="test", service_code=service))
    state = await client.app[POOL].fetchval(
        "SELECT state::text FROM counters WHERE hall_id = 'test' AND number = $1", counter
    )
    if state == "closed":
        await queue.act("test", counter, CounterAction.OPEN, "c001", ActionParams(clerk="c001"))
    await queue.act("test", counter, CounterAction.CALL_NEXT, "c001")
    await queue.act("test", counter, CounterAction.START, "c001")
    return view.ticket.id


async def finish(client: Client, counter: int = 1) -> None:
    await client.app[QUEUE].act("test", counter, CounterAction.FINISH, "c001")


async def clerk(client: Client) -> dict[str, str]:
    return await staff_headers(client, "c001", roles=("clerk",), counters=(1,))


async def manager(client: Client) -> dict[str, str]:
    return await staff_headers(client, "m001", roles=("manager",))
