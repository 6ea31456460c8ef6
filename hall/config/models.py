"""Typed hall configuration, validated from TOML (see ``examples/county-hall.toml``).

Every model forbids unknown keys so a typo is reported with its key path instead of being
silently ignored. Values hall managers change often (quotas, hours, priority ratios) live
here, never in code.

Cross-reference checks (a counter serving an unknown service, a device on an unknown bus, …)
live in ``model_validator(mode="after")`` hooks. They collect *every* problem they find and
raise one ``ValidationError`` whose line errors carry the location relative to the model, so
pydantic prefixes the outer path and the loader can report e.g.
``halls[0].counters[12].services[1].code``. See ``docs/configuration.md`` for every key.
"""

from __future__ import annotations

import enum
import itertools
import re
import string
from collections.abc import Sequence
from datetime import date, time
from decimal import Decimal
from typing import Annotated, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from firmware_bridge.budget import check_bus_options
from firmware_bridge.constants import DeviceClass as WireDeviceClass

Code = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")]
MatterCode = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
"""National / provincial matter codes (事项编码, 实施编码) are longer than local codes."""
Name = Annotated[str, Field(min_length=1, max_length=60)]

HB1_MIN_ADDRESS = 0x01
HB1_MAX_ADDRESS = 0xEF
"""HB/1 §6: unicast device addresses are 0x01-0xEF; 0xF0 is "unassigned", 0xF1+ are groups."""

REFERENCE_ERROR = "config_reference"
"""pydantic error type of every cross-reference problem raised by these models."""

Loc = tuple[str | int, ...]


class _Issues:
    """Collects cross-reference problems of one model and raises them together."""

    def __init__(self, title: str) -> None:
        self._title = title
        self._items: list[InitErrorDetails] = []

    def add(self, loc: Loc, message: str, value: object = None) -> None:
        self._items.append(
            InitErrorDetails(
                type=PydanticCustomError(REFERENCE_ERROR, message.replace("{", "{{")),
                loc=loc,
                input=value,
            )
        )

    def unique(self, values: list[tuple[Loc, object]], what: str) -> None:
        """Report every repeat of a value, at the location of the repeat."""
        first: dict[object, Loc] = {}
        for loc, value in values:
            if value in first:
                self.add(
                    loc, f"duplicate {what} {value!r} (first used at {_fmt(first[value])})", value
                )
            else:
                first[value] = loc

    def raise_if_any(self) -> None:
        if self._items:
            raise ValidationError.from_exception_data(self._title, self._items)


