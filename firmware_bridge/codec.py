"""HB/1 frame codec (spec §3–§5), sans-I/O.

``Frame`` is one frame; ``FrameDecoder`` turns a byte stream into frames. Nothing here reads a
clock or a port: the caller feeds bytes and, for the idle rule, tells the decoder about time.

Failure model of the decoder (§5):

* garbage before a frame: bytes up to the next ``EB 90`` are discarded (a trailing lone ``EB``
  is kept, it may be half a SOF);
* a false ``EB 90`` in noise or inside another frame: a bad version nibble, LEN > the limit or
  a CRC mismatch drops exactly one byte and the search resumes; LEN is never used to skip, so a
  false SOF cannot swallow the real frame after it;
* a false SOF with a plausible LEN waits for bytes that never come: after T_IDLE of silence
  (``idle()`` or a ``now`` gap in ``feed``) the candidate fails, one byte is dropped and the
  buffer is rescanned, repeatedly, until it is empty;
* a frame cut short by a gap of T_IDLE is discarded by the same rule;
* the buffer never holds more than one incomplete candidate, so it is bounded by
  ``11 + max_payload`` bytes between calls.
"""

from __future__ import annotations

import dataclasses
import enum
import struct
from dataclasses import dataclass

SOF = b"\xeb\x90"
HEADER_LEN = 9
CRC_LEN = 2
FRAME_OVERHEAD = HEADER_LEN + CRC_LEN
MAX_PAYLOAD = 512
PROTOCOL_VERSION = 1

HOST_ADDR = 0x00
UNASSIGNED_ADDR = 0xF0
BROADCAST_ADDR = 0xFF
FIRST_DEVICE_ADDR = 0x01
LAST_DEVICE_ADDR = 0xEF

_HEADER = struct.Struct("<2sBBBBBH")
_FLAG_MASK = 0x07  # bit 3 is reserved: sent as 0 and ignored on receipt (§3)


class FrameFlags(enum.IntFlag):
    """Low nibble of VER_FLAGS."""

    NONE = 0x00
    RESP = 0x01
    NOACK = 0x02
    MORE = 0x04


def _make_crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _make_crc_table()


def crc16_modbus(data: bytes | bytearray | memoryview, crc: int = 0xFFFF) -> int:
    """CRC-16/MODBUS (§4); ``crc16_modbus(b"123456789") == 0x4B37``."""
    table = _CRC_TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc


@dataclass(frozen=True, slots=True)
class Frame:
    """One HB/1 frame; ``flags`` excludes the version nibble."""

    flags: FrameFlags
    dst: int
    src: int
    seq: int
    cmd: int
    payload: bytes = b""

    def __post_init__(self) -> None:
        for name in ("dst", "src", "seq", "cmd"):
            value = getattr(self, name)
            if not 0 <= value <= 0xFF:
                raise ValueError(f"Frame.{name} out of range: {value!r}")
        if int(self.flags) & ~_FLAG_MASK:
            raise ValueError(f"Frame.flags has reserved bits set: {self.flags!r}")
        if len(self.payload) > MAX_PAYLOAD:
            raise ValueError(f"payload of {len(self.payload)} bytes exceeds {MAX_PAYLOAD}")

    @property
    def is_reply(self) -> bool:
        """RESP bit set."""
        return bool(self.flags & FrameFlags.RESP)

    @property
    def noack(self) -> bool:
        """NOACK bit set."""
        return bool(self.flags & FrameFlags.NOACK)

    @property
    def more(self) -> bool:
        """MORE bit set (POLL replies only)."""
        return bool(self.flags & FrameFlags.MORE)

    def __len__(self) -> int:
        return FRAME_OVERHEAD + len(self.payload)

    def to_bytes(self) -> bytes:
        """Serialise with SOF and CRC."""
        body = _HEADER.pack(
            SOF,
            (PROTOCOL_VERSION << 4) | int(self.flags),
            self.dst,
            self.src,
            self.seq,
            self.cmd,
            len(self.payload),
        )[2:] + bytes(self.payload)
        return SOF + body + crc16_modbus(body).to_bytes(2, "little")

    def hex(self) -> str:
        """Spaced hex of the wire bytes, for logs."""
        return self.to_bytes().hex(" ")


@dataclass(slots=True)
class DecoderStats:
    """Counters of what the decoder accepted and rejected since it was created."""

    frames: int = 0
    crc_errors: int = 0
    bad_length: int = 0
    bad_version: int = 0
    idle_drops: int = 0
    discarded_bytes: int = 0

    @property
    def bad_frames(self) -> int:
        """Candidates rejected for any reason."""
        return self.crc_errors + self.bad_length + self.bad_version + self.idle_drops

    def snapshot(self) -> DecoderStats:
        """A copy that later decoding does not change."""
        return dataclasses.replace(self)


