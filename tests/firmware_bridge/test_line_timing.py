"""The emulated line at a baud rate (``LineEndpoint`` with ``line_baud``) plays the wire: a
device decides on a request at its last byte, and its reply reaches the host after its own
line time, as on a real RS-485 line."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from firmware_bridge import attention, timing
from firmware_bridge.constants import Command, KeyCode
from firmware_bridge.emulators.base import Hb1Device
from firmware_bridge.emulators.bus import Hb1Bus
from firmware_bridge.emulators.display import StripEmulator
from firmware_bridge.emulators.keypad import CallerEmulator
from firmware_bridge.emulators.line import Direction, LineEndpoint
from firmware_bridge.messages import (
    AttnRequest,
    KeyEvent,
    PollReply,
    PollRequest,
    ShowTextRequest,
    decode_reply,
)

from .emu_helpers import HostLine, message

BAUD = 9600


@dataclass
class Line:
    endpoint: LineEndpoint
    host: HostLine
    # Called once, soon after the endpoint first sees bytes from the host.
    on_first_rx: Callable[[], object] | None = None
    rx: asyncio.Event = field(default_factory=asyncio.Event)


@asynccontextmanager
async def line_of(device: Hb1Device) -> AsyncIterator[Line]:
    line: Line | None = None

    def traffic(direction: Direction, data: bytes) -> None:
        assert line is not None
        if direction == "rx":
            line.rx.set()
        if direction == "rx" and line.on_first_rx is not None:
            # The request's first bytes are on the line; whatever this does happens before
            # the request's last byte (15.6 ms later for a POLL at 9600 baud).
            asyncio.get_running_loop().call_soon(line.on_first_rx)
            line.on_first_rx = None

    endpoint = LineEndpoint(
        Hb1Bus([device], baud=BAUD),
        reply_delay_s=timing.turnaround(BAUD),
        line_baud=BAUD,
        on_traffic=traffic,
    )
    pair = await endpoint.attach_pty()
    host = await HostLine.open(pair.slave_path)
    line = Line(endpoint, host)
    try:
        yield line
    finally:
        host.close()
        await endpoint.close()


async def test_a_key_pressed_while_the_poll_is_on_the_line_is_in_that_polls_reply() -> None:
    caller = CallerEmulator(0x41)
    async with line_of(caller) as line:
        # Acknowledge the BOOT event first: the FIFO is empty.
        first = await line.host.transact(message(0x41, PollRequest(), seq=1))
        boot = decode_reply(Command.POLL, first.payload)
        assert isinstance(boot, PollReply)
        line.on_first_rx = lambda: caller.press_key(KeyCode.CALL_NEXT)
        reply = await line.host.transact(
            message(0x41, PollRequest(boot.evt_seq, boot.boot_id), seq=2)
        )
        poll = decode_reply(Command.POLL, reply.payload)
        assert isinstance(poll, PollReply)
        assert poll.has_event, "a key pressed during the POLL's bytes missed its reply"
        assert poll.evt_type == KeyEvent(KeyCode.CALL_NEXT).evt_type


async def test_a_reply_arrives_after_the_request_the_turnaround_and_its_own_line_time() -> None:
    caller = CallerEmulator(0x41)
    async with line_of(caller) as line:
        request = message(0x41, PollRequest(), seq=1)
        loop = asyncio.get_running_loop()
        sent = loop.time()
        reply = await line.host.transact(request)
        took = loop.time() - sent
        wire = (len(request.to_bytes()) + len(reply.to_bytes())) * timing.t_char(BAUD)
        assert took >= wire + timing.turnaround(BAUD)


async def test_a_late_timer_in_the_emulator_does_not_delay_the_reply_on_the_line() -> None:
    # A device answers a turnaround after the request's last byte on the wire. When the
    # emulator's process runs that byte's timer late (here: its loop stalled 60 ms by other
    # work), the reply is still due at the line's time, not a whole reply later than the stall.
    stall_s = 0.060
    caller = CallerEmulator(0x41)
    async with line_of(caller) as line:
        request = message(0x41, PollRequest(), seq=1)
        line.on_first_rx = lambda: time.sleep(stall_s)  # blocks the loop: every timer is late
        loop = asyncio.get_running_loop()
        sent = loop.time()
        reply = await line.host.transact(request)
        took = loop.time() - sent
        reply_wire = len(reply.to_bytes()) * timing.t_char(BAUD)
        assert took >= stall_s
        # Timed from when the late timer ran, the reply could not be in before this.
        assert took < stall_s + timing.turnaround(BAUD) + reply_wire


async def test_a_key_pressed_while_the_attn_request_is_on_the_line_sets_the_mark() -> None:
    caller = CallerEmulator(0x41, attention=True)
    async with line_of(caller) as line:
        first = await line.host.transact(message(0x41, PollRequest(), seq=1))
        boot = decode_reply(Command.POLL, first.payload)
        assert isinstance(boot, PollReply)
        # Acknowledge BOOT: the device has nothing to say.
        await line.host.transact(message(0x41, PollRequest(boot.evt_seq, boot.boot_id), seq=2))
        chars = attention.slot_chars(BAUD)
        attn = message(0xFF, AttnRequest.listing([0x41], chars), seq=3, noack=True)
        line.on_first_rx = lambda: caller.press_key(KeyCode.CALL_NEXT)
        await line.host.send(attn.to_bytes())
        mark = await line.host.read_exactly(1)
        assert attention.read_mark(mark[0]) == (0, True)


async def test_a_long_request_written_in_two_pieces_is_one_frame_to_the_device() -> None:
    # A 60-byte frame at 9600 baud is 63 ms on the line, far longer than the 20 ms idle gap (§5):
    # the device must not take the time its second piece spends on the line for a silence.
    strip = StripEmulator(0x03)
    text = "请A001号到3号窗口办理业务，请带好身份证件，谢谢合作"
    async with line_of(strip) as line:
        wire = message(0x03, ShowTextRequest(text=text), seq=1).to_bytes()
        assert len(wire) * timing.t_char(BAUD) > 3 * timing.t_idle(BAUD)
        line.rx.clear()
        await line.host.send(wire[:2])
        async with asyncio.timeout(5):
            await line.rx.wait()
        await line.host.send(wire[2:])
        reply = await line.host.next_frame()
        assert (reply.src, reply.payload) == (0x03, b"\x00")
        assert strip.text == text
