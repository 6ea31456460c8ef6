"""Voice announcements: segments measured on the audio, one queue per hall, no overlap."""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import subprocess
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from display.announce import ALL_SEGMENTS, call_segments, durations, segment_dir, window_number
from display.speech import VOICE, VoiceHub
from hall.config.models import HallConfig
from hall.ports import FixedClock
from tests.access_helpers import admin_headers
from tests.factories import hall_config

Client = TestClient[web.Request, web.Application]
# Real time by default would take ~100 s for 20 calls; HALL_TEST_REAL_AUDIO=1 runs it so.
SPEED = 1.0 if os.environ.get("HALL_TEST_REAL_AUDIO") else 10.0
COUNTERS = 20


@pytest.fixture
def config() -> HallConfig:
    voice = {"repeat": 2, "pause_ms": 300, "quiet_hours": [{"open": "12:00", "close": "13:30"}]}
    return hall_config(counters=COUNTERS, extra_hall={"display": {"voice": voice}})


def test_window_numbers_read_as_chinese_numbers() -> None:
    assert window_number(5) == ["d5"]
    assert window_number(10) == ["shi"]
    assert window_number(12) == ["shi", "d2"]
    assert window_number(20) == ["d2", "shi"]
    assert window_number(105) == ["d1", "bai", "d0", "d5"]
    assert window_number(110) == ["d1", "bai", "d1", "shi"]
    assert call_segments("A023", 12) == [
        "chime", "qing", "LA", "d0", "d2", "d3", "hao", "dao", "shi", "d2", "hao", "chuangkou",
        "banli",
    ]  # fmt: skip


def test_every_segment_is_shipped_and_its_length_is_measured_on_the_audio() -> None:
    lengths = durations()
    assert set(lengths) == set(ALL_SEGMENTS)
    assert all(0.1 < s < 2.0 for s in lengths.values()), lengths
    soxi = shutil.which("soxi")
    if soxi is not None:  # a second, independent reading of the files
        for name in ("chime", "chuangkou", "LA"):
            out = subprocess.run(
                [soxi, "-D", str(segment_dir() / f"{name}.wav")],
                capture_output=True,
                text=True,
                check=True,
            )
            assert abs(float(out.stdout) - lengths[name]) < 0.01


async def _open_and_issue(client: Client, headers: dict[str, str]) -> None:
    for n in range(1, COUNTERS + 1):
        resp = await client.post(
            f"/api/v1/halls/test/counters/{n}/open", json={"clerk": "c001"}, headers=headers
        )
        assert resp.status == 200, await resp.text()
        resp = await client.post(
            "/api/v1/halls/test/tickets", json={"service": "BDC"}, headers=headers
        )
        assert resp.status in (200, 201), await resp.text()


async def test_a_burst_of_20_calls_is_said_in_order_one_after_another(make_client: Any) -> None:
    client: Client = await make_client()
    headers = await admin_headers(client)
    await _open_and_issue(client, headers)
    hub = client.app[VOICE]
    hub.speed = SPEED
    heard: list[tuple[float, int]] = []
    async with hub.listen("test", lambda a: heard.append((time.monotonic(), a.seq))):
        started = time.monotonic()
        calls = [
            client.post(f"/api/v1/halls/test/counters/{n}/call_next", json={}, headers=headers)
            for n in range(1, COUNTERS + 1)
        ]
        for resp in await asyncio.gather(*calls):
            assert resp.status == 200, await resp.text()
        assert time.monotonic() - started < 1.0  # 20 calls from 20 counters within a second

        await asyncio.wait_for(hub.wait_played("test", COUNTERS), timeout=300 / SPEED + 30)
    played = hub.played("test")
    # Every call announced once, in the order of the event log.
    seqs = [p.announcement.seq for p in played]
    assert seqs == sorted(seqs) and len(set(seqs)) == COUNTERS
    assert [s for _, s in heard] == seqs
    assert sorted(p.announcement.counter for p in played) == list(range(1, COUNTERS + 1))
    # None overlapping: each starts after the previous one ended.
    for before, after in itertools.pairwise(played):
        assert after.start >= before.end
    # Each took the playing time of its segments, measured on the audio (twice, with pauses).
    for p in played:
        want = p.announcement.seconds(hub.lengths) / SPEED
        assert p.announcement.repeat == 2
        assert want <= p.end - p.start < want + 0.25, (want, p.end - p.start)
    expected = sum(p.announcement.seconds(hub.lengths) for p in played) / SPEED
    took = played[-1].end - played[0].start
    print(f"20 announcements: {expected * SPEED:.1f} s of audio, drained in {took:.1f} s "
          f"at speed {SPEED:g}")  # fmt: skip
    assert expected <= took < expected + 2.0


async def test_recall_is_announced_again_and_quiet_hours_are_silent(
    make_client: Any, config: HallConfig, clock: FixedClock
) -> None:
    client: Client = await make_client()
    headers = await admin_headers(client)
    await _open_and_issue(client, headers)
    hub: VoiceHub = client.app[VOICE]
    hub.speed = 50.0
    heard: list[Any] = []
    async with hub.listen("test", heard.append):
        for action in ("call_next", "recall"):
            resp = await client.post(
                f"/api/v1/halls/test/counters/1/{action}", json={}, headers=headers
            )
            assert resp.status == 200, await resp.text()

        await asyncio.wait_for(hub.wait_played("test", 2), 10)
    assert [(a.number, a.counter, a.recall) for a in heard] == [
        ("A001", 1, False),
        ("A001", 1, True),
    ]

    # 12:30 in Shanghai is inside the quiet hours: the call is queued but nobody hears it.
    clock.set(datetime(2026, 11, 24, 4, 30, tzinfo=UTC))
    headers = await admin_headers(client)  # the morning's session has expired meanwhile
    resp = await client.post("/api/v1/halls/test/counters/2/call_next", json={}, headers=headers)
    assert resp.status == 200, await resp.text()
    await asyncio.wait_for(hub.wait_played("test", 3), 10)
    last = hub.played("test")[-1]
    assert (last.announcement.counter, last.silent) == (2, True)
    assert len(heard) == 2


async def test_the_speaker_process_gets_each_call_and_renders_it_at_its_measured_length(
    make_client: Any,
) -> None:
    import io
    import wave

    import aiohttp

    from display.speaker import events, render
    from tests.access_helpers import device_headers

    client: Client = await make_client()
    headers = await admin_headers(client)
    await _open_and_issue(client, headers)
    display = await device_headers(client, "display", device_id="tv")
    url = str(client.make_url("")).rstrip("/")
    async with aiohttp.ClientSession(headers=display) as session:
        ready = asyncio.Event()
        stream = events(session, url, "test", ready)
        first = asyncio.ensure_future(anext(stream))
        await asyncio.wait_for(ready.wait(), 10)  # the server has registered the stream
        resp = await client.post(
            "/api/v1/halls/test/counters/3/call_next", json={}, headers=headers
        )
        assert resp.status == 200
        item = await asyncio.wait_for(first, 10)
        await stream.aclose()
    assert (item["number"], item["counter"], item["recall"]) == ("A001", 3, False)
    wav = render(item)
    with wave.open(io.BytesIO(wav)) as w:
        seconds = w.getnframes() / w.getframerate()
    assert abs(seconds - item["seconds"]) < 0.01
