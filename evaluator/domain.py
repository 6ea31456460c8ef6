"""Cases (办件), ratings (好差评) and 差评 follow-up: the rules, no I/O (domain.md §2.2, §4)."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from datetime import date

from hall.config.models import BadReason
from hall.domain.calendar import WorkingCalendar
from hall.domain.errors import Conflict, IllegalTransition, InvalidInput

# --- the slice's errors (codes and titles are API: tests/evaluator/test_errors.py) ----------


class UnknownReason(InvalidInput):
    """A 差评 reason code that is not in the configured list (evaluation.bad_reasons)."""

    code = "unknown_reason"
    title = "未知的差评原因"


class DeadlineInPast(InvalidInput):
    """A case's deadline (办结期限) before the day it is accepted."""

    code = "deadline_in_past"
    title = "办结期限不能早于今天"


class InvalidDimension(InvalidInput):
    """A rating dimension the hall does not use, or a dimension level outside 0-5."""

    code = "invalid_dimension"
    title = "评价维度不正确"


class NoRatingSession(Conflict):
    """A pad rating for a session that is not open on that pad (HB1.md §12.4)."""

    code = "no_rating_session"
    title = "本窗口当前没有待评价的服务"


class CaseType(enum.StrEnum):
    IMMEDIATE = "immediate"  # 即办件
    PROMISED = "promised"  # 承诺件
    JOINT = "joint"  # 联办件 / 并联件
    REPORTED = "reported"  # 上报件


CASE_TYPE_NAMES: Mapping[CaseType, str] = {
    CaseType.IMMEDIATE: "即办件",
    CaseType.PROMISED: "承诺件",
    CaseType.JOINT: "联办件",
    CaseType.REPORTED: "上报件",
}


class CaseStatus(enum.StrEnum):
    ACCEPTED = "accepted"  # 受理
    REVIEWING = "reviewing"  # 审批
    COMPLETED = "completed"  # 办结
    DELIVERED = "delivered"  # 送达
    COLLECTED = "collected"  # 领取
    RETURNED = "returned"  # 退件
    REJECTED = "rejected"  # 不予受理


STATUS_NAMES: Mapping[CaseStatus, str] = {
    CaseStatus.ACCEPTED: "受理",
    CaseStatus.REVIEWING: "审批",
    CaseStatus.COMPLETED: "办结",
    CaseStatus.DELIVERED: "送达",
    CaseStatus.COLLECTED: "领取",
    CaseStatus.RETURNED: "退件",
    CaseStatus.REJECTED: "不予受理",
}

_S = CaseStatus
# status -> statuses it may move to
CASE_FLOW: Mapping[CaseStatus, frozenset[CaseStatus]] = {
    _S.ACCEPTED: frozenset({_S.REVIEWING, _S.COMPLETED, _S.RETURNED, _S.REJECTED}),
    _S.REVIEWING: frozenset({_S.COMPLETED, _S.RETURNED}),
    _S.COMPLETED: frozenset({_S.DELIVERED, _S.COLLECTED}),
    _S.DELIVERED: frozenset(),
    _S.COLLECTED: frozenset(),
    _S.RETURNED: frozenset(),
    _S.REJECTED: frozenset(),
}
FINAL = frozenset(s for s, nxt in CASE_FLOW.items() if not nxt)
RATEABLE = frozenset({_S.COMPLETED, _S.DELIVERED, _S.COLLECTED, _S.RETURNED, _S.REJECTED})


def next_status(current: CaseStatus, target: CaseStatus) -> CaseStatus:
    """``target`` if the flow allows it from ``current``; otherwise a Chinese refusal."""
    if target not in CASE_FLOW[current]:
        raise IllegalTransition(
            f"办件状态不能从“{STATUS_NAMES[current]}”变为“{STATUS_NAMES[target]}”"
        )
    return target


def initial_status(case_type: CaseType, promised_days: int) -> CaseStatus:
    """An immediate case is completed on the spot (即来即办); others start at 受理."""
    if case_type is CaseType.IMMEDIATE and promised_days == 0:
        return CaseStatus.COMPLETED
    return CaseStatus.ACCEPTED


def case_due(calendar: WorkingCalendar, accepted_on: date, promised_days: int) -> date:
    """Due date: ``promised_days`` working days counted from the next working day."""
    if promised_days < 0:
        raise InvalidInput("承诺时限不能为负数")
    return calendar.add_working_days(accepted_on, promised_days)


