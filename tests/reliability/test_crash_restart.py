"""kill -9 of the hall server and of PostgreSQL mid-burst; two processes on one data dir.

Each crash test prints one ``FIGURES {...}`` line (run with ``-s``): acknowledged tickets,
lost, duplicates, outage seconds; docs/reliability.md quotes them.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from hall.storage.db import LISTEN_APPLICATION_NAME
from hall.storage.embedded import EmbeddedPostgres
from tests.reliability.durable import (
    HALL,
    TICKET,
    Burst,
    admin_headers,
    database_tickets,
    demo_server,
    durable_data_dir,
)
from tests.servers import ServerProcess

pytestmark = pytest.mark.slow


def check_numbering(burst: Burst, rows: Sequence[asyncpg.Record]) -> dict[str, int]:
    """Nothing acknowledged lost, no duplicates, numbers 1..n without gaps; the figures."""
    stored = {r["idempotency_key"]: (r["display_number"], r["token"]) for r in rows}
    lost = [key for key, ticket in burst.acknowledged.items() if stored.get(key) != ticket]
    numbers = [number for number, _ in burst.acknowledged.values()]
    duplicates = len(numbers) - len(set(numbers))
    assert lost == []
    assert duplicates == 0
    assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1))  # no gap, no repeat
    # Every tap was retried until acknowledged: the database holds exactly those tickets.
    assert sorted(stored) == sorted(burst.acknowledged)
    return {"acknowledged": len(burst.acknowledged), "lost": len(lost), "duplicates": duplicates}


def thresholds_reached(total: int, kills: int) -> tuple[list[asyncio.Event], Any]:
    """Events set when the burst has acknowledged 1/(kills+1), 2/(kills+1)… of ``total``."""
    thresholds = [total * (i + 1) // (kills + 1) for i in range(kills)]
    events = [asyncio.Event() for _ in thresholds]

    def on_count(n: int) -> None:
        for threshold, event in zip(thresholds, events, strict=True):
            if n >= threshold:
                event.set()

    return events, on_count


def figures(name: str, **values: object) -> None:
    print("FIGURES " + json.dumps({"test": name, **values}, ensure_ascii=False), flush=True)


def log_text(server: ServerProcess) -> str:
    assert server.log_path is not None
    return server.log_path.read_text(errors="replace")


def unexpected_tracebacks(log: str) -> list[str]:
    """Log records that carry a traceback: an outage is expected, and every part of the
    server reports it in one line (e.g. hall.web.access's "audit row lost" per request)."""
    found: list[str] = []
    record = ""
    for line in log.splitlines():
        if re.match(r"\d{4}-\d\d-\d\d \d\d:", line):
            record = line  # a log record starts; tracebacks below belong to it
        elif line.startswith("Traceback"):
            found.append(record)
    return found


async def hall_db(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``hall db ARGS --data-dir DATA_DIR`` as an operator runs it."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PYTEST_CURRENT_TEST")}
    command = [sys.executable, "-m", "hall.cli", "db", *args, "--data-dir", str(data_dir)]
    return await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, timeout=120
    )


async def issue(url: str, headers: dict[str, str]) -> aiohttp.ClientResponse:
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.post(f"{url}/api/v1/halls/{HALL}/tickets", json=TICKET) as resp,
    ):
        await resp.read()
        return resp


