"""Request and response bodies of the HTTP API; the OpenAPI document is built from these."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from hall.config.models import Purpose
from hall.services.queue import CounterAction

_ISO_ZONED = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|z|[+-]\d{2}:?\d{2})$"
)


def _zoned_iso(value: object) -> object:
    """Times are ISO 8601 strings with a zone: no epoch numbers, no naive local times."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_ZONED.match(value):
        raise ValueError("必须是带时区的 ISO 8601 时间，例如 2026-11-24T10:00:00+08:00")
    return value


ZonedTime = Annotated[datetime, BeforeValidator(_zoned_iso)]


class Body(BaseModel):
    """Request bodies: unknown fields and loose types are errors."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class IssueTicketBody(Body):
    service: Annotated[str, Field(min_length=1, max_length=32)]
    purpose: Purpose = Purpose.APPLY
    priority_class: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    appointment_start: ZonedTime | None = None
    appointment_end: ZonedTime | None = None
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
    estimated_wait_s: float | None = Field(
        description="Expected wait in seconds until the ticket is called: the middle of "
        "[wait_low_s, wait_high_s]. Null when not waiting, or when no open counter serves "
        "the queue now. Show citizens the range, not this number."
    )
    wait_low_s: float | None = Field(
        default=None,
        description="Low end of the expected wait, seconds (null with estimated_wait_s).",
    )
    wait_high_s: float | None = Field(
        default=None,
        description="High end of the expected wait, seconds (null with estimated_wait_s).",
    )
    replayed: bool = False


class ServiceOut(Out):
    code: str
    name: str
    prefix: str
    waiting: int
    estimated_wait_s: float | None = Field(
        description="Expected wait in seconds of someone taking a ticket now: the middle of "
        "[wait_low_s, wait_high_s]. Null when no open counter serves "
        "the queue now. Show citizens the range, not this number."
    )
    wait_low_s: float | None = Field(
        default=None,
        description="Low end of the expected wait, seconds (null with estimated_wait_s).",
    )
    wait_high_s: float | None = Field(
        default=None,
        description="High end of the expected wait, seconds (null with estimated_wait_s).",
    )
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
