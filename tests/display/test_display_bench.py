"""bench/display.py's plumbing in its default layout: the hall server runs as `hall serve` in a
process of its own, the calls reach the emulated strips and the TV pages and are timed on the
right clocks, and the bench leaves no server behind."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bench._display import CHROMIUM
from firmware_bridge import timing

ROOT = Path(__file__).resolve().parents[2]
SAMPLES, TVS = 2, 2

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed"),
]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"


def test_a_short_run_times_calls_through_a_server_process_of_its_own() -> None:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "display.py"),
         "--samples", str(SAMPLES), "--tvs", str(TVS), "--pause-s", "0.1", "--limit-s", "80"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # on a hang, its whole tree can be ended below
    )  # fmt: skip
    try:
        out, _ = proc.communicate(timeout=100)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    assert proc.returncode == 0, out[-3000:]
    figures = json.loads(out.strip().splitlines()[-1])
    assert (figures["server"], figures["loop"]) == ("own-process", "uvloop")
    assert (figures["samples"], figures["tv_updates"], figures["tv_missed"]) == (
        SAMPLES,
        SAMPLES * TVS,
        0,
    )
    # Both spans are differences of one clock taken in two processes: a call cannot reach a
    # strip sooner than a SHOW_TEXT frame takes on the line, nor a page before it was sent.
    assert timing.frame_time(9600, 0) * 1000 < figures["call_to_strip_p50_ms"] < 10_000
    assert 0 < figures["call_to_tv_p50_ms"] < 10_000
    found = re.search(r"`hall serve` in its own process \(pid (\d+), uvloop\)", out)
    assert found is not None, out[-3000:]
    server = int(found[1])
    assert server != proc.pid
    assert not _alive(server), "the bench left its hall server running"