async def test_kill_9_postgres_mid_burst(tmp_path: Path, long_run: bool) -> None:
    """Two servers on one data dir; PostgreSQL killed mid-burst (three times when long).

    One of the two restarts it (the other finds it running); every request meanwhile gets a
    503 problem+json with Retry-After, never a 500; every acknowledged ticket is kept.
    """
    kiosks, per_kiosk, kills = (20, 300, 3) if long_run else (8, 40, 1)
    async with durable_data_dir() as data_dir:
        embedded = EmbeddedPostgres(data_dir)
        a = demo_server(data_dir, tmp_path / "a.log")
        b = demo_server(data_dir, tmp_path / "b.log")
        await a.start()
        await b.start()
        try:
            headers = await admin_headers(a.url)
            reached, on_count = thresholds_reached(kiosks * per_kiosk, kills)
            burst = Burst([a.url, b.url], headers, kiosks, per_kiosk, on_count)
            running = asyncio.create_task(burst.run())
            outages: list[float] = []
            for event in reached:
                await asyncio.wait_for(event.wait(), 120)
                pid = embedded.server_pid()
                assert pid is not None
                os.kill(pid, signal.SIGKILL)  # tickets are being issued right now
                burst.mark()
                outages.append(await burst.outage_s())
            await asyncio.wait_for(running, 600)

            assert burst.other == []  # no 500, no other error
            assert burst.bad_503 == []  # every outage answer: problem+json, Retry-After, 中文
            assert burst.answers["503"] > 0  # the outage was seen
            counts = check_numbering(burst, await database_tickets(data_dir))
            # Both processes LISTEN again, by themselves (the live feed and session cache).
            await asyncio.wait_for(_listening(embedded, 2), 30)
            # Events committed around the crash are numbered for the live feed, gap-free.
            event_seqs = await asyncio.wait_for(_sequenced_events(embedded), 30)
            assert event_seqs == list(range(1, len(event_seqs) + 1))
            assert len(event_seqs) >= counts["acknowledged"]  # one ticket.issued each
            logs = log_text(a) + log_text(b)
            assert logs.count("restarted here") == kills  # one restart per crash, not two
            assert "Error handling request" not in logs  # aiohttp's log of a 500
            assert unexpected_tracebacks(logs) == []
            figures(
                "kill -9 postgres mid-burst",
                servers=2,
                kiosks=kiosks,
                kills=kills,
                **counts,
                answered_503=burst.answers["503"],
                answered_500=burst.answers["500"],
                outage_s=outages,
            )
        finally:
            await a.stop()
            await b.stop()
        assert embedded.server_pid() is None  # the last process out stopped it


async def _listening(embedded: EmbeddedPostgres, processes: int) -> None:
    """Wait until ``processes`` LISTEN connections (one per server process) are open."""
    conn = await asyncpg.connect(embedded.dsn())
    try:
        query = "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1"
        while True:
            if await conn.fetchval(query, LISTEN_APPLICATION_NAME) == processes:
                return
            # Another process reconnects: there is no event to wait on across processes.
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


async def _sequenced_events(embedded: EmbeddedPostgres) -> list[int]:
    """The hall's event seqs, once the sequencers have numbered every committed event."""
    conn = await asyncpg.connect(embedded.dsn())
    try:
        while True:
            rows = await conn.fetch("SELECT seq FROM events WHERE hall_id = $1 ORDER BY id", HALL)
            if all(r["seq"] is not None for r in rows):
                return sorted(r["seq"] for r in rows)
            # The server processes' sequencers catch up: no event to wait on from here.
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