def _fmt(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


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


class MatterKind(enum.StrEnum):
    """Case type of a matter (办件类型)."""

    IMMEDIATE = "immediate"  # 即办件: promised_days = 0
    PROMISED = "promised"  # 承诺件: finished within promised working days


class MatterCategory(enum.StrEnum):
    """Class of a matter in the catalogue (事项类型)."""

    LICENSING = "licensing"  # 行政许可
    CONFIRMATION = "confirmation"  # 行政确认
    PAYMENT = "payment"  # 行政给付
    OTHER_POWER = "other_power"  # 其他行政权力
    PUBLIC_SERVICE = "public_service"  # 公共服务
    CONVENIENCE = "convenience"  # 便民服务


class OnlineLevel(enum.StrEnum):
    """How much of a matter can be done online (网办程度)."""

    NONE = "none"  # 仅窗口办理
    PARTIAL = "partial"  # 网上申报/预审, one visit still needed
    FULL = "full"  # 全程网办


class StaffRole(enum.StrEnum):
    CLERK = "clerk"  # 窗口工作人员
    MANAGER = "manager"  # 中心管理人员
    ADMIN = "admin"  # system administrator
    KIOSK_OPERATOR = "kiosk_operator"  # 引导员: may issue tickets for others, priority tickets
    DUTY_MANAGER = "duty_manager"  # 值班长


class DeviceClass(enum.StrEnum):
    """HB/1 device classes (docs/protocol.md §10.1 INFO ``class``)."""

    STRIP = "strip"  # 1 window LED strip (窗口条屏)
    SCREEN = "screen"  # 2 hall screen (综合屏)
    PAD = "pad"  # 3 rating pad (评价器)
    CALLER = "caller"  # 4 clerk caller keypad (呼叫器)
    KIOSK = "kiosk"  # 5 kiosk helper MCU

    @property
    def target_key(self) -> Literal["counter", "screen", "kiosk"]:
        """Which config key names the thing a device of this class serves."""
        if self is DeviceClass.SCREEN:
            return "screen"
        if self is DeviceClass.KIOSK:
            return "kiosk"
        return "counter"


class PrinterEncoding(enum.StrEnum):
    GBK = "gbk"
    GB18030 = "gb18030"


class Period(_Model):
    """One opening period, local time of the hall."""

    open: time
    close: time

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.close <= self.open:
            raise ValueError(
                f"close {self.close.isoformat('minutes')} must be after "
                f"open {self.open.isoformat('minutes')}"
            )
        return self

    def contains(self, moment: time) -> bool:
        return self.open <= moment < self.close


class Calendar(_Model):
    """Working days: weekdays 1..7 (Mon..Sun), minus holidays, plus make-up working days."""

    working_weekdays: list[Annotated[int, Field(ge=1, le=7)]] = [1, 2, 3, 4, 5]
    holidays: list[date] = []
    workdays: list[date] = []  # 调休 make-up working days

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        issues = _Issues("Calendar")
        issues.unique(
            [(("working_weekdays", i), d) for i, d in enumerate(self.working_weekdays)], "weekday"
        )
        issues.unique([(("holidays", i), d) for i, d in enumerate(self.holidays)], "holiday")
        issues.unique([(("workdays", i), d) for i, d in enumerate(self.workdays)], "workday")
        holidays = set(self.holidays)
        for i, day in enumerate(self.workdays):
            if day in holidays:
                issues.add(
                    ("workdays", i), f"{day.isoformat()} is listed both as holiday and workday", day
                )
        issues.raise_if_any()
        return self


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
    name_en: Annotated[str, Field(min_length=1, max_length=60)] | None = None
    """English name, shown under the Chinese one on bilingual TV pages (display.bilingual)."""
    prefix: Annotated[str, Field(pattern=r"^[A-Z]{1,2}$")]
    number_group: Code | None = None
    """Services with the same group share one number sequence; default: the service itself."""
    number_width: Annotated[int, Field(ge=2, le=5)] = 3
    number_start: Annotated[int, Field(ge=0, le=9999)] = 1
    daily_quota: Annotated[int, Field(ge=1, le=99999)] | None = None
    per_person_daily_limit: Annotated[int, Field(ge=1, le=20)] | None = None
    """Tickets one person (resident ID number) may take for this service a day; kiosks then
    ask for the ID number, which is kept only as a keyed hash."""
    hours: list[Period] | None = None
    purposes: Annotated[list[Purpose], Field(min_length=1)] = list(Purpose)
    priority_classes: list[Code] = []
    target_wait_minutes: Annotated[int, Field(ge=1, le=600)] = 20
    default_service_minutes: Annotated[float, Field(gt=0, le=240)] = 8.0
    transfer_placement: TransferPlacement = TransferPlacement.FRONT
    zone: str | None = None
    department: Code | None = None
    """Department that owns this queue (None: shared, e.g. comprehensive acceptance)."""
    category: Annotated[str, Field(min_length=1, max_length=12)] | None = None
    """Kiosk group (业务分类) the service is listed under, e.g. "社保医保"; kiosks show the
    groups first when their services have more than one."""

    @property
    def group(self) -> str:
        return self.number_group or self.code


class Counter(_Model):
    """A window (窗口)."""

    number: Annotated[int, Field(ge=1, le=999)]
    name: str | None = None
    name_en: Annotated[str, Field(min_length=1, max_length=60)] | None = None
    """English name for bilingual TV pages; default "Window N"."""
    kind: CounterKind = CounterKind.DEDICATED
    services: Annotated[list[ServiceRef], Field(min_length=1)]
    call_order: CallOrder = CallOrder.ORDER
    zone: str | None = None

    @property
    def display_name(self) -> str:
        return self.name or f"{self.number}号窗口"


class Kiosk(_Model):
    """A ticket kiosk (取号机) in a hall."""

    id: Code
    name: Name
    zone: str | None = None
    services: list[Code] = []
    """Services offered on this kiosk, in screen order; empty = every service of the hall."""
    priority: bool = False
    """Offer priority tickets (爱心通道: the classes each service allows) on this kiosk."""


class Screen(_Model):
    """A hall screen (综合屏) showing recent calls and waiting counts."""

    id: Code
    name: Name
    zone: str | None = None
    services: list[Code] = []
    """Queues whose waiting counts are shown; empty = every service of the hall."""
    counters: list[int] = []
    """Windows whose calls are shown; empty = every counter of the hall."""
    rows: Annotated[int, Field(ge=1, le=50)] = 6
    """Number of latest calls shown."""
    notices: list[Annotated[str, Field(min_length=1, max_length=200)]] = []
    """Scrolling notices of this screen, after the hall's own (``display.notices``)."""
    voice: bool = True
    """Whether a TV page paired as this screen says the calls (one speaker per area)."""


CALL_TEXT_FIELDS = frozenset({"number", "counter"})


class Voice(_Model):
    """Call announcements (语音叫号), played by the TV pages and ``hall speaker``."""

    enabled: bool = True
    repeat: Annotated[int, Field(ge=1, le=5)] = 2
    """How many times each call is said (domain.md §7.2: twice)."""
    volume: Annotated[int, Field(ge=0, le=100)] = 80
    """Percent of the player's full volume."""
    pause_ms: Annotated[int, Field(ge=0, le=5000)] = 600
    """Silence between two sayings of one call and between two calls."""
    quiet_hours: list[Period] = []
    """Local times when calls are shown but not said (e.g. a noon rest)."""


class DisplayText(_Model):
    """What window strips, hall screens and TV pages say (domain.md §7.2).

    ``call_text``, ``idle_text`` and ``serving_text`` may use ``{number}`` (the ticket) and
    ``{counter}`` (the window number)."""

    call_text: Annotated[str, Field(min_length=1, max_length=40)] = "请{number}号到{counter}号窗口"
    idle_text: Annotated[str, Field(max_length=40)] = "{counter}号窗口 欢迎光临"
    serving_text: Annotated[str, Field(max_length=40)] = "正在办理 {number}"
    paused_text: Annotated[str, Field(max_length=40)] = "暂停服务"
    closed_text: Annotated[str, Field(max_length=40)] = "窗口关闭"
    hold_s: Annotated[int, Field(ge=0, le=600)] = 10
    """Seconds a call flashes on the window strip before the idle text (HB/1 §12)."""
    strip_chars: Annotated[int, Field(ge=4, le=64)] = 10
    """Full-width characters a window strip shows at once; longer texts scroll."""
    bilingual: bool = False
    """TV pages add English under the Chinese (the halls', services' and counters' name_en)."""
    notices: list[Annotated[str, Field(min_length=1, max_length=200)]] = []
    """Scrolling notices (温馨提示) on every TV page of the hall."""
    voice: Voice = Voice()

    @field_validator("call_text", "idle_text", "serving_text")
    @classmethod
    def _placeholders(cls, value: str) -> str:
        _check_placeholders(value, CALL_TEXT_FIELDS)
        return value


TICKET_FIELDS = frozenset({"hall", "service", "zone", "date"})
TicketLine = Annotated[str, Field(max_length=48)]


class TicketText(_Model):
    """Text printed on a hall's paper tickets around the number, people ahead, wait and time.

    Lines may use ``{hall}``, ``{service}``, ``{zone}`` and ``{date}``; the kiosk lays them
    out for the printer's paper width.
    """

    header: list[TicketLine] = ["{hall}"]
    footer: list[TicketLine] = ["请留意叫号，过号请重新取号"]
    after_qr: list[TicketLine] = ["当日有效"]
    page_url: Annotated[str, Field(max_length=200)] | None = None
    """The citizen's ticket page as phones reach it, with ``{token}``, e.g.
    ``http://10.1.2.3:8080/t/{token}``; printed as a QR code (none when unset)."""

    @field_validator("header", "footer", "after_qr")
    @classmethod
    def _fields(cls, lines: list[str]) -> list[str]:
        for line in lines:
            _check_placeholders(line, TICKET_FIELDS)
        return lines

    @field_validator("page_url")
    @classmethod
    def _page_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        _check_placeholders(value, frozenset({"token"}))
        if "{token}" not in value or not value.startswith(("http://", "https://")):
            raise ValueError("page_url must be an http(s) URL containing {token}")
        return value


def _check_placeholders(text: str, allowed: frozenset[str]) -> None:
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError as exc:
        raise ValueError(f"{text!r}: {exc}") from None
    unknown = names - allowed
    if unknown:
        raise ValueError(
            f"{text!r} uses unknown field(s) {', '.join(sorted(unknown))}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )


class CounterRules(_Model):
    """What the clerk terminal and callers offer at this hall's counters."""

    pause_reasons: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=20)]], Field(min_length=1)
    ] = ["午休", "会议", "业务咨询", "其他"]
    """Reasons a clerk picks from when pausing (暂停服务); the first is the keypad's."""
    transfer_to_closed: bool = False
    """Accept a transfer to a closed counter (the ticket waits until it opens); else refuse."""


