"""Bridge latency: a key on an emulated caller → the call frame on the window strip.

16 emulated HB/1 devices (by default 8 window strips and 8 caller keypads, ``--callers``)
share one pty bus, run once at each speed of ``--bauds`` (default 9600 and 38400 baud); the
hall app with its in-process bridge and bus master runs against a fresh embedded database in
this process.
This process runs on uvloop, as ``hall serve`` does (``--loop asyncio`` for the standard
loop, which adds its own scheduling delay to the server's share).
Each sample presses 叫号 (or 办结) on a random caller and times the moment the strip executes
the SHOW_TEXT that shows the result.

What runs where (``--emulator``): by default the 16 devices run in a process of their own
(bench/_strip_line.py, as bench/display.py runs them) under SCHED_FIFO at nice −10
(``--emulator-sched``, ``--emulator-nice``), since a device's firmware runs in real time on a
chip of its own: the server's event loop being late must not make the devices late too (a late
reply costs the master a timeout and a retry, a late press or SHOW_TEXT goes into the measured
time). The bench tells that process when to press which key; the process presses it at once and
reports the press's ``time.monotonic()``, each strip SHOW_TEXT's last-byte line time (and when
the strip noticed it) and every request the devices acted on (for the bound and ``--trace``),
all on the one CLOCK_MONOTONIC of the machine. Its decoder judges silences on the line's time.
``--emulator same-process`` runs the devices on this process's event loop beside the server,
the bridge and the master, as the bench did before (for comparison). The first lines and the
JSON (``emulator``, ``emulator_own_process_*``, ``emulator_fifo_*``, ``emulator_nice_*``) say
which layout a run used.

A pty delivers bytes at once, so the emulated line (``LineEndpoint`` with ``line_baud``) plays
the wire: each request reaches the devices when its last byte would be in (where a real device
decides what its reply or attention mark says, so a key pressed while the request is on the
line is in that reply), each reply starts ``--reply-delay-ms`` later (default: the §7.1
turnaround, 3.65 ms at 9600 baud) and reaches the master after its own line time. The strip's
SHOW_TEXT is timed at its last byte's line time: when its bytes reached the devices' end plus
their time on the wire (``LineEndpoint.line_now``), not when the emulator's loop got round to
acting on it; that later moment is printed beside (``key_to_strip_noticed_*``). The master
paces the line by the computed time of every request and reply. Utilisation is line time of our
frames and replies over wall time, computed from the frame sizes at the baud rate.

Next to the measured figures the bench prints lower bounds for the mix from the frame sizes
and timing of docs/protocol.md alone (see :func:`latency_bounds`), with every frame that was
on the line while keys waited besides the callers' polls or rounds (the strips' polls and
rounds, every command, acknowledging POLLs) taken from the emulators' logs: a caller cannot
be asked more often than the line time left over allows. The press's own frames (the POLL
that fetched its KEY, the strip's call) are the bound's ``best``.

With ``--attention-bauds`` the run's 16 devices all have the optional attention poll
(docs/protocol.md §17) and the bound is the one of :func:`_attention_bounds`. There ``--trace``
also counts the rounds that listed none of the callers (the strips' heartbeats: strips 1–8
and callers 0x41–0x48 never fit one round's 32-address span) and the presses they delayed.

Prints readable lines, then one JSON object of figures (units in the keys). Bounded by
``--samples`` and a hard ``--limit-s``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._strip_line import (
    CALLER_BASE,  # caller n at CALLER_BASE + n serves window n (strip n)
    FrameLog,
    Seen,
    add_process_options,
    bus_stats,
    emulated_devices,
)
from bench._support import add_loop_option, embedded_database, hall_toml, percentile, use_loop
from firmware_bridge import attention, timing
from firmware_bridge.bridge import Bridge, EventResult, UpEvent
from firmware_bridge.codec import FRAME_OVERHEAD
from firmware_bridge.constants import Command, EventType, KeyCode
from firmware_bridge.emulators.base import Hb1Device, RequestLog
from firmware_bridge.emulators.bus import Hb1Bus
from firmware_bridge.emulators.line import LineEndpoint
from firmware_bridge.messages import KeyEvent, Request, ShowTextRequest
from hall.app import Settings, create_app
from hall.cli import settle_heap
from hall.config.loader import load_config
from hall.services.devices import Desired
from hall.services.queue import ActionParams, CounterAction, IssueTicket
from hall.web.bridge import BRIDGE, BridgeSettings
from hall.web.state import POOL, QUEUE

BAUD = 9600


def set_baud(baud: int) -> None:
    """Run the whole bench (config, emulated bus, line-time figures) at another speed."""
    global BAUD
    BAUD = baud


DEVICES = 16
# Least pause after a press's strip frame before the next press (see run()).
SETTLE_S = 0.15
HALL = "bench"
STRIP_LINE = Path(__file__).resolve().parent / "_strip_line.py"  # the emulated bus's process

# Payload lengths from docs/protocol.md: POLL request (§8.2), its reply without an event and
# the extra bytes of a KEY event without argument (§11: key u8 + an empty blob), SHOW_TEXT
# (§10.2) without its text bytes.
POLL_REQ_PAYLOAD = 4
POLL_REPLY_PAYLOAD = 9
KEY_EVENT_DATA = 2
SHOW_TEXT_FIXED = 7


def latency_bounds(
    baud: int,
    callers: int,
    poll_s: float,
    text_bytes: int,
    other_load: float = 0.0,
    *,
    with_attention: bool = False,
) -> dict[str, float]:
    """Least key → strip latency the line allows for this mix (seconds), from the spec alone.

    ``best``: the key is pressed just before the last byte of its caller's POLL, when the
    device decides what its reply carries (a real device reads its FIFO at the request's last
    byte, and so do the emulators: ``LineEndpoint`` with ``line_baud``); the reply carries the
    KEY, the host turns around at once (§7.1) and the strip has the SHOW_TEXT when the frame's
    last byte is in. Nothing else costs time: no database, no other traffic.

    ``cycle``: the shortest mean time between two polls of one caller: the callers polled
    back to back in the line time the rest of the traffic leaves (``other_load``: the fraction
    of the line the other frames take), or ``poll_s`` if that is longer (0 when the master
    polls callers whenever the line is free). Of all ways to space polls with a given mean,
    even spacing gives the shortest wait percentiles, so the bound holds for any schedule.

    A key pressed at a random moment waits for the last byte of its caller's next POLL a time
    spread over the cycle, so the q-th percentile is at least ``best + q/100 × cycle``.
    ``worst`` adds a full cycle and one POLL exchange in progress when the caller's turn comes.
    """
    ta = timing.turnaround(baud)
    poll_exchange = (
        timing.frame_time(baud, POLL_REQ_PAYLOAD)
        + ta
        + timing.frame_time(baud, POLL_REPLY_PAYLOAD)
        + ta
    )
    best = (
        ta
        + timing.frame_time(baud, POLL_REPLY_PAYLOAD + KEY_EVENT_DATA)
        + ta
        + timing.frame_time(baud, SHOW_TEXT_FIXED + text_bytes)
    )
    if with_attention:
        return _attention_bounds(baud, callers, text_bytes, other_load, poll_exchange)
    cycle = max(callers * poll_exchange / max(1e-9, 1.0 - other_load), poll_s)
    return {
        "poll_exchange": poll_exchange,
        "cycle": cycle,
        "best": best,
        "p50": best + 0.50 * cycle,
        "p99": best + 0.99 * cycle,
        "worst": best + cycle + poll_exchange,
    }


def _attention_bounds(
    baud: int, callers: int, text_bytes: int, other_load: float, poll_exchange: float
) -> dict[str, float]:
    """The same bound when every caller has the attention poll (docs/protocol.md §17).

    ``cycle``: one round listing the callers (the ATTN frame, one slot per caller, the host's
    gap) stretched by the line time the other frames take (``other_load``: the strips'
    rounds and POLLs, every command, the POLLs that acknowledge events). A key waits for the
    last byte of the next ATTN request listing its caller (where the device decides its mark,
    as the emulators do), a time spread evenly over the cycle at best; then the round's
    slots, the host's gap, the POLL that fetches the KEY and the strip's SHOW_TEXT: ``post``.
    The q-th percentile is ``post + q × cycle``.
    """
    ta = timing.turnaround(baud)
    slot = attention.slot_chars(baud) * timing.t_char(baud)
    cycle = attention.round_line_s(baud, callers) / max(1e-9, 1.0 - other_load)
    key_poll = (
        timing.frame_time(baud, POLL_REQ_PAYLOAD)
        + ta
        + timing.frame_time(baud, POLL_REPLY_PAYLOAD + KEY_EVENT_DATA)
        + ta
    )
    show = timing.frame_time(baud, SHOW_TEXT_FIXED + text_bytes)
    post = attention.first_slot_s(baud) + callers * slot + ta + key_poll + show
    return {
        "poll_exchange": poll_exchange,
        "cycle": cycle,
        "best": post,
        "p50": post + 0.50 * cycle,
        "p99": post + 0.99 * cycle,
        "worst": cycle + post,
    }


def _is_call(text: str) -> bool:
    return text.startswith("请")


def _idle_test(counter: int) -> Callable[[str], bool]:
    wanted = f"{counter}号窗口 欢迎光临"
    return lambda text: text == wanted


def config_text(strips: int, callers: int, url: str, poll_ms: int, display_ms: int) -> str:
    lines = [hall_toml(strips, HALL), "[[staff]]", 'job_no = "b001"', 'name = "压测员"', ""]
    lines += ["[[buses]]", 'name = "b1"', f'hall = "{HALL}"', f'url = "{url}"']
    lines += [f"baudrate = {BAUD}"]
    lines += [f"options = {{ poll_interactive_ms = {poll_ms}, poll_display_ms = {display_ms} }}"]
    for n in range(1, strips + 1):
        lines += ["", "[[devices]]", 'bus = "b1"', f"address = {n}", 'class = "strip"']
        lines += [f"counter = {n}"]
    for n in range(1, callers + 1):
        lines += ["", "[[devices]]", 'bus = "b1"', f"address = {0x40 + n}", 'class = "caller"']
        lines += [f"counter = {n}"]
    return "\n".join(lines) + "\n"


class StripWatch:
    """Resolves a future when a strip executes a SHOW_TEXT whose text passes a test.

    The future's value is (line, noticed): ``line`` is the line time of the frame's last byte
    (``LineEndpoint.line_now``: when the bytes reached the devices' end plus their time on
    the wire at the bus speed), the moment timed; ``noticed`` is ``time.monotonic()`` when
    the emulated strip acted on it, later by however late the devices' event loop ran its
    timer and decoded the frame (printed beside, as ``key_to_strip_noticed_*``). Both on
    CLOCK_MONOTONIC, in whichever process the devices run. ``text_bytes`` collects the text
    lengths seen.
    """

    def __init__(self) -> None:
        self.waiting: dict[
            int, tuple[Callable[[str], bool], asyncio.Future[tuple[float, float]]]
        ] = {}
        self.text_bytes: list[int] = []

    def on_show(self, address: int, at: float, noticed: float, text: str, payload: int) -> None:
        wanted = self.waiting.get(address)
        if wanted is None or not wanted[0](text) or wanted[1].done():
            return
        self.text_bytes.append(payload - SHOW_TEXT_FIXED)
        wanted[1].set_result((at, noticed))

    def expect(
        self, address: int, test: Callable[[str], bool]
    ) -> asyncio.Future[tuple[float, float]]:
        fut: asyncio.Future[tuple[float, float]] = asyncio.get_running_loop().create_future()
        self.waiting[address] = (test, fut)
        return fut


class LineTally:
    """Line time of every exchange on the bus except the callers' event-less POLLs.

    Counted from what the emulated devices received: each request's frame, the reply the
    protocol gives it (none for NOACK; a POLL reply of 9 payload bytes, the status byte for
    the rest), and both §7.1 gaps. The KEY events' bytes in the callers' POLL replies are
    added per press at the end. Every frame is kept with its time; :meth:`stop` counts those
    of the timed part (the devices' reports may come in later than the frames were on the line
    when they run in a process of their own).
    """

    def __init__(self, *, with_attention: bool = False, callers: frozenset[int] = frozenset()):
        self.with_attention = with_attention
        self.callers = callers
        # (monotonic time when the request's first byte went on the line, line time of the
        # exchange, command, address, heartbeat?) of every frame counted.
        self.all: list[tuple[float, float, int, int, bool]] = []
        self.timeline: list[tuple[float, float, int, int]] = []
        self.line_s = 0.0
        self.frames = 0
        # Of line_s: the displays' heartbeat POLLs, and line time by command (for the report).
        self.heartbeat_s = 0.0
        self.by_command: dict[str, float] = {}

    def stop(self, presses: int, since: float, until: float) -> tuple[float, int]:
        """Other traffic between ``since`` and ``until`` (line time, frames)."""
        self.timeline = []
        self.line_s, self.frames, self.heartbeat_s, self.by_command = 0.0, 0, 0.0, {}
        for at, line, cmd, addr, heartbeat in self.all:
            if not since <= at <= until:
                continue
            self.timeline.append((at, line, cmd, addr))
            self.line_s += line
            self.frames += 1
            if heartbeat:
                self.heartbeat_s += line
            name = "ATTN" if cmd == Command.ATTN else Command(cmd).name
            self.by_command[name] = self.by_command.get(name, 0.0) + line
        keys = presses * timing.t_char(BAUD) * KEY_EVENT_DATA
        if self.with_attention:
            # Each press's own POLL (the one that fetches its KEY) is part of the bound's
            # ``post``, not other traffic.
            ta = timing.turnaround(BAUD)
            poll = (
                timing.frame_time(BAUD, POLL_REQ_PAYLOAD)
                + timing.frame_time(BAUD, POLL_REPLY_PAYLOAD)
                + 2 * ta
            )
            keys -= presses * poll
        return self.line_s + keys, self.frames

    def in_windows(self, windows: list[tuple[float, float, int, int]]) -> float:
        """Line time of the counted frames while a key waited (the part of each exchange that
        overlaps a press's wait).

        ``windows``: (press, strip frame in, strip, caller) per press. The press's own frames
        (the strip's SHOW_TEXT, the caller's POLL that fetched the KEY) are in the bound's
        ``best`` and not counted here.
        """
        total = 0.0
        for at, line, cmd, addr in self.timeline:
            for t0, t1, strip, caller in windows:
                overlap = min(at + line, t1) - max(at, t0)
                if overlap > 0:
                    own = (cmd == Command.SHOW_TEXT and addr == strip) or (
                        cmd == Command.POLL and addr == caller
                    )
                    if not own:
                        total += overlap
                    break
        return total

    def on_frame(self, seen: Seen) -> None:
        cmd = seen.cmd
        ta = timing.turnaround(BAUD)
        if cmd == Command.ATTN:
            # Rounds of the callers alone are the cycle of the bound; the strips' rounds are
            # other traffic.
            if not seen.listed or set(seen.listed) <= self.callers:
                return
            line = (
                timing.frame_time(BAUD, seen.size)
                + attention.round_s(BAUD, len(seen.listed), seen.slot_chars)
                + ta
            )
            self.all.append((_started(seen), line, cmd, seen.address, True))
            return
        if cmd == Command.POLL and seen.caller and not self.with_attention:
            return
        line = timing.frame_time(BAUD, seen.size) + ta
        if seen.replied:
            reply = POLL_REPLY_PAYLOAD if cmd == Command.POLL else 1
            line += timing.frame_time(BAUD, reply) + ta
        keepalive = cmd == Command.SET_TIME and seen.noack and seen.dst != 0xFF
        # Heartbeats: the displays' POLLs and the strips' keep-alives between them.
        heartbeat = keepalive or (cmd == Command.POLL and not (self.with_attention and seen.caller))
        self.all.append((_started(seen), line, cmd, seen.address, heartbeat))


class FrameTrace:
    """Every request the emulated devices got (``--trace``): (monotonic time of its first byte
    on the line, address, command, payload length), to show what was on the line while the
    slowest keys waited."""

    def __init__(self, callers: frozenset[int] = frozenset()) -> None:
        self.frames: list[tuple[float, int, int, int]] = []
        # (first byte, line time) of every exchange: request, gaps, reply or round.
        self.busy: list[tuple[float, float]] = []
        self.callers = callers
        # First byte of every attention round that listed none of the callers (the strips'
        # heartbeat rounds when no round can hold both, docs/protocol.md §15.2).
        self.other_rounds: list[tuple[float, float]] = []  # (first byte, line time)

    def on_frame(self, seen: Seen) -> None:
        ta = timing.turnaround(BAUD)
        line = timing.frame_time(BAUD, seen.size) + ta
        if seen.cmd == Command.ATTN:
            line += attention.round_s(BAUD, len(seen.listed), seen.slot_chars)
        elif seen.replied:
            # A POLL reply without its event's bytes: the line time counted is a lower one.
            reply = POLL_REPLY_PAYLOAD if seen.cmd == Command.POLL else 1
            line += timing.frame_time(BAUD, reply) + ta
        start = _started(seen)
        self.frames.append((start, seen.address, seen.cmd, seen.size))
        self.busy.append((start, line))
        if seen.cmd == Command.ATTN and seen.listed and not set(seen.listed) & self.callers:
            self.other_rounds.append((start, line))

    def split(
        self, samples: list[tuple[float, float, int, int]]
    ) -> tuple[list[float], list[float]]:
        """Per press, in ms: the line time of the frames on the line while it waited (the
        line's schedule: no faster CPU shortens it) and the rest, when the line was idle (the
        server deciding, and the event loop late on a busy machine)."""
        on_line: list[float] = []
        idle: list[float] = []
        for t0, t1, _, _ in samples:
            busy = sum(max(0.0, min(at + line, t1) - max(at, t0)) for at, line in self.busy)
            on_line.append(busy * 1000)
            idle.append((t1 - t0 - busy) * 1000)
        return on_line, idle

    def report(self, samples: list[tuple[float, float, int, int]], worst: int = 6) -> None:
        """The ``worst`` slowest presses: each frame from the press to the strip's last byte;
        and over all presses, the wait for the caller's POLL that fetched the KEY and the time
        from that POLL's start to the strip's SHOW_TEXT (the reply, the server, the queue)."""
        waits: list[float] = []
        after: list[float] = []
        for t0, t1, strip, caller in samples:
            show = [at for at, addr, cmd, _ in self.frames if t0 <= at <= t1 and addr == strip]
            # The POLL that fetched the KEY ended (the device decided) after the press.
            polls = [
                at
                for at, addr, cmd, size in self.frames
                if t0 <= at + timing.frame_time(BAUD, size) <= t1
                and addr == caller
                and cmd == Command.POLL
            ]
            if show and polls:
                waits.append((polls[-1] - t0) * 1000)
                after.append((show[-1] - polls[-1]) * 1000)
        on_line, idle = self.split(samples)
        since, until = min(w[0] for w in samples), max(w[1] for w in samples)
        rounds = [(at, line) for at, line in self.other_rounds if since <= at <= until]
        # On the line between the press and its strip frame.
        delayed = sum(
            any(at + line > t0 and at < t1 for at, line in rounds) for t0, t1, _, _ in samples
        )
        print(
            f"  rounds without the callers (strips' heartbeats): {len(rounds)} while pressing, "
            f"on the line while {delayed} of {len(samples)} presses waited"
        )
        for name, values in (
            ("press → KEY POLL sent", waits),
            ("KEY POLL → SHOW_TEXT", after),
            ("line busy while the key waited (the schedule)", on_line),
            ("line idle while the key waited (server, CPU)", idle),
        ):
            if values:
                print(
                    f"  {name}: p50 {percentile(values, 50):.1f} ms, p90 "
                    f"{percentile(values, 90):.1f} ms, p99 {percentile(values, 99):.1f} ms, "
                    f"max {max(values):.1f} ms"
                )
        ranked = sorted(samples, key=lambda w: w[1] - w[0], reverse=True)[:worst]
        for t0, t1, strip, caller in ranked:
            went = [
                f"{(at - t0) * 1000:.0f}:{addr:02x}/{Command(cmd).name}"
                for at, addr, cmd, _ in self.frames
                if t0 - 0.05 <= at <= t1
            ]
            print(
                f"  {(t1 - t0) * 1000:.0f} ms, caller {caller:02x} → strip {strip:02x}: "
                + " ".join(went)
            )


class ServerStages:
    """The server's share of each press: from the moment a caller's KEY event reaches the
    server (the in-process link's ``deliver``) to its commit (``deliver`` returns) and to the
    moment the strip's new commands are handed to the bus (``Bridge.apply_desired``)."""

    def __init__(self, bridge: Bridge) -> None:
        self.committed: list[float] = []
        self.queued: list[float] = []
        self._since: dict[int, float] = {}  # strip address -> the key event's arrival
        link = bridge.link
        deliver = link.deliver
        apply = bridge.apply_desired

        async def delivered(event: UpEvent) -> EventResult:
            t0 = time.perf_counter()
            strip = event.address - 0x40
            if event.evt_type == EventType.KEY:
                self._since[strip] = t0
            result = await deliver(event)
            if event.evt_type == EventType.KEY:
                self.committed.append((time.perf_counter() - t0) * 1000)
            return result

        def applied(
            bus: str, address: int, commands: Sequence[Request], generation: int = 0
        ) -> None:
            t0 = self._since.pop(address, None)
            if t0 is not None:
                self.queued.append((time.perf_counter() - t0) * 1000)
            apply(bus, address, commands, generation)

        setattr(link, "deliver", delivered)  # noqa: B010 (a probe on one instance)
        setattr(bridge, "apply_desired", applied)  # noqa: B010

    def figures(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, values in (("committed", self.committed), ("queued", self.queued)):
            if values:
                out[f"server_key_{name}_p50_ms"] = round(percentile(values, 50), 2)
                out[f"server_key_{name}_p99_ms"] = round(percentile(values, 99), 2)
        return out


def _started(seen: Seen) -> float:
    """When the logged request's first byte went on the line: the device logs it at its last
    byte (``LineEndpoint`` with ``line_baud``)."""
    return seen.t - timing.frame_time(BAUD, seen.size)


class EmulatedBus:
    """The 16 emulated devices as the bench sees them, wherever they run: the pty the server
    opens, key presses (each answering the press's ``time.monotonic()``), the strips'
    SHOW_TEXTs (to ``on_show``) and every request a device acted on (to ``on_frame``)."""

    layout = ""
    sched = "other"  # the devices' scheduling policy: "fifo" (real time) or "other"
    nice = 0

    def __init__(self) -> None:
        self.pty_path = ""
        self.on_show: Callable[[int, float, float, str, int], None] = lambda *_: None
        self.on_frame: list[Callable[[Seen], None]] = []

    async def press(self, address: int, key: KeyCode) -> float:
        raise NotImplementedError

    async def sync(self) -> None:
        """Every frame logged until now has gone to ``on_frame``."""

    async def stats(self) -> dict[str, int]:
        """The devices' frame decoder counters (frames, idle_drops, crc_errors, …)."""
        raise NotImplementedError

    def _frame(self, seen: Seen) -> None:
        for call in self.on_frame:
            call(seen)


class SameProcessBus(EmulatedBus):
    """``--emulator same-process``: the devices on this process's event loop, beside the
    server, the bridge and the bus master (the layout before the emulator had a process)."""

    layout = "same-process"

    def __init__(self, strips: int, callers: int, reply_delay_s: float, *, attention: bool):
        super().__init__()
        self.nice = os.getpriority(os.PRIO_PROCESS, 0)
        self.strips, caller_devices = emulated_devices(strips, callers, attention=attention)
        self.callers = {c.address: c for c in caller_devices}
        self.bus = Hb1Bus([*self.strips, *self.callers.values()], baud=BAUD)
        self.endpoint = LineEndpoint(self.bus, reply_delay_s=reply_delay_s, line_baud=BAUD)
        log = FrameLog()

        def on_log(device: Hb1Device, entry: RequestLog) -> None:
            seen = log.seen(device, entry)
            if seen is not None:
                self._frame(seen)
            req = entry.request
            if isinstance(req, ShowTextRequest):
                size = len(entry.frame.payload)
                # The same-process layout's line time is on this loop's clock (uvloop's
                # ``time()`` is milliseconds of CLOCK_MONOTONIC, read at the loop's pass).
                line = self.endpoint.line_now
                self.on_show(device.address, line, time.monotonic(), req.text, size)

        for device in self.bus.devices:
            device.on_log = on_log

    async def start(self) -> None:
        self.pty_path = (await self.endpoint.attach_pty()).slave_path

    async def press(self, address: int, key: KeyCode) -> float:
        at = time.monotonic()
        assert self.callers[address].press_key(key)
        return at

    async def stats(self) -> dict[str, int]:
        return bus_stats(self.bus)

    async def close(self) -> None:
        await self.endpoint.close()


class OwnProcessBus(EmulatedBus):
    """``--emulator own-process`` (default): the devices in a process of their own
    (bench/_strip_line.py), as firmware runs on chips of its own, under SCHED_FIFO at nice
    −10 unless told otherwise: the server's loop being late no longer makes the devices late."""

    layout = "own-process"

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        super().__init__()
        self.proc = proc
        self._answers: dict[str, asyncio.Future[Any]] = {}
        self._reader: asyncio.Future[None] | None = None

    @classmethod
    async def spawn(
        cls,
        strips: int,
        callers: int,
        *,
        nice: int | None,
        fifo: bool,
        reply_delay_ms: float | None = None,
        frames: bool = False,
        attention: bool = False,
    ) -> OwnProcessBus:
        """The emulated bus's process at ``BAUD`` (``--nice`` only if ``nice`` is given, its
        own reply delay unless ``reply_delay_ms``, every request reported with ``frames``);
        ``start`` waits for its pty."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(STRIP_LINE),
            *("--baud", str(BAUD), "--strips", str(strips), "--callers", str(callers)),
            *(() if reply_delay_ms is None else ("--reply-delay-ms", str(reply_delay_ms))),
            *(("--frames",) if frames else ()),
            *(("--attention",) if attention else ()),
            *(() if nice is None else ("--nice", str(nice))),
            *(("--fifo",) if fifo else ()),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        return cls(proc)

    async def start(self) -> None:
        assert self.proc.stdout is not None
        async with asyncio.timeout(30):
            first = (await self.proc.stdout.readline()).decode()
        if not first.startswith("pty "):
            raise RuntimeError(f"the emulated bus did not start: {first!r}")
        _, self.pty_path, _, nice, self.sched = first.split()
        self.nice = int(nice)
        self._reader = asyncio.ensure_future(self._read())

    async def _ask(self, line: str, answer: str) -> Any:
        assert self.proc.stdin is not None
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._answers[answer] = fut
        self.proc.stdin.write(line.encode() + b"\n")
        async with asyncio.timeout(10):
            return await fut

    async def press(self, address: int, key: KeyCode) -> float:
        pressed = await self._ask(f"press {address} {int(key)}", "p")
        assert pressed["ok"] and pressed["p"] == address, pressed
        return float(pressed["t"])

    async def sync(self) -> None:
        await self._ask("sync", "sync")

    async def stats(self) -> dict[str, int]:
        stats: dict[str, int] = (await self._ask("stats", "stats"))["stats"]
        return stats

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            got = json.loads(line)
            if "f" in got:
                f = got["f"]
                self._frame(Seen(f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], tuple(f[8]), f[9]))
            elif "text" in got:
                self.on_show(got["a"], got["t"], got["tn"], got["text"], got["n"])
            else:
                key = "p" if "p" in got else next(iter(got))
                fut = self._answers.pop(key, None)
                if fut is not None and not fut.done():
                    fut.set_result(got)

    async def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()  # the emulator ends when its stdin closes
        try:
            async with asyncio.timeout(5):
                await self.proc.wait()
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


@contextlib.asynccontextmanager
async def emulated_bus(
    args: argparse.Namespace, strips: int, callers: int, *, attention: bool
) -> AsyncIterator[EmulatedBus]:
    """The run's devices in the layout ``--emulator`` asks for; closed (the process ended and
    waited for) on exit."""
    bus: SameProcessBus | OwnProcessBus
    if args.emulator == "same-process":
        bus = SameProcessBus(strips, callers, args.reply_delay_ms / 1000, attention=attention)
    else:
        bus = await OwnProcessBus.spawn(
            strips,
            callers,
            nice=args.emulator_nice,
            fifo=args.emulator_sched == "fifo",
            reply_delay_ms=args.reply_delay_ms,
            frames=True,
            attention=attention,
        )
    try:
        await bus.start()
        yield bus
    finally:
        await bus.close()


async def run(args: argparse.Namespace, dsn: str, with_attention: bool) -> dict[str, float | int]:
    n_strips = DEVICES - args.callers
    async with emulated_bus(args, n_strips, args.callers, attention=with_attention) as bus:
        return await _run(args, dsn, with_attention, bus)


async def _run(
    args: argparse.Namespace, dsn: str, with_attention: bool, bus: EmulatedBus
) -> dict[str, float | int]:
    # Presses stop early enough for the report to come out inside --limit-s, with what was
    # measured by then; the hard timeout in main() only catches a hang.
    press_until = asyncio.get_running_loop().time() + args.limit_s * 0.85
    n_callers = args.callers
    n_strips = DEVICES - n_callers
    watch = StripWatch()
    callers = frozenset(CALLER_BASE + n for n in range(1, n_callers + 1))
    tally = LineTally(with_attention=with_attention, callers=callers)
    trace = FrameTrace(callers) if args.trace else None
    bus.on_show = watch.on_show
    bus.on_frame.append(tally.on_frame)
    if trace is not None:
        bus.on_frame.append(trace.on_frame)
    workdir = Path(tempfile.mkdtemp(prefix="hall-bench-bridge-"))
    text = config_text(n_strips, n_callers, bus.pty_path, args.poll_ms, args.poll_display_ms)
    (workdir / "hall.toml").write_text(text, encoding="utf-8")
    config = load_config(workdir / "hall.toml")
    app = create_app(Settings(database_url=dsn, config=config))
    runner = web.AppRunner(app)
    await runner.setup()
    # As `hall serve` does last at start-up: without it a full collection walks the start-up
    # heap (pypinyin, the config) and pauses the loop for tens of ms while a key waits.
    await settle_heap(app)
    try:
        queue = app[QUEUE]
        bridge = app[BRIDGE].bridge
        assert bridge is not None
        master = bridge.master("b1")
        for _ in range(args.samples + 2 * n_strips):
            await queue.issue(IssueTicket(hall_id=HALL, service_code="bdc"))
        for n in range(1, n_strips + 1):
            await queue.act(HALL, n, CounterAction.OPEN, "bench", ActionParams(clerk="b001"))
        # Let the idle texts reach every strip before timing anything.
        idle = [watch.expect(n, _idle_test(n)) for n in range(1, n_strips + 1)]
        async with asyncio.timeout(30):
            await asyncio.gather(*idle)
        mode = "every device with the attention poll (§17)" if with_attention else "plain HB/1"
        where = (
            "on the server's event loop"
            if bus.layout == "same-process"
            else f"in a process of their own ({bus.sched}, nice {bus.nice})"
        )
        print(
            f"{DEVICES} devices on one pty bus at {BAUD} baud, {mode}, {where}; bridge in-process"
        )
        # Warm-up, not timed: the first key of each caller takes the cold paths (first
        # statements prepared, first desired-state computation).
        for n in range(1, n_callers + 1):
            for key, shows in ((KeyCode.CALL_NEXT, _is_call), (KeyCode.FINISH, _idle_test(n))):
                fut = watch.expect(n, shows)
                await bus.press(CALLER_BASE + n, key)
                async with asyncio.timeout(10):
                    await fut
        # As between timed presses: the warm-up's last frames (its keypad display) go out
        # before the first timed press, which would otherwise wait for them.
        await asyncio.sleep(SETTLE_S)

        calls: list[float] = []
        finishes: list[float] = []
        noticed: list[float] = []
        calling: set[int] = set()
        rng = random.Random(1)
        # The bounds assume a key pressed at a random moment of its caller's poll cycle: the
        # pause between presses spans at least two least cycles.
        pause_s = max(0.2, 2 * latency_bounds(BAUD, n_callers, 0.0, 0)["cycle"])
        watch.text_bytes.clear()
        stats_from = master.stats.busy_s, asyncio.get_running_loop().time()
        stages = ServerStages(bridge)
        windows: list[tuple[float, float, int, int]] = []
        since = time.monotonic()
        stats_before = await bus.stats()
        for _ in range(args.samples * 2):
            if asyncio.get_running_loop().time() > press_until:
                print(f"--limit-s reached: stopped after {len(calls) + len(finishes)} presses")
                break
            n = rng.randrange(1, n_callers + 1)
            test: Callable[[str], bool]
            if n in calling:
                key, test, into = KeyCode.FINISH, _idle_test(n), finishes
            else:
                # The server decides which ticket 叫号 calls: any call text will do.
                key, test, into = KeyCode.CALL_NEXT, _is_call, calls
            fut = watch.expect(n, test)
            # The press's instant as the caller had it (in the emulator's process with the
            # own-process layout), on the clock the strip's frame is timed on.
            t0 = await bus.press(CALLER_BASE + n, key)
            try:
                async with asyncio.timeout(5):
                    t1, t1_noticed = await fut
            except TimeoutError:
                # Say why before the run ends: a device the master gave up on (every attempt
                # timed out or cut by the decoder as a silence) is polled again only later.
                emulated = await bus.stats()
                print(
                    f"no strip frame 5 s after {key.name} on caller {n}: master {master.stats}, "
                    f"emulated decoder {emulated}"
                )
                raise
            into.append((t1 - t0) * 1000)
            noticed.append((t1_noticed - t0) * 1000)
            windows.append((t0, t1, n, CALLER_BASE + n))
            if key is KeyCode.FINISH:
                calling.discard(n)
            else:
                calling.add(n)
            # Clerks do not press in lockstep: at a hall's pace (a press every few minutes per
            # clerk) two presses within SETTLE_S of each other are well under 1 % of presses,
            # so the next press waits for the frames this one caused (the caller's display
            # after the strip's call) and then a random time.
            await asyncio.sleep(SETTLE_S + rng.uniform(0.0, pause_s))
        loop_now = asyncio.get_running_loop().time()
        wall = loop_now - stats_from[1]
        busy = master.stats.busy_s - stats_from[0]
        utilisation = busy / wall
        until = time.monotonic()
        await bus.sync()
        stats_after = await bus.stats()
        other_s, frames_seen = tally.stop(len(calls) + len(finishes), since, until)
        # The bound counts the frames that were on the line while keys waited: the frames a
        # press causes after its strip frame (the caller's display) go out before the next
        # press (SETTLE_S) and delay no key, so spreading them over the run would overstate
        # the bound. The whole run's share is printed too.
        run_load = other_s / wall
        waited = sum(w[1] - w[0] for w in windows)
        other_load = tally.in_windows(windows) / waited if waited > 0 else run_load
        stats = master.stats
        poll_req = FRAME_OVERHEAD + 4
        poll_reply = FRAME_OVERHEAD + 9
        # Back to back, the callers alone: each POLL, turnaround, its reply, our turnaround.
        min_tx = master.min_transaction_s(4, 9)
        min_cycle = n_callers * min_tx
        cycle = stats.poll_cycle_s or float("nan")
        cycle_max = stats.poll_cycle_max_s or float("nan")
        both = calls + finishes
        # The shortest text shown gives the least SHOW_TEXT frame: a lower bound for every press.
        bounds = latency_bounds(
            BAUD, n_callers, 0.0, min(watch.text_bytes), other_load, with_attention=with_attention
        )
        # Where the line time besides the callers' polls goes: the displays' heartbeats, which
        # a hall pays whatever the clerks do, and the frames each press causes, which grow with
        # the press rate (a press every ~6 s per caller here, far more than a clerk's pace).
        heartbeat_load = tally.heartbeat_s / wall
        press_rate = len(both) / wall
        per_press_ms = (other_s - tally.heartbeat_s) / max(1, len(both)) * 1000
        quiet = latency_bounds(
            BAUD,
            n_callers,
            0.0,
            min(watch.text_bytes),
            heartbeat_load,
            with_attention=with_attention,
        )
        figures: dict[str, float | int] = {
            "samples": len(both),
            "call_p50_ms": round(percentile(calls, 50), 1),
            "call_p99_ms": round(percentile(calls, 99), 1),
            "finish_p50_ms": round(percentile(finishes, 50), 1),
            "finish_p99_ms": round(percentile(finishes, 99), 1),
            "key_to_strip_p50_ms": round(percentile(both, 50), 1),
            "key_to_strip_p99_ms": round(percentile(both, 99), 1),
            "key_to_strip_min_ms": round(min(both), 1),
            "key_to_strip_noticed_p50_ms": round(percentile(noticed, 50), 1),
            "key_to_strip_noticed_p99_ms": round(percentile(noticed, 99), 1),
            "lower_bound_min_ms": round(bounds["best"] * 1000, 1),
            "lower_bound_p50_ms": round(bounds["p50"] * 1000, 1),
            "lower_bound_p99_ms": round(bounds["p99"] * 1000, 1),
            "worst_case_ideal_ms": round(bounds["worst"] * 1000, 1),
            "bound_poll_cycle_ms": round(bounds["cycle"] * 1000, 1),
            "lower_bound_p99_heartbeats_only_ms": round(quiet["p99"] * 1000, 1),
            "heartbeat_traffic_pct": round(heartbeat_load * 100, 1),
            "line_ms_per_press": round(per_press_ms, 1),
            "presses_per_s": round(press_rate, 2),
            "show_text_min_text_bytes": min(watch.text_bytes),
            "bus_utilisation_pct": round(utilisation * 100, 1),
            "other_traffic_pct": round(run_load * 100, 1),
            "other_traffic_while_keys_wait_pct": round(other_load * 100, 1),
            "other_frames": frames_seen,
            "poll_cycle_ms": round(cycle * 1000, 1),
            "poll_cycle_max_ms": round(cycle_max * 1000, 1),
            "poll_period_configured_ms": args.poll_ms,
            "poll_cycle_min_computed_ms": round(min_cycle * 1000, 1),
            "poll_transaction_min_ms": round(min_tx * 1000, 2),
            "poll_frame_bytes": poll_req,
            "poll_reply_frame_bytes": poll_reply,
            "reply_delay_ms": args.reply_delay_ms,
            "baud": BAUD,
            "devices": DEVICES,
            "emulator_own_process": int(bus.layout == "own-process"),
            "emulator_fifo": int(bus.sched == "fifo"),
            "emulator_nice": bus.nice,
            "emulator_idle_drops": stats_after["idle_drops"] - stats_before["idle_drops"],
            "emulator_crc_errors": stats_after["crc_errors"] - stats_before["crc_errors"],
            "callers": n_callers,
            "strips": n_strips,
            "bad_frames": stats.bad_frames,
            "timeouts": stats.timeouts,
            "attention_rounds": stats.attention_rounds,
            "marks_missing": stats.marks_missing,
            **stages.figures(),
        }
        print(
            f"key → strip frame: p50 {figures['key_to_strip_p50_ms']} ms, "
            f"p99 {figures['key_to_strip_p99_ms']} ms over {len(both)} presses "
            f"(叫号 p99 {figures['call_p99_ms']} ms, 办结 p99 {figures['finish_p99_ms']} ms; "
            f"target p99 ≤ {450 if BAUD < 38400 and not with_attention else 150} ms); "
            f"as the emulated strip noticed it: p50 {figures['key_to_strip_noticed_p50_ms']} ms, "
            f"p99 {figures['key_to_strip_noticed_p99_ms']} ms"
        )
        print(
            f"lower bound for {n_callers} caller(s) "
            f"{'listed in a round' if with_attention else 'polled'} every ≥ "
            f"{figures['bound_poll_cycle_ms']} ms: min {figures['lower_bound_min_ms']} ms "
            f"(measured {figures['key_to_strip_min_ms']}), p50 {figures['lower_bound_p50_ms']} ms "
            f"(measured {figures['key_to_strip_p50_ms']}), p99 {figures['lower_bound_p99_ms']} ms "
            f"(measured {figures['key_to_strip_p99_ms']}); worst case on an otherwise idle line "
            f"{figures['worst_case_ideal_ms']} ms"
        )
        print(
            f"bus utilisation {figures['bus_utilisation_pct']} % at {BAUD} baud; frames other "
            f"than the callers' polls: {frames_seen}, {figures['other_traffic_pct']} % of the line "
            f"over the run, {figures['other_traffic_while_keys_wait_pct']} % while keys waited "
            "(the bound's share)"
        )
        by_cmd = ", ".join(
            f"{name} {seconds / wall * 100:.1f} %"
            for name, seconds in sorted(tally.by_command.items(), key=lambda kv: -kv[1])
        )
        print(
            f"other traffic by command: {by_cmd}; each press puts "
            f"{figures['line_ms_per_press']} ms on the line ({figures['presses_per_s']} "
            f"presses/s); with the displays' heartbeats alone the p99 bound is "
            f"{figures['lower_bound_p99_heartbeats_only_ms']} ms"
        )
        if stages.queued:
            print(
                "server, from the KEY event's arrival: committed p50 "
                f"{figures['server_key_committed_p50_ms']} ms, p99 "
                f"{figures['server_key_committed_p99_ms']} ms; strip's commands queued p50 "
                f"{figures['server_key_queued_p50_ms']} ms, "
                f"p99 {figures['server_key_queued_p99_ms']} ms"
            )
        if trace is not None:
            line_ms, idle_ms = trace.split(windows)
            figures["key_to_strip_line_busy_p50_ms"] = round(percentile(line_ms, 50), 1)
            figures["key_to_strip_line_busy_p99_ms"] = round(percentile(line_ms, 99), 1)
            figures["key_to_strip_line_idle_p99_ms"] = round(percentile(idle_ms, 99), 1)
            print("slowest presses (ms after the press: address/command of each request):")
            trace.report(windows)
        if with_attention:
            rounds = stats.attention_rounds
            print(
                f"attention rounds: {rounds} in {wall:.1f} s (one every "
                f"{wall / max(1, rounds) * 1000:.1f} ms, least "
                f"{attention.round_line_s(BAUD, n_callers) * 1000:.1f} ms for {n_callers} "
                f"callers); slots without a valid mark {stats.marks_missing} (each costs a POLL)"
            )
            return figures
        print(
            f"poll cycle of a caller: measured {figures['poll_cycle_ms']} ms "
            f"(max {figures['poll_cycle_max_ms']} ms, configured "
            f"{figures['poll_period_configured_ms']} ms); computed minimum for {n_callers} callers "
            f"back to back {figures['poll_cycle_min_computed_ms']} ms "
            f"({poll_req}+{poll_reply}-byte POLL exchange {figures['poll_transaction_min_ms']} ms)"
        )
        return figures
    finally:
        await runner.cleanup()


async def run_server(args: argparse.Namespace, dsn: str) -> dict[str, float | int]:
    """``--server-only``: KEY events handed straight to the server (no bus, no line), one at a
    time, each timed from its arrival to its commit and to its strip's commands being handed
    to the bridge; and every statement the server ran per press (pg_stat_statements)."""
    n_callers = args.callers
    n_strips = DEVICES - n_callers
    workdir = Path(tempfile.mkdtemp(prefix="hall-bench-bridge-"))
    text = config_text(n_strips, n_callers, "/dev/null", args.poll_ms, args.poll_display_ms)
    (workdir / "hall.toml").write_text(text, encoding="utf-8")
    app = create_app(Settings(database_url=dsn, config=load_config(workdir / "hall.toml")))
    app[BRIDGE].settings = BridgeSettings(mode="off")
    runner = web.AppRunner(app)
    await runner.setup()
    await settle_heap(app)  # as `hall serve` does (see run())
    try:
        hub = app[BRIDGE]
        queue = app[QUEUE]
        for _ in range(args.server_only + 2 * n_strips):
            await queue.issue(IssueTicket(hall_id=HALL, service_code="bdc"))
        for n in range(1, n_strips + 1):
            await queue.act(HALL, n, CounterAction.OPEN, "bench", ActionParams(clerk="b001"))
        pushed: dict[int, float] = {}
        push = hub._push

        def pushing(hall_id: str, bus: str, address: int, state: Desired) -> None:
            pushed.setdefault(address, time.perf_counter())
            push(hall_id, bus, address, state)

        setattr(hub, "_push", pushing)  # noqa: B010 (a probe on one instance)

        async def settle() -> None:
            async with asyncio.timeout(10):
                while not hub.settled(HALL):  # noqa: ASYNC110 (the hub has no event for it)
                    await asyncio.sleep(0.002)

        seqs = dict.fromkeys(range(1, n_callers + 1), 1)
        calling: set[int] = set()
        rng = random.Random(1)
        committed: list[float] = []
        queued: list[float] = []
        pool = app[POOL]
        for i in range(2 * args.server_only + 2 * n_callers):
            timed = i >= 2 * n_callers  # the first press of each kind per caller warms up
            if i == 2 * n_callers:
                await pool.execute("SELECT pg_stat_statements_reset()")
            n = rng.randrange(1, n_callers + 1)
            key = KeyCode.FINISH if n in calling else KeyCode.CALL_NEXT
            seqs[n] += 1
            data = KeyEvent(key).encode()
            ev = UpEvent("b1", 0x40 + n, 0, f"48420400000000{n:02x}", 1, seqs[n], 0x45, data, 0.0)
            await settle()
            await asyncio.sleep(0.01)
            pushed.clear()
            t0 = time.perf_counter()
            result = await hub.service.handle_event(ev)
            t1 = time.perf_counter()
            assert result.outcome == "applied", result
            async with asyncio.timeout(10):
                while n not in pushed:  # noqa: ASYNC110 (a probe: no event to wait on)
                    await asyncio.sleep(0)
            if timed:
                committed.append((t1 - t0) * 1000)
                queued.append((pushed[n] - t0) * 1000)
            (calling.discard if key is KeyCode.FINISH else calling.add)(n)
        await settle()
        rows = await pool.fetch(
            """SELECT calls, query FROM pg_stat_statements
               WHERE query NOT LIKE '%pg_stat_statements%' ORDER BY calls DESC"""
        )
        presses = len(committed)
        print(f"{presses} KEY events handed to the server one at a time (no bus)")
        print(
            f"event in → committed: p50 {percentile(committed, 50):.2f} ms, p99 "
            f"{percentile(committed, 99):.2f} ms; → strip's commands to the bridge: p50 "
            f"{percentile(queued, 50):.2f} ms, p99 {percentile(queued, 99):.2f} ms"
        )
        total = sum(r["calls"] for r in rows)
        print(
            f"statements per press: {total / presses:.2f} (all the server ran, pg_stat_statements)"
        )
        for r in rows[:14]:
            query = " ".join(r["query"].split())[:90]
            print(f"  {r['calls'] / presses:5.2f}  {query}")
        return {
            "server_presses": presses,
            "server_committed_p50_ms": round(percentile(committed, 50), 2),
            "server_committed_p99_ms": round(percentile(committed, 99), 2),
            "server_queued_p50_ms": round(percentile(queued, 50), 2),
            "server_queued_p99_ms": round(percentile(queued, 99), 2),
            "server_statements_per_press": round(total / presses, 2),
        }
    finally:
        await runner.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--samples", type=int, default=60, help="叫号 presses (as many 办结)")
    parser.add_argument(
        "--callers",
        type=int,
        default=8,
        choices=range(1, DEVICES // 2 + 1),
        metavar=f"1..{DEVICES // 2}",
        help="callers among the 16 devices, the rest are strips (caller n serves window n)",
    )
    parser.add_argument(
        "--poll-ms",
        type=int,
        default=250,
        help="poll_interactive_ms: longest gap between two polls of a caller in use (≥ 50)",
    )
    parser.add_argument(
        "--poll-display-ms", type=int, default=3000, help="poll_display_ms of the bus (500..10000)"
    )
    parser.add_argument(
        "--reply-delay-ms",
        type=float,
        default=None,
        help="reply start after a request's last byte (default: the §7.1 turnaround)",
    )
    parser.add_argument("--limit-s", type=float, default=150.0, help="per run")
    parser.add_argument(
        "--trace", action="store_true", help="print the frames on the line for the slowest presses"
    )
    parser.add_argument(
        "--bauds",
        default="9600,38400",
        help="comma-separated bus speeds, one run each with plain HB/1 devices "
        "(9600, 19200, 38400, 115200; empty for none)",
    )
    parser.add_argument(
        "--attention-bauds",
        default="9600",
        help="comma-separated bus speeds, one run each with every device having the optional "
        "attention poll (docs/protocol.md §17); figures get the suffix _attention",
    )
    parser.add_argument(
        "--server-only",
        type=int,
        default=0,
        metavar="N",
        help="instead: N 叫号 and N 办结 KEY events handed straight to the server, timed to "
        "the strip's commands, with the statements per press",
    )
    parser.add_argument(
        "--emulator",
        choices=("own-process", "same-process"),
        default="own-process",
        help="where the 16 emulated devices run: a process of their own (default; firmware "
        "runs on chips of its own) or this process's event loop, beside the server, the bridge "
        "and the bus master (the layout before; for comparison)",
    )
    add_process_options(parser, applies="own-process: ")
    add_loop_option(parser)
    args = parser.parse_args()
    if args.server_only:
        print(f"event loop: {use_loop(args)}")
        with embedded_database(statement_stats=True) as dsn:
            figures = asyncio.run(run_server(args, dsn))
        print(json.dumps(figures, ensure_ascii=False))
        return 0
    runs: list[tuple[int, bool]] = []
    for text, with_attention in ((args.bauds, False), (args.attention_bauds, True)):
        for b in text.split(","):
            if b.strip():
                if int(b) not in (9600, 19200, 38400, 115200):
                    parser.error("bauds: 9600, 19200, 38400 or 115200")
                runs.append((int(b), with_attention))
    if not runs:
        parser.error("nothing to run")
    print(f"event loop: {use_loop(args)}; emulated devices: {args.emulator}")
    given_delay = args.reply_delay_ms
    out: dict[str, str | float | int] = {"emulator": args.emulator}
    for baud, with_attention in runs:
        set_baud(baud)
        args.reply_delay_ms = given_delay
        if args.reply_delay_ms is None:
            # The emulated line hands each request over at its last byte: a real device
            # starts its reply the least turnaround (§7.1) after that.
            start = timing.turnaround(BAUD)
            args.reply_delay_ms = round(start * 1000, 2)

        async def bounded(
            dsn: str, with_attention: bool = with_attention
        ) -> dict[str, float | int]:
            async with asyncio.timeout(args.limit_s):
                return await run(args, dsn, with_attention)

        suffix = "_attention" if with_attention else ""
        print(f"== {baud} baud{' with the attention poll' if with_attention else ''}")
        with embedded_database() as dsn:
            figures = asyncio.run(bounded(dsn))
        for key, value in figures.items():
            out[f"{key}_{baud}{suffix}"] = value
    print(json.dumps(out, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
