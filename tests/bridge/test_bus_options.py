"""Every ``[buses.options]`` key reaches the bus master, and ``hall config check`` refuses
values that cannot work at the bus's baud rate."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from firmware_bridge import budget, timing
from firmware_bridge.constants import DeviceClass
from firmware_bridge.health import DeviceHealth
from firmware_bridge.messages import SetTimeRequest
from hall.config.check import check_command
from hall.config.models import HallConfig
from hall.web.bridge import bridge_specs
from tests.bridge.conftest import (
    CALLER,
    STRIP,
    AppMaker,
    Rig,
    eventually,
    master_of,
    open_counter,
    wired_config,
)
from tests.factories import hall_config

OPTIONS = {"reply_timeout_ms": 120, "offline_after_failures": 5, "offline_probe_ms": 700}


@pytest.fixture
def config(rig: Rig) -> HallConfig:
    base = wired_config(rig.path)
    bus = base.buses[0]
    options = bus.options.model_copy(update=OPTIONS)
    base.buses[0] = bus.model_copy(update={"options": options})
    return base


def test_bridge_specs_carry_every_bus_option(config: HallConfig) -> None:
    (spec,), _ = bridge_specs(config)
    assert spec.poll_interactive_s == 0.05
    assert spec.poll_display_s == 0.1
    assert spec.reply_timeout_s == 0.12
    assert spec.offline_after_failures == 5
    assert spec.offline_probe_s == 0.7
    assert spec.timezone == "Asia/Shanghai"
    clock = spec.clock()
    assert clock is not None
    assert clock()[1] == 480  # minutes east of UTC, for SET_TIME


async def test_options_drive_the_running_bus(make_app: AppMaker, rig: Rig) -> None:
    client = await make_app()
    master = master_of(client)
    assert master.offline_after_failures == 5
    assert master.offline_probe_s == 0.7
    assert master.reply_timeout_s == 0.12
    await eventually(lambda: master.device(STRIP).health is DeviceHealth.ONLINE, "strip online")
    # poll_interactive_ms and poll_display_ms: the longest gap of a caller in use and the
    # period of screens and calling strips; idle devices are polled at the slower idle rates.
    assert master.device(CALLER).period == max(0.05, timing.IDLE_INTERACTIVE_POLL_S)
    await open_counter(client)  # a clerk at window 1: the caller is in use
    await eventually(lambda: master.device(CALLER).active, "caller in use")
    assert master.device(CALLER).period == 0.05
    assert not master.device(STRIP).active
    assert master.device(STRIP).period == max(0.1, timing.IDLE_DISPLAY_POLL_S)
    # Each device's first resync ends with SET_TIME in the hall's zone (§10.1).
    await eventually(lambda: rig.strip.time_offset is not None, "SET_TIME on the strip")
    assert any(isinstance(e.request, SetTimeRequest) for e in rig.strip.log)

    # Replies 60 ms late: beyond the computed timeout at this speed, within the configured one.
    assert timing.reply_timeout(115200, 64) < 0.06
    rig.endpoint.reply_delay_s = 0.06
    polls, timeouts = master.device(STRIP).polls, master.stats.timeouts
    await eventually(lambda: master.device(STRIP).polls > polls + 3, "polls with late replies")
    assert master.stats.timeouts == timeouts
    rig.endpoint.reply_delay_s = 0.0

    # A silent strip goes OFFLINE after 5 failed transactions, not after the spec's 3.
    seen: list[int] = [0]

    def offline() -> bool:
        status = master.device(STRIP)
        if status.health is not DeviceHealth.OFFLINE:
            seen.append(status.failures)
        return status.health is DeviceHealth.OFFLINE

    rig.strip.switches.silent = True
    await eventually(offline, "strip offline")
    assert master.device(STRIP).failures == 5
    assert max(seen) == 4


# --- hall config check ------------------------------------------------------------------------


def config_body(baud: int, options: dict[str, Any], devices: list[tuple[str, int]]) -> Any:
    body: dict[str, Any] = hall_config().model_dump(mode="json", by_alias=True, exclude_unset=True)
    body["buses"] = [
        {"name": "b1", "hall": "test", "url": "/dev/ttyUSB0", "baudrate": baud, "options": options}
    ]
    body["devices"] = [
        {"bus": "b1", "address": n + 1, "class": cls, "counter": 1}
        for n, (cls, _) in enumerate(devices)
    ]
    return body


def problems(baud: int, options: dict[str, Any], classes: list[str]) -> list[tuple[Any, ...]]:
    body = config_body(baud, options, [(c, 0) for c in classes])
    try:
        HallConfig.model_validate(body)
    except ValidationError as exc:
        return [tuple(e["loc"]) for e in exc.errors()]
    return []


def test_reply_timeout_too_short_for_the_baud_rate_is_refused() -> None:
    # At 9600 baud an INFO reply with a 32-character model alone takes 78 ms after T_RESP.
    least = budget.min_reply_timeout_s(9600, [DeviceClass.CALLER])
    assert 0.09 < least < 0.1
    assert problems(9600, {"reply_timeout_ms": 60}, ["caller"]) == [
        ("buses", 0, "options", "reply_timeout_ms")
    ]
    assert problems(9600, {"reply_timeout_ms": 100}, ["caller"]) == []
    # The same 60 ms is plenty at 115200 baud.
    assert problems(115200, {"reply_timeout_ms": 60}, ["caller"]) == []


def test_probe_period_shorter_than_one_probe_is_refused() -> None:
    assert problems(9600, {"reply_timeout_ms": 800, "offline_probe_ms": 600}, ["strip"]) == [
        ("buses", 0, "options", "offline_probe_ms")
    ]
    assert problems(9600, {"reply_timeout_ms": 400, "offline_probe_ms": 600}, ["strip"]) == []


def test_display_poll_period_at_the_host_lost_time_is_refused() -> None:
    assert problems(9600, {"poll_display_ms": 10000}, ["strip"]) == [
        ("buses", 0, "options", "poll_display_ms")
    ]
    assert problems(9600, {"poll_display_ms": 9000}, ["strip"]) == []


def test_too_many_interactive_devices_for_the_baud_rate_are_refused() -> None:
    # One POLL exchange is 43.75 ms at 9600 baud: 23 callers cannot each be polled once a second.
    assert problems(9600, {}, ["caller"] * 23) == [("buses", 0, "baudrate")]
    assert problems(9600, {}, ["caller"] * 16) == []
    assert problems(38400, {}, ["caller"] * 23) == []


def test_config_check_prints_the_bus_problem(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "county-hall.toml"
    text = example.read_text(encoding="utf-8")
    marker = "poll_display_ms = 3000\n"
    assert text.count(marker) == 1
    path = tmp_path / "hall.toml"
    path.write_text(text.replace(marker, marker + "reply_timeout_ms = 50\n"), encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    assert check_command(str(path), out, err) == 1
    assert "buses[0].options.reply_timeout_ms" in err.getvalue()
    assert "9600 baud" in err.getvalue()
    assert check_command(str(example), io.StringIO(), io.StringIO()) == 0
