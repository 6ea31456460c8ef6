"""The evaluator's errors are API: clients switch on their codes (the kernel's contract test,
tests/domain/test_errors.py, checks every feature's errors generically)."""

from __future__ import annotations

import pytest

from evaluator.domain import DeadlineInPast, InvalidDimension, NoRatingSession, UnknownReason
from evaluator.service import AlreadyRated, CaseNumberTaken
from hall.domain.errors import Conflict, HallError, InvalidInput
from tests.domain.test_errors import feature_errors

CONTRACT: dict[type[HallError], tuple[str, int, str, type[HallError]]] = {
    AlreadyRated: ("already_rated", 409, "已评价", Conflict),
    CaseNumberTaken: ("case_number_taken", 409, "办件编号已被使用", Conflict),
    NoRatingSession: ("no_rating_session", 409, "本窗口当前没有待评价的服务", Conflict),
    UnknownReason: ("unknown_reason", 422, "未知的差评原因", InvalidInput),
    DeadlineInPast: ("deadline_in_past", 422, "办结期限不能早于今天", InvalidInput),
    InvalidDimension: ("invalid_dimension", 422, "评价维度不正确", InvalidInput),
}


def test_every_evaluator_error_is_in_the_contract() -> None:
    ours = {c for c in feature_errors() if c.__module__.startswith("evaluator.")}
    assert ours == set(CONTRACT)


@pytest.mark.parametrize("cls", list(CONTRACT), ids=lambda c: c.__name__)
def test_code_status_title_and_family(cls: type[HallError]) -> None:
    code, status, title, family = CONTRACT[cls]
    err = cls()
    assert (err.code, err.status, err.title) == (code, status, title)
    assert isinstance(err, family)