def check_case_type(case_type: CaseType, promised_days: int) -> None:
    if case_type is CaseType.IMMEDIATE and promised_days != 0:
        raise InvalidInput("即办件的承诺时限必须为 0 个工作日")
    if case_type is CaseType.PROMISED and promised_days == 0:
        raise InvalidInput("承诺件的承诺时限至少为 1 个工作日")


# --- ratings ---------------------------------------------------------------------------------

LEVEL_NAMES: Mapping[int, str] = {
    5: "非常满意",
    4: "满意",
    3: "基本满意",
    2: "不满意",
    1: "非常不满意",
}
BAD_LEVELS = frozenset({1, 2})


def is_bad(level: int | None) -> bool:
    return level is not None and level in BAD_LEVELS


def check_level(level: int) -> None:
    if level not in LEVEL_NAMES:
        raise InvalidInput("评价等级必须是 1 到 5")


def reasons_of_mask(mask: int, options: Sequence[BadReason]) -> list[str]:
    """Codes of the configured reasons whose bits are set (HB/1 RATING ``reasons``).

    Bits beyond the configured list are ignored: a pad with a longer list must not invent
    reasons the hall does not use."""
    return [r.code for i, r in enumerate(options) if mask >> i & 1]


def check_reasons(level: int, codes: Sequence[str], options: Sequence[BadReason]) -> list[str]:
    """The reasons of a web or phone rating: only for 差评, at least one, all configured."""
    known = {r.code for r in options}
    unknown = [c for c in codes if c not in known]
    if unknown:
        raise UnknownReason(f"未知的差评原因：{'、'.join(unknown)}", reasons=unknown)
    if len(set(codes)) != len(codes):
        raise InvalidInput("差评原因重复")
    if level in BAD_LEVELS and not codes:
        raise InvalidInput("不满意的评价请至少选择一项原因")
    if level not in BAD_LEVELS and codes:
        raise InvalidInput("只有“不满意”和“非常不满意”需要选择原因")
    return list(codes)


# HB1.md PAD_RATE_REQ dims_mask: bit 0 服务效率, bit 1 服务水平, bit 2 服务态度.
DIMENSION_BITS: Mapping[str, int] = {"efficiency": 0, "level": 1, "attitude": 2}
DIMENSION_NAMES: Mapping[str, str] = {
    "efficiency": "服务效率",
    "level": "服务水平",
    "attitude": "服务态度",
}


def ordered_dimensions(configured: Sequence[str]) -> list[str]:
    """The hall's dimensions in bit order (the order of their levels in a RATING)."""
    return sorted(configured, key=lambda d: DIMENSION_BITS[d])


def dims_mask(configured: Sequence[str]) -> int:
    mask = 0
    for d in configured:
        mask |= 1 << DIMENSION_BITS[d]
    return mask


def check_dims(given: Mapping[str, object] | None, configured: Sequence[str]) -> list[int] | None:
    """The dimension levels of a web or phone rating, in bit order (0 = skipped); None when
    none were given. Unknown dimensions and levels outside 0-5 are refused in Chinese."""
    if not given:
        return None
    enabled = ordered_dimensions(configured)
    if not enabled:
        raise InvalidDimension("本大厅未启用分项评价，请只提交满意度等级")
    unknown = [name for name in given if name not in enabled]
    if unknown:
        names = "、".join(f"{d}（{DIMENSION_NAMES[d]}）" for d in enabled)
        raise InvalidDimension(f"未知的评价维度：{'、'.join(unknown)}；本大厅启用的维度：{names}")
    out: list[int] = []
    for d in enabled:
        value = given.get(d, 0)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 5:
            raise InvalidDimension(
                f"“{DIMENSION_NAMES[d]}”的评价必须是 1 到 5 的整数（0 表示未评）"
            )
        out.append(value)
    return out if any(out) else None


def dims_of_frame(dims: Sequence[int] | None, configured: Sequence[str]) -> list[int] | None:
    """An HB/1 RATING's dimension levels when they match what the host asked for (one level
    per configured dimension); anything else is dropped (the level itself still counts)."""
    if not dims or len(dims) != len(configured):
        return None
    return list(dims)


# --- 差评 follow-up ----------------------------------------------------------------------------


class TaskStatus(enum.StrEnum):
    OPEN = "open"
    VISITED = "visited"  # 已回访
    RECTIFIED = "rectified"  # 已整改
    CLOSED = "closed"


def followup_due(calendar: WorkingCalendar, opened_on: date, days: int) -> date:
    """The follow-up's deadline: ``days`` working days after the 差评 (default 15)."""
    return calendar.add_working_days(opened_on, days)


def is_overdue(due_on: date, today: date, status: str) -> bool:
    return status != TaskStatus.CLOSED and today > due_on
