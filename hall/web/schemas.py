"""Request and response bodies of the HTTP API; the OpenAPI document is built from these."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from hall.config.models import Purpose
from hall.services.queue import CounterAction


class Body(BaseModel):
    """Request bodies: unknown fields and loose types are errors."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class IssueTicketBody(Body):
    service: Annotated[str, Field(min_length=1, max_length=32)]
    purpose: Purpose = Purpose.APPLY
    priority_class: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    appointment_start: datetime | None = None
    appointment_end: datetime | None = None
    kiosk: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    idempotency_key: Annotated[str, Field(min_length=8, max_length=80)] | None = None

    model_config = ConfigDict(extra="forbid", strict=False, frozen=True)


class CounterActionBody(Body):
    clerk: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    number: Annotated[str, Field(pattern=r"^[A-Za-z]{1,2}\d{1,5}$")] | None = None
    to_service: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    to_counter: Annotated[int, Field(ge=1, le=999)] | None = None
    reason: Annotated[str, Field(min_length=1, max_length=200)] | None = None


class TicketOut(Out):
    token: str
    number: str
    hall: str
    service: str
    service_name: str
    purpose: str
    priority_class: str | None
    state: str
    state_label: str
    business_day: date
    issued_at: datetime
    counter: int | None
    target_counter: int | None
    recall_count: int
    people_ahead: int | None
    estimated_wait_s: float | None
    replayed: bool = False


class ServiceOut(Out):
    code: str
    name: str
    prefix: str
    waiting: int
    estimated_wait_s: float | None
    open_now: bool
    quota_left: int | None
    purposes: list[str]


class ActiveTicketOut(Out):
    id: int
    number: str
    service: str
    state: str
    recall_count: int
    called_at: datetime | None
    serve_started_at: datetime | None


class CounterOut(Out):
    hall: str
    number: int
    state: str
    state_label: str
    state_since: datetime
    pause_reason: str | None
    clerk: str | None
    ticket: ActiveTicketOut | None


class HallOut(Out):
    id: str
    name: str
    level: str
    parent: str | None


class HealthOut(Out):
    ok: bool
    database: dict[str, Any]


class SnapshotOut(Out):
    hall: dict[str, Any]
    seq: int
    counters: list[dict[str, Any]]
    waiting: dict[str, int]
    recent_calls: list[dict[str, Any]]


ACTIONS = [a.value for a in CounterAction]
