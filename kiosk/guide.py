"""The service guide (办事指南) on the kiosk and its one-time notice slip (一次性告知单).

Built from the hall config's matter catalogue: a kiosk lists the matters routed to the queues
it offers. Citizens find a matter by category or by searching its name in hanzi, full pinyin
or pinyin initials (``bdc`` finds 不动产…). The notice slip lists everything to bring, so a
citizen comes once ("最多跑一次").
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from pypinyin import Style, lazy_pinyin

from hall.config.models import (
    Fee,
    Hall,
    HallConfig,
    Kiosk,
    Material,
    Matter,
    MatterCategory,
    MatterKind,
    OnlineLevel,
)
from kiosk.layout import COLUMNS, TITLE_SIZE, Align, Cut, Element, Feed, Text, width_of, wrap

CATEGORY_LABELS = {
    MatterCategory.LICENSING: "行政许可",
    MatterCategory.CONFIRMATION: "行政确认",
    MatterCategory.PAYMENT: "行政给付",
    MatterCategory.OTHER_POWER: "其他行政权力",
    MatterCategory.PUBLIC_SERVICE: "公共服务",
    MatterCategory.CONVENIENCE: "便民服务",
}
OTHER_CATEGORY = "other"
ONLINE_LABELS = {
    OnlineLevel.NONE: "窗口办理",
    OnlineLevel.PARTIAL: "可网上申报，需到现场一次",
    OnlineLevel.FULL: "可全程网办",
}
_NOT_SEARCHABLE = re.compile(r"[\s()（）·,，、]+")


@dataclass(frozen=True, slots=True)
class GuideEntry:
    """One matter as the kiosk shows it."""

    matter: Matter
    department: str
    services: tuple[tuple[str, str], ...]
    """(code, name) of the queues at this kiosk that take it, in the kiosk's order."""
    zone: str | None
    phone: str | None
    keys: tuple[str, ...]
    """What a search matches: the name, its full pinyin and its pinyin initials."""

    @property
    def category(self) -> str:
        return str(self.matter.category) if self.matter.category else OTHER_CATEGORY


@functools.lru_cache(maxsize=8192)
def search_keys(name: str) -> tuple[str, ...]:
    """Lower-case keys of a name: the hanzi, full pinyin and initials, without punctuation."""
    bare = _NOT_SEARCHABLE.sub("", name)
    full = "".join(lazy_pinyin(bare, errors="default")).lower()
    initials = "".join(lazy_pinyin(bare, style=Style.FIRST_LETTER, errors="default")).lower()
    return (bare.lower(), full, initials)


def entries_for(config: HallConfig, hall: Hall, kiosk: Kiosk) -> list[GuideEntry]:
    """The matters a citizen at ``kiosk`` can take a ticket for, in catalogue order."""
    offered = kiosk.services or [s.code for s in hall.services]
    names = {s.code: s.name for s in hall.services}
    departments = {d.code: d for d in config.departments}
    out: list[GuideEntry] = []
    for matter in config.matters:
        route = next((r for r in matter.routes if r.hall == hall.id), None)
        if route is None:
            continue
        services = tuple((c, names[c]) for c in offered if c in route.services)
        if not services:
            continue
        first = hall.service(services[0][0])
        dept = departments.get(matter.department)
        out.append(
            GuideEntry(
                matter=matter,
                department=dept.name if dept else matter.department,
                services=services,
                zone=first.zone if first else None,
                phone=matter.phone or (dept.phone if dept else None),
                keys=search_keys(matter.name),
            )
        )
    return out


def find(entries: Sequence[GuideEntry], query: str = "", category: str = "") -> list[GuideEntry]:
    """Entries of ``category`` (all when empty) whose name, pinyin or initials contain
    ``query`` (all when empty); hanzi and letters may be mixed with spaces."""
    wanted = _NOT_SEARCHABLE.sub("", query).lower()
    return [
        e
        for e in entries
        if (not category or e.category == category)
        and (not wanted or any(wanted in key for key in e.keys))
    ]


def categories(entries: Sequence[GuideEntry]) -> list[tuple[str, str, int]]:
    """(code, label, count) of the categories present, in the catalogue's class order."""
    counts: dict[str, int] = {}
    for e in entries:
        counts[e.category] = counts.get(e.category, 0) + 1
    order = [str(c) for c in CATEGORY_LABELS] + [OTHER_CATEGORY]
    return [
        (
            code,
            CATEGORY_LABELS.get(MatterCategory(code), "") if code != OTHER_CATEGORY else "其他",
            counts[code],
        )
        for code in order
        if code in counts
    ]