class DeductionRules(_Model):
    """Assessment points taken per alarm kind (0 = none); the hall's own regulation decides."""

    idle_with_queue: Annotated[float, Field(ge=0, le=100)] = 2
    long_service: Annotated[float, Field(ge=0, le=100)] = 0
    unattended: Annotated[float, Field(ge=0, le=100)] = 5
    no_shows: Annotated[float, Field(ge=0, le=100)] = 0
    late_sign_in: Annotated[float, Field(ge=0, le=100)] = 2


class Supervision(_Model):
    """Electronic supervision (电子监察): alarm thresholds and point deductions."""

    idle_with_queue_minutes: Annotated[int, Field(ge=1, le=600)] = 10
    """Alarm when a counter is open and idle this long while its queues have people waiting."""
    service_over_minutes: Annotated[int, Field(ge=1, le=600)] = 30
    """Alarm when one service (from start) runs longer than this."""
    unattended_minutes: Annotated[int, Field(ge=1, le=600)] = 15
    """Alarm when, in business hours, a counter stays closed or paused this long."""
    no_shows_in_row: Annotated[int, Field(ge=1, le=50)] = 3
    """Alarm when a counter marks this many no-shows in a row."""
    sign_in_grace_minutes: Annotated[int, Field(ge=0, le=240)] = 5
    """A counter first opened later than a business period's start plus this is late."""
    deductions: DeductionRules = DeductionRules()


