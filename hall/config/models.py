"""Typed hall configuration, validated from TOML (see ``examples/county-hall.toml``).

Every model forbids unknown keys so a typo is reported with its key path instead of being
silently ignored. Values hall managers change often (quotas, hours, priority ratios) live
here, never in code.
"""

from __future__ import annotations

import enum
from datetime import date, time
from typing import Annotated, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Code = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class HallLevel(enum.StrEnum):
    PROVINCE = "province"
    CITY = "city"
    COUNTY = "county"
    TOWNSHIP = "township"
    VILLAGE = "village"


class CounterKind(enum.StrEnum):
    """Window types (窗口类型)."""

    DEDICATED = "dedicated"  # 单设窗口
    JOINT = "joint"  # 联合窗口
    COMPREHENSIVE = "comprehensive"  # 综合窗口 / 无差别受理
    SPECIAL = "special"  # 专窗


class Purpose(enum.StrEnum):
    """Visit purpose on a ticket."""

    APPLY = "apply"  # 办理
    CONSULT = "consult"  # 咨询
    COLLECT = "collect"  # 取件
    SUPPLEMENT = "supplement"  # 补正
    COMPLAIN = "complain"  # 投诉


class TransferPlacement(enum.StrEnum):
    """Where a transferred or called-back ticket enters its new queue."""

    FRONT = "front"
    ISSUE_TIME = "issue_time"


class CallOrder(enum.StrEnum):
    """How a counter picks among the services it serves."""

    ORDER = "order"  # first listed service with anyone waiting
    WEIGHTED = "weighted"  # longest weighted wait across services


class Period(_Model):
    """One opening period, local time of the hall."""

    open: time
    close: time

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.close <= self.open:
            raise ValueError("close must be after open")
        return self


class Calendar(_Model):
    """Working days: weekdays 1..7 (Mon..Sun), minus holidays, plus make-up working days."""

    working_weekdays: list[Annotated[int, Field(ge=1, le=7)]] = [1, 2, 3, 4, 5]
    holidays: list[date] = []
    workdays: list[date] = []  # 调休 make-up working days


class CallPolicy(_Model):
    priority_ratio: Annotated[int, Field(ge=0, le=100)] = 3
    """Call one priority ticket per this many normal ones; 0 = priority always first."""
    max_bypass_minutes: Annotated[int, Field(ge=0, le=24 * 60)] = 20
    """A normal ticket passed over by priority ones for longer than this is called next."""
    appointment_early_minutes: Annotated[int, Field(ge=0, le=240)] = 15
    appointment_late_minutes: Annotated[int, Field(ge=0, le=240)] = 15
    max_recalls: Annotated[int, Field(ge=0, le=10)] = 3


class ServiceRef(_Model):
    code: Code
    weight: Annotated[int, Field(ge=1, le=100)] = 1


class Service(_Model):
    """A queue citizens take tickets for (业务)."""

    code: Code
    name: Annotated[str, Field(min_length=1, max_length=40)]
    prefix: Annotated[str, Field(pattern=r"^[A-Z]{1,2}$")]
    number_group: Code | None = None
    """Services with the same group share one number sequence; default: the service itself."""
    number_width: Annotated[int, Field(ge=2, le=5)] = 3
    number_start: Annotated[int, Field(ge=0, le=9999)] = 1
    daily_quota: Annotated[int, Field(ge=1, le=99999)] | None = None
    hours: list[Period] | None = None
    purposes: list[Purpose] = list(Purpose)
    priority_classes: list[Code] = []
    target_wait_minutes: Annotated[int, Field(ge=1, le=600)] = 20
    default_service_minutes: Annotated[float, Field(gt=0, le=240)] = 8.0
    transfer_placement: TransferPlacement = TransferPlacement.FRONT
    zone: str | None = None

    @property
    def group(self) -> str:
        return self.number_group or self.code


class Counter(_Model):
    """A window (窗口)."""

    number: Annotated[int, Field(ge=1, le=999)]
    name: str | None = None
    kind: CounterKind = CounterKind.DEDICATED
    services: Annotated[list[ServiceRef], Field(min_length=1)]
    call_order: CallOrder = CallOrder.ORDER
    zone: str | None = None

    @property
    def display_name(self) -> str:
        return self.name or f"{self.number}号窗口"


class Hall(_Model):
    id: Code
    name: Annotated[str, Field(min_length=1, max_length=60)]
    level: HallLevel = HallLevel.COUNTY
    parent: Code | None = None
    region_code: Annotated[str, Field(pattern=r"^\d{12}$")] | None = None
    timezone: str = "Asia/Shanghai"
    day_boundary: time = time(3, 0)
    """Numbers reset here, local time; must fall outside business hours."""
    business_hours: list[Period] = [
        Period(open=time(8, 30), close=time(12, 0)),
        Period(open=time(13, 30), close=time(17, 30)),
    ]
    issue_outside_hours: bool = False
    calendar: Calendar = Calendar()
    call_policy: CallPolicy = CallPolicy()
    services: list[Service] = []
    counters: list[Counter] = []

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _references(self) -> Self:
        codes = [s.code for s in self.services]
        _unique(codes, "service code")
        _unique([c.number for c in self.counters], "counter number")
        known = set(codes)
        for counter in self.counters:
            for ref in counter.services:
                if ref.code not in known:
                    raise ValueError(f"counter {counter.number} serves unknown service {ref.code!r}")
        prefixes: dict[str, str] = {}
        for svc in self.services:
            owner = prefixes.setdefault(svc.prefix, svc.group)
            if owner != svc.group:
                raise ValueError(
                    f"prefix {svc.prefix!r} is used by two number groups ({owner!r}, {svc.group!r})"
                )
        return self

    def service(self, code: str) -> Service | None:
        return next((s for s in self.services if s.code == code), None)


class PriorityClass(_Model):
    code: Code
    name: Annotated[str, Field(min_length=1, max_length=20)]


class Staff(_Model):
    job_no: Code
    name: Annotated[str, Field(min_length=1, max_length=40)]
    roles: list[str] = ["clerk"]
    halls: list[Code] = []
    counters: list[int] = []


def _unique(values: list[object], what: str) -> None:
    seen: set[object] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"duplicate {what} {value!r}")
        seen.add(value)


class HallConfig(_Model):
    """The whole deployment: halls, shared catalogues, staff."""

    halls: Annotated[list[Hall], Field(min_length=1)]
    priority_classes: list[PriorityClass] = [
        PriorityClass(code="elderly", name="老年人"),
        PriorityClass(code="disabled", name="残疾人"),
        PriorityClass(code="military", name="军人"),
        PriorityClass(code="pregnant", name="孕妇"),
        PriorityClass(code="appointment", name="预约"),
    ]
    staff: list[Staff] = []

    @model_validator(mode="after")
    def _references(self) -> Self:
        hall_ids = [h.id for h in self.halls]
        _unique(hall_ids, "hall id")
        known_halls = set(hall_ids)
        for hall in self.halls:
            if hall.parent is not None and hall.parent not in known_halls:
                raise ValueError(f"hall {hall.id!r} names unknown parent {hall.parent!r}")
        classes = {p.code for p in self.priority_classes}
        for hall in self.halls:
            for svc in hall.services:
                for pc in svc.priority_classes:
                    if pc not in classes:
                        raise ValueError(
                            f"service {hall.id}/{svc.code} allows unknown priority class {pc!r}"
                        )
        _unique([s.job_no for s in self.staff], "staff job number")
        return self

    def hall(self, hall_id: str) -> Hall | None:
        return next((h for h in self.halls if h.id == hall_id), None)