# --- words -----------------------------------------------------------------------------------


def kind_text(matter: Matter) -> str:
    if matter.kind is MatterKind.IMMEDIATE:
        return "即办件（材料齐全当场办结）"
    return f"承诺件（{matter.promised_days} 个工作日内办结）"


def time_limit_text(matter: Matter) -> str:
    promised = "即办" if matter.promised_days == 0 else f"{matter.promised_days} 个工作日"
    legal = "即办" if matter.legal_days == 0 else f"{matter.legal_days} 个工作日"
    return f"承诺时限 {promised}；法定时限 {legal}"


def _yuan(amount: Decimal) -> str:
    text = f"{amount:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def fee_text(fee: Fee) -> str:
    amount = f" {_yuan(fee.amount)} 元" if fee.amount is not None else "（按实际情况收取）"
    return fee.name + amount


def fees_text(matter: Matter) -> list[str]:
    return [fee_text(f) for f in matter.fees] or ["不收费"]


def material_text(material: Material) -> str:
    """E.g. "不动产登记申请书（原件，1 份）" or "完税凭证（1 份，如有）"."""
    parts = (["原件"] if material.original else []) + (
        [f"{material.copies} 份"] if material.copies else []
    )
    if not material.required:
        parts.append("如有")
    text = material.name + (f"（{'，'.join(parts)}）" if parts else "")
    return text + (f"：{material.note}" if material.note else "")


def visits_text(matter: Matter) -> str:
    return "零跑动" if matter.visits == 0 else f"最多跑 {matter.visits} 次"


# --- the notice slip ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NoticeFacts:
    hall: str
    entry: GuideEntry
    printed_at: datetime
    """Local time of the hall."""


def notice_lines(facts: NoticeFacts, paper_mm: int = 80) -> list[Element]:
    """The one-time notice slip (一次性告知单) as printer elements, ending with a cut."""
    columns = COLUMNS[paper_mm]
    entry, matter = facts.entry, facts.entry.matter
    out: list[Element] = []

    def centre(text: str, size: int = 1, bold: bool = False) -> None:
        while size > 1 and width_of(text) * size > columns:
            size -= 1
        out.extend(Text(part, size=size, bold=bold) for part in wrap(text, columns // size))

    def left(text: str, indent: int = 0, bold: bool = False) -> None:
        """Left-aligned, wrapped; continuation lines indented by ``indent`` columns."""
        first = wrap(text, columns)[0]
        lines = [first]
        rest = text[len(first) :].lstrip()
        if rest:
            lines += [" " * indent + x for x in wrap(rest, columns - indent)]
        out.extend(Text(line, bold=bold, align=Align.LEFT) for line in lines)

    centre(facts.hall, TITLE_SIZE, bold=True)
    centre("一次性告知单", TITLE_SIZE, bold=True)
    out.append(Feed(1))
    left(f"事项：{matter.name}", bold=True)
    left(f"部门：{entry.department}")
    left(kind_text(matter))
    left(time_limit_text(matter))
    left(f"收费：{'；'.join(fees_text(matter))}")
    out.append(Feed(1))
    left("申请材料：", bold=True)
    if matter.materials:
        for i, material in enumerate(matter.materials, 1):
            mark = f"{i}. "
            left(mark + material_text(material), indent=len(mark))
    else:
        left("请到窗口咨询")
    if matter.conditions:
        out.append(Feed(1))
        left("受理条件：", bold=True)
        for i, condition in enumerate(matter.conditions, 1):
            mark = f"{i}. "
            left(mark + condition, indent=len(mark))
    out.append(Feed(1))
    where = "、".join(name for _, name in entry.services)
    left(f"办理：{where}" + (f"（{entry.zone}）" if entry.zone else ""))
    left(f"{visits_text(matter)}；{ONLINE_LABELS[matter.online]}")
    if entry.phone:
        left(f"咨询电话：{entry.phone}")
    left(f"打印时间：{facts.printed_at:%Y-%m-%d %H:%M}")
    out.append(Feed(1))
    centre("请按清单备齐材料，一次办好")
    out.append(Feed(3))
    out.append(Cut())
    return out
