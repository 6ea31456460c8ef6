"""JSON answers are the serializer's bytes: pinned to what ``model_dump_json`` gives.

``hall.web.api.json`` builds the body from ``__pydantic_serializer__.to_json`` instead of
``model_dump_json()``'s str (session 8): the bytes and the header must stay exactly what
``web.Response(text=model.model_dump_json(), content_type="application/json")`` sent.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

from aiohttp import web
from pydantic import BaseModel

from hall.web import schemas
from hall.web.api import json, json_list

SHANGHAI = timezone(timedelta(hours=8))


def _ticket() -> schemas.TicketOut:
    return schemas.TicketOut(
        token="tok_Ab3-_x",
        number="A023",
        hall="县政务服务中心",
        service="A",
        service_name='社保 "医保" 业务\\办理',
        purpose="",
        priority_class=None,
        state="waiting",
        state_label="等候中",
        business_day=date(2026, 12, 3),
        issued_at=datetime(2026, 12, 3, 9, 5, 7, 123456, tzinfo=SHANGHAI),
        counter=None,
        target_counter=7,
        recall_count=0,
        people_ahead=12,
        estimated_wait_s=754.5,
        wait_low_s=600.0,
        wait_high_s=1e21,
        replayed=False,
    )


def _counter() -> schemas.CounterOut:
    return schemas.CounterOut(
        hall="test",
        number=3,
        state="serving",
        state_label="办理中",
        state_since=datetime(2026, 12, 3, 1, 2, 3, tzinfo=UTC),
        pause_reason=None,
        clerk="c001",
        ticket=schemas.ActiveTicketOut(
            id=2**40,
            number="B101",
            service="B",
            state="serving",
            recall_count=2,
            called_at=datetime(2026, 12, 3, 1, 0, 0, tzinfo=UTC),
            serve_started_at=None,
        ),
    )


def _reference(text: str) -> web.Response:
    return web.Response(text=text, content_type="application/json")


def _assert_same(answer: web.Response, reference: web.Response) -> None:
    assert answer.body == reference.body
    assert answer.headers["Content-Type"] == reference.headers["Content-Type"]
    assert answer.charset == reference.charset


def test_json_sends_model_dump_json_bytes() -> None:
    models: list[BaseModel] = [
        _ticket(),
        _counter(),
        _counter().model_copy(update={"ticket": None}),
    ]
    for model in models:
        answer = json(model, status=201)
        assert answer.status == 201
        _assert_same(answer, _reference(model.model_dump_json()))


def test_json_list_sends_the_list_of_model_dump_json() -> None:
    models = [_ticket(), _ticket().model_copy(update={"number": "A024", "people_ahead": None})]
    text = "[" + ",".join(m.model_dump_json() for m in models) + "]"
    _assert_same(json_list(models), _reference(text))
    _assert_same(json_list([]), _reference("[]"))