class Hall(_Model):
    id: Code
    name: Annotated[str, Field(min_length=1, max_length=60)]
    name_en: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    """English name for bilingual TV pages."""
    level: HallLevel = HallLevel.COUNTY
    parent: Code | None = None
    region_code: Annotated[str, Field(pattern=r"^\d{12}$")] | None = None
    cases_url: Annotated[str, Field(pattern=r"^https?://[^\s]+$", max_length=300)] | None = None
    """GET endpoint of the platform's cases of a hall (``?hall=&since=``), for halls whose
    keypad-only windows register cases upstream; pulled by a manager (evaluator imports)."""
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
    kiosks: list[Kiosk] = []
    screens: list[Screen] = []
    ticket: TicketText = TicketText()
    counter_rules: CounterRules = CounterRules()
    supervision: Supervision = Supervision()
    display: DisplayText = DisplayText()

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
        issues = _Issues("Hall")
        issues.unique(
            [(("services", i, "code"), s.code) for i, s in enumerate(self.services)],
            "service code",
        )
        issues.unique(
            [(("counters", i, "number"), c.number) for i, c in enumerate(self.counters)],
            "counter number",
        )
        issues.unique([(("kiosks", i, "id"), k.id) for i, k in enumerate(self.kiosks)], "kiosk id")
        issues.unique(
            [(("screens", i, "id"), s.id) for i, s in enumerate(self.screens)], "screen id"
        )
        first_of_number: dict[int, int] = {}
        for i, c in enumerate(self.counters):
            first_of_number.setdefault(c.number, i)
        issues.unique(  # a repeated number is reported above, not again as a repeated name
            [
                (("counters", i, "name"), c.display_name)
                for i, c in enumerate(self.counters)
                if first_of_number[c.number] == i
            ],
            "counter name (two windows would show the same name)",
        )
        known = {s.code for s in self.services}
        numbers = {c.number for c in self.counters}
        for i, counter in enumerate(self.counters):
            issues.unique(
                [
                    (("counters", i, "services", j, "code"), r.code)
                    for j, r in enumerate(counter.services)
                ],
                f"service in counter {counter.number}",
            )
            for j, ref in enumerate(counter.services):
                if ref.code not in known:
                    issues.add(
                        ("counters", i, "services", j, "code"),
                        f"counter {counter.number} serves unknown service {ref.code!r}",
                        ref.code,
                    )
        prefixes: dict[str, str] = {}
        for i, svc in enumerate(self.services):
            owner = prefixes.setdefault(svc.prefix, svc.group)
            if owner != svc.group:
                issues.add(
                    ("services", i, "prefix"),
                    f"prefix {svc.prefix!r} is used by two number groups "
                    f"({owner!r}, {svc.group!r})",
                    svc.prefix,
                )
        shown: list[tuple[str, Sequence[Kiosk | Screen]]] = [
            ("kiosks", self.kiosks),
            ("screens", self.screens),
        ]
        for kind, items in shown:
            for i, item in enumerate(items):
                for j, code in enumerate(item.services):
                    if code not in known:
                        issues.add(
                            (kind, i, "services", j),
                            f"{kind[:-1]} {item.id!r} shows unknown service {code!r}",
                            code,
                        )
        for i, screen in enumerate(self.screens):
            for j, number in enumerate(screen.counters):
                if number not in numbers:
                    issues.add(
                        ("screens", i, "counters", j),
                        f"screen {screen.id!r} shows unknown counter {number}",
                        number,
                    )
        self._check_hours(issues)
        issues.raise_if_any()
        return self

    def _check_hours(self, issues: _Issues) -> None:
        ordered = sorted(enumerate(self.business_hours), key=lambda item: item[1].open)
        for (_, before), (i, after) in itertools.pairwise(ordered):
            if after.open < before.close:
                issues.add(
                    ("business_hours", i),
                    f"period {after.open.isoformat('minutes')}-{after.close.isoformat('minutes')}"
                    f" overlaps {before.open.isoformat('minutes')}-"
                    f"{before.close.isoformat('minutes')}",
                )
        boundary = self.day_boundary
        periods = [("business hours", p) for p in self.business_hours] + [
            (f"hours of service {s.code!r}", p) for s in self.services for p in s.hours or []
        ]
        for what, period in periods:
            if period.contains(boundary):
                issues.add(
                    ("day_boundary",),
                    f"day boundary {boundary.isoformat('minutes')} falls inside {what} "
                    f"{period.open.isoformat('minutes')}-{period.close.isoformat('minutes')}",
                    boundary,
                )
                break

    def service(self, code: str) -> Service | None:
        return next((s for s in self.services if s.code == code), None)

    def counter(self, number: int) -> Counter | None:
        return next((c for c in self.counters if c.number == number), None)

    def kiosk(self, kiosk_id: str) -> Kiosk | None:
        return next((k for k in self.kiosks if k.id == kiosk_id), None)

    def screen(self, screen_id: str) -> Screen | None:
        return next((s for s in self.screens if s.id == screen_id), None)


class PriorityClass(_Model):
    code: Code
    name: Annotated[str, Field(min_length=1, max_length=20)]


class Department(_Model):
    """A stationed unit (进驻单位) or the centre itself."""

    code: Code
    name: Name
    hall: Code | None = None
    """Hall the department sits in; None = shared by every hall of the deployment."""
    phone: Annotated[str, Field(max_length=40)] | None = None


class Fee(_Model):
    name: Name
    amount: Annotated[Decimal, Field(ge=0, max_digits=10, decimal_places=2)] | None = None
    """Yuan; None = depends on the case (see basis)."""
    basis: Annotated[str, Field(max_length=200)] | None = None
    """收费依据 / 标准 as printed on the guide."""


class Material(_Model):
    """One item of the materials list (申请材料)."""

    name: Annotated[str, Field(min_length=1, max_length=100)]
    copies: Annotated[int, Field(ge=0, le=99)] = 1
    original: bool = False
    """The original must be shown (原件)."""
    required: bool = True
    note: Annotated[str, Field(max_length=200)] | None = None


GuideLine = Annotated[str, Field(min_length=1, max_length=200)]


class MatterRoute(_Model):
    """Where a matter is handled in one hall: the queues that take it."""

    hall: Code
    services: Annotated[list[Code], Field(min_length=1)]


