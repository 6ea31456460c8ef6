"""The demo opens no device ports. kill -9 of the server mid-burst (nothing acknowledged lost,
numbering without gaps) is tests/reliability/test_crash_restart.py."""

from __future__ import annotations


def test_demo_config_opens_no_device_ports() -> None:
    """The example names LAN serial servers; a demo on a laptop must not dial them."""
    from hall.cli import EXAMPLE_CONFIG, demo_config
    from hall.config.loader import load_config

    example = load_config(EXAMPLE_CONFIG)
    assert example.buses  # the example does wire devices...
    demo = demo_config(example, any_hour=True)
    assert (demo.buses, demo.devices, demo.printers) == ([], [], [])  # ...the demo does not
    assert all(h.issue_outside_hours for h in demo.halls)
    assert [h.id for h in demo.halls] == [h.id for h in example.halls]