async def test_kill_9_server_mid_burst(tmp_path: Path, long_run: bool) -> None:
    """The hall server killed mid-burst and restarted on its port: nothing acknowledged lost,
    numbering continues; the restarted process reuses the running database and, as the last
    one out, stops it."""
    kiosks, per_kiosk, kills = (20, 300, 3) if long_run else (8, 40, 1)
    async with durable_data_dir() as data_dir:
        embedded = EmbeddedPostgres(data_dir)
        server = demo_server(data_dir, tmp_path / "0.log")
        await server.start()
        port = server.port
        try:
            headers = await admin_headers(server.url)
            reached, on_count = thresholds_reached(kiosks * per_kiosk, kills)
            burst = Burst([server.url], headers, kiosks, per_kiosk, on_count)
            running = asyncio.create_task(burst.run())
            outages: list[float] = []
            for i, event in enumerate(reached, 1):
                await asyncio.wait_for(event.wait(), 120)
                postgres = embedded.server_pid()
                server.kill9()  # requests are in flight right now
                burst.mark()
                assert embedded.server_pid() == postgres  # the database outlives its starter
                server = demo_server(data_dir, tmp_path / f"{i}.log", port=port)
                await server.start()
                assert "already running" in log_text(server)
                outages.append(await burst.outage_s())
            await asyncio.wait_for(running, 600)

            assert burst.other == []
            counts = check_numbering(burst, await database_tickets(data_dir))
            event_seqs = await asyncio.wait_for(_sequenced_events(embedded), 30)
            assert event_seqs == list(range(1, len(event_seqs) + 1))
            figures(
                "kill -9 hall server mid-burst",
                kiosks=kiosks,
                kills=kills,
                **counts,
                outage_s=outages,
            )
        finally:
            await server.stop()
        # Issue 10 item 5: a process restarted after kill -9 used to leave the database
        # running for ever; now the last process out stops it.
        assert embedded.server_pid() is None
        assert embedded.users() == []


async def test_two_processes_one_stopped_other_keeps_working(tmp_path: Path) -> None:
    async with durable_data_dir() as data_dir:
        embedded = EmbeddedPostgres(data_dir)
        a = demo_server(data_dir, tmp_path / "a.log")
        b = demo_server(data_dir, tmp_path / "b.log")
        await a.start()
        await b.start()
        try:
            headers = await admin_headers(b.url)
            postgres = embedded.server_pid()
            await a.stop()  # the process that started the database
            assert embedded.server_pid() == postgres
            assert (await issue(b.url, headers)).status == 201

            status = await hall_db(data_dir, "status", "--json")
            assert status.returncode == 0, status.stderr
            report = json.loads(status.stdout.splitlines()[-1])
            assert report["running"] is True
            assert report["pid"] == postgres
            assert report["data_dir"] == str(embedded.root)
            assert report["pgdata"] == str(embedded.pgdata)
            assert report["socket_dir"] == str(embedded.socket_dir)
            assert b.proc is not None
            assert [p["pid"] for p in report["processes"]] == [b.proc.pid]

            refused = await hall_db(data_dir, "stop")
            assert refused.returncode == 1
            assert str(b.proc.pid) in refused.stdout
            assert embedded.server_pid() == postgres
            assert (await issue(b.url, headers)).status == 201
        finally:
            await a.stop()
            await b.stop()
        assert embedded.server_pid() is None  # b was the last one out
        stopped = await hall_db(data_dir, "status")
        assert stopped.returncode == 3
        assert "未运行" in stopped.stdout


async def test_forced_stop_answers_503_until_db_start(tmp_path: Path) -> None:
    """``hall db stop --force`` under a running server: 503s, no restart behind the
    operator's back; ``hall db start`` brings it back and keeps it after the server leaves."""
    async with durable_data_dir() as data_dir:
        embedded = EmbeddedPostgres(data_dir)
        server = demo_server(data_dir, tmp_path / "s.log")
        await server.start()
        try:
            headers = await admin_headers(server.url)
            forced = await hall_db(data_dir, "stop", "--force")
            assert forced.returncode == 0, forced.stdout + forced.stderr
            assert embedded.server_pid() is None
            answer = await issue(server.url, headers)
            assert answer.status == 503
            assert answer.content_type == "application/problem+json"
            assert answer.headers["Retry-After"].isdigit()
            assert embedded.operator_mode() == "stopped"

            started = await hall_db(data_dir, "start")
            assert started.returncode == 0, started.stdout + started.stderr
            while (answer := await issue(server.url, headers)).status != 201:
                assert answer.status == 503
                await asyncio.sleep(0.05)  # a client retrying after Retry-After, sped up
        finally:
            await server.stop()
        assert embedded.server_pid() is not None  # kept: started by hall db start
        stop = await hall_db(data_dir, "stop")
        assert stop.returncode == 0, stop.stdout
        assert embedded.server_pid() is None
