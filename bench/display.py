"""Display latency: a call through the HTTP API → the window strip and the TV pages.

What runs where (as in a hall, where the strips and the TVs are machines of their own):

* **the hall server** (``--server own-process``, the default): ``hall serve`` in a process of
  its own (``python -m hall.cli serve --database-url … --config …``: the same entry point,
  uvloop and aiohttp runner as in a hall), on a loopback port and the bench's fresh embedded
  database, with its bridge and bus master, which opens the emulated line's pty as
  ``hall serve`` opens a serial port. Nothing of the bench's API client or of Playwright's
  traffic runs on its loop. ``--server same-process`` runs the app on the bench's own loop
  instead (the layout before session 9: uvloop, ``--loop asyncio`` for the standard loop),
  beside the API client and Playwright's Python side, whose 20 ``page.evaluate`` round trips
  per sample then share the server's loop while it handles the call; ``--trace`` needs it
  (it wraps the app's internals) and chooses it;
* **this process**: the bench's API client (the clerks), Playwright's side of the pages and
  the measuring (``--loop`` chooses its event loop; the own-process server always runs
  uvloop as ``hall serve`` does);
* **the emulated bus** (bench/_strip_line.py, a process of its own): 16 HB/1 devices (8 window
  strips, 8 idle callers, as bench/bridge.py) from firmware_bridge.emulators on one bus behind
  a LineEndpoint that plays the line at 9600 baud both ways. Run under SCHED_FIFO at nice
  -10 (``--emulator-sched other`` / ``--emulator-nice`` to change): a strip's firmware runs in
  real time on its own chip and never waits for the server's or the browser's CPU; on the
  shared cores at the normal policy its timers ran up to 200 ms late, which delayed its
  replies into the server's reply timeouts and put the emulator's lateness into the figure;
* **headless Chromium** (``--tvs`` pages, default 20) at nice 10 (``--tv-nice 0``: beside the
  server as equals): the TVs are separate machines in a hall and do not take CPU from the
  server; here they share the two cores, and the lower priority keeps them from delaying the
  server's passes and the bus master, while they still get every cycle the server leaves.
  Chromium raises its own threads' priority where it may (compositor and IO threads to nice
  -8, audio threads to SCHED_RR), so it starts without CAP_SYS_NICE (setpriv) and with
  RLIMIT_NICE and RLIMIT_RTPRIO at 0: it can only lower its priority (before session 9, run
  as root, it undid the nice value). The pages show the hall's TV page, paired as the hall's
  screens: the first as s001, which says the calls, the others as s002, which is silent (one
  speaking TV per area, as halls configure them).

The output's first lines and the JSON (``server``: own-process or same-process, ``loop``: the
server's event loop, ``emulator_sched``, ``emulator_nice``, ``tv_nice``, and what the browser's
threads ran at after the calls: ``tv_nice_lowest``, ``tv_realtime_threads``) say how a run was
made.

Each sample sends 叫号 (call_next) for a random window through
``POST /api/v1/halls/{hall}/counters/{n}/call_next`` and times:

* call → strip: until the strip has the SHOW_TEXT's last byte. The emulator process hands a
  request to the strip when its last byte would be in on the line (from its arrival on the
  pty, at the bus speed) and reports that line time (on its loop's clock, which is
  ``time.monotonic()``; since session 12, rather than the moment its loop got round to the
  frame); the bench takes its own ``time.monotonic()`` before the call and subtracts it.
  Both are CLOCK_MONOTONIC on Linux (see ``time.get_clock_info``), one clock for every
  process of the machine;
* call → TV: until each page's DOM shows the call (a MutationObserver in the page notes the
  wall-clock time ``data-last-call`` changed, ``Date.now()``; the bench subtracts its own
  ``time.time()`` taken before the call: CLOCK_REALTIME on both sides, same machine; the
  bench waits for it in the page, without polling, through a waiter it sets before the
  call). Neither figure reads a clock in the server's process, so where the server runs does
  not change how they are taken. (``--trace`` puts the strip's instant on the wall clock as
  the bench's ``time.time()`` before the call plus the monotonic difference.)

Between samples the window starts and finishes its ticket (not timed) and the bench waits
until the finish's idle text is on the strip (``--no-settle``: it does not). Prints readable
lines, then one JSON object (``call_to_strip_p99_ms``, ``call_to_tv_p99_ms``, …). Targets:
strip p99 ≤ 150 ms, TV p99 ≤ 200 ms. The p99 of a run of 60 samples is its second slowest, so
one late turn of a loop decides it; p90 and how many samples were over the target
(``strip_over_target``, ``tv_over_target``: TV updates, one per page and sample) say more
when two layouts or versions are compared. Take figures on an otherwise idle machine. The bench
stops after ``--limit-s`` and ends every process it started (the emulator also ends when its
stdin closes, so it never outlives the bench).

``--trace`` also prints when each stage was reached (ms after the call was sent: the bridge
hub's notice, its desired-state pass, apply_desired, the SHOW_TEXT written on the bus and the
frames that went before it, how late the emulator had its last byte beyond the frame's line
time, the live hub's notice, its read of the new events and its fan-out, the websocket
message in the pages, the DOM), the fan-out's wall and CPU time, the bus master's
transactions, retries and reply timeouts (and how many of those had the reply already in the
server's OS buffer), the emulated decoder's counters, how late the server's loop woke from a
5 ms sleep, the eight longest bus waits with the frames ahead (``address:command`` in hex)
and what the master waited for meanwhile, the browser's CPU while idle and while the calls
run (by process: renderers, GPU process, …), and each page's main-thread time per sample
from Chromium's own metrics (script, style, layout).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import importlib.util
import json
import os
import random
import select
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import bridge as bus_bench
from bench._display import CHROMIUM, CHROMIUM_ARGS, display_device_token
from bench._strip_line import add_process_options
from bench._support import (
    add_loop_option,
    admin_headers,
    embedded_database,
    free_port,
    hall_toml,
    percentile,
    served,
    use_loop,
)
from firmware_bridge import timing
from hall.app import Settings, create_app, server_options
from hall.cli import settle_heap
from hall.config.loader import load_config

HALL = "bench"
BAUD = 9600
STRIPS = CALLERS = 8
STRIP_TARGET_MS, TV_TARGET_MS = 150, 200  # p99 targets of call → strip and call → TV
# Before the page's scripts run: note when each live message arrives (for --trace).
WS_TAP = """(() => {
  const Orig = window.WebSocket;
  window.benchWs = [];
  window.WebSocket = class extends Orig {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (e) => {
        if (e.data.includes('"ticket.called"')) window.benchWs.push([0, Date.now()]);
      });
    }
  };
})();"""
# The page notes when its DOM shows a call; ``benchWait`` resolves with that time. No polling
# (Playwright's wait_for_function polls every animation frame, which would make all the
# pages paint during every sample and slow each other down).
WATCH = """() => {
  window.benchSeen = [];
  window.benchWaiters = [];
  const settle = () => {
    window.benchWaiters = window.benchWaiters.filter(([since, n, resolve]) => {
      const hit = window.benchSeen.find((s) => s[1] >= since && s[0].includes(`@${n}#`));
      if (hit) resolve(hit[1]);
      return !hit;
    });
  };
  new MutationObserver(() => {
    window.benchSeen.push([document.body.dataset.lastCall || "", Date.now()]);
    settle();
  }).observe(document.body, {attributes: true, attributeFilter: ["data-last-call"]});
  window.benchWait = (since, n) => new Promise((resolve) => {
    window.benchWaiters.push([since, n, resolve]);
    settle();
    setTimeout(() => resolve(null), 10000);
  });
}"""


# Processes this bench starts that are not the browser, by pid: their label in the CPU report.
_LABELS: dict[int, str] = {}


def _tree_cpu() -> dict[str, float]:
    """CPU seconds used so far by this process's descendants (the browser's processes and
    Playwright's driver), by kind: Chromium's ``--type`` (renderer, gpu-process, utility…),
    "browser" for its main process, or the program's name."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    total: dict[str, float] = {}
    todo = list(children.get(os.getpid(), []))
    tick = os.sysconf("SC_CLK_TCK")
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            # Chromium rewrites its command line into one space-separated string.
            args = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").split()
            kind = Path(args[0].decode(errors="replace")).name if args else "?"
            for arg in args:
                if arg.startswith(b"--type="):
                    kind = arg[7:].decode(errors="replace")
                elif arg.startswith(b"--utility-sub-type="):
                    kind = arg[19:].decode(errors="replace").rsplit(".", 1)[-1]
            if kind.startswith(("chromium", "chrome", "playwright_chromium")):
                kind = "browser"
            kind = _LABELS.get(pid, kind)
            total[kind] = total.get(kind, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return total


def _tree_cpu_s() -> float:
    """CPU seconds used so far by this process's descendants but the emulated bus (the
    browser's processes and Playwright's driver)."""
    return sum(v for k, v in _tree_cpu().items() if k not in _LABELS.values())


_MAIN_METRICS = {
    "TaskDuration": "task ms",
    "ScriptDuration": "script ms",
    "RecalcStyleDuration": "style ms",
    "LayoutDuration": "layout ms",
    "RecalcStyleCount": "styles",
    "LayoutCount": "layouts",
}


async def _main_thread(sessions: list[Any]) -> dict[str, float]:
    """Chromium's main-thread metrics summed over the pages (durations in ms)."""
    total = dict.fromkeys(_MAIN_METRICS.values(), 0.0)
    for session in sessions:
        for metric in (await session.send("Performance.getMetrics"))["metrics"]:
            name = _MAIN_METRICS.get(metric["name"])
            if name is not None:
                scale = 1000.0 if name.endswith(" ms") else 1.0
                total[name] += metric["value"] * scale
    return total


class Trace:
    """Wall-clock marks (ms) of each stage of a call's way, for ``--trace``.

    Wraps, in this process, the bridge hub's mark and desired-state pass, the bridge's
    apply_desired, the bus master's frame writes and the live hub's notice and fan-out; the
    pages note when each live message arrived (``WS_TAP``).
    """

    def __init__(self, pty_path: str) -> None:
        self.marks: dict[str, list[float]] = {}
        self.frames: list[tuple[float, int, int]] = []  # (ms, dst, command)
        self.show_lengths: list[int] = []  # payload bytes of every SHOW_TEXT written
        self.stages: dict[str, list[float]] = {}
        # (wait ms, strip, frames written while it waited, what delayed it) per sample.
        self.worst: list[tuple[float, int, list[tuple[int, int]], str]] = []
        # The bus master's reply waits: (start ms, end ms, address, command, timed out).
        self.replies: list[tuple[float, float, int, int, bool]] = []
        # The server loop's lateness: (ms, how late a 5 ms sleep woke, ms), every ~5 ms.
        self.lag: list[tuple[float, float]] = []
        self.stats0: Any = None
        self.emulator0: dict[str, int] = {}  # the emulated bus's decoder counters
        self.emulator1: dict[str, int] = {}
        self.pty_path = pty_path  # the emulated line's pty, as the server opened it
        self.line_fd: int | None = None  # the server's fd of it
        self.timeouts: list[tuple[float, bool]] = []  # (ms past the deadline, reply held)
        self.stats1: Any = None
        self._lag_task: asyncio.Future[None] | None = None
        self.fanout_cost: list[tuple[float, float]] = []  # (wall ms, CPU ms) per call
        self.idle_cpu = self.call_cpu = 0.0  # browser CPU (cores) idle, and added by the calls
        self.cpu_per_sample_ms = 0.0  # browser CPU added by one sample (its call, start, finish)
        # Main-thread time (ms) or counts per page and sample, from Chromium's own metrics.
        self.main_per_sample: dict[str, float] = {}
        self.cpu_by_kind: dict[str, float] = {}  # CPU ms per sample by process kind
        self.idle_by_kind: dict[str, float] = {}  # CPU ms per second while idle, by kind

    _last_frame: tuple[int, int] = (0, 0)

    async def _watch_lag(self) -> None:
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(0.005)
            late = (time.perf_counter() - t0 - 0.005) * 1000
            self.lag.append((time.time() * 1000, late))

    async def stop(self) -> None:
        if self._lag_task is not None:
            self._lag_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lag_task

    def _line_fd(self) -> int | None:
        if self.line_fd is None:
            for fd in Path("/proc/self/fd").iterdir():
                with contextlib.suppress(OSError):
                    if str(fd.readlink()) == self.pty_path:
                        self.line_fd = int(fd.name)
        return self.line_fd

    def _why(self, start: float, end: float) -> str:
        """What the bus master and the server loop did between ``start`` and ``end`` (ms)."""
        parts = []
        for r0, r1, dst, cmd, timed_out in self.replies:
            if r1 > start and r0 < end:
                what = "TIMED OUT" if timed_out else "reply"
                parts.append(
                    f"{dst:02x}:{cmd:02x} {what} wait {r0 - start:+.0f}..{r1 - start:+.0f}"
                )
        lags = [late for at, late in self.lag if start <= at <= end + 5]
        if lags:
            parts.append(f"server loop late by up to {max(lags):.0f} ms")
        return "; ".join(parts)

    def note(self, name: str) -> None:
        self.marks.setdefault(name, []).append(time.time() * 1000)

    def first_after(self, name: str, t: float) -> float | None:
        return next((m for m in self.marks.get(name, []) if m >= t), None)

    def add(self, stage: str, ms: float | None) -> None:
        if ms is not None:
            self.stages.setdefault(stage, []).append(ms)

    def install(self, app: web.Application) -> None:
        from hall.web.bridge import BRIDGE
        from hall.web.live import LIVE

        hub = app[BRIDGE]
        live = app[LIVE]
        service = hub.service
        bridge = hub.bridge
        assert bridge is not None
        master = bridge.master("b1")

        self.master = master
        self._lag_task = asyncio.ensure_future(self._watch_lag())
        mark = hub.mark
        desired_pass = service.desired_pass
        apply_desired = bridge.apply_desired
        transmit = master._transmit
        notified = live._notified
        fan_out = live._fan_out

        def traced_mark(hall_id: str) -> None:
            self.note("mark")
            mark(hall_id)

        async def traced_desired(hall_id: str, **options: Any) -> Any:
            self.note("desired_start")
            out = await desired_pass(hall_id, **options)
            self.note("desired_end")
            return out

        def traced_apply(bus: str, address: int, commands: Any, generation: int = 0) -> int:
            n = apply_desired(bus, address, commands, generation)
            if n and address <= STRIPS:
                self.note(f"apply{address}")
            return n

        def traced_transmit(frame: Any) -> float:
            self.frames.append((time.time() * 1000, frame.dst, frame.cmd))
            if frame.cmd == 0x10:
                self.show_lengths.append(len(frame.payload))
            self._last_frame = (frame.dst, frame.cmd)
            return transmit(frame)

        await_reply = master._await_reply

        async def traced_await_reply(fut: Any, deadline: float) -> Any:
            start = time.time() * 1000
            dst, cmd = self._last_frame
            try:
                out = await await_reply(fut, deadline)
            except TimeoutError:
                self.replies.append((start, time.time() * 1000, dst, cmd, True))
                # Was the reply already in the OS's buffer (the server was late to read it),
                # and how late after its deadline did the timeout run?
                late = (asyncio.get_running_loop().time() - deadline) * 1000
                fd = self._line_fd()
                held = fd is not None and bool(select.select([fd], [], [], 0)[0])
                self.timeouts.append((late, held))
                raise
            self.replies.append((start, time.time() * 1000, dst, cmd, False))
            return out

        def traced_notified(hall_id: str, seq: int) -> None:
            self.note("live_notified")
            notified(hall_id, seq)

        def traced_fan_out(hall: Any, seq: int, event: Any) -> None:
            w0, c0 = time.perf_counter(), time.thread_time()
            fan_out(hall, seq, event)
            if event.type.value == "ticket.called":
                self.note("live_fanout")
                self.fanout_cost.append(
                    ((time.perf_counter() - w0) * 1000, (time.thread_time() - c0) * 1000)
                )

        import hall.web.live as live_module
        from hall.storage import repo as repo_module

        events_after = repo_module.events_after

        async def traced_events_after(conn: Any, hall_id: str, after: int, limit: int) -> Any:
            self.note("live_query_start")
            rows = await events_after(conn, hall_id, after, limit)
            if any(e.type.value == "ticket.called" for _, e in rows):
                self.note("live_query_end")
            return rows

        class _Repo:
            """hall.storage.repo as the live hub sees it, its event reads timed."""

            def __getattr__(self, name: str) -> Any:
                if name == "events_after":
                    return traced_events_after
                return getattr(repo_module, name)

        vars(live_module)["repo"] = _Repo()

        hub.mark = traced_mark  # type: ignore[method-assign]
        service.desired_pass = traced_desired  # type: ignore[method-assign]
        bridge.apply_desired = traced_apply  # type: ignore[method-assign]
        master._transmit = traced_transmit  # type: ignore[method-assign]
        master._await_reply = traced_await_reply  # type: ignore[method-assign]
        live._notified = traced_notified  # type: ignore[method-assign]
        live._fan_out = traced_fan_out  # type: ignore[method-assign]

    def sample(self, wall0: float, resp: float, n: int, strip_end: float) -> None:
        """Stage times (ms after the call was sent) of the sample sent at ``wall0``."""
        self.add("http_response", resp - wall0)
        for name in ("mark", "desired_start", "desired_end", f"apply{n}", "live_notified"):
            at = self.first_after(name, wall0)
            self.add(name.rstrip("0123456789"), None if at is None else at - wall0)
        apply_at = self.first_after(f"apply{n}", wall0)
        show = next(
            (t for t, dst, cmd in self.frames if t >= wall0 and dst == n and cmd == 0x10), None
        )
        self.add("show_text_written", None if show is None else show - wall0)
        if apply_at is not None and show is not None:
            ahead = [(dst, cmd) for t, dst, cmd in self.frames if apply_at <= t < show]
            self.add("frames_ahead", float(len(ahead)))
            self.worst.append((show - apply_at, n, ahead, self._why(apply_at, show)))
        self.add("strip_last_byte", strip_end - wall0)
        if show is not None:
            # The strip had the last byte this long after the frame's own line time from its
            # write: the pty's hand-over and the emulator process waking to read it.
            i = next(i for i, (t, dst, cmd) in enumerate(f for f in self.frames if f[2] == 0x10)
                     if t == show)  # fmt: skip
            line_ms = timing.frame_time(BAUD, self.show_lengths[i]) * 1000
            self.add("emulator_late", strip_end - show - line_ms)
        notified = self.first_after("live_notified", wall0)
        if notified is not None:
            start = self.first_after("live_query_start", notified)
            self.add("live_query_start", None if start is None else start - wall0)
        for name in ("live_query_end",):
            at = self.first_after(name, wall0)
            self.add(name, None if at is None else at - wall0)
        fan = self.first_after("live_fanout", wall0)
        self.add("live_fanout", None if fan is None else fan - wall0)

    def report(self) -> None:
        print(
            f"  browser CPU: {self.idle_cpu * 100:.0f}% of a core idle, "
            f"+{self.call_cpu * 100:.0f}% while the calls ran "
            f"({self.cpu_per_sample_ms:.0f} ms of CPU per sample, all pages)"
        )
        if self.idle_by_kind:
            print(
                "  idle CPU ms per second by process: "
                + ", ".join(f"{k} {v:.0f}" for k, v in sorted(self.idle_by_kind.items()) if v)
            )
        if self.cpu_by_kind:
            print(
                "  CPU ms per sample by process (idle included): "
                + ", ".join(f"{k} {v:.0f}" for k, v in sorted(self.cpu_by_kind.items()))
            )
        if self.main_per_sample:
            print(
                "  each page's main thread per sample (call, start, finish; idle rate taken off): "
                + ", ".join(f"{k} {v:.2f}" for k, v in self.main_per_sample.items())
            )
        if self.fanout_cost:
            walls = [w for w, _ in self.fanout_cost]
            cpus = [c for _, c in self.fanout_cost]
            print(
                f"  live fan-out of a call: p50 {percentile(walls, 50):.1f} ms "
                f"(CPU {percentile(cpus, 50):.1f} ms), p99 {percentile(walls, 99):.1f} ms "
                f"(CPU {percentile(cpus, 99):.1f} ms)"
            )
        if self.stats0 is not None and self.stats1 is not None:
            names = ("transactions", "retries", "timeouts", "late_replies", "bad_frames")
            print(
                "  bus master during the calls: "
                + ", ".join(
                    f"{k} {getattr(self.stats1, k) - getattr(self.stats0, k)}" for k in names
                )
            )
        if self.emulator1:
            print(
                "  emulated bus's decoder during the calls: "
                + ", ".join(
                    f"{k} {v - self.emulator0.get(k, 0)}" for k, v in self.emulator1.items()
                )
            )
        if self.timeouts:
            held = sum(1 for _, h in self.timeouts if h)
            lates = [late for late, _ in self.timeouts]
            print(
                f"  reply timeouts: {len(self.timeouts)}, {held} with the reply already in the "
                f"server's OS buffer; timeout ran {percentile(lates, 50):.1f} ms (p50), "
                f"{max(lates):.0f} ms (max) past its deadline"
                + ("" if self.line_fd is not None else " (the line's fd not found)")
            )
        lags = [late for _, late in self.lag]
        if lags:
            print(
                f"  server loop lateness (a 5 ms sleep): p50 {percentile(lags, 50):.1f} ms, "
                f"p99 {percentile(lags, 99):.1f} ms, max {max(lags):.0f} ms"
            )
        for wait, n, ahead, why in sorted(self.worst, reverse=True)[:8]:
            went = " ".join(f"{dst:02x}:{cmd:02x}" for dst, cmd in ahead)
            print(f"  strip {n}: SHOW_TEXT waited {wait:.0f} ms behind {went or 'nothing'}")
            if why:
                print(f"      ({why}; ms after its apply)")
        order = [
            "http_response", "mark", "desired_start", "desired_end", "apply",
            "frames_ahead", "show_text_written", "strip_last_byte", "emulator_late",
            "live_notified",
            "live_query_start", "live_query_end", "live_fanout", "ws_arrived", "ws_after_fanout",
            "dom_updated",
        ]  # fmt: skip
        for stage in order:
            values = self.stages.get(stage)
            if values:
                print(
                    f"  {stage:>18}: p50 {percentile(values, 50):7.1f}  "
                    f"p90 {percentile(values, 90):7.1f}  p99 {percentile(values, 99):7.1f}  "
                    f"max {max(values):7.1f}  (n={len(values)})"
                )


@contextlib.asynccontextmanager
async def strip_line(
    strips: int, callers: int, nice: int, *, fifo: bool
) -> AsyncIterator[tuple[bus_bench.OwnProcessBus, bus_bench.StripWatch]]:
    """The emulated bus in a process of its own (bench/_strip_line.py at ``nice``, under
    SCHED_FIFO with ``fifo``), as the bridge bench runs it, with a watch of the strips'
    SHOW_TEXTs (each timed by the emulator's ``time.monotonic()`` of the frame's last byte);
    stopped (and waited for) on exit."""
    bus = await bus_bench.OwnProcessBus.spawn(strips, callers, nice=nice, fifo=fifo)
    _LABELS[bus.proc.pid] = "emulated bus"
    watch = bus_bench.StripWatch()
    bus.on_show = watch.on_show
    try:
        await bus.start()
        yield bus, watch
    finally:
        await bus.close()


CAP_SYS_NICE = 23  # linux/capability.h


def _may_raise_priority() -> bool:
    """Whether this process holds CAP_SYS_NICE (as root does), which its children inherit."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> CAP_SYS_NICE & 1)
    return False


def _chromium(workdir: Path, nice: int) -> str:
    """The browser to launch: a script that starts Chromium at ``nice`` (every page's
    renderer inherits it), unable to raise any of its threads' priority.

    Chromium sets its threads' priorities itself wherever the kernel lets it: with
    CAP_SYS_NICE (a bench run as root) it put its compositor, IO and audio-pool threads at
    nice -8, the renderers' main threads at 0 or 5 and its audio output threads under
    SCHED_RR, whatever nice value it was started at, so the TVs ran ahead of the server
    (measured in session 9: no thread of the browser was left at nice 10). Without the
    capability, and with RLIMIT_NICE and RLIMIT_RTPRIO at 0, a process can only lower its
    priority; setpriv takes CAP_SYS_NICE out of the browser's bounding set."""
    drop = ""
    if _may_raise_priority():
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            raise RuntimeError("setpriv (util-linux) is needed to keep Chromium at its nice value")
        drop = f"{setpriv} --bounding-set -sys_nice "
    script = workdir / "chromium-nice"
    script.write_text(
        f'#!/bin/bash\nulimit -e 0 -r 0\nexec nice -n {nice} {drop}{CHROMIUM} "$@"\n',
        encoding="utf-8",
    )
    script.chmod(0o755)
    return str(script)


def _browser_priority() -> tuple[int, int]:
    """The highest priority any thread of the browser (this process's Chromium descendants)
    runs at: (its lowest nice value, how many threads run under a real-time policy)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    lowest, realtime = 20, 0
    todo = list(children.get(os.getpid(), []))
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        with contextlib.suppress(OSError):
            program = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
            if b"chrom" not in Path(program.decode(errors="replace")).name.encode():
                continue
            for task in Path(f"/proc/{pid}/task").iterdir():
                with contextlib.suppress(OSError):
                    fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                    lowest = min(lowest, int(fields[16]))  # nice
                    realtime += int(fields[38]) in (os.SCHED_FIFO, os.SCHED_RR)  # policy
    return lowest, realtime


@dataclasses.dataclass(frozen=True)
class HallServer:
    """The hall server under test, as the bench reaches it."""

    url: str
    layout: str  # "own-process" (``hall serve``) or "same-process" (the app in the bench)
    loop: str  # the server's event loop: "uvloop" or "asyncio"
    pid: int  # the server's process (the bench's own with "same-process")
    app: web.Application | None = None  # the app itself, in the bench's process only


@contextlib.asynccontextmanager
async def hall_server(layout: str, dsn: str, config: str) -> AsyncIterator[HallServer]:
    """Run the hall server on ``dsn`` with ``config`` on a loopback port until the block
    ends: with "own-process" as ``hall serve`` runs in a hall (its own process and uvloop,
    ``python -m hall.cli serve --database-url … --config …``; the bus master in it opens
    the emulated line's pty as a serial port), with "same-process" as an app on this
    process's loop (for ``--trace``, which wraps the app's internals)."""
    if layout == "own-process":
        async with served(dsn, config) as proc:
            _LABELS[proc.pid] = "hall server"
            # `hall serve` installs uvloop whenever it is importable (hall.cli.install_uvloop).
            loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
            yield HallServer(proc.url, layout, loop, proc.pid)
        return
    workdir = Path(tempfile.mkdtemp(prefix="hall-bench-display-app-"))
    try:
        (workdir / "hall.toml").write_text(config, encoding="utf-8")
        settings = Settings(database_url=dsn, config=load_config(workdir / "hall.toml"))
        app = create_app(settings)
        runner = web.AppRunner(app, **server_options(settings))
        await runner.setup()
        await settle_heap(app)  # as `hall serve` does last at start-up
        try:
            port = free_port()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            loop = type(asyncio.get_running_loop()).__module__.split(".")[0]
            yield HallServer(f"http://127.0.0.1:{port}", layout, loop, os.getpid(), app)
        finally:
            await runner.cleanup()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def config_text(url: str) -> str:
    # Screen s001 speaks, s002 is silent: a hall lets one TV per area say the calls
    # (``voice = false`` on the others), so only the first page plays the announcements.
    head = hall_toml(STRIPS, HALL, screens=2).replace(
        '{ id = "s002", name = "2号屏" }', '{ id = "s002", name = "2号屏", voice = false }'
    )
    assert "voice = false" in head
    lines = [head, "[[staff]]", 'job_no = "b001"']
    lines += ['name = "压测员"', "", "[[buses]]", 'name = "b1"', f'hall = "{HALL}"']
    lines += [f'url = "{url}"', f"baudrate = {BAUD}"]
    lines += ["options = { poll_interactive_ms = 250, poll_display_ms = 3000 }"]
    for n in range(1, STRIPS + 1):
        lines += ["", "[[devices]]", 'bus = "b1"', f"address = {n}", 'class = "strip"']
        lines += [f"counter = {n}"]
    for n in range(1, CALLERS + 1):
        lines += ["", "[[devices]]", 'bus = "b1"', f"address = {0x40 + n}", 'class = "caller"']
        lines += [f"counter = {n}"]
    return "\n".join(lines) + "\n"


async def run(args: argparse.Namespace, dsn: str) -> dict[str, Any]:
    bus_bench.set_baud(BAUD)
    fifo = args.emulator_sched == "fifo"
    async with strip_line(STRIPS, CALLERS, args.emulator_nice, fifo=fifo) as (line, watch):
        return await _run(args, dsn, line, watch)


async def _run(
    args: argparse.Namespace,
    dsn: str,
    line: bus_bench.OwnProcessBus,
    watch: bus_bench.StripWatch,
) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="hall-bench-display-"))
    try:
        async with hall_server(args.server, dsn, config_text(line.pty_path)) as server:
            return await _measure(args, dsn, line, watch, workdir, server)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def _measure(
    args: argparse.Namespace,
    dsn: str,
    line: bus_bench.OwnProcessBus,
    watch: bus_bench.StripWatch,
    workdir: Path,
    server: HallServer,
) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    url = server.url
    trace = Trace(line.pty_path) if args.trace else None
    if trace is not None:
        assert server.app is not None  # --trace runs the app in this process
        trace.install(server.app)
    strip_ms: list[float] = []
    tv_ms: list[float] = []
    missed = 0
    tv_priority = (20, 0)  # (the browser's lowest nice, its real-time threads)
    try:
        admin = await admin_headers(url, dsn)
        speaking = await display_device_token(dsn, HALL, "s001", "bench/display.py")
        silent = await display_device_token(dsn, HALL, "s002", "bench/display.py")
        async with aiohttp.ClientSession(headers=admin) as api:

            async def post(path: str, body: dict[str, Any] | None = None) -> None:
                async with api.post(f"{url}/api/v1/halls/{HALL}{path}", json=body or {}) as r:
                    assert r.status in (200, 201), await r.text()

            for _ in range(args.samples + 2 * STRIPS):
                await post("/tickets", {"service": "bdc"})
            for n in range(1, STRIPS + 1):
                await post(f"/counters/{n}/open", {"clerk": "b001"})
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(
                    executable_path=_chromium(workdir, args.tv_nice), args=CHROMIUM_ARGS
                )
                try:
                    pages = []
                    for i in range(args.tvs):
                        token = silent if i else speaking
                        context = await browser.new_context(
                            viewport={"width": 1920, "height": 1080}
                        )
                        await context.add_cookies(
                            [{"name": "hall_device", "value": token, "url": url}]
                        )
                        page = await context.new_page()
                        if trace is not None:
                            await page.add_init_script(WS_TAP)
                        await page.goto(f"{url}/tv/{HALL}")
                        await page.wait_for_selector("body[data-status=connected]")
                        await page.evaluate(WATCH)
                        pages.append(page)
                    where = (
                        f"`hall serve` in its own process (pid {server.pid}, {server.loop})"
                        if server.layout == "own-process"
                        else f"in the bench's process ({server.loop}), beside its API client "
                        "and Playwright"
                    )
                    print(f"hall server: {where}; "
                          f"{STRIPS + CALLERS} devices on one pty bus at {BAUD} baud, in a "
                          f"process of their own ({line.sched}, nice {line.nice}); "
                          f"{len(pages)} TV pages "
                          f"in headless Chromium at nice {args.tv_nice} (the server, its "
                          "database and the bench at 0)")  # fmt: skip
                    rng = random.Random(1)
                    if trace is not None:
                        await asyncio.sleep(5)  # the pages settle (fonts, first layout)
                        cdp = [await p.context.new_cdp_session(p) for p in pages]
                        for session in cdp:
                            await session.send("Performance.enable")
                        cpu0, idle0 = _tree_cpu_s(), time.perf_counter()
                        idle_kinds0 = _tree_cpu()
                        main0 = await _main_thread(cdp)
                        await asyncio.sleep(5)
                        idle_s = time.perf_counter() - idle0
                        trace.idle_cpu = (_tree_cpu_s() - cpu0) / idle_s
                        trace.idle_by_kind = {
                            k: (v - idle_kinds0.get(k, 0.0)) * 1000 / idle_s
                            for k, v in _tree_cpu().items()
                        }
                        main1 = await _main_thread(cdp)
                        cpu0, run0 = _tree_cpu_s(), time.perf_counter()
                        trace.stats0 = dataclasses.replace(trace.master.stats)
                        trace.emulator0 = await line.stats()
                        trace.lag.clear()
                        kinds0 = _tree_cpu()
                        kinds0["this process"] = time.process_time()
                    for i in range(args.samples + 1):  # the first is a warm-up, not counted
                        n = rng.randrange(1, STRIPS + 1)
                        # Each page's waiter is set before the call, and a round trip to every
                        # page after it shows it is in place: while the pages show the call,
                        # the bench sends them nothing (20 evaluations through Playwright's
                        # driver and the browser would compete with the slowest pages).
                        armed = time.time() * 1000
                        waits = [
                            asyncio.ensure_future(p.evaluate(f"window.benchWait({armed}, {n})"))
                            for p in pages
                        ]
                        await asyncio.gather(*(p.evaluate("0") for p in pages))
                        fut = watch.expect(n, bus_bench._is_call)
                        t0 = time.monotonic()  # the emulator process's clock (CLOCK_MONOTONIC)
                        wall0 = time.time() * 1000
                        await post(f"/counters/{n}/call_next")
                        resp = time.time() * 1000
                        async with asyncio.timeout(10):
                            t1, _noticed = await fut  # the frame's last byte, line time
                        times = await asyncio.gather(*waits, return_exceptions=True)
                        if i and trace is not None:
                            strip_end = wall0 + (t1 - t0) * 1000
                            trace.sample(wall0, resp, n, strip_end)
                            arrived = await asyncio.gather(
                                *(
                                    p.evaluate(
                                        f"Math.min(...window.benchWs.filter((s) => s[1] >= {wall0})"
                                        ".map((s) => s[1]))"
                                    )
                                    for p in pages
                                )
                            )
                            fanned = trace.first_after("live_fanout", wall0)
                            for at in arrived:
                                trace.add("ws_arrived", at - wall0)
                                if fanned is not None:
                                    # From the server's last write to the page's handler: the
                                    # loopback, Chromium's network service and the renderer.
                                    trace.add("ws_after_fanout", at - fanned)
                            for at in times:
                                if isinstance(at, (int, float)):
                                    trace.add("dom_updated", at - wall0)
                        if i:
                            strip_ms.append((t1 - t0) * 1000)
                            for at in times:
                                if isinstance(at, (int, float)):
                                    tv_ms.append(at - wall0)
                                else:
                                    missed += 1
                        idle = watch.expect(n, bus_bench._idle_test(n))
                        await post(f"/counters/{n}/start")
                        await post(f"/counters/{n}/finish")
                        if args.settle:
                            # A clerk serves for minutes, not milliseconds: let the start's
                            # and the finish's strip texts go out before the next call, so
                            # a call waits for the bus's own traffic, not for a backlog the
                            # bench made by compressing a whole service into a moment.
                            async with asyncio.timeout(10):
                                await idle
                        await asyncio.sleep(rng.uniform(0.05, args.pause_s))
                    # After the calls: the pages have played announcements (audio threads).
                    tv_priority = _browser_priority()
                    if trace is not None:
                        run_s = time.perf_counter() - run0
                        trace.stats1 = dataclasses.replace(trace.master.stats)
                        trace.emulator1 = await line.stats()
                        busy = (_tree_cpu_s() - cpu0) / run_s
                        trace.call_cpu = busy - trace.idle_cpu
                        trace.cpu_per_sample_ms = trace.call_cpu * run_s * 1000 / args.samples
                        kinds1 = _tree_cpu()
                        kinds1["this process"] = time.process_time()
                        trace.cpu_by_kind = {
                            k: (v - kinds0.get(k, 0.0)) * 1000 / args.samples
                            for k, v in kinds1.items()
                        }
                        main2 = await _main_thread(cdp)
                        for key in main2:
                            idle_rate = (main1[key] - main0[key]) / idle_s
                            used = main2[key] - main1[key] - idle_rate * run_s
                            trace.main_per_sample[key] = used / args.samples / len(pages)
                finally:
                    await browser.close()
    finally:
        if trace is not None:
            await trace.stop()
    figures: dict[str, Any] = {
        "samples": len(strip_ms),
        "tvs": args.tvs,
        "baud": BAUD,
        "devices": STRIPS + CALLERS,
        "call_to_strip_p50_ms": round(percentile(strip_ms, 50), 1),
        "call_to_strip_p90_ms": round(percentile(strip_ms, 90), 1),
        "call_to_strip_p99_ms": round(percentile(strip_ms, 99), 1),
        "strip_over_target": sum(1 for ms in strip_ms if ms > STRIP_TARGET_MS),
        "call_to_tv_p50_ms": round(percentile(tv_ms, 50), 1),
        "call_to_tv_p90_ms": round(percentile(tv_ms, 90), 1),
        "call_to_tv_p99_ms": round(percentile(tv_ms, 99), 1),
        "tv_over_target": sum(1 for ms in tv_ms if ms > TV_TARGET_MS),
        "tv_updates": len(tv_ms),
        "tv_missed": missed,
        "emulator_nice": line.nice,
        "emulator_sched": line.sched,
        "tv_nice": args.tv_nice,
        "tv_nice_lowest": tv_priority[0],
        "tv_realtime_threads": tv_priority[1],
        "server": server.layout,
        "loop": server.loop,
    }
    print(
        f"Chromium's threads: lowest nice {tv_priority[0]}, {tv_priority[1]} real-time "
        f"(started at nice {args.tv_nice})"
    )
    if trace is not None:
        print("stages (ms after the call was sent):")
        trace.report()
    print(
        f"call → strip (last byte at {BAUD} baud): p50 {figures['call_to_strip_p50_ms']} ms, "
        f"p90 {figures['call_to_strip_p90_ms']} ms, p99 {figures['call_to_strip_p99_ms']} ms "
        f"(target ≤ {STRIP_TARGET_MS} ms; {figures['strip_over_target']} of {len(strip_ms)} over)"
    )
    print(
        f"call → TV DOM ({args.tvs} pages): p50 {figures['call_to_tv_p50_ms']} ms, "
        f"p90 {figures['call_to_tv_p90_ms']} ms, p99 {figures['call_to_tv_p99_ms']} ms "
        f"(target ≤ {TV_TARGET_MS} ms; {figures['tv_over_target']} of {len(tv_ms)} over); "
        f"missed {missed}"
    )
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--samples", type=int, default=60, help="calls timed")
    parser.add_argument("--tvs", type=int, default=20, help="headless Chromium TV pages")
    parser.add_argument("--pause-s", type=float, default=0.6, help="most pause between calls")
    parser.add_argument(
        "--no-settle",
        dest="settle",
        action="store_false",
        help="call again without waiting for the last finish's idle text on the strip",
    )
    parser.add_argument(
        "--trace",
        action="store_true",
        help="time each stage of the way (wraps the app's internals: runs the server in this "
        "process, --server same-process)",
    )
    parser.add_argument(
        "--server",
        choices=("own-process", "same-process"),
        default=None,
        help="where the hall server runs: `hall serve` in a process of its own, as in a hall "
        "(default), or its app on this process's loop beside the API client and Playwright "
        "(the layout before session 9; the default with --trace)",
    )
    add_process_options(parser)
    parser.add_argument(
        "--tv-nice",
        type=int,
        default=10,
        help="nice value of Chromium (the TVs are other machines in a hall: default 10; "
        "0 runs them beside the server as equals); it runs without CAP_SYS_NICE, so none of "
        "its threads can raise its priority above this",
    )
    parser.add_argument("--limit-s", type=float, default=300.0)
    add_loop_option(parser)
    args = parser.parse_args()
    if args.server is None:
        args.server = "same-process" if args.trace else "own-process"
    elif args.trace and args.server == "own-process":
        parser.error("--trace wraps the app's internals in this process: --server same-process")

    print(f"event loop of the bench's process: {use_loop(args)}")

    async def bounded(dsn: str) -> dict[str, Any]:
        async with asyncio.timeout(args.limit_s):
            return await run(args, dsn)

    with embedded_database() as dsn:
        figures = asyncio.run(bounded(dsn))
    print(json.dumps(figures, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
