"""JSON answers are the serializer's bytes: pinned to what ``model_dump_json`` gives.

``hall.web.api.json`` builds the body from ``__pydantic_serializer__.to_json`` instead of
``model_dump_json()``'s str (session 8): the bytes and the header must stay exactly what
``web.Response(text=model.model_dump_json(), content_type="application/json")`` sent.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from hall.config.models import Purpose
from hall.domain.tickets import CounterState, CounterStatus, Ticket, TicketState
from hall.services.queue import CounterView, TicketView
from hall.web import schemas
from hall.web.api import counter_json, counter_out, json, json_list, ticket_json, ticket_out

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


def _view(**changes: Any) -> TicketView:
    ticket = Ticket(
        id=2**40,
        hall_id="县政务服务中心",
        service_code="A",
        number_group="A",
        business_day=date(2026, 12, 3),
        seq=23,
        display_number="A023",
        purpose=Purpose.CONSULT,
        priority_class=None,
        state=TicketState.WAITING,
        issued_at=datetime(2026, 12, 3, 9, 5, 7, 123456, tzinfo=SHANGHAI),
        queue_key=datetime(2026, 12, 3, 9, 5, 7, 123456, tzinfo=SHANGHAI),
    )
    name = '社保 "医保" 业务\\办理'
    view = TicketView(ticket, "tok_Ab3-_x", name, 12, 754.5, False, 600.0, 909.0)
    ticket_changes = {k: v for k, v in changes.items() if hasattr(ticket, k)}
    view_changes = {k: v for k, v in changes.items() if not hasattr(ticket, k)}
    return replace(view, ticket=replace(ticket, **ticket_changes), **view_changes)


def test_ticket_json_sends_the_models_bytes() -> None:
    """An issued or looked-up ticket's answer is written without its model: byte for byte
    what the model gives, whatever the figures (whole numbers, none, huge, not finite)."""
    views = [
        _view(),
        _view(issued_at=datetime(2026, 12, 3, 1, 5, 7, tzinfo=UTC), purpose=Purpose.APPLY),
        _view(estimated_wait_s=0, wait_low_s=0, wait_high_s=60, people_ahead=0),
        _view(estimated_wait_s=None, wait_low_s=None, wait_high_s=None, people_ahead=None),
        _view(estimated_wait_s=1e21, wait_low_s=1e-7, wait_high_s=float("inf")),
        _view(estimated_wait_s=float("nan"), wait_low_s=-0.0, wait_high_s=2.5e-320),
        _view(
            state=TicketState.CALLED,
            counter_number=7,
            target_counter=3,
            recall_count=2,
            priority_class="老年人",
            replayed=True,
        ),
        _view(state=TicketState.DONE, display_number='B\u0000"x', business_day=date(1, 1, 1)),
    ]
    for view in views:
        for status in (200, 201):
            answer = ticket_json(view, status)
            assert answer.status == status
            _assert_same(answer, json(ticket_out(view), status))
            _assert_same(answer, _reference(ticket_out(view).model_dump_json()))


def test_counter_json_sends_the_models_bytes() -> None:
    """A counter's answer (every counter action's) is written without its models: byte for
    byte what they give, with and without a ticket, in every state."""
    since = datetime(2026, 12, 3, 1, 2, 3, 456, tzinfo=SHANGHAI)
    ticket = _view().ticket
    views = [
        CounterView(CounterStatus("test", 3, CounterState.IDLE, since), None),
        CounterView(
            CounterStatus("县政务服务中心", 2**31, CounterState.PAUSED, since, "午休\\", None),
            None,
        ),
        CounterView(
            CounterStatus("test", 3, CounterState.CALLING, since, None, "c001"),
            replace(ticket, state=TicketState.CALLED, called_at=since, recall_count=2),
        ),
        CounterView(
            CounterStatus("test", 3, CounterState.SERVING, since.astimezone(UTC), None, "c001"),
            replace(
                ticket,
                state=TicketState.SERVING,
                called_at=since,
                serve_started_at=since.astimezone(UTC),
            ),
        ),
    ]
    for view in views:
        answer = counter_json(view)
        assert answer.status == 200
        _assert_same(answer, json(counter_out(view)))
        _assert_same(answer, _reference(counter_out(view).model_dump_json()))
