"""Call announcements (语音叫号) assembled from pre-recorded segments (domain.md §7.2).

"请A023号到12号窗口办理": the letter by its English name, the ticket's digits one by one
("A零二三号"), the window as a number ("十二号窗口"). Pure: no I/O except reading WAV headers.
"""

from __future__ import annotations

import functools
import wave
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

DIGITS = "零一二三四五六七八九"

_PINYIN = ("ling2", "yi1", "er4", "san1", "si4", "wu3", "liu4", "qi1", "ba1", "jiu3")
# Segment name -> (what it says, the pinyin espeak-ng reads for it). espeak-ng's Mandarin
# dictionary lacks many characters, so scripts/make_voice_segments.py speaks the pinyin;
# letters are read by their English names ("A" = "ei").
SEGMENT_TEXT: dict[str, tuple[str, str]] = {
    **{f"d{i}": (ch, _PINYIN[i]) for i, ch in enumerate(DIGITS)},
    "shi": ("十", "shi2"),
    "bai": ("百", "bai3"),
    **{f"L{ch}": (ch, ch) for ch in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"},
    "qing": ("请", "qing3"),
    "hao": ("号", "hao4"),
    "dao": ("到", "dao4"),
    "chuangkou": ("窗口", "chuang1 kou3"),
    "banli": ("办理", "ban4 li3"),
}
CHIME = "chime"  # a two-tone chime before each call (made with sox, not spoken)
ALL_SEGMENTS = (CHIME, *SEGMENT_TEXT)


def segment_dir() -> Path:
    return Path(str(resources.files("display") / "voice"))


def window_number(n: int) -> list[str]:
    """Segments of 1..999 read as a Chinese number: 12 十二, 20 二十, 105 一百零五."""
    if not 1 <= n <= 999:
        raise ValueError(f"window number {n} out of range")
    hundreds, tens, ones = n // 100, n // 10 % 10, n % 10
    out: list[str] = []
    if hundreds:
        out += [f"d{hundreds}", "bai"]
    if tens:
        if tens > 1 or hundreds:
            out.append(f"d{tens}")
        out.append("shi")
    elif hundreds and ones:
        out.append("d0")
    if ones:
        out.append(f"d{ones}")
    return out


def ticket_number(number: str) -> list[str]:
    """Letters by name, digits one by one; anything else is skipped."""
    out: list[str] = []
    for ch in number.upper():
        if "A" <= ch <= "Z":
            out.append(f"L{ch}")
        elif ch.isascii() and ch.isdigit():
            out.append(f"d{ch}")
    return out


def call_segments(number: str, counter: int) -> list[str]:
    """One saying of a call, chime first."""
    return [
        CHIME,
        "qing",
        *ticket_number(number),
        "hao",
        "dao",
        *window_number(counter),
        "hao",
        "chuangkou",
        "banli",
    ]


def wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate()


@functools.cache
def durations(folder: str | None = None) -> Mapping[str, float]:
    """Seconds of every segment file, measured on the audio."""
    root = Path(folder) if folder else segment_dir()
    return {name: wav_seconds(root / f"{name}.wav") for name in ALL_SEGMENTS}


@dataclass(frozen=True, slots=True)
class Announcement:
    """What one call sounds like: its segments, said ``repeat`` times with pauses."""

    seq: int
    number: str
    counter: int
    recall: bool
    segments: tuple[str, ...]
    repeat: int
    pause_s: float
    volume: float
    """0..1"""

    def seconds(self, lengths: Mapping[str, float]) -> float:
        """Playing time including the pauses between sayings and after the last one."""
        once = sum(lengths[s] for s in self.segments)
        return self.repeat * once + self.repeat * self.pause_s

    def text(self) -> str:
        return f"请{self.number}号到{self.counter}号窗口办理"
