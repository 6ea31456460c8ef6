"""Slow clients against a real `hall serve`: headers or a body trickling in are dropped.

Raw sockets on loopback play slowloris; the server runs with ``--read-timeout 1``. Without a
read timeout aiohttp would keep such a connection for its 75 s keep-alive (headers) or forever
(a body), so each test bounds its wait far below that.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from hall.config.models import HallConfig
from tests.live.helpers import write_config_toml
from tests.servers import ServerProcess

pytestmark = pytest.mark.slow

READ_TIMEOUT_S = 1.0
GIVE_UP_S = 8.0  # far below aiohttp's 75 s keep-alive: a pass means our timeout acted


@pytest.fixture
async def server(
    database_url: str, pool: asyncpg.Pool, config: HallConfig, tmp_path: Path
) -> AsyncIterator[ServerProcess]:
    path = write_config_toml(config.model_dump(mode="json", exclude_none=True), tmp_path / "h.toml")
    process = ServerProcess(
        [
            "serve",
            "--database-url",
            database_url,
            "--config",
            str(path),
            "--read-timeout",
            str(READ_TIMEOUT_S),
        ],
        log_path=tmp_path / "server.log",
    )
    await process.start()
    try:
        yield process
    finally:
        await process.stop()
        log = process.log_tail()
        assert "Traceback" not in log, log


async def _trickle(server: ServerProcess, head: bytes, drip: bytes) -> tuple[bytes, float]:
    """Send ``head``, then ``drip`` a byte every 0.2 s until the server answers or closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    started = time.monotonic()
    writer.write(head)
    await writer.drain()
    answer = b""
    try:
        async with asyncio.timeout(GIVE_UP_S):
            for byte in drip * 1000:
                try:
                    answer = await asyncio.wait_for(reader.read(4096), 0.2)
                except TimeoutError:
                    writer.write(bytes([byte]))
                    await writer.drain()
                    continue
                break  # an answer, or b"" when the server closed
    except (ConnectionError, TimeoutError):
        pass
    finally:
        writer.close()
    return answer, time.monotonic() - started


async def test_a_slowloris_header_stream_is_dropped(server: ServerProcess) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    answer, took = await _trickle(server, head, b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n")
    assert answer == b"", answer[:200]
    assert took < GIVE_UP_S - 1, f"still open after {took:.1f} s"
    await _still_healthy(server)


async def test_a_body_that_never_finishes_gets_408_and_is_dropped(server: ServerProcess) -> None:
    head = (
        b"POST /api/v1/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 4000\r\n\r\n" + b'{"job_no": "c001", "password": "'
    )
    answer, took = await _trickle(server, head, b"x")
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"application/problem+json" in answer
    assert took < GIVE_UP_S - 1
    await _still_healthy(server)


async def _still_healthy(server: ServerProcess) -> None:
    async with aiohttp.ClientSession() as session, session.get(f"{server.url}/healthz") as r:
        assert r.status == 200
