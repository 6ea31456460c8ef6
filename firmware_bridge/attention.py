"""The optional attention poll (docs/protocol.md §17): slot marks and slot timing, sans-I/O.

After an ATTN request every listed device that has the extension (INFO caps bit 8) sends one
mark byte in its own slot: ``0x80 | 0x40 * attention | slot``. The value carries the slot it
belongs to, so a host on a link that does not keep byte timing (a pty, a TCP serial server)
still knows which device answered; a value that is not a mark, or not the mark of a listed
slot, counts as no answer. Marks never contain 0xEB (bit 5 is always 0), so no run of marks
can look like a frame's SOF to a plain device's decoder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from firmware_bridge import timing
from firmware_bridge.codec import FRAME_OVERHEAD, MAX_PAYLOAD

MAX_SLOTS = 32
MARK_BASE = 0x80
MARK_ATTENTION = 0x40
_SLOT_MASK = 0x1F
_FIXED_MASK = 0xA0  # bit 7 set, bit 5 clear in every mark

# A device starts its mark at most this late into its slot (or half a character, if longer).
MARK_JITTER_S = 0.00025

# ATTN payload: slot_chars u8, base u8, then the bitmap (1–4 bytes).
ATTN_FIXED_PAYLOAD = 2


def mark(slot: int, attention: bool) -> int:
    """The mark byte a device sends in ``slot``."""
    if not 0 <= slot < MAX_SLOTS:
        raise ValueError(f"slot {slot} outside 0..{MAX_SLOTS - 1}")
    return MARK_BASE | (MARK_ATTENTION if attention else 0) | slot


def read_mark(value: int) -> tuple[int, bool] | None:
    """(slot, attention) of a mark byte, or None for a byte that is no mark."""
    if value & _FIXED_MASK != MARK_BASE:
        return None
    return value & _SLOT_MASK, bool(value & MARK_ATTENTION)


@dataclass(frozen=True, slots=True)
class RoundResult:
    """What one attention round found, per slot: True attention, False idle, None no mark."""

    marks: tuple[bool | None, ...]
    noise: int  # bytes that were no valid mark of this round

    @property
    def complete(self) -> bool:
        return all(m is not None for m in self.marks)


def without_frames(data: bytes) -> bytes:
    """``data`` without the frames in it (an adapter's echo of the ATTN request, a late reply).

    Marks never contain 0xEB, so every ``EB 90`` starts a frame: it and the 11 + LEN bytes of
    its frame (as far as they are there) are no marks, whether the frame is whole or not.
    """
    out = bytearray()
    i = 0
    while i < len(data):
        if data[i] == 0xEB and data[i + 1 : i + 2] in (b"\x90", b""):
            size = FRAME_OVERHEAD
            if i + 9 <= len(data):
                size += min(int.from_bytes(data[i + 7 : i + 9], "little"), MAX_PAYLOAD)
            i += size
            continue
        out.append(data[i])
        i += 1
    return bytes(out)


def read_marks(data: bytes, slots: int) -> RoundResult:
    """Sort the bytes received during a round into its ``slots``; the first mark per slot counts.

    A second, different byte for one slot (two devices at one address, noise) makes the slot
    unreadable: it is reported as attention, so the host polls that address and the usual
    checks (CRC errors, UID alarms) find out what is there.
    """
    marks: list[bool | None] = [None] * slots
    seen: list[int | None] = [None] * slots
    noise = 0
    for value in data:
        parsed = read_mark(value)
        if parsed is None or parsed[0] >= slots:
            noise += 1
            continue
        slot, attention = parsed
        if seen[slot] is None:
            seen[slot] = value
            marks[slot] = attention
        elif seen[slot] != value:
            marks[slot] = True
            noise += 1
    return RoundResult(tuple(marks), noise)


def slot_chars(baud: int) -> int:
    """Slot length the host asks for at ``baud``: the mark, its latest start, a guard as long.

    2 characters up to 19200 baud, 3 at 38400, 7 at 115200.
    """
    late = max(0.5 * timing.t_char(baud), MARK_JITTER_S)
    return max(2, 1 + math.ceil(2 * late / timing.t_char(baud) - 1e-9))


def first_slot_s(baud: int) -> float:
    """Slot 0 starts this long after the ATTN request's last byte (the §7.1 least reply start)."""
    return timing.turnaround(baud)


def round_s(baud: int, slots: int, chars: int | None = None) -> float:
    """From the end of the ATTN request to the end of its last slot."""
    chars = slot_chars(baud) if chars is None else chars
    return first_slot_s(baud) + slots * chars * timing.t_char(baud)


def request_payload(span: int) -> int:
    """ATTN payload length for listed addresses spanning ``span`` addresses."""
    return ATTN_FIXED_PAYLOAD + (span + 7) // 8


def round_line_s(baud: int, slots: int, span: int | None = None) -> float:
    """Line time of one whole round: request, slots, and the host's gap before its next frame."""
    span = slots if span is None else span
    request = (FRAME_OVERHEAD + request_payload(span)) * timing.t_char(baud)
    return request + round_s(baud, slots) + timing.turnaround(baud)
