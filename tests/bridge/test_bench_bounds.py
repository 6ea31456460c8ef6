"""The lower bounds bench/bridge.py prints next to its measurements (docs/hardware.md §6)."""

from __future__ import annotations

import pytest

from bench.bridge import latency_bounds
from firmware_bridge import timing


def test_plain_hb1_bound_for_eight_callers() -> None:
    # 8 callers back to back at 9600 baud: a cycle of 8 × 43.75 ms; best = from the POLL's
    # last byte (where the device decides what its reply carries) the reply with the KEY plus
    # the 17-byte call on the strip.
    b = latency_bounds(9600, 8, 0.0, 17)
    assert b["cycle"] == pytest.approx(0.350, abs=1e-6)
    assert b["best"] * 1000 == pytest.approx(66.7, abs=0.1)
    assert b["p99"] * 1000 == pytest.approx(413.2, abs=0.1)
    # Other traffic stretches the cycle: 8 strips with a heartbeat every 9 s, each a POLL, or
    # (as the master does, docs/protocol.md §15.2) a POLL every 30 s and a 17-byte NOACK
    # SET_TIME in between: per 36 s one POLL exchange and three keep-alives.
    strips = 8 * b["poll_exchange"] / 9.0
    assert latency_bounds(9600, 8, 0.0, 17, strips)["p99"] * 1000 == pytest.approx(427.2, abs=0.2)
    keepalive = timing.frame_time(9600, 6) + timing.turnaround(9600)
    assert keepalive * 1000 == pytest.approx(21.35, abs=0.01)
    strips = 8 * (b["poll_exchange"] + 3 * keepalive) / 36.0
    assert latency_bounds(9600, 8, 0.0, 17, strips)["p99"] * 1000 == pytest.approx(421.7, abs=0.2)


def test_attention_bound_is_under_the_targets() -> None:
    at_9600 = latency_bounds(9600, 8, 0.0, 17, with_attention=True)
    assert at_9600["cycle"] * 1000 == pytest.approx(38.54, abs=0.01)
    assert at_9600["best"] < at_9600["p50"] < at_9600["p99"] <= at_9600["worst"]
    # The caller decides its mark at the ATTN request's last byte: a key waits for that, then
    # the whole round, the host's gap, the POLL with the KEY and the 17-byte call.
    assert at_9600["best"] * 1000 == pytest.approx(106.25, abs=0.01)
    assert at_9600["p99"] * 1000 == pytest.approx(144.4, abs=0.1)
    assert latency_bounds(38400, 8, 0.0, 17, with_attention=True)["p99"] < 0.050
    # More load, longer cycle, higher bound; the bound never drops below one key's frames.
    loaded = latency_bounds(9600, 8, 0.0, 17, 0.2, with_attention=True)
    assert loaded["p99"] > at_9600["p99"]
    assert loaded["best"] == at_9600["best"]
