"""The emulated bus of the display and bridge benches, in a process of its own.

A hall's window strips and callers are separate machines on an RS-485 line: they share neither
the server's CPU time nor its event loop. ``bench/display.py`` and ``bench/bridge.py``
therefore run their 16 emulated HB/1 devices here (the firmware_bridge emulators on one
:class:`Hb1Bus` behind a :class:`LineEndpoint` that plays the line at the bus speed both
ways), on a pty whose other end the hall server opens as ``hall serve`` opens a serial port.

    python -m bench._strip_line --baud 9600 --strips 8 --callers 8 [--nice N] [--fifo]
                                [--attention] [--reply-delay-ms MS] [--frames]
                                [--loop uvloop|asyncio]

``--nice N`` runs it at that nice value (negative: ahead of the other processes when it wakes;
needs CAP_SYS_NICE, else it says so and runs at its inherited priority). Prints ``pty PATH nice
N POLICY`` once the line is up (N: the nice value it runs at, POLICY ``fifo`` or ``other``: its
scheduling policy; ``--fifo`` asks for SCHED_FIFO), then one JSON line per SHOW_TEXT a strip
acts on: ``{"a": address, "t": seconds, "tn": seconds, "text": "...", "n": payload bytes}``,
where ``t`` is the line time of the frame's last byte (``LineEndpoint.line_now``: when the
bytes reached this end plus their time on the wire) and ``tn`` is ``time.monotonic()`` when the
strip acted on it (the endpoint hands a request over at its line time, later if this loop ran
late). ``time.monotonic`` is CLOCK_MONOTONIC on Linux, one clock for every process of the
machine, so the bench subtracts its own ``time.monotonic()`` taken before the call. A line
``stats`` on its stdin makes it print ``{"stats": {...}}``: its frame decoder's counters
(frames, idle_drops: frames cut by a silence, crc_errors, …).

For the bridge bench: ``--attention`` gives every device the optional attention poll
(docs/protocol.md §17); ``--reply-delay-ms`` sets when a reply starts after a request's last
byte (default the §7.1 turnaround). A line ``press ADDRESS KEY`` presses key code KEY on the
caller at ADDRESS at once and answers ``{"p": address, "t": seconds, "ok": bool}`` (``t``:
``time.monotonic()`` of the press, as the caller's firmware would stamp it). With
``--frames`` every request a device acted on is reported too, as ``{"f": [...]}`` (the fields
of :class:`Seen`; an attention round once, not once per device it lists); these lines are
buffered and go out with the next other line or within 0.1 s, and a line ``sync`` answers
``{"sync": seconds}`` after every frame logged before it. The process ends on SIGTERM/SIGINT
or when its stdin closes (the bench went away), closing the pty.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from firmware_bridge import timing
from firmware_bridge.constants import Command
from firmware_bridge.emulators.base import Hb1Device, RequestLog
from firmware_bridge.emulators.bus import Hb1Bus
from firmware_bridge.emulators.display import StripEmulator
from firmware_bridge.emulators.keypad import CallerEmulator
from firmware_bridge.emulators.line import LineEndpoint
from firmware_bridge.messages import AttnRequest, ShowTextRequest

CALLER_BASE = 0x40  # callers at 0x41, 0x42, … (strips at 1, 2, …), as bench/display.py wires


def add_process_options(parser: argparse.ArgumentParser, applies: str = "") -> None:
    """``--emulator-nice`` and ``--emulator-sched``: how a bench starts this process (it stands
    for devices whose firmware runs in real time on chips of their own). ``applies`` starts
    each help text (e.g. the layout the options apply to)."""
    parser.add_argument(
        "--emulator-nice",
        type=int,
        default=-10,
        help=f"{applies}nice value of the emulated bus's process (default -10)",
    )
    parser.add_argument(
        "--emulator-sched",
        choices=("fifo", "other"),
        default="fifo",
        help=f"{applies}scheduling of the emulated bus's process: SCHED_FIFO (default; "
        "firmware runs in real time on its own chip) or the normal policy",
    )


class Seen(NamedTuple):
    """One request an emulated device acted on, as the bridge bench's line accounting needs
    it (the same whether the devices run in the bench's process or here)."""

    t: float  # time.monotonic() when the device acted on it (its last byte in on the line)
    address: int  # the device's address; 0xFF for an attention round
    cmd: int
    size: int  # payload bytes of the request
    replied: bool  # the device answered (no NOACK, not a group frame)
    noack: bool
    dst: int
    caller: bool  # logged by a caller keypad
    listed: tuple[int, ...]  # an ATTN round's addresses (empty for other requests)
    slot_chars: int  # an ATTN round's slot length in characters (0 for other requests)


class FrameLog:
    """Turns the devices' request logs into :class:`Seen` records: an attention round is one
    frame handed to every device it lists (the bus decodes it once), so it is reported once."""

    def __init__(self) -> None:
        self._round: object | None = None

    def seen(self, device: Hb1Device, entry: RequestLog) -> Seen | None:
        frame = entry.frame
        at = time.monotonic()
        if frame.cmd == Command.ATTN:
            if frame is self._round:
                return None
            self._round = frame
            req = entry.request
            listed = req.addresses() if isinstance(req, AttnRequest) else ()
            slot_chars = req.slot_chars if isinstance(req, AttnRequest) else 0
            return Seen(
                at,
                0xFF,
                frame.cmd,
                len(frame.payload),
                False,
                frame.noack,
                frame.dst,
                False,
                tuple(listed),
                slot_chars,
            )
        return Seen(
            at,
            device.address,
            frame.cmd,
            len(frame.payload),
            entry.status is not None,
            frame.noack,
            frame.dst,
            isinstance(device, CallerEmulator),
            (),
            0,
        )


def emulated_devices(
    strips: int, callers: int, *, attention: bool
) -> tuple[list[StripEmulator], list[CallerEmulator]]:
    """The benches' devices: strips at 1, 2, …, callers at CALLER_BASE + 1, + 2, …"""
    return (
        [StripEmulator(n, attention=attention) for n in range(1, strips + 1)],
        [CallerEmulator(CALLER_BASE + n, attention=attention) for n in range(1, callers + 1)],
    )


def bus_stats(bus: Hb1Bus) -> dict[str, int]:
    """The bus's frame decoder counters (frames, idle_drops, crc_errors, …) and collisions."""
    stats: dict[str, int] = dataclasses.asdict(bus.decoder.stats)
    stats["collisions"] = bus.collisions
    return stats


class _Out:
    """This process's stdout: reports that the bench waits for go out at once, the frame log
    in batches (one write per batch, not per frame, on a line that is busy all the time)."""

    def __init__(self) -> None:
        self._held: list[str] = []
        self._timer: asyncio.TimerHandle | None = None

    def now(self, obj: object) -> None:
        self._held.append(json.dumps(obj, ensure_ascii=False))
        self.flush()

    def later(self, obj: object) -> None:
        self._held.append(json.dumps(obj))
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(0.1, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._held:
            sys.stdout.write("\n".join(self._held) + "\n")
            sys.stdout.flush()
            self._held = []


async def serve(
    baud: int,
    strips: int,
    callers: int,
    *,
    attention: bool = False,
    reply_delay_s: float | None = None,
    frames: bool = False,
) -> None:
    strip_devices, caller_devices = emulated_devices(strips, callers, attention=attention)
    out = _Out()
    log = FrameLog()

    def report(device: Hb1Device, entry: RequestLog) -> None:
        req = entry.request
        if isinstance(req, ShowTextRequest):
            assert endpoint is not None
            # ``t`` is on this loop's clock: asyncio's (the default ``--loop``) is monotonic().
            noticed = time.monotonic()
            size = len(entry.frame.payload)
            line = endpoint.line_now
            out.now({"a": device.address, "t": line, "tn": noticed, "text": req.text, "n": size})

    def report_frame(device: Hb1Device, entry: RequestLog) -> None:
        seen = log.seen(device, entry)
        if seen is not None:
            out.later({"f": list(seen)})
        report(device, entry)

    for device in [*strip_devices, *caller_devices]:
        if frames:
            device.on_log = report_frame
        elif isinstance(device, StripEmulator):
            device.on_log = report
    by_address = {c.address: c for c in caller_devices}
    endpoint: LineEndpoint | None = None

    def line_clock() -> float:
        # The decoder judges silences on the line's time (LineEndpoint.line_now): a timer
        # that ran late in this process is no gap on the line, and dropping the request as
        # a broken frame (no reply, the host retries) is what a device's UART never does.
        assert endpoint is not None
        return endpoint.line_now

    bus = Hb1Bus([*strip_devices, *caller_devices], baud=baud, clock=line_clock)
    # A request is handed over at its last byte; replies start a turnaround later (§7.1).
    delay = timing.turnaround(baud) if reply_delay_s is None else reply_delay_s
    endpoint = LineEndpoint(bus, reply_delay_s=delay, line_baud=baud)
    pair = await endpoint.attach_pty()
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, done.set)
    reader = asyncio.StreamReader()
    stdin, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    async def until_eof() -> None:
        while line := await reader.readline():
            words = line.split()
            if words == [b"stats"]:
                out.now({"stats": bus_stats(bus)})
            elif words == [b"sync"]:
                out.now({"sync": time.monotonic()})
            elif len(words) == 3 and words[0] == b"press":
                caller = by_address[int(words[1])]
                ok = caller.press_key(int(words[2]))
                out.now({"p": caller.address, "t": time.monotonic(), "ok": ok})
        done.set()

    watch = asyncio.ensure_future(until_eof())
    nice = os.getpriority(os.PRIO_PROCESS, 0)
    policy = "fifo" if os.sched_getscheduler(0) == os.SCHED_FIFO else "other"
    sys.stdout.write(f"pty {pair.slave_path} nice {nice} {policy}\n")
    sys.stdout.flush()
    try:
        await done.wait()
    finally:
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch
        stdin.close()
        await endpoint.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--baud", type=int, default=9600)
    parser.add_argument("--strips", type=int, default=8)
    parser.add_argument("--callers", type=int, default=8)
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="asyncio")
    parser.add_argument("--nice", type=int, default=None, help="nice value to run at")
    parser.add_argument(
        "--fifo", action="store_true", help="run under SCHED_FIFO (real time), as firmware does"
    )
    parser.add_argument(
        "--attention", action="store_true", help="every device has the attention poll (§17)"
    )
    parser.add_argument(
        "--reply-delay-ms",
        type=float,
        default=None,
        help="reply start after a request's last byte (default: the §7.1 turnaround)",
    )
    parser.add_argument(
        "--frames", action="store_true", help="report every request a device acted on"
    )
    args = parser.parse_args(argv)
    if args.fifo:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
        except PermissionError:
            print("cannot use SCHED_FIFO: no CAP_SYS_NICE", file=sys.stderr)
    if args.nice is not None:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, args.nice)
        except PermissionError:
            print(f"cannot set nice {args.nice}: no CAP_SYS_NICE", file=sys.stderr)
    if args.loop == "uvloop":
        from hall.cli import install_uvloop

        install_uvloop()
    delay = None if args.reply_delay_ms is None else args.reply_delay_ms / 1000
    asyncio.run(
        serve(
            args.baud,
            args.strips,
            args.callers,
            attention=args.attention,
            reply_delay_s=delay,
            frames=args.frames,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
