"""The emulated bus of the display bench, in a process of its own.

A hall's window strips and callers are separate machines on an RS-485 line: they share neither
the server's CPU time nor its event loop. ``bench/display.py`` therefore runs its 16 emulated
HB/1 devices here (the firmware_bridge emulators on one :class:`Hb1Bus` behind a
:class:`LineEndpoint` that plays the line at the bus speed both ways), on a pty whose other
end the hall server opens as ``hall serve`` opens a serial port.

    python -m bench._strip_line --baud 9600 --strips 8 --callers 8 [--nice N]
                                [--loop uvloop|asyncio]

``--nice N`` runs it at that nice value (negative: ahead of the other processes when it
wakes; needs CAP_SYS_NICE, else it says so and runs at its inherited priority). Prints
``pty PATH nice N POLICY`` once the line is up (N: the nice value it runs at, POLICY
``fifo`` or ``other``: its scheduling policy; ``--fifo`` asks for SCHED_FIFO), then one JSON line
per SHOW_TEXT a strip acts on: ``{"a": address, "t": seconds, "text": "..."}``, where ``t``
is ``time.monotonic()`` when the frame's last byte is in on the emulated line (the endpoint
hands a request over then). ``time.monotonic`` is CLOCK_MONOTONIC on Linux, one clock for
every process of the machine, so the bench subtracts its own ``time.monotonic()`` taken
before the call. A line ``stats`` on its stdin makes it print ``{"stats": {...}}``: its
frame decoder's counters (frames, idle_drops: frames cut by a silence, crc_errors, …). The
process ends
on SIGTERM/SIGINT or when its stdin closes (the bench went away), closing the pty.
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from firmware_bridge import timing
from firmware_bridge.emulators.base import Hb1Device, RequestLog
from firmware_bridge.emulators.bus import Hb1Bus
from firmware_bridge.emulators.display import StripEmulator
from firmware_bridge.emulators.keypad import CallerEmulator
from firmware_bridge.emulators.line import LineEndpoint
from firmware_bridge.messages import ShowTextRequest

CALLER_BASE = 0x40  # callers at 0x41, 0x42, … (strips at 1, 2, …), as bench/display.py wires


def _report(device: Hb1Device, entry: RequestLog) -> None:
    req = entry.request
    if isinstance(req, ShowTextRequest):
        at = time.monotonic()
        line = json.dumps({"a": device.address, "t": at, "text": req.text}, ensure_ascii=False)
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


async def serve(baud: int, strips: int, callers: int) -> None:
    strip_devices = [StripEmulator(n) for n in range(1, strips + 1)]
    caller_devices = [CallerEmulator(CALLER_BASE + n) for n in range(1, callers + 1)]
    for strip in strip_devices:
        strip.on_log = _report
    endpoint: LineEndpoint | None = None

    def line_clock() -> float:
        # The decoder judges silences on the line's time (LineEndpoint.line_now): a timer
        # that ran late in this process is no gap on the line, and dropping the request as
        # a broken frame (no reply, the host retries) is what a device's UART never does.
        assert endpoint is not None
        return endpoint.line_now

    bus = Hb1Bus([*strip_devices, *caller_devices], baud=baud, clock=line_clock)
    # A request is handed over at its last byte; replies start a turnaround later (§7.1).
    endpoint = LineEndpoint(bus, reply_delay_s=timing.turnaround(baud), line_baud=baud)
    pair = await endpoint.attach_pty()
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, done.set)
    reader = asyncio.StreamReader()
    stdin, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    async def until_eof() -> None:
        while line := await reader.readline():
            if line.strip() == b"stats":
                stats = dataclasses.asdict(bus.decoder.stats)
                stats["collisions"] = bus.collisions
                sys.stdout.write(json.dumps({"stats": stats}) + "\n")
                sys.stdout.flush()
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
    asyncio.run(serve(args.baud, args.strips, args.callers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
