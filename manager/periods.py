"""Report periods: whole business days, both ends included, checked before any query runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from hall.domain.errors import InvalidInput

MAX_DAYS = 366
"""The longest period a report covers: a year (leap years included)."""


@dataclass(frozen=True, slots=True)
class Period:
    first: date
    last: date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def each_day(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range(self.days)]

    def label(self) -> str:
        if self.first == self.last:
            return self.first.isoformat()
        return f"{self.first.isoformat()} 至 {self.last.isoformat()}"


def parse_day(value: str | None, name: str) -> date:
    """An ISO date (2026-11-24); anything else is refused in words a manager understands."""
    if value is None or not value.strip():
        raise InvalidInput(f"缺少{_LABEL.get(name, name)}（格式 2026-11-24）", field=name)
    text = value.strip()
    if len(text) != 10 or not text.isascii():
        raise InvalidInput(
            f"{_LABEL.get(name, name)}「{text[:20]}」不是有效日期（格式 2026-11-24）", field=name
        )
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"{_LABEL.get(name, name)}「{text}」不是有效日期（格式 2026-11-24）", field=name
        ) from None


def period(first: date, last: date) -> Period:
    """A checked period: not reversed, at most ``MAX_DAYS`` long."""
    if last < first:
        raise InvalidInput(
            f"结束日期 {last.isoformat()} 早于开始日期 {first.isoformat()}，请检查统计期间",
            first=first.isoformat(),
            last=last.isoformat(),
        )
    found = Period(first, last)
    if found.days > MAX_DAYS:
        raise InvalidInput(
            f"统计期间共 {found.days} 天，超过上限 {MAX_DAYS} 天，请分段查询",
            days=found.days,
            max_days=MAX_DAYS,
        )
    return found


def parse_period(first: str | None, last: str | None) -> Period:
    """``from``/``to`` query values; a missing ``to`` means the same day as ``from``."""
    start = parse_day(first, "from")
    end = parse_day(last, "to") if last is not None and last.strip() else start
    return period(start, end)


_LABEL = {"from": "开始日期", "to": "结束日期", "day": "日期"}
