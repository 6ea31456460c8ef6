"""The display and bridge benches' emulated bus in its own process (bench/_strip_line.py): a
host on its pty gets a strip's answer, the bench gets the time the SHOW_TEXT's last byte was in
on the line, on the clock the bench itself reads, presses keys on callers when told, reports
every request a device acted on, and the process goes when the bench does."""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import termios
import time
import tty
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from firmware_bridge import timing
from firmware_bridge.codec import HOST_ADDR, Frame, FrameDecoder, FrameFlags
from firmware_bridge.constants import Command, EventType, KeyCode, TextEncoding
from firmware_bridge.messages import (
    KeyEvent,
    PollReply,
    PollRequest,
    ShowTextRequest,
    decode_event,
    decode_reply,
)

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


@contextlib.contextmanager
def _emulated_bus(*options: str) -> Iterator[tuple[IO[bytes], int, list[str], int]]:
    """bench/_strip_line.py with ``options``: its stdin, its stdout, the words of its first
    line and the host's end of its pty (raw). Afterwards the bench going away (stdin closed)
    must end it cleanly; a failing test never leaves it behind."""
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "_strip_line.py"), *options],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        out = proc.stdout.fileno()
        first = _read_until(out, lambda b: b.endswith(b"\n"), time.monotonic() + 30)
        words = first.decode().split()
        host = os.open(words[1], os.O_RDWR | os.O_NOCTTY)
        try:
            tty.setraw(host, termios.TCSANOW)
            yield proc.stdin, out, words, host
        finally:
            os.close(host)
        proc.stdin.close()  # the bench went away: the emulator ends by itself
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_strip_answers_and_reports_its_last_byte_on_the_shared_clock() -> None:
    with _emulated_bus("--strips", "2", "--callers", "1") as (_, out, first, host):
        word, _path, _, nice, policy = first
        assert (word, policy) == ("pty", "other") and int(nice) == os.nice(0)
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


def _json_lines(
    fd: int, done: Callable[[list[dict[str, Any]]], bool], deadline: float
) -> list[dict[str, Any]]:
    """JSON lines read from ``fd`` until ``done`` holds for them, or the deadline."""
    got = b""

    def parsed() -> list[dict[str, Any]]:
        return [json.loads(line) for line in got.split(b"\n")[:-1]]

    while not done(parsed()):
        left = deadline - time.monotonic()
        assert left > 0, f"nothing complete before the deadline: {got!r}"
        if select.select([fd], [], [], left)[0]:
            got += os.read(fd, 65536)
    return parsed()


def _poll(host: int, request: PollRequest, seq: int) -> PollReply:
    frame = Frame(FrameFlags.NONE, 0x41, HOST_ADDR, seq, Command.POLL, request.encode())
    os.write(host, frame.to_bytes())

    def answered(data: bytes) -> bool:
        return bool(FrameDecoder().feed(data))

    (reply,) = FrameDecoder().feed(_read_until(host, answered, time.monotonic() + 10))
    decoded = decode_reply(Command.POLL, reply.payload)
    assert isinstance(decoded, PollReply)
    return decoded


def test_a_key_pressed_on_command_reaches_the_host_and_every_request_is_reported() -> None:
    """The bridge bench's use: the bench tells the emulator to press a key on a caller and
    gets the press's instant; the host's POLL fetches the KEY; the POLL comes back in the
    frame log (after a ``sync``) with its time on the shared clock and the caller's address."""
    with _emulated_bus("--strips", "1", "--callers", "1", "--frames") as (stdin, out, _, host):
        before = time.monotonic()
        stdin.write(b"press 65 1\n")  # caller 0x41, 叫号
        stdin.flush()
        (pressed,) = _json_lines(out, lambda lines: len(lines) == 1, before + 10)
        assert pressed["p"] == 0x41 and pressed["ok"] is True
        assert before <= float(pressed["t"]) <= time.monotonic()
        # The caller's BOOT comes first; the POLL that acknowledges it fetches the KEY.
        boot = _poll(host, PollRequest(), 3)
        assert boot.evt_type == EventType.BOOT
        ack = PollRequest(ack_evt_seq=boot.evt_seq, ack_boot_id=boot.boot_id)
        sent = time.monotonic()
        key = _poll(host, ack, 4)
        assert key.evt_type == EventType.KEY
        assert decode_event(key.evt_type, key.evt_data) == KeyEvent(KeyCode.CALL_NEXT)
        stdin.write(b"sync\n")
        stdin.flush()
        lines = _json_lines(out, lambda lines: any("sync" in x for x in lines), sent + 10)
    frames = [line["f"] for line in lines if "f" in line]
    assert len(frames) == 2
    at, address, cmd, size, replied, noack, _dst, caller, listed, _slot = frames[1]
    payload = len(ack.encode())
    assert (address, cmd, size, replied, noack, caller, listed) == (
        0x41,
        Command.POLL,
        payload,
        True,
        False,
        True,
        [],
    )
    # Handed over when its last byte would be in at 9600 baud, before the sync answer.
    line_time = timing.frame_time(BAUD, payload)
    assert sent + line_time <= at <= lines[-1]["sync"]
