"""Websocket floods: many messages fast, huge messages, binary frames, many bad sockets at once.

Each ends with the documented close code (docs/live.md, docs/hardware.md), never a 500 or a
traceback, and the server keeps serving: a fresh subscriber gets its snapshot and /healthz is 200.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from hall.web.live import LIVE
from tests.access_helpers import admin_headers, device_headers
from tests.hostile.conftest import Client, assert_no_tracebacks

LIVE_URL = "/api/v1/halls/test/live?channel=display"
CLOSING = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)


async def _close_code(ws: aiohttp.ClientWebSocketResponse) -> int | None:
    while (await ws.receive(timeout=15)).type not in CLOSING:
        pass
    return ws.close_code


async def _healthy(client: Client, headers: dict[str, str]) -> None:
    assert (await client.get("/healthz")).status == 200
    ws = await client.ws_connect(LIVE_URL, headers=headers)
    assert (await ws.receive_json(timeout=10))["type"] == "snapshot"
    await ws.close()


async def test_a_flood_of_valid_messages_keeps_the_socket_and_the_server(
    hostile_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    display = await device_headers(hostile_client, "display", device_id="s1")
    ws = await hostile_client.ws_connect(LIVE_URL, headers=display)
    await ws.receive_json()
    for i in range(3000):
        await ws.send_str(f'{{"type":"pong","t":{i},"seq":0}}')
    await ws.send_str('{"type":"resync"}')
    while (reply := await ws.receive_json(timeout=15))["type"] != "snapshot":
        pass  # pings
    assert reply["seq"] == 0
    await ws.close()
    await _healthy(hostile_client, display)
    assert_no_tracebacks(caplog)


@pytest.mark.parametrize(
    ("send", "code"),
    [
        ("huge-text", 1009),  # over the 4 KiB message limit: aiohttp's "message too big"
        ("binary", 4400),
        ("huge-binary", 1009),
        ("garbage", 4400),
    ],
)
async def test_bad_live_messages_close_with_the_documented_code(
    hostile_client: Client, send: str, code: int, caplog: pytest.LogCaptureFixture
) -> None:
    display = await device_headers(hostile_client, "display", device_id="s1")
    ws = await hostile_client.ws_connect(LIVE_URL, headers=display)
    await ws.receive_json()
    if send == "huge-text":
        await ws.send_str('{"type":"pong","pad":"' + "x" * 1_000_000 + '"}')
    elif send == "binary":
        await ws.send_bytes(bytes(range(256)))
    elif send == "huge-binary":
        await ws.send_bytes(b"\x00" * 1_000_000)
    else:
        await ws.send_str("\x00\ud7ff not json {{{")
    assert await _close_code(ws) == code
    await _healthy(hostile_client, display)
    assert hostile_client.app[LIVE].stats.connected == 0
    assert_no_tracebacks(caplog)


async def test_fifty_sockets_sending_garbage_at_once(
    hostile_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    display = await device_headers(hostile_client, "display", device_id="s1")

    async def one(i: int) -> int | None:
        ws = await hostile_client.ws_connect(LIVE_URL, headers=display)
        await ws.receive_json()
        for _ in range(20):
            await ws.send_str('{"type":"pong"}')
        await ws.send_str("[" * (i * 40))  # truncated, deeper and deeper
        return await _close_code(ws)

    codes = await asyncio.gather(*(one(i) for i in range(1, 51)))
    assert set(codes) == {4400}
    await _healthy(hostile_client, display)
    assert hostile_client.app[LIVE].stats.connected == 0
    assert_no_tracebacks(caplog)


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("not json", 4400),
        ('{"no": "type"}', 4400),
        ('{"type": "report", "report": 5}', 4400),
        ('{"type": "event", "event": {"bus": []}}', None),  # refused item, link kept
        ("[" * 3000 + "]" * 3000, 4400),
        (b"\x01\x02", 4400),
        ('{"type": "hello", "pad": "' + "x" * 70_000 + '"}', 1009),
    ],
)
async def test_bad_bridge_messages_close_the_link_with_the_documented_code(
    hostile_client: Client,
    message: str | bytes,
    code: int | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bridge = await device_headers(hostile_client, "bridge", device_id="b1")
    ws = await hostile_client.ws_connect("/api/v1/bridge", headers=bridge)
    if isinstance(message, bytes):
        await ws.send_bytes(message)
    else:
        await ws.send_str(message)
    if code is None:
        reply = await ws.receive_json(timeout=10)
        assert reply["type"] in ("ack", "nack"), reply
        await ws.close()
    else:
        assert await _close_code(ws) == code
    admin = await admin_headers(hostile_client)
    assert (await hostile_client.get("/api/v1/halls/test/snapshot", headers=admin)).status == 200
    assert_no_tracebacks(caplog)