class Matter(_Model):
    """One entry of the matter catalogue (事项目录), imported from the provincial catalogue."""

    code: MatterCode
    """Standard matter code (事项编码), shared at every level."""
    impl_code: MatterCode
    """Implementation code (实施编码) of this implementing unit; unique in a deployment."""
    version: Annotated[int, Field(ge=1)] = 1
    name: Annotated[str, Field(min_length=1, max_length=100)]
    department: Code
    kind: MatterKind
    category: MatterCategory | None = None
    legal_days: Annotated[int, Field(ge=0, le=3650)]
    """Legal time limit (法定时限), working days."""
    promised_days: Annotated[int, Field(ge=0, le=3650)] = 0
    """Promised time limit (承诺时限), working days; 0 for immediate matters."""
    fees: list[Fee] = []
    """Empty = free of charge (不收费)."""
    materials: list[Material] = []
    conditions: Annotated[list[GuideLine], Field(max_length=30)] = []
    """Conditions for acceptance (受理条件), one per line, as the service guide prints them."""
    process: Annotated[list[GuideLine], Field(max_length=30)] = []
    """Steps of the procedure (办理流程), in order."""
    legal_basis: Annotated[str, Field(max_length=1000)] | None = None
    """Legal basis (设定依据)."""
    guide: Annotated[str, Field(max_length=4000)] = ""
    visits: Annotated[int, Field(ge=0, le=10)] = 1
    """Visits needed (跑动次数); 0 = 零跑动."""
    online: OnlineLevel = OnlineLevel.NONE
    appointment: bool = False
    """Appointments may be booked (可预约)."""
    phone: Annotated[str, Field(max_length=40)] | None = None
    routes: list[MatterRoute] = []

    @model_validator(mode="after")
    def _limits(self) -> Self:
        issues = _Issues("Matter")
        if self.promised_days > self.legal_days:
            issues.add(
                ("promised_days",),
                f"promised_days {self.promised_days} exceeds legal_days {self.legal_days}",
                self.promised_days,
            )
        if self.kind is MatterKind.IMMEDIATE and self.promised_days != 0:
            issues.add(
                ("promised_days",),
                f"an immediate matter must have promised_days = 0, not {self.promised_days}",
                self.promised_days,
            )
        if self.kind is MatterKind.PROMISED and self.promised_days == 0:
            issues.add(
                ("promised_days",),
                "a promised matter needs promised_days >= 1 (use kind = 'immediate' for 0)",
                self.promised_days,
            )
        issues.unique([(("routes", i, "hall"), r.hall) for i, r in enumerate(self.routes)], "hall")
        issues.unique(
            [(("materials", i, "name"), m.name) for i, m in enumerate(self.materials)],
            "material",
        )
        issues.raise_if_any()
        return self


class Staff(_Model):
    job_no: Code
    """工号, printed on badge and desk card."""
    name: Annotated[str, Field(min_length=1, max_length=40)]
    roles: Annotated[list[StaffRole], Field(min_length=1)] = [StaffRole.CLERK]
    halls: list[Code] = []
    """Halls the person works in; empty = every hall of the deployment."""
    counters: list[int] = []
    """Counter numbers the person may log in at (in any of their halls); empty = none fixed."""
    department: Code | None = None
    backup: Code | None = None
    """Job number of the named backup (A/B岗)."""


class BusOptions(_Model):
    """Polling and timing of one HB/1 bus (docs/protocol.md §7, §8.4); defaults follow the spec.

    Values that cannot work at the bus's baud rate are refused by ``HallConfig`` (it knows
    the devices on the bus): see ``firmware_bridge.budget.check_bus_options``.
    """

    poll_interactive_ms: Annotated[int, Field(ge=50, le=1000)] = 250
    """Poll period of pads, callers and kiosk MCUs (spec: ~250 ms, at least once per second)."""
    poll_display_ms: Annotated[int, Field(ge=500, le=10000)] = 3000
    """Poll period of strips and hall screens (spec: every 2-5 s)."""
    reply_timeout_ms: Annotated[int, Field(ge=10, le=5000)] | None = None
    """Reply timeout; None = computed from the baud rate as the spec prescribes."""
    offline_after_failures: Annotated[int, Field(ge=1, le=20)] = 3
    """Failed transactions in a row before a device is OFFLINE (spec: 3)."""
    offline_probe_ms: Annotated[int, Field(ge=500, le=60000)] = 5000
    """Period of the single-POLL probes of an OFFLINE device (spec: 5 s)."""


_SERIAL_URL = re.compile(
    r"^(/dev/\S+|COM[1-9][0-9]{0,2}|(socket|rfc2217)://[A-Za-z0-9_.-]+:(?P<port>[0-9]{1,5}))$"
)
_PRINTER_URL = re.compile(
    r"^(/dev/\S+|COM[1-9][0-9]{0,2}"
    r"|(socket|tcp)://[A-Za-z0-9_.-]+(:(?P<port>[0-9]{1,5}))?"
    r"|usb://[0-9A-Fa-f]{4}:[0-9A-Fa-f]{4})$"
)


def _check_url(value: str, pattern: re.Pattern[str], forms: str) -> str:
    match = pattern.match(value)
    if match is None:
        raise ValueError(f"unsupported url {value!r}; expected {forms}")
    port = match.group("port")
    if port is not None and not 1 <= int(port) <= 65535:
        raise ValueError(f"port {port} out of range in url {value!r}")
    return value


class Bus(_Model):
    """One serial line of HB/1 devices (RS-485 port or serial server)."""

    name: Code
    hall: Code
    url: str
    """"/dev/ttyUSB0", "COM3", "socket://10.0.0.5:4001" or "rfc2217://host:port"."""
    baudrate: Literal[9600, 19200, 38400, 115200] = 9600
    options: BusOptions = BusOptions()

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_url(
            value, _SERIAL_URL, "/dev/…, COMn, socket://host:port or rfc2217://host:port"
        )


class Device(_Model):
    """One HB/1 device on a bus, and the counter, screen or kiosk it serves."""

    model_config = ConfigDict(populate_by_name=True)

    bus: Code
    address: Annotated[int, Field(ge=HB1_MIN_ADDRESS, le=HB1_MAX_ADDRESS)]
    device_class: DeviceClass = Field(alias="class")
    counter: Annotated[int, Field(ge=1, le=999)] | None = None
    """Counter number, for strips, pads and callers."""
    screen: Code | None = None
    """Screen id, for hall screens."""
    kiosk: Code | None = None
    """Kiosk id, for kiosk MCUs."""
    uid: Annotated[str, Field(pattern=r"^[0-9A-Fa-f]{16}$")] | None = None
    """8-byte UID printed on the label, 16 hex digits; checked against INFO when given."""
    name: Name | None = None

    @model_validator(mode="after")
    def _target(self) -> Self:
        issues = _Issues("Device")
        wanted = self.device_class.target_key
        for key in ("counter", "screen", "kiosk"):
            value = getattr(self, key)
            if key == wanted and value is None:
                issues.add(
                    (key,), f"a {self.device_class.value} device needs the {key} it serves", None
                )
            elif key != wanted and value is not None:
                issues.add(
                    (key,),
                    f"{key} {value!r} does not apply to a {self.device_class.value} device "
                    f"(it serves a {wanted})",
                    value,
                )
        issues.raise_if_any()
        return self

    @property
    def target(self) -> int | str:
        key = self.device_class.target_key
        value = self.counter if key == "counter" else self.screen if key == "screen" else self.kiosk
        assert value is not None  # guaranteed by _target
        return value


