"""Parts of ``hall demo`` that need no server: the rate of its emulated lines and the pages
it prints besides the features' own."""

from __future__ import annotations

from simulator.demo import demo_baudrate, demo_pages


def test_emulated_lines_carry_the_sped_up_traffic() -> None:
    assert demo_baudrate(9600, 1.0) == 9600  # real time: the configured rate
    assert demo_baudrate(9600, 0.5) == 9600
    assert demo_baudrate(9600, 3.0) == 38400
    assert demo_baudrate(19200, 2.0) == 38400
    assert demo_baudrate(9600, 60.0) == 115200  # the default speed
    assert demo_baudrate(9600, 900.0) == 115200  # as fast as HB/1 goes


def test_demo_pages_leave_out_what_was_printed() -> None:
    every = demo_pages("xx-county", "tok")
    paths = [path for _, path in every]
    assert "/demo/pair/display/tv1" in paths and "/demo/pair/kiosk/k1" in paths
    assert "/t/tok" in paths
    fewer = [path for _, path in demo_pages("xx-county", None, {"/counter", "/login"})]
    assert "/counter" not in fewer and "/login" not in fewer
    assert "/t/tok" not in fewer and "/demo/pair/display/tv1" in fewer
    assert not any(path.startswith("/demo/pair/pad/") for path in fewer)
    padded = [path for _, path in demo_pages("xx-county", None, web_pad_counter=5)]
    assert "/demo/pair/pad/5" in padded
