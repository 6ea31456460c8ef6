"""Live fan-out: delivery latency of calls to 200 display websockets.

Starts a throwaway embedded PostgreSQL and one ``hall serve`` process on a loopback port,
subscribes ``--subscribers`` display websockets, then makes ``--calls`` calls one after another
(call_next, later no_show, round robin over the counters). For every call and every display it
records when the ``ticket.called`` event arrived, measured from the call's HTTP response (the
push may beat the response: negative values) and from sending the request (an upper bound).
Bounded by ``--calls`` and ``--seconds``. Prints readable lines, then one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import embedded_database, hall_toml, percentile, server_process
from hall.security import tokens
from hall.storage import access_repo
from hall.storage.db import connect_pool

COUNTERS = 8
HALL = "bench"


async def credentials(dsn: str) -> tuple[str, str]:
    """An admin bearer session and a display device token, written to the database."""
    now = datetime.now(UTC)
    pool = await connect_pool(dsn, min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            await access_repo.save_account(
                conn,
                "bench-admin",
                password_hash="scrypt$n=1024,r=8,p=1$unused$unused",  # nobody logs in with it
                name="压测",
                roles=["admin"],
                halls=[HALL],
            )
        admin = tokens.new_token(tokens.SESSION_PREFIX)
        await access_repo.create_session(
            pool,
            login_id=secrets.token_hex(8),
            job_no="bench-admin",
            kind="bearer",
            token_hash=tokens.token_hash(admin),
            csrf_token=None,
            now=now,
            expires_at=now + timedelta(hours=1),
            user_agent="bench/fanout",
            ip=None,
        )
        display = tokens.new_token(tokens.DEVICE_PREFIX)
        await access_repo.create_device_token(
            pool,
            kind="display",
            hall_id=HALL,
            device_id="bench-tv",
            name="压测综合屏",
            token_hash=tokens.token_hash(display),
            created_by="bench",
            now=now,
        )
    finally:
        await pool.close()
    return admin, display


class Display:
    """One display websocket: records when each call (by ticket number) arrived; answers pings."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.seq = 0
        self.snapshot = asyncio.Event()
        self.target: str | None = None
        self.reached = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def follow(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            now = time.perf_counter()
            if msg.type is not aiohttp.WSMsgType.TEXT:
                break
            data: dict[str, Any] = json.loads(msg.data)
            kind = data["type"]
            if kind == "event":
                self.seq = data["seq"]
                event = data["event"]
                if event["type"] == "ticket.called":
                    self.arrived[event["number"]] = now
                if self.target is not None and self.target in self.arrived:
                    self.reached.set()
            elif kind == "snapshot":
                self.seq = data["seq"]
                self.snapshot.set()
            elif kind == "ping":
                await ws.send_str(json.dumps({"type": "pong", "t": data["t"], "seq": self.seq}))


async def run(subscribers: int, calls: int, seconds: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    with embedded_database() as dsn:
        async with server_process(dsn, hall_toml(COUNTERS, HALL)) as url:
            admin, display = await credentials(dsn)
            api = aiohttp.ClientSession(headers={"Authorization": f"Bearer {admin}"})
            ws_session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0),
                headers={"Authorization": f"Bearer {display}"},
            )
            displays = [Display() for _ in range(subscribers)]
            sockets: list[aiohttp.ClientWebSocketResponse] = []
            try:
                base = f"{url}/api/v1/halls/{HALL}"
                for n in range(1, COUNTERS + 1):
                    async with api.post(f"{base}/counters/{n}/open", json={}) as resp:
                        assert resp.status == 200, await resp.text()
                for i in range(calls):
                    body = {"service": "bdc" if i % 2 else "tax"}
                    async with api.post(f"{base}/tickets", json=body) as resp:
                        assert resp.status == 201, await resp.text()
                live = f"{url.replace('http', 'ws', 1)}/api/v1/halls/{HALL}/live?channel=display"
                for d in displays:
                    ws = await ws_session.ws_connect(live, heartbeat=None)
                    sockets.append(ws)
                    d.task = asyncio.create_task(d.follow(ws))
                async with asyncio.timeout(30):
                    await asyncio.gather(*(d.snapshot.wait() for d in displays))
                print(f"{subscribers} displays subscribed; making {calls} calls")

                sent: dict[str, float] = {}
                answered: dict[str, float] = {}
                busy: set[int] = set()
                started = time.perf_counter()
                for i in range(calls):
                    if loop.time() > deadline:
                        break
                    n = i % COUNTERS + 1
                    if n in busy:
                        async with api.post(f"{base}/counters/{n}/no_show", json={}) as resp:
                            assert resp.status == 200, await resp.text()
                    t0 = time.perf_counter()
                    async with api.post(f"{base}/counters/{n}/call_next", json={}) as resp:
                        data = await resp.json()
                        t1 = time.perf_counter()
                        assert resp.status == 200, data
                    busy.add(n)
                    number = data["ticket"]["number"]
                    sent[number] = t0
                    answered[number] = t1
                    last = number
                elapsed = time.perf_counter() - started
                for d in displays:
                    d.target = last
                    if last in d.arrived:
                        d.reached.set()
                async with asyncio.timeout(max(1.0, deadline - loop.time())):
                    await asyncio.gather(*(d.reached.wait() for d in displays))
            finally:
                for ws in sockets:
                    await ws.close()
                for d in displays:
                    if d.task is not None:
                        d.task.cancel()
                await asyncio.gather(*(d.task for d in displays if d.task), return_exceptions=True)
                await ws_session.close()
                await api.close()

    from_response = [
        (d.arrived[s] - answered[s]) * 1000 for d in displays for s in sent if s in d.arrived
    ]
    from_request = [
        (d.arrived[s] - sent[s]) * 1000 for d in displays for s in sent if s in d.arrived
    ]
    missing = len(sent) * subscribers - len(from_response)
    figures: dict[str, Any] = {
        "subscribers": subscribers,
        "calls": len(sent),
        "deliveries": len(from_response),
        "missing": missing,
        "duration_s": round(elapsed, 2),
        "p50_ms": round(percentile(from_response, 50), 2),
        "p99_ms": round(percentile(from_response, 99), 2),
        "max_ms": round(max(from_response), 2),
        "from_request_p50_ms": round(percentile(from_request, 50), 2),
        "from_request_p99_ms": round(percentile(from_request, 99), 2),
        "from_request_max_ms": round(max(from_request), 2),
    }
    print(
        f"{len(sent)} calls in {elapsed:.1f} s, {len(from_response)} deliveries, {missing} missing"
    )
    print(
        f"from HTTP response to display: p50={figures['p50_ms']:.1f} ms "
        f"p99={figures['p99_ms']:.1f} ms max={figures['max_ms']:.1f} ms"
    )
    print(
        f"from sending the request:      p50={figures['from_request_p50_ms']:.1f} ms "
        f"p99={figures['from_request_p99_ms']:.1f} ms max={figures['from_request_max_ms']:.1f} ms"
    )
    target = "met" if figures["p99_ms"] < 50 else "MISSED"
    print(f"target p99 < 50 ms from the response: {target}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0, help="upper bound of the run")
    args = parser.parse_args()
    figures = asyncio.run(run(args.subscribers, min(args.calls, 1000), min(args.seconds, 60.0)))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
