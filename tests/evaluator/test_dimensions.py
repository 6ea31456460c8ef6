"""Extra rating dimensions (服务效率, 服务水平, 服务态度; HB1.md dims_mask) where a hall uses them:
checked with clear Chinese errors, nothing written for a bad one."""

from __future__ import annotations

import asyncpg
import pytest

from evaluator import pad as pad_rules
from evaluator.domain import dims_mask, dims_of_frame
from evaluator.pad import PadView, pad_requests
from firmware_bridge.messages import PadRateRequest
from hall.config.models import HallConfig
from tests.evaluator.conftest import Client, evaluator_body, finish
from tests.evaluator.test_ratings import PAD, pad_headers, served_with_case


@pytest.fixture
def config() -> HallConfig:
    return HallConfig.model_validate(evaluator_body(dimensions=["attitude", "efficiency"]))


async def test_the_web_pad_rates_the_hall_dimensions_and_refuses_unknown_ones(
    client: Client, pool: asyncpg.Pool
) -> None:
    await served_with_case(client)
    await finish(client)
    pad = await pad_headers(client)
    state = await (await client.get(PAD, headers=pad)).json()
    assert state["dimensions"] == [
        {"code": "efficiency", "text": "服务效率"},
        {"code": "attitude", "text": "服务态度"},
    ]
    session = state["session"]
    cases = [
        (
            {"speed": 3},
            "未知的评价维度：speed；本大厅启用的维度：efficiency（服务效率）、attitude（服务态度）",
        ),
        ({"efficiency": 7}, "“服务效率”的评价必须是 1 到 5 的整数（0 表示未评）"),
        ({"attitude": "好"}, "“服务态度”的评价必须是 1 到 5 的整数（0 表示未评）"),
    ]
    for dims, detail in cases:
        bad = await client.post(
            f"{PAD}/ratings", json={"session": session, "level": 4, "dims": dims}, headers=pad
        )
        assert bad.status == 422
        problem = await bad.json()
        assert (problem["code"], problem["detail"]) == ("invalid_dimension", detail)
    assert await pool.fetchval("SELECT count(*) FROM ratings") == 0

    ok = await client.post(
        f"{PAD}/ratings",
        json={"session": session, "level": 4, "dims": {"attitude": 5, "efficiency": 0}},
        headers=pad,
    )
    assert ok.status == 201, await ok.text()
    assert await pool.fetchval("SELECT dims FROM ratings") == [0, 5]  # bit order, 0 skipped


def test_the_hb1_pad_is_asked_for_the_dimensions_and_a_mismatched_frame_keeps_only_the_level(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from datetime import UTC, datetime

    assert dims_mask(["attitude", "efficiency"]) == 0b101
    monkeypatch.setattr(pad_rules.SETTINGS, "dims_mask", 0b101)
    now = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
    view = PadView(1, "open", "c001", "王小明", None, None, None, 0xCAFE, 7, now, False)
    requests = pad_requests(view, now, 30)
    assert requests[-1] == PadRateRequest(0xCAFE, timeout_s=30, dims_mask=0b101)
    assert dims_of_frame((4, 2), ["attitude", "efficiency"]) == [4, 2]
    assert dims_of_frame((4,), ["attitude", "efficiency"]) is None  # not what was asked
    assert dims_of_frame((4, 2), []) is None  # never asked
