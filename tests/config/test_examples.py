"""Every shipped example configuration loads, and says what the docs say it does."""

from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from hall.config.loader import load_config
from hall.config.models import CounterKind, DeviceClass, HallConfig, StaffRole

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FILES = sorted(EXAMPLES.glob("*.toml"))


def test_examples_exist() -> None:
    names = {f.name for f in FILES}
    assert {"county-hall.toml", "township-hall.toml"} <= names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_example_loads(path: Path) -> None:
    config = load_config(path)
    assert config.halls
    # The stored snapshot is a JSON dump that must validate back to the same config.
    assert HallConfig.model_validate(config.model_dump(mode="json")) == config
    assert HallConfig.model_validate(config.model_dump(mode="json", by_alias=True)) == config


def test_county_example_is_a_realistic_county_hall() -> None:
    config = load_config(EXAMPLES / "county-hall.toml")
    (hall,) = config.halls
    assert hall.timezone == "Asia/Shanghai"
    assert len(hall.counters) >= 40
    assert len(hall.services) >= 12
    kinds = {c.kind for c in hall.counters}
    assert kinds == set(CounterKind)
    comprehensive = [c for c in hall.counters if c.kind is CounterKind.COMPREHENSIVE]
    assert all(len(c.services) > 1 for c in comprehensive)
    assert len(hall.kiosks) == 3
    assert len(hall.screens) == 4  # two LED hall screens, two TV pages
    # 2026 Spring Festival and its make-up Saturday, as data.
    assert date(2026, 2, 17) in hall.calendar.holidays
    assert date(2026, 2, 14) in hall.calendar.workdays
    assert len(config.matters) >= 20
    roles = {r for s in config.staff for r in s.roles}
    assert {StaffRole.CLERK, StaffRole.MANAGER, StaffRole.ADMIN} <= roles
    assert len(config.buses) == 2
    classes = {d.device_class for d in config.devices}
    assert {DeviceClass.STRIP, DeviceClass.PAD, DeviceClass.CALLER} <= classes
    assert len(config.printers) == 3


def _read(name: str) -> dict[str, Any]:
    with (EXAMPLES / name).open("rb") as fh:
        return tomllib.load(fh)


def test_county_and_township_combine_into_one_deployment() -> None:
    """As documented in township-hall.toml: concatenate the lists and set the parent."""
    county, town = _read("county-hall.toml"), _read("township-hall.toml")
    town["halls"][0]["parent"] = county["halls"][0]["id"]
    merged = dict(county)
    for key in ("halls", "departments", "matters", "staff", "buses", "devices", "printers"):
        merged[key] = county.get(key, []) + town.get(key, [])
    config = HallConfig.model_validate(merged)
    assert [h.id for h in config.halls] == ["xx-county", "xx-yy-town"]
    assert config.halls[1].parent == "xx-county"