class FrameDecoder:
    """Incremental HB/1 receiver implementing §5 exactly.

    ``idle_gap`` (seconds, normally ``timing.t_idle(baud)``) enables the idle rule for calls to
    ``feed`` that pass ``now``; ``idle()`` applies the rule explicitly.
    """

    __slots__ = ("_buf", "_last_rx", "idle_gap", "max_payload", "stats")

    def __init__(self, *, max_payload: int = MAX_PAYLOAD, idle_gap: float | None = None) -> None:
        if not 0 <= max_payload <= MAX_PAYLOAD:
            raise ValueError(f"max_payload must be 0..{MAX_PAYLOAD}")
        self.max_payload = max_payload
        self.idle_gap = idle_gap
        self.stats = DecoderStats()
        self._buf = bytearray()
        self._last_rx: float | None = None

    @property
    def max_buffer(self) -> int:
        """Upper bound on ``buffered`` between calls."""
        return FRAME_OVERHEAD + self.max_payload

    @property
    def buffered(self) -> int:
        """Bytes held as an incomplete candidate."""
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview, now: float | None = None) -> list[Frame]:
        """Add received bytes and return every frame completed by them.

        With ``now`` (a monotonic time in seconds) and ``idle_gap`` set, a silence of at least
        ``idle_gap`` since the previous call first abandons any incomplete candidate.
        """
        frames: list[Frame] = []
        if (
            now is not None
            and self.idle_gap is not None
            and self._last_rx is not None
            and now - self._last_rx >= self.idle_gap
            and self._buf
        ):
            frames.extend(self.idle())
        if now is not None:
            self._last_rx = now
        if data:
            self._buf += data
            frames.extend(self._scan(flush=False))
        return frames

    def idle(self) -> list[Frame]:
        """The line has been silent for T_IDLE: fail incomplete candidates until empty (§5.5)."""
        return self._scan(flush=True)

    def reset(self) -> None:
        """Forget buffered bytes (e.g. after reopening the port); counters are kept."""
        self.stats.discarded_bytes += len(self._buf)
        self._buf.clear()
        self._last_rx = None

    def _scan(self, *, flush: bool) -> list[Frame]:
        buf = self._buf
        stats = self.stats
        frames: list[Frame] = []
        pos = 0
        end = len(buf)
        while pos < end:
            sof = buf.find(SOF, pos)
            if sof < 0:
                # Rule 1: keep a trailing lone EB, it may be the first half of a SOF; after
                # T_IDLE of silence it cannot be, so it goes too.
                keep = 1 if buf[end - 1] == 0xEB and not flush else 0
                stats.discarded_bytes += end - pos - keep
                pos = end - keep
                break
            stats.discarded_bytes += sof - pos
            pos = sof
            if end - pos < HEADER_LEN:
                if flush:
                    stats.idle_drops += 1
                    stats.discarded_bytes += 1
                    pos += 1
                    continue
                break
            ver_flags = buf[pos + 2]
            length = buf[pos + 7] | (buf[pos + 8] << 8)
            if ver_flags >> 4 != PROTOCOL_VERSION:
                stats.bad_version += 1
                stats.discarded_bytes += 1
                pos += 1
                continue
            if length > self.max_payload:
                stats.bad_length += 1
                stats.discarded_bytes += 1
                pos += 1
                continue
            total = FRAME_OVERHEAD + length
            if end - pos < total:
                if flush:
                    stats.idle_drops += 1
                    stats.discarded_bytes += 1
                    pos += 1
                    continue
                break
            crc_pos = pos + HEADER_LEN + length
            received = buf[crc_pos] | (buf[crc_pos + 1] << 8)
            if crc16_modbus(memoryview(buf)[pos + 2 : crc_pos]) != received:
                stats.crc_errors += 1
                stats.discarded_bytes += 1
                pos += 1
                continue
            frames.append(
                Frame(
                    flags=FrameFlags(ver_flags & _FLAG_MASK),
                    dst=buf[pos + 3],
                    src=buf[pos + 4],
                    seq=buf[pos + 5],
                    cmd=buf[pos + 6],
                    payload=bytes(buf[pos + HEADER_LEN : crc_pos]),
                )
            )
            stats.frames += 1
            pos += total
        del buf[:pos]
        return frames
