"""``python -m display.speaker``: say a hall's calls on a hall PC's loudspeakers.

Follows ``GET /api/v1/halls/{hall}/announcements`` (server-sent events; the server's queue
paces them, one at a time) with a display device token, joins each announcement's segments
(``display/voice/*.wav``, read locally: the same files the server measured) into one WAV with
the configured repeats, pauses and volume, and plays it with ``--player`` (default ``aplay -q``;
``paplay`` or ``ffplay -nodisp -autoexit`` work too). Reconnects after a lost link.

    python -m display.speaker --url http://10.1.2.3:8080 --hall xx-county --token hall_dev_…
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import io
import json
import logging
import os
import shlex
import sys
import wave
from collections.abc import AsyncGenerator, Mapping
from pathlib import Path
from typing import Any

import aiohttp

from display.announce import segment_dir

log = logging.getLogger("hall.speaker")
RATE = 16000  # the segments' format: 16 kHz mono 16-bit


def _frames(path: Path) -> bytes:
    with wave.open(str(path), "rb") as w:
        if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (RATE, 1, 2):
            raise ValueError(f"{path.name}: segments must be 16 kHz mono 16-bit WAV")
        return w.readframes(w.getnframes())


def render(announcement: Mapping[str, Any], folder: Path | None = None) -> bytes:
    """One WAV file: the segments, ``repeat`` times, each followed by ``pause_s`` of silence,
    at ``volume`` (0..1)."""
    root = folder or segment_dir()
    once = b"".join(_frames(root / f"{name}.wav") for name in announcement["segments"])
    pause = b"\x00\x00" * int(RATE * float(announcement["pause_s"]))
    pcm = (once + pause) * int(announcement["repeat"])
    volume = float(announcement["volume"])
    if volume < 1.0:
        samples = array.array("h", pcm)
        for i, v in enumerate(samples):
            samples[i] = int(v * volume)
        pcm = samples.tobytes()
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm)
    return out.getvalue()


async def events(
    session: aiohttp.ClientSession, url: str, hall: str, ready: asyncio.Event | None = None
) -> AsyncGenerator[dict[str, Any], None]:
    """The announcements of one connection, as they come; ``ready`` is set once the server
    has registered the stream (its first comment line)."""
    headers = {"Accept": "text/event-stream"}
    async with session.get(f"{url}/api/v1/halls/{hall}/announcements", headers=headers) as resp:
        resp.raise_for_status()
        kind, data = "", []
        async for raw in resp.content:
            line = raw.decode().rstrip("\r\n")
            if line.startswith(":") and ready is not None:
                ready.set()
            elif line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
            elif not line:
                if kind == "announce" and data:
                    yield json.loads("\n".join(data))
                kind, data = "", []


async def play(player: list[str], wav: bytes) -> None:
    proc = await asyncio.create_subprocess_exec(*player, "-", stdin=asyncio.subprocess.PIPE)
    await proc.communicate(wav)


async def run(url: str, hall: str, token: str, player: list[str]) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    delay = 1.0
    async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout()) as s:
        while True:
            try:
                async for item in events(s, url, hall):
                    delay = 1.0
                    log.info("say %s", item.get("text"))
                    await play(player, render(item))
            except (aiohttp.ClientError, OSError) as exc:
                log.warning("announcement stream lost (%s); retrying in %.0f s", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="大厅语音叫号：在大厅电脑上播报叫号")
    parser.add_argument("--url", required=True, help="server, e.g. http://10.1.2.3:8080")
    parser.add_argument("--hall", required=True)
    parser.add_argument("--token", default=os.environ.get("HALL_DEVICE_TOKEN"),
                        help="display device token (or HALL_DEVICE_TOKEN)")  # fmt: skip
    parser.add_argument("--player", default="aplay -q", help="command that plays WAV from stdin")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("--token or HALL_DEVICE_TOKEN is required")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(args.url.rstrip("/"), args.hall, args.token, shlex.split(args.player)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
