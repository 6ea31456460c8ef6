"""Golden vectors and properties of the HB/1 frame codec (spec §3–§5, §14)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_bridge.codec import (
    MAX_PAYLOAD,
    Frame,
    FrameDecoder,
    FrameFlags,
    crc16_modbus,
)
from tests.firmware_bridge.vectors import (
    ALL_FRAMES,
    R2_FALSE_SOF,
    V3_POLL_REPLY,
    V4_SHOW_TEXT,
    V5_SHOW_TEXT_REPLY,
    V8_SET_TIME,
    V10_POLL_REPLY_KEY,
)


def test_crc_check_value() -> None:
    assert crc16_modbus(b"123456789") == 0x4B37
    assert crc16_modbus(b"123456789").to_bytes(2, "little") == bytes.fromhex("37 4b")


def test_crc_is_incremental() -> None:
    assert crc16_modbus(b"6789", crc16_modbus(b"12345")) == 0x4B37


@pytest.mark.parametrize("wire", ALL_FRAMES, ids=lambda b: b[:8].hex())
def test_vectors_decode_and_reencode_byte_for_byte(wire: bytes) -> None:
    decoder = FrameDecoder()
    (frame,) = decoder.feed(wire)
    assert frame.to_bytes() == wire
    assert decoder.buffered == 0
    assert decoder.stats.bad_frames == 0


def test_v8_fields() -> None:
    (frame,) = FrameDecoder().feed(V8_SET_TIME)
    assert frame == Frame(
        flags=FrameFlags.NOACK,
        dst=0xFF,
        src=0x00,
        seq=0x25,
        cmd=0x04,
        payload=bytes.fromhex("90 a0 4a 66 e0 01"),
    )


def test_v10_more_flag() -> None:
    (frame,) = FrameDecoder().feed(V10_POLL_REPLY_KEY)
    assert frame.is_reply
    assert frame.more
    assert not frame.noack
    assert (frame.src, frame.seq) == (0x07, 0x40)


def test_r1_resync() -> None:
    corrupt = bytearray(V3_POLL_REPLY)
    assert corrupt[12] == 0x12
    corrupt[12] = 0x13
    stream = bytes.fromhex("00 eb 90 eb") + V5_SHOW_TEXT_REPLY + bytes(corrupt) + V4_SHOW_TEXT
    decoder = FrameDecoder()
    frames = decoder.feed(stream)
    assert [f.to_bytes() for f in frames] == [V5_SHOW_TEXT_REPLY, V4_SHOW_TEXT]
    assert decoder.stats.crc_errors == 1
    assert decoder.stats.bad_version == 1  # "eb 90 eb eb": the false SOF before V5
    assert decoder.buffered == 0


def test_r2_false_sof_waits_then_idle_recovers() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(R2_FALSE_SOF + V5_SHOW_TEXT_REPLY) == []
    assert decoder.buffered == len(R2_FALSE_SOF) + len(V5_SHOW_TEXT_REPLY)
    assert [f.to_bytes() for f in decoder.idle()] == [V5_SHOW_TEXT_REPLY]
    assert decoder.buffered == 0
    assert decoder.stats.idle_drops == 1


def test_r2_with_clock_in_feed() -> None:
    decoder = FrameDecoder(idle_gap=0.020)
    assert decoder.feed(R2_FALSE_SOF, now=1.000) == []
    assert decoder.feed(V5_SHOW_TEXT_REPLY, now=1.005) == []
    # Next bytes arrive after a silence: the stale candidate fails first, V5 is recovered,
    # and the new frame that starts the burst is decoded on its own.
    frames = decoder.feed(V3_POLL_REPLY, now=1.030)
    assert [f.to_bytes() for f in frames] == [V5_SHOW_TEXT_REPLY, V3_POLL_REPLY]


def test_gap_inside_frame_discards_it() -> None:
    decoder = FrameDecoder(idle_gap=0.020)
    assert decoder.feed(V4_SHOW_TEXT[:10], now=0.0) == []
    assert decoder.feed(V4_SHOW_TEXT[10:], now=0.5) == []
    assert decoder.stats.frames == 0
    assert decoder.feed(V5_SHOW_TEXT_REPLY, now=0.51)[0].to_bytes() == V5_SHOW_TEXT_REPLY


def test_short_gaps_keep_frame() -> None:
    decoder = FrameDecoder(idle_gap=0.020)
    frames: list[Frame] = []
    for i, byte in enumerate(V4_SHOW_TEXT):
        frames += decoder.feed(bytes((byte,)), now=i * 0.015)
    assert [f.to_bytes() for f in frames] == [V4_SHOW_TEXT]


def test_trailing_lone_eb_is_kept_until_idle() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(b"\x00\x01\xeb") == []
    assert decoder.buffered == 1
    assert decoder.feed(V5_SHOW_TEXT_REPLY[1:]) == [FrameDecoder().feed(V5_SHOW_TEXT_REPLY)[0]]
    decoder.feed(b"\xeb")
    assert decoder.idle() == []
    assert decoder.buffered == 0


def test_len_over_limit_rejected_from_header() -> None:
    decoder = FrameDecoder()
    header = bytes.fromhex("eb 90 10 05 00 01 01") + (MAX_PAYLOAD + 1).to_bytes(2, "little")
    assert decoder.feed(header) == []
    assert decoder.stats.bad_length == 1
    assert decoder.buffered == 0  # rejected without waiting for the payload


def test_device_limit_on_len() -> None:
    decoder = FrameDecoder(max_payload=128)
    frame = Frame(FrameFlags.NONE, 5, 0, 1, 0x50, bytes(129)).to_bytes()
    assert decoder.feed(frame) == []
    assert decoder.stats.bad_length == 1


def test_bad_version() -> None:
    wire = bytearray(V5_SHOW_TEXT_REPLY)
    wire[2] = 0x21
    decoder = FrameDecoder()
    assert decoder.feed(bytes(wire)) == []
    assert decoder.stats.bad_version == 1


def test_reserved_flag_bit_ignored_on_receipt() -> None:
    body = bytes.fromhex("18 00 03 22 10 01 00 00")
    wire = b"\xeb\x90" + body + crc16_modbus(body).to_bytes(2, "little")
    (frame,) = FrameDecoder().feed(wire)
    assert frame.flags == FrameFlags.NONE
    assert frame.payload == b"\x00"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"dst": 256},
        {"seq": -1},
        {"flags": FrameFlags(0x08)},
        {"payload": bytes(MAX_PAYLOAD + 1)},
    ],
)
def test_frame_rejects_out_of_range(kwargs: dict[str, object]) -> None:
    base: dict[str, object] = {
        "flags": FrameFlags.NONE,
        "dst": 1,
        "src": 0,
        "seq": 0,
        "cmd": 1,
        "payload": b"",
    }
    base.update(kwargs)
    with pytest.raises(ValueError, match=r"Frame|payload"):
        Frame(**base)  # type: ignore[arg-type]


# --- properties -------------------------------------------------------------------------------

frames_st = st.builds(
    Frame,
    flags=st.sampled_from([FrameFlags(v) for v in range(8)]),
    dst=st.integers(0, 255),
    src=st.integers(0, 255),
    seq=st.integers(0, 255),
    cmd=st.integers(0, 255),
    payload=st.binary(max_size=MAX_PAYLOAD),
)


@given(st.binary(max_size=4000), st.lists(st.integers(1, 64), max_size=50))
def test_noise_never_raises_and_buffer_stays_bounded(noise: bytes, cuts: list[int]) -> None:
    decoder = FrameDecoder()
    pos = 0
    for cut in [*cuts, len(noise)]:
        decoder.feed(noise[pos : pos + cut])
        pos += cut
        assert decoder.buffered <= decoder.max_buffer
    decoder.idle()
    assert decoder.buffered == 0


@given(frames_st)
def test_frame_round_trip(frame: Frame) -> None:
    (decoded,) = FrameDecoder().feed(frame.to_bytes())
    assert decoded == frame


# Noise that cannot contain a SOF: frames embedded in it must all be found. Noise with SOFs can
# legitimately hide a frame behind a false SOF until the idle rule, so it gets an idle() at the
# end instead (next test).
_safe_noise = st.binary(max_size=40).map(lambda b: b.replace(b"\xeb", b"\x00"))


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_safe_noise, frames_st), max_size=8), _safe_noise)
def test_frames_in_noise_are_all_found(parts: list[tuple[bytes, Frame]], tail: bytes) -> None:
    stream = b"".join(n + f.to_bytes() for n, f in parts) + tail
    assert FrameDecoder().feed(stream) == [f for _, f in parts]


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.binary(max_size=30), frames_st), max_size=6))
def test_frames_behind_arbitrary_noise_found_after_idle_gaps(
    parts: list[tuple[bytes, Frame]],
) -> None:
    # Each noise burst is followed by silence (the transmitter turns around), as on a real bus.
    decoder = FrameDecoder()
    found: list[Frame] = []
    for noise, frame in parts:
        decoder.feed(noise)
        found += decoder.idle()
        found += decoder.feed(frame.to_bytes())
    found += decoder.idle()
    # Noise may contain CRC-valid frames of its own; the real ones must all be there, in order.
    it = iter(found)
    assert all(any(f == g for g in it) for _, f in parts)


@given(st.lists(frames_st, max_size=6), st.binary(max_size=200), st.data())
def test_any_split_gives_same_frames(
    frames: list[Frame], noise: bytes, data: st.DataObject
) -> None:
    stream = noise + b"".join(f.to_bytes() for f in frames) + noise
    whole = FrameDecoder()
    expected = whole.feed(stream) + whole.idle()
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=20)))
    decoder = FrameDecoder()
    got: list[Frame] = []
    prev = 0
    for cut in [*cuts, len(stream)]:
        got += decoder.feed(stream[prev:cut])
        prev = cut
    got += decoder.idle()
    assert got == expected
    assert decoder.stats == whole.stats