class PrinterTunnel(_Model):
    """A printer behind a kiosk MCU, reached through PASSTHRU_TX (docs/protocol.md §13)."""

    bus: Code
    address: Annotated[int, Field(ge=HB1_MIN_ADDRESS, le=HB1_MAX_ADDRESS)]
    port: Annotated[int, Field(ge=0, le=3)] = 0


class Printer(_Model):
    """An ESC/POS ticket printer of a kiosk: either on its own port (url) or tunnelled."""

    name: Code
    hall: Code
    kiosk: Code
    url: str | None = None
    """"/dev/usb/lp0", "/dev/ttyS1", "COM4", "tcp://10.0.0.9:9100" or "usb://04b8:0202"."""
    tunnel: PrinterTunnel | None = None
    paper_width: Literal[58, 80] = 80
    encoding: PrinterEncoding = PrinterEncoding.GBK

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return _check_url(
            value,
            _PRINTER_URL,
            "/dev/…, COMn, tcp://host[:port], socket://host:port or usb://vid:pid",
        )

    @model_validator(mode="after")
    def _one_path(self) -> Self:
        if (self.url is None) == (self.tunnel is None):
            raise ValueError(f"printer {self.name!r} needs exactly one of url or tunnel")
        return self


class BadReason(_Model):
    """One 差评 reason option (GB/T 39734 Appendix A style); bit ``i`` of an HB/1 RATING's
    ``reasons`` is the i-th entry of the list."""

    code: Code
    text: Annotated[str, Field(min_length=1, max_length=40)]


class Upstream(_Model):
    """The upstream 好差评 platform (HTTP JSON): endpoint, credentials and field mapping."""

    url: Annotated[str, Field(pattern=r"^https?://[^\s]+$", max_length=300)]
    token: Annotated[str, Field(min_length=1, max_length=300)] | None = None
    """Sent as ``Authorization: Bearer``; keep the file readable only by the service."""
    timeout_s: Annotated[float, Field(gt=0, le=120)] = 10.0
    max_attempts: Annotated[int, Field(ge=1, le=100)] = 8
    """Tries before a record becomes a dead letter (with an alarm)."""
    backoff_s: Annotated[float, Field(gt=0, le=3600)] = 5.0
    backoff_max_s: Annotated[float, Field(gt=0, le=86400)] = 600.0
    field_map: dict[
        Annotated[str, Field(min_length=1, max_length=40)],
        Annotated[str, Field(min_length=1, max_length=80)],
    ] = {}
    """Our field name → the platform's; fields not listed keep our names."""
    region_code: Annotated[str, Field(pattern=r"^\d{12}$")] | None = None
    cases_url: Annotated[str, Field(pattern=r"^https?://[^\s]+$", max_length=300)] | None = None
    """GET endpoint of the platform's cases of a hall (``?hall=&since=``), for halls whose
    keypad-only windows register cases upstream; pulled by a manager (evaluator imports)."""


DEFAULT_BAD_REASONS = [
    ("slow", "办事效率低"),
    ("attitude", "服务态度差"),
    ("unclear", "一次性告知不清楚"),
    ("runs", "多次跑动"),
    ("rules", "办事流程繁琐"),
    ("other", "其他"),
]


class Evaluation(_Model):
    """Ratings (好差评), 差评 follow-up and the upstream sync."""

    rating_timeout_s: Annotated[int, Field(ge=10, le=255)] = 30
    bad_reasons: Annotated[list[BadReason], Field(min_length=1, max_length=16)] = [
        BadReason(code=c, text=t) for c, t in DEFAULT_BAD_REASONS
    ]
    followup_days: Annotated[int, Field(ge=1, le=365)] = 15
    """Working days to rectify and visit back after a 差评."""
    followup_owner: Code | None = None
    """Job number of who follows up 差评 (must be in ``staff``); unset: the rated clerk."""
    upstream: Upstream | None = None
    dimensions: Annotated[
        list[Literal["efficiency", "level", "attitude"]], Field(max_length=3)
    ] = []
    """Extra rating dimensions (HB1.md PAD_RATE_REQ ``dims_mask``): 服务效率, 服务水平, 服务态度;
    empty: the five levels only."""

    @model_validator(mode="after")
    def _unique(self) -> Self:
        issues = _Issues("Evaluation")
        issues.unique(
            [(("dimensions", i), d) for i, d in enumerate(self.dimensions)], "rating dimension"
        )
        issues.unique(
            [(("bad_reasons", i, "code"), r.code) for i, r in enumerate(self.bad_reasons)],
            "reason code",
        )
        issues.raise_if_any()
        return self


