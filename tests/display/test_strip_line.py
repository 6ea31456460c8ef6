"""The display bench's emulated bus in its own process (bench/_strip_line.py): a host on its
pty gets a strip's answer, the bench gets the time the SHOW_TEXT's last byte was in on the
line, on the clock the bench itself reads, and the process goes when the bench does."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import termios
import time
import tty
from collections.abc import Callable
from pathlib import Path

from firmware_bridge import timing
from firmware_bridge.codec import HOST_ADDR, Frame, FrameDecoder, FrameFlags
from firmware_bridge.constants import Command, TextEncoding
from firmware_bridge.messages import ShowTextRequest

ROOT = Path(__file__).resolve().parents[2]
BAUD = 9600


def _read_until(fd: int, done: Callable[[bytes], bool], deadline: float) -> bytes:
    """Bytes read from ``fd`` until ``done`` holds for what was read, or the deadline."""
    got = b""
    while not done(got):
        left = deadline - time.monotonic()
        assert left > 0, f"nothing complete before the deadline: {got!r}"
        if select.select([fd], [], [], left)[0]:
            got += os.read(fd, 4096)
    return got


def test_a_strip_answers_and_reports_its_last_byte_on_the_shared_clock() -> None:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "_strip_line.py"), "--strips", "2", "--callers", "1"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        out = proc.stdout.fileno()
        first = _read_until(out, lambda b: b.endswith(b"\n"), time.monotonic() + 30)
        word, path, _, nice, policy = first.decode().split()
        assert (word, policy) == ("pty", "other") and int(nice) == os.nice(0)
        host = os.open(path, os.O_RDWR | os.O_NOCTTY)
        try:
            tty.setraw(host, termios.TCSANOW)
            show = ShowTextRequest(text="请A023号到2号窗口")
            frame = Frame(
                FrameFlags.NONE, 2, HOST_ADDR, 7, Command.SHOW_TEXT, show.encode(TextEncoding.GBK)
            )
            wire = frame.to_bytes()
            sent = time.monotonic()
            os.write(host, wire)

            def answered(data: bytes) -> bool:
                return bool(FrameDecoder().feed(data))

            replies = FrameDecoder().feed(_read_until(host, answered, time.monotonic() + 10))
            assert (replies[0].src, replies[0].seq, replies[0].cmd) == (2, 7, Command.SHOW_TEXT)
            report = json.loads(_read_until(out, lambda b: b.endswith(b"\n"), sent + 10))
            assert (report["a"], report["text"]) == (2, "请A023号到2号窗口")
            # Not before the frame's last bit could be in at 9600 baud, and on the same clock.
            line_time = len(wire) * timing.t_char(BAUD)
            assert sent + line_time <= report["t"] < time.monotonic()
        finally:
            os.close(host)
        proc.stdin.close()  # the bench went away: the emulator ends by itself
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
