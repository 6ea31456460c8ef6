"""Make the voice segments of display/voice/ with espeak-ng's Mandarin voice and sox.

    apt-get install espeak-ng sox
    python scripts/make_voice_segments.py            # writes display/voice/*.wav

Each segment is synthesised alone, trimmed of leading and trailing silence and stored as
16 kHz mono 16-bit WAV. A hall may replace any file by a human recording of the same name.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from display.announce import CHIME, SEGMENT_TEXT, wav_seconds  # noqa: E402

OUT = ROOT / "display" / "voice"
FORMAT = ["-r", "16000", "-c", "1", "-b", "16"]
TRIM = ["silence", "1", "0.01", "0.5%", "reverse", "silence", "1", "0.01", "0.5%", "reverse"]


def speak(text: str, out: Path) -> None:
    # Letters by their English names with the Mandarin voice; everything else as pinyin.
    voice = "cmn" if text.isalpha() and text.isascii() and len(text) == 1 else "cmn-latn-pinyin"
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(raw), text], check=True)
        subprocess.run(["sox", str(raw), *FORMAT, str(out), *TRIM], check=True)


def chime(out: Path) -> None:
    """Two soft tones (ding-dong), 0.7 s."""
    with tempfile.TemporaryDirectory() as tmp:
        ding, dong = Path(tmp) / "ding.wav", Path(tmp) / "dong.wav"
        for path, freq in ((ding, "880"), (dong, "660")):
            subprocess.run(
                [
                    "sox",
                    "-n",
                    *FORMAT,
                    str(path),
                    "synth",
                    "0.35",
                    "sine",
                    freq,
                    "fade",
                    "0.01",
                    "0.35",
                    "0.25",
                    "vol",
                    "0.4",
                ],
                check=True,
            )
        subprocess.run(["sox", str(ding), str(dong), str(out)], check=True)


def main() -> None:
    OUT.mkdir(exist_ok=True)
    chime(OUT / f"{CHIME}.wav")
    for name, (_, pinyin) in SEGMENT_TEXT.items():
        speak(pinyin, OUT / f"{name}.wav")
    for wav in sorted(OUT.glob("*.wav")):
        print(f"{wav.name:16} {wav_seconds(wav):.3f} s")


if __name__ == "__main__":
    main()
