"""Lookups over the loaded configuration that the hot paths ask on every request."""

from __future__ import annotations

from hall.services.directory import Directory
from tests.factories import hall_config


def test_the_services_competing_for_a_services_counters() -> None:
    """A forecast weighs the other services of the counters that serve a ticket's service:
    each listed once, in the order of the counters (ascending) and of their service lists."""
    rules = Directory(hall_config(counters=2)).hall("test")
    assert rules.competing("BDC") == ("TAX",)  # windows 1 and 2: BDC, TAX
    assert rules.competing("TAX") == ("BDC", "SOC", "MED")  # windows 1, 2, then 90
    assert rules.competing("SOC") == ("MED", "TAX")  # window 90 alone
    assert rules.competing("NONE") == ()
    assert rules.competing("TAX") is rules.competing("TAX")  # worked out once
