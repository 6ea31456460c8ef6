"""FrameLink: decoding with the idle timer, echo and host filtering, hex logging."""

from __future__ import annotations

import asyncio
import logging

import pytest

from firmware_bridge.codec import Frame, FrameFlags
from firmware_bridge.errors import BusClosedError
from firmware_bridge.link import FrameLink

V5_SHOW_TEXT_REPLY = bytes.fromhex("eb 90 11 00 03 22 10 01 00 00 2d ff")
V2_POLL = bytes.fromhex("eb 90 10 05 00 21 01 04 00 06 00 34 12 06 e1")
R2_FALSE_SOF = bytes.fromhex("eb 90 10 00 00 00 00 ff 01")


class Collector:
    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self.arrived: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()

    def __call__(self, frame: Frame) -> None:
        self.frames.append(frame)
        if not self.arrived.done():
            self.arrived.set_result(frame)


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return self.closed


async def test_echo_of_our_request_is_dropped_and_reply_delivered() -> None:
    got = Collector()
    link = FrameLink(got)
    transport = FakeTransport()
    link.connection_made(transport)
    request = Frame(FrameFlags.NONE, 5, 0, 0x21, 1, bytes.fromhex("06 00 34 12"))
    link.send(request)
    assert bytes(transport.written) == V2_POLL
    link.data_received(bytes(transport.written) + V5_SHOW_TEXT_REPLY)  # adapter echo + reply
    assert [f.to_bytes() for f in got.frames] == [V5_SHOW_TEXT_REPLY]
    assert link.counters.echoes == 1
    assert (link.counters.frames_in, link.counters.frames_out) == (2, 1)


@pytest.mark.parametrize(
    "frame",
    [
        Frame(FrameFlags.NONE, 0, 7, 1, 1),  # a request from a device address: not for a host
        Frame(FrameFlags.RESP, 9, 7, 1, 1, b"\x00"),  # a reply to another master
        Frame(FrameFlags.RESP, 0, 0, 1, 1, b"\x00"),  # a reply claiming to be from the host
    ],
)
async def test_frames_a_host_must_ignore(frame: Frame) -> None:
    got = Collector()
    link = FrameLink(got)
    link.data_received(frame.to_bytes())
    assert got.frames == []
    assert link.counters.ignored == 1


async def test_idle_timer_recovers_frame_behind_false_sof() -> None:
    got = Collector()
    link = FrameLink(got, baud=115200)
    link.data_received(R2_FALSE_SOF + V5_SHOW_TEXT_REPLY)
    assert got.frames == []
    assert link.receiving()
    async with asyncio.timeout(1.0):
        frame = await got.arrived
    assert frame.to_bytes() == V5_SHOW_TEXT_REPLY
    assert not link.receiving()
    assert link.decoder.stats.idle_drops == 1


async def test_hex_is_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="firmware_bridge.link")
    link = FrameLink(Collector(), name="bus7")
    link.attach(lambda data: None)
    link.send(Frame(FrameFlags.NONE, 5, 0, 0x21, 1, bytes.fromhex("06 00 34 12")))
    link.data_received(V5_SHOW_TEXT_REPLY)
    assert "bus7 tx eb 90 10 05 00 21 01 04 00 06 00 34 12 06 e1" in caplog.text
    assert "bus7 rx eb 90 11 00 03 22 10 01 00 00 2d ff" in caplog.text


async def test_send_without_a_line_raises() -> None:
    link = FrameLink(Collector())
    with pytest.raises(BusClosedError):
        link.send(Frame(FrameFlags.NONE, 5, 0, 1, 1))


async def test_a_failing_consumer_does_not_stop_the_receive_path(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[Frame] = []

    def consumer(frame: Frame) -> None:
        seen.append(frame)
        if len(seen) == 1:
            raise RuntimeError("bug")

    link = FrameLink(consumer)
    link.data_received(V5_SHOW_TEXT_REPLY + V5_SHOW_TEXT_REPLY)
    assert len(seen) == 2
    assert "frame callback failed" in caplog.text


async def test_connection_lost_detaches_and_reports() -> None:
    lost: list[Exception | None] = []
    link = FrameLink(Collector(), on_connection_lost=lost.append)
    link.connection_made(FakeTransport())
    link.data_received(V5_SHOW_TEXT_REPLY[:5])
    err = OSError("unplugged")
    link.connection_lost(err)
    assert lost == [err]
    assert not link.connected
    assert link.decoder.buffered == 0


async def test_transmission_end_estimate_accounts_for_queued_bytes() -> None:
    link = FrameLink(Collector(), baud=9600)
    link.attach(lambda data: None)
    loop = asyncio.get_running_loop()
    start = loop.time()
    first = link.send(Frame(FrameFlags.NONE, 5, 0, 1, 1, bytes(4)))
    second = link.send(Frame(FrameFlags.NONE, 5, 0, 2, 1, bytes(4)))
    assert first - start == pytest.approx(15 * 10 / 9600, abs=0.002)
    assert second - first == pytest.approx(15 * 10 / 9600, abs=0.002)
