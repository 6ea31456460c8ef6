"""Line timing derived from the baud rate (spec §1, §5, §7.1)."""

from __future__ import annotations

import pytest

from firmware_bridge import timing
from firmware_bridge.constants import Command, DeviceClass
from firmware_bridge.messages import max_reply_payload


def test_character_time_and_idle_gap() -> None:
    assert timing.t_char(9600) == pytest.approx(0.0010417, rel=1e-4)
    assert timing.t_idle(9600) == pytest.approx(0.020)  # 10 characters are 10.4 ms: the floor
    assert timing.t_idle(1200) == pytest.approx(10 * 10 / 1200)
    assert timing.t_idle(115200) == pytest.approx(0.020)  # the floor
    assert timing.turnaround(9600) == pytest.approx(3.5 * 10 / 9600)
    assert timing.turnaround(115200) == pytest.approx(0.00175)


@pytest.mark.parametrize(
    ("device_class", "low", "high"),
    [(DeviceClass.STRIP, 0.050, 0.060), (DeviceClass.PAD, 0.060, 0.100)],
)
def test_poll_reply_timeout_at_9600_is_in_the_spec_range(
    device_class: DeviceClass, low: float, high: float
) -> None:
    timeout = timing.reply_timeout(9600, max_reply_payload(Command.POLL, device_class))
    assert low <= timeout <= high


def test_persistent_commands_wait_for_t_busy_capped_at_200_ms() -> None:
    plain = timing.reply_timeout(9600, 1)
    assert timing.reply_timeout(9600, 1, busy_s=0.050) == pytest.approx(plain + 0.030)
    assert timing.reply_timeout(9600, 1, busy_s=0.500) == pytest.approx(plain + 0.180)


def test_constants_are_read_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timing, "T_RESP_S", 0.001)
    monkeypatch.setattr(timing, "REPLY_MARGIN_S", 0.0)
    assert timing.reply_timeout(115200, 0) == pytest.approx(0.001 + 11 * 10 / 115200)
