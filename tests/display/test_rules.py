"""Strip and hall-screen rules, and the display config's checks."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from display.devices import screen_generation, strip_generation
from display.screen import shown_calls
from display.speech import quiet
from display.strip import MAX_TEXT_BYTES, clip_bytes, strip_requests, text_width
from firmware_bridge.constants import Color, DisplayMode
from firmware_bridge.messages import SetIdleRequest, ShowTextRequest
from hall.config.models import DisplayText, HallConfig, Screen, Voice
from hall.services.device_roles import RecentCall
from tests.factories import hall_config


def test_call_text_is_the_halls_own_and_flashes_for_the_hold() -> None:
    texts = DisplayText(call_text="请{number}号到{counter}号窗口办理", hold_s=15, strip_chars=12)
    idle, show = strip_requests(5, "calling", "A023", texts)
    assert show == ShowTextRequest(
        mode=DisplayMode.FLASH, color=Color.RED, hold_s=15, text="请A023号到5号窗口办理"
    )
    assert idle == SetIdleRequest(color=Color.GREEN, text="5号窗口 欢迎光临")


def test_closed_and_paused_differ() -> None:
    _, closed = strip_requests(5, "closed", None)
    _, paused = strip_requests(5, "paused", None)
    assert (closed.text, paused.text) == ("窗口关闭", "暂停服务")
    idle, _ = strip_requests(5, "paused", None)
    assert idle.text == "暂停服务"  # after a reboot or host loss the strip still says so


def test_a_text_wider_than_the_strip_scrolls_instead_of_being_cut() -> None:
    narrow = DisplayText(strip_chars=6)
    _, show = strip_requests(12, "calling", "A023", narrow)
    assert show.mode is DisplayMode.SCROLL
    assert show.text == "请A023号到12号窗口"  # whole
    _, fits = strip_requests(12, "calling", "A023", DisplayText(strip_chars=10))
    assert fits.mode is DisplayMode.FLASH and text_width(fits.text) <= 20


def test_clipping_to_the_wire_limit_never_splits_a_character() -> None:
    text = "窗" * 200  # 400 bytes in GBK
    clipped = clip_bytes(text)
    assert clipped == "窗" * (MAX_TEXT_BYTES // 2)
    assert len(clipped.encode("gbk")) <= MAX_TEXT_BYTES
    assert clip_bytes("a窗", 2) == "a"  # the second character does not fit whole
    assert clip_bytes("请A023号到12号窗口") == "请A023号到12号窗口"  # fits: whole
    assert clip_bytes("a😀b", 5) == "a😀"  # no GBK code: counted as its UTF-8 bytes


def test_hall_screens_show_the_calls_of_their_own_windows_and_services() -> None:
    calls = [
        RecentCall(9, "B003", 3, "TAX", False),
        RecentCall(8, "A002", 2, "BDC", True),
        RecentCall(7, "C001", 90, "SOC", False),
        RecentCall(6, "A001", 1, "BDC", False),
    ]
    screen = Screen(id="s", name="二楼", counters=[1, 2, 3], services=["BDC"])
    assert [c.number for c in shown_calls(screen, calls)] == ["A002", "A001"]
    assert [c.number for c in shown_calls(Screen(id="s", name="x"), calls)] == [
        "B003",
        "A002",
        "C001",
        "A001",
    ]


def test_quiet_hours_are_read_in_the_halls_time_zone() -> None:
    from datetime import UTC, datetime, time

    voice = Voice(quiet_hours=[{"open": time(12, 0), "close": time(13, 30)}])
    noon_shanghai = datetime(2026, 11, 24, 4, 30, tzinfo=UTC)  # 12:30 in Shanghai
    assert quiet(voice, noon_shanghai, "Asia/Shanghai")
    assert not quiet(voice, noon_shanghai, "UTC")


def _config(**hall: Any) -> HallConfig:
    return hall_config(extra_hall=hall)


def _errors(**hall: Any) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as info:
        _config(**hall)
    return [(".".join(str(p) for p in e["loc"]), e["msg"]) for e in info.value.errors()]


def test_a_screen_naming_unknown_counters_or_services_fails_with_the_key_path() -> None:
    errors = _errors(
        screens=[{"id": "tv", "name": "电视", "counters": [1, 77], "services": ["NOPE"]}]
    )
    paths = {p for p, _ in errors}
    assert any(p.endswith("screens.0.counters.1") for p in paths), errors
    assert any(p.endswith("screens.0.services.0") for p in paths), errors


def test_two_windows_may_not_show_the_same_name() -> None:
    counters = [
        {"number": 1, "name": "婚姻登记处", "services": [{"code": "BDC"}]},
        {"number": 2, "name": "婚姻登记处", "services": [{"code": "BDC"}]},
    ]
    errors = _errors(counters=counters)
    assert any(p.endswith("counters.1.name") and "婚姻登记处" in m for p, m in errors), errors


def test_unknown_placeholders_in_the_call_text_are_refused() -> None:
    errors = _errors(display={"call_text": "请{ticket}号"})
    assert any(p.endswith("display.call_text") for p, _ in errors), errors


def test_generations_change_on_recall_and_new_calls_only() -> None:
    from types import SimpleNamespace

    from hall.config.models import Device

    def scene(recalls: int, calls: list[RecentCall]) -> Any:
        view = SimpleNamespace(number=1, state="calling", ticket_number="A001",
                               ticket_recalls=recalls)  # fmt: skip
        rules = SimpleNamespace(hall=SimpleNamespace(screens=[Screen(id="s", name="屏")]))
        return SimpleNamespace(counters={1: view}, recent_calls=calls, rules=rules)

    strip = Device.model_validate({"bus": "b", "address": 1, "class": "strip", "counter": 1})
    screen = Device.model_validate({"bus": "b", "address": 2, "class": "screen", "screen": "s"})
    first = scene(0, [RecentCall(5, "A001", 1, "BDC", False)])
    again = scene(
        1, [RecentCall(6, "A001", 1, "BDC", True), RecentCall(5, "A001", 1, "BDC", False)]
    )
    assert strip_generation(first, strip) != strip_generation(again, strip)
    assert screen_generation(first, screen) != screen_generation(again, screen)
