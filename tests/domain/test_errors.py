"""The error hierarchy is part of the API: codes and statuses are what clients switch on."""

from __future__ import annotations

import json
import re

import pytest

from hall.domain import errors
from hall.domain.errors import HallError
from hall.web.problems import from_hall_error

# class -> (code, HTTP status, zh-CN title), as documented for API clients.
CONTRACT: dict[type[HallError], tuple[str, int, str]] = {
    errors.HallError: ("hall_error", 500, "服务器内部错误"),
    errors.InvalidInput: ("invalid_input", 422, "请求内容不正确"),
    errors.RequestTimeout: ("request_timeout", 408, "请求读取超时"),
    errors.NotFound: ("not_found", 404, "对象不存在"),
    errors.Conflict: ("conflict", 409, "当前状态不允许此操作"),
    errors.ConfigNotLive: ("config_not_live", 409, "此配置修改不能在运行中生效"),
    errors.IllegalTransition: ("illegal_transition", 409, "当前状态不允许此操作"),
    errors.QuotaExhausted: ("quota_exhausted", 409, "该业务今日号源已取完"),
    errors.OutsideHours: ("outside_hours", 409, "当前不在办公时间"),
    errors.QueueEmpty: ("queue_empty", 409, "当前没有等候的号码"),
    errors.CounterBusy: ("counter_busy", 409, "窗口当前有正在处理的号码"),
    errors.NoActiveTicket: ("no_active_ticket", 409, "窗口当前没有正在处理的号码"),
    errors.PurposeNotAllowed: ("purpose_not_allowed", 409, "该业务不受理此类事项"),
    errors.IdempotencyMismatch: ("idempotency_mismatch", 409, "幂等键已用于不同的请求"),
    errors.Unauthorized: ("unauthorized", 401, "请先登录"),
    errors.Forbidden: ("forbidden", 403, "无权执行此操作"),
    errors.NotOfferedHere: ("not_offered_here", 403, "本机不提供此业务"),
    errors.RateLimited: ("rate_limited", 429, "请求过于频繁，请稍后再试"),
    errors.AccountLocked: ("account_locked", 423, "账号已锁定"),
    errors.Unavailable: ("unavailable", 503, "服务暂不可用"),
}


def test_every_error_class_is_in_the_contract() -> None:
    defined = {v for v in vars(errors).values() if isinstance(v, type) and issubclass(v, HallError)}
    assert defined == set(CONTRACT)


@pytest.mark.parametrize("cls", list(CONTRACT), ids=lambda c: c.__name__)
def test_code_status_and_title(cls: type[HallError]) -> None:
    code, status, title = CONTRACT[cls]
    err = cls()
    assert (err.code, err.status, err.title) == (code, status, title)
    assert err.detail == title and str(err) == title  # no detail: the title is the message
    assert err.fields == {}


def test_detail_and_fields_are_kept() -> None:
    err = errors.QuotaExhausted("「不动产登记」今日号源已取完（共 200 个）", quota=200)
    assert err.detail == str(err) == "「不动产登记」今日号源已取完（共 200 个）"
    assert err.fields == {"quota": 200}
    assert isinstance(err, errors.Conflict)


def _subclasses(cls: type[HallError]) -> set[type[HallError]]:
    found: set[type[HallError]] = set()
    for sub in cls.__subclasses__():
        found |= {sub} | _subclasses(sub)
    return found


_CJK = re.compile(r"[\u4e00-\u9fff]")


def feature_errors() -> set[type[HallError]]:
    """The HallError subclasses the installed features define (after importing every one)."""
    from hall.app import FEATURES

    packages = {f.name for f in FEATURES}
    return {c for c in _subclasses(HallError) if c.__module__.split(".")[0] in packages}


def test_every_feature_error_has_its_own_code_a_chinese_title_and_a_4xx_or_5xx_status() -> None:
    errs = feature_errors()
    assert errs, "the features define no HallError of their own"
    codes: dict[str, type[HallError]] = {}
    for cls in sorted(_subclasses(HallError) | {HallError}, key=lambda c: c.__qualname__):
        assert cls.code not in codes, f"{cls.__qualname__} reuses the code of {codes[cls.code]}"
        codes[cls.code] = cls
    for cls in errs:
        where = f"{cls.__module__}.{cls.__qualname__}"
        assert "code" in vars(cls), f"{where} must declare its own code"
        assert "title" in vars(cls), f"{where} must declare its own Chinese title"
        assert _CJK.search(cls.title), f"{where}: the title must be Chinese"
        assert 400 <= cls.status <= 599, f"{where}: status {cls.status}"


def _by_code(cls: type[HallError]) -> str:
    return cls.code


FEATURE_ERRORS: list[type[HallError]] = sorted(feature_errors(), key=_by_code)


@pytest.mark.parametrize("cls", FEATURE_ERRORS, ids=_by_code)
def test_every_feature_error_becomes_a_problem_response_with_its_status(
    cls: type[HallError],
) -> None:
    response = from_hall_error(cls("具体原因"))
    assert response.status == cls.status
    assert response.content_type == "application/problem+json"
    assert isinstance(response.body, bytes)
    body = json.loads(response.body)
    assert (body["code"], body["title"], body["detail"]) == (cls.code, cls.title, "具体原因")