class HallConfig(_Model):
    """The whole deployment: halls, shared catalogues, staff, device wiring."""

    halls: Annotated[list[Hall], Field(min_length=1)]
    priority_classes: list[PriorityClass] = [
        PriorityClass(code="elderly", name="老年人"),
        PriorityClass(code="disabled", name="残疾人"),
        PriorityClass(code="military", name="军人"),
        PriorityClass(code="pregnant", name="孕妇"),
        PriorityClass(code="appointment", name="预约"),
    ]
    staff: list[Staff] = []
    departments: list[Department] = []
    matters: list[Matter] = []
    buses: list[Bus] = []
    devices: list[Device] = []
    printers: list[Printer] = []
    evaluation: Evaluation = Evaluation()

    @model_validator(mode="after")
    def _references(self) -> Self:
        issues = _Issues("HallConfig")
        self._check_halls(issues)
        self._check_catalogue(issues)
        self._check_staff(issues)
        self._check_wiring(issues)
        owner = self.evaluation.followup_owner
        if owner is not None and owner not in {s.job_no for s in self.staff}:
            issues.add(
                ("evaluation", "followup_owner"),
                f"followup_owner names unknown staff {owner!r}",
                owner,
            )
        issues.raise_if_any()
        return self

    def _check_halls(self, issues: _Issues) -> None:
        issues.unique([(("halls", i, "id"), h.id) for i, h in enumerate(self.halls)], "hall id")
        known_halls = {h.id for h in self.halls}
        parents = {h.id: h.parent for h in self.halls}
        for i, hall in enumerate(self.halls):
            if hall.parent is None:
                continue
            if hall.parent not in known_halls:
                issues.add(
                    ("halls", i, "parent"),
                    f"hall {hall.id!r} names unknown parent {hall.parent!r}",
                    hall.parent,
                )
                continue
            seen = {hall.id}
            step: str | None = hall.parent
            while step is not None and step not in seen:
                seen.add(step)
                step = parents.get(step)
            if step is not None:
                issues.add(
                    ("halls", i, "parent"),
                    f"hall {hall.id!r}: parent {hall.parent!r} leads to a cycle",
                    hall.parent,
                )
        issues.unique(
            [
                (("priority_classes", i, "code"), p.code)
                for i, p in enumerate(self.priority_classes)
            ],
            "priority class",
        )
        classes = {p.code for p in self.priority_classes}
        for h, hall in enumerate(self.halls):
            for s, svc in enumerate(hall.services):
                for k, pc in enumerate(svc.priority_classes):
                    if pc not in classes:
                        issues.add(
                            ("halls", h, "services", s, "priority_classes", k),
                            f"service {hall.id}/{svc.code} allows unknown priority class {pc!r}",
                            pc,
                        )

    def _check_catalogue(self, issues: _Issues) -> None:
        known_halls = {h.id for h in self.halls}
        issues.unique(
            [(("departments", i, "code"), d.code) for i, d in enumerate(self.departments)],
            "department code",
        )
        for i, dept in enumerate(self.departments):
            if dept.hall is not None and dept.hall not in known_halls:
                issues.add(
                    ("departments", i, "hall"),
                    f"department {dept.code!r} is in unknown hall {dept.hall!r}",
                    dept.hall,
                )
        departments = {d.code for d in self.departments}
        for h, hall in enumerate(self.halls):
            for s, svc in enumerate(hall.services):
                if svc.department is not None and svc.department not in departments:
                    issues.add(
                        ("halls", h, "services", s, "department"),
                        f"service {hall.id}/{svc.code} names unknown department {svc.department!r}",
                        svc.department,
                    )
        issues.unique(
            [(("matters", i, "impl_code"), m.impl_code) for i, m in enumerate(self.matters)],
            "matter implementation code",
        )
        for i, matter in enumerate(self.matters):
            if matter.department not in departments:
                issues.add(
                    ("matters", i, "department"),
                    f"matter {matter.impl_code!r} names unknown department {matter.department!r}",
                    matter.department,
                )
            for r, route in enumerate(matter.routes):
                hall_cfg = self.hall(route.hall)
                if hall_cfg is None:
                    issues.add(
                        ("matters", i, "routes", r, "hall"),
                        f"matter {matter.impl_code!r} is routed to unknown hall {route.hall!r}",
                        route.hall,
                    )
                    continue
                for s, code in enumerate(route.services):
                    if hall_cfg.service(code) is None:
                        issues.add(
                            ("matters", i, "routes", r, "services", s),
                            f"matter {matter.impl_code!r} is routed to unknown service "
                            f"{code!r} of hall {route.hall!r}",
                            code,
                        )

    def _check_staff(self, issues: _Issues) -> None:
        issues.unique(
            [(("staff", i, "job_no"), s.job_no) for i, s in enumerate(self.staff)],
            "staff job number",
        )
        job_nos = {s.job_no for s in self.staff}
        departments = {d.code for d in self.departments}
        for i, person in enumerate(self.staff):
            issues.unique(
                [(("staff", i, "roles", k), r) for k, r in enumerate(person.roles)], "role"
            )
            halls: list[Hall] = []
            for k, hall_id in enumerate(person.halls):
                hall_cfg = self.hall(hall_id)
                if hall_cfg is None:
                    issues.add(
                        ("staff", i, "halls", k),
                        f"staff {person.job_no!r} works in unknown hall {hall_id!r}",
                        hall_id,
                    )
                else:
                    halls.append(hall_cfg)
            if not person.halls:
                halls = list(self.halls)
            for k, number in enumerate(person.counters):
                if not any(h.counter(number) is not None for h in halls):
                    where = ", ".join(repr(h.id) for h in halls)
                    issues.add(
                        ("staff", i, "counters", k),
                        f"staff {person.job_no!r} may use counter {number}, "
                        f"which does not exist in hall {where}",
                        number,
                    )
            if person.department is not None and person.department not in departments:
                issues.add(
                    ("staff", i, "department"),
                    f"staff {person.job_no!r} names unknown department {person.department!r}",
                    person.department,
                )
            if person.backup is not None and (
                person.backup not in job_nos or person.backup == person.job_no
            ):
                issues.add(
                    ("staff", i, "backup"),
                    f"staff {person.job_no!r} names unknown or own job number "
                    f"{person.backup!r} as backup",
                    person.backup,
                )

    def _check_wiring(self, issues: _Issues) -> None:
        issues.unique(
            [(("buses", i, "name"), b.name) for i, b in enumerate(self.buses)], "bus name"
        )
        issues.unique(
            [(("buses", i, "url"), (b.hall, b.url)) for i, b in enumerate(self.buses)],
            "(hall, bus url)",
        )
        buses = {b.name: b for b in self.buses}
        for i, bus in enumerate(self.buses):
            if self.hall(bus.hall) is None:
                issues.add(
                    ("buses", i, "hall"),
                    f"bus {bus.name!r} is in unknown hall {bus.hall!r}",
                    bus.hall,
                )
        issues.unique(
            [(("devices", i, "address"), (d.bus, d.address)) for i, d in enumerate(self.devices)],
            "(bus, address)",
        )
        issues.unique(
            [(("devices", i, "uid"), d.uid.upper()) for i, d in enumerate(self.devices) if d.uid],
            "device uid",
        )
        for i, device in enumerate(self.devices):
            bus_cfg = buses.get(device.bus)
            if bus_cfg is None:
                issues.add(
                    ("devices", i, "bus"),
                    f"device {device.address} is on unknown bus {device.bus!r}",
                    device.bus,
                )
                continue
            hall_cfg = self.hall(bus_cfg.hall)
            if hall_cfg is None:
                continue  # reported on the bus
            key = device.device_class.target_key
            target = device.target
            found: object
            if key == "counter":
                found = hall_cfg.counter(int(target))
            elif key == "screen":
                found = hall_cfg.screen(str(target))
            else:
                found = hall_cfg.kiosk(str(target))
            if found is None:
                issues.add(
                    ("devices", i, key),
                    f"{device.device_class.value} device {device.bus}/{device.address} serves "
                    f"{key} {target!r}, which does not exist in hall {hall_cfg.id!r}",
                    target,
                )
        self._check_bus_timing(issues)
        self._check_printers(issues, buses)

    def _check_bus_timing(self, issues: _Issues) -> None:
        """Bus options that cannot work at the bus's baud rate with the devices on it."""
        for i, bus in enumerate(self.buses):
            classes = [
                WireDeviceClass[d.device_class.name] for d in self.devices if d.bus == bus.name
            ]
            opts = bus.options
            for problem in check_bus_options(
                bus.baudrate,
                classes,
                reply_timeout_ms=opts.reply_timeout_ms,
                poll_display_ms=opts.poll_display_ms,
                offline_probe_ms=opts.offline_probe_ms,
            ):
                loc: Loc = (
                    ("buses", i, "baudrate")
                    if problem.option == "baudrate"
                    else ("buses", i, "options", problem.option)
                )
                issues.add(loc, f"bus {bus.name!r}: {problem.message}", problem.option)

    def _check_printers(self, issues: _Issues, buses: dict[str, Bus]) -> None:
        issues.unique(
            [(("printers", i, "name"), p.name) for i, p in enumerate(self.printers)],
            "printer name",
        )
        issues.unique(
            [
                (("printers", i, "url"), (p.hall, p.url))
                for i, p in enumerate(self.printers)
                if p.url
            ],
            "(hall, printer url)",
        )
        bus_urls = {(b.hall, b.url): b.name for b in self.buses}
        devices = {(d.bus, d.address): d for d in self.devices}
        for i, printer in enumerate(self.printers):
            hall_cfg = self.hall(printer.hall)
            if hall_cfg is None:
                issues.add(
                    ("printers", i, "hall"),
                    f"printer {printer.name!r} is in unknown hall {printer.hall!r}",
                    printer.hall,
                )
            elif hall_cfg.kiosk(printer.kiosk) is None:
                issues.add(
                    ("printers", i, "kiosk"),
                    f"printer {printer.name!r} serves kiosk {printer.kiosk!r}, "
                    f"which does not exist in hall {printer.hall!r}",
                    printer.kiosk,
                )
            if printer.url is not None and (printer.hall, printer.url) in bus_urls:
                issues.add(
                    ("printers", i, "url"),
                    f"printer {printer.name!r} shares url {printer.url!r} with HB/1 bus "
                    f"{bus_urls[printer.hall, printer.url]!r}; "
                    "ESC/POS printers need their own port",
                    printer.url,
                )
            tunnel = printer.tunnel
            if tunnel is None:
                continue
            if tunnel.bus not in buses:
                issues.add(
                    ("printers", i, "tunnel", "bus"),
                    f"printer {printer.name!r} is tunnelled through unknown bus {tunnel.bus!r}",
                    tunnel.bus,
                )
                continue
            device = devices.get((tunnel.bus, tunnel.address))
            if (
                device is None
                or device.device_class is not DeviceClass.KIOSK
                or device.kiosk != printer.kiosk
                or buses[tunnel.bus].hall != printer.hall
            ):
                issues.add(
                    ("printers", i, "tunnel", "address"),
                    f"printer {printer.name!r} is tunnelled through {tunnel.bus}/{tunnel.address}, "
                    f"which is not the kiosk device of kiosk {printer.kiosk!r} "
                    f"in hall {printer.hall!r}",
                    tunnel.address,
                )

    def hall(self, hall_id: str) -> Hall | None:
        return next((h for h in self.halls if h.id == hall_id), None)
