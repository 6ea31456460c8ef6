"""Live websocket hub: snapshot + deltas equal the server state, gaps, slow clients, LISTEN."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import statistics
import time
from typing import Any

import asyncpg
import pytest

from hall.domain.tickets import CounterState
from hall.web.live import CLOSE_GOING_AWAY, CLOSE_HEARTBEAT
from tests.live.conftest import (
    DISPLAY_TOKENS,
    Client,
    act,
    hub_of,
    issue,
    server_snapshot,
    subscribe,
)


async def open_counters(client: Client, *numbers: int) -> None:
    for n in numbers:
        status, body = await act(client, n, "open", clerk="c001")
        assert status == 200, body


async def test_deltas_fold_to_the_server_state_for_every_action(live_client: Client) -> None:
    sub = await subscribe(live_client)
    assert sub.snapshot_seqs == [0]
    await open_counters(live_client, 1, 2, 90)
    for service in ("BDC", "BDC", "TAX", "SOC", "MED", "BDC"):
        await issue(live_client, service)
    steps: list[tuple[int, str, dict[str, Any]]] = [
        (1, "call_next", {}),
        (1, "recall", {}),
        (1, "start", {}),
        (1, "transfer", {"to_service": "TAX"}),
        (2, "call_next", {}),
        (2, "park", {"reason": "补材料"}),
        (2, "call_back", {"number": "A002"}),
        (90, "call_next", {}),
        (90, "no_show", {}),
        (1, "pause", {"reason": "会议"}),
        (90, "call_next", {}),
        (90, "start", {}),
        (90, "finish", {}),
        (1, "resume", {}),
        (2, "call_next", {}),
        (2, "cancel", {"reason": "重复取号"}),
        (2, "close", {}),
    ]
    for counter, action, body in steps:
        status, data = await act(live_client, counter, action, **body)
        assert status == 200, (action, data)
    final = await server_snapshot(live_client)
    await sub.wait_seq(final["seq"])
    assert sub.state == final
    assert sub.event_seqs() == list(range(1, final["seq"] + 1))
    assert sub.resyncs_sent == 0
    types = {e["event"]["type"] for e in sub.events}
    assert {
        "ticket.recalled",
        "ticket.transferred",
        "ticket.parked",
        "ticket.called_back",
        "ticket.no_show",
        "ticket.cancelled",
        "counter.paused",
        "counter.closed",
    } <= types
    # Screens get no actors, ticket ids or free-text reasons.
    assert all("actor" not in e["event"] and "details" not in e["event"] for e in sub.events)
    await sub.close()


async def test_dashboard_channel_carries_full_events(live_client: Client) -> None:
    dash = await subscribe(live_client, "dashboard", as_staff=True)
    await open_counters(live_client, 1)
    await dash.wait_seq(1)
    assert dash.events[0]["event"]["actor"] == "live-admin"
    assert dash.events[0]["event"]["details"] == {
        "clerk": "c001",
        "from_state": "closed",
        "duration_s": 0.0,
    }
    await dash.close()
    # Display devices do not get clerks' names and reasons.
    url = "/api/v1/halls/test/live?channel=dashboard"
    resp = await live_client.get(url, headers=DISPLAY_TOKENS[id(live_client)])
    assert resp.status == 403


async def test_display_reconnecting_during_a_burst_of_50_calls_ends_with_server_state(
    live_client: Client,
) -> None:
    await open_counters(live_client, 1, 2, 3, 4)
    for i in range(50):
        await issue(live_client, "BDC" if i % 2 else "TAX")
    steady = await subscribe(live_client, name="steady")
    flaky = await subscribe(live_client, name="flaky")
    start_seq = steady.seq
    assert start_seq is not None
    calls = 0

    async def counter_loop(n: int) -> None:
        nonlocal calls
        while calls < 50:
            status, body = await act(live_client, n, "call_next")
            if status == 409 and body.get("code") == "queue_empty":
                return
            assert status == 200, body
            calls += 1
            status, body = await act(live_client, n, "no_show" if calls % 3 else "start")
            assert status == 200, body
            if body["state"] == "serving":
                status, body = await act(live_client, n, "finish")
                assert status == 200, body

    burst = asyncio.gather(*(counter_loop(n) for n in (1, 2, 3, 4)))
    await flaky.wait_for(lambda s: len(s.numbers_called()) >= 10)
    await flaky.close()
    seen_before_drop = len(flaky.events)
    await steady.wait_for(lambda s: len(s.numbers_called()) >= 30)
    await flaky.connect()  # reconnect mid-burst: a fresh snapshot, then deltas
    await burst
    final = await server_snapshot(live_client)
    assert calls == 50
    await steady.wait_seq(final["seq"])
    await flaky.wait_seq(final["seq"])
    assert flaky.state == final
    assert steady.state == final
    assert len(flaky.snapshot_seqs) == 2 and flaky.snapshot_seqs[1] > flaky.snapshot_seqs[0]
    assert 0 < seen_before_drop < len(flaky.events)
    # The steady display saw every event once, in order.
    assert steady.event_seqs() == list(range(start_seq + 1, final["seq"] + 1))
    assert len(steady.numbers_called()) == 50 == len(set(steady.numbers_called()))
    # After reconnecting, the flaky one saw exactly the events after its new snapshot.
    after = [s for s in flaky.event_seqs() if s > flaky.snapshot_seqs[1]]
    assert after == list(range(flaky.snapshot_seqs[1] + 1, final["seq"] + 1))
    await steady.close()
    await flaky.close()


@pytest.mark.parametrize("lost", ["middle", "last"])
async def test_a_seq_gap_triggers_a_resync(live_client: Client, lost: str) -> None:
    """A lost event shows as prev_seq != last seq on the next event, or on the next ping."""
    sub = await subscribe(live_client)
    await open_counters(live_client, 1)
    await sub.wait_seq(1)
    n_events = 5
    sub.lose_events = {2 + (n_events // 2 if lost == "middle" else n_events - 1)}
    for _ in range(n_events):
        await issue(live_client)
    final = await server_snapshot(live_client)
    assert final["seq"] == 1 + n_events
    await sub.wait_seq(final["seq"])  # only reachable through a fresh snapshot
    assert sub.resyncs_sent == 1
    assert len(sub.snapshot_seqs) == 2
    assert hub_of(live_client).stats.resyncs == 1
    assert sub.state == final
    await sub.close()


async def test_a_state_out_of_step_is_replaced_by_a_fresh_snapshot(live_client: Client) -> None:
    sub = await subscribe(live_client)
    await open_counters(live_client, 1)
    await issue(live_client)
    await sub.wait_seq(2)
    hub = hub_of(live_client)
    state = hub._halls["test"].state
    # Corrupt the hub's copy: it believes counter 1 is closed, so the call cannot be folded.
    state._status[1] = dataclasses.replace(state._status[1], state=CounterState.CLOSED)
    status, _ = await act(live_client, 1, "call_next")
    assert status == 200
    final = await server_snapshot(live_client)
    await sub.wait_for(lambda s: len(s.snapshot_seqs) == 2)
    assert hub.stats.resets == 1
    assert sub.snapshot_seqs[1] == final["seq"]
    assert sub.resyncs_sent == 0
    assert sub.state == final
    await sub.close()


async def test_a_silent_client_is_dropped_with_the_heartbeat_code(live_client: Client) -> None:
    hub_of(live_client).settings.client_timeout_s = 1.0
    quiet = await subscribe(live_client, name="quiet")
    quiet.answer_pings = False
    talking = await subscribe(live_client, name="talking")
    code = await quiet.wait_closed(within_s=5)
    assert code == CLOSE_HEARTBEAT
    assert quiet.pings >= 1
    assert talking.close_code is None
    assert hub_of(live_client).stats.dropped_heartbeat == 1
    await talking.close()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _stalled_websocket(client: Client) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A websocket whose owner never reads after the handshake (tiny receive buffer)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    assert client.server.port is not None
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", client.server.port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
    auth = DISPLAY_TOKENS[id(client)]["Authorization"]
    writer.write(
        b"GET /api/v1/halls/test/live?channel=display HTTP/1.1\r\n"
        b"Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        + f"Authorization: {auth}\r\n\r\n".encode()
    )
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer


async def test_a_slow_client_is_dropped_and_does_not_delay_the_others(live_client: Client) -> None:
    hub = hub_of(live_client)
    fast = [await subscribe(live_client, name=f"fast{i}") for i in range(3)]
    hub.settings.max_buffered_bytes = 32 * 1024
    # Only the send-buffer bound may drop it: on a slow machine the issuing below can take
    # longer than the heartbeat timeout, which would drop it first for its silence.
    hub.settings.client_timeout_s = 3600
    reader, writer = await _stalled_websocket(live_client)
    requested_at: dict[int, float] = {}
    sent = 0
    # Issue until the stalled client has been dropped, and at least 200 events either way.
    while sent < 200 or hub.stats.dropped_slow == 0:
        assert sent < 2000, "the stalled client was never dropped"
        started = time.perf_counter()
        await issue(live_client)
        sent += 1
        requested_at[sent] = started  # ticket.issued event n has seq n
    for sub in fast:
        await sub.wait_seq(sent)
    # From sending the request (an upper bound: the push may beat the HTTP response).
    latencies = [
        (sub.received_at[seq] - requested_at[seq]) * 1000 for sub in fast for seq in requested_at
    ]
    p50, p99 = statistics.median(latencies), _percentile(latencies, 0.99)
    print(f"slow-client test: {sent} events, fast clients p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    assert hub.stats.dropped_slow == 1
    assert all(sub.event_seqs() == list(range(1, sent + 1)) for sub in fast)
    assert all(sub.close_code is None for sub in fast)
    assert p99 < 100, latencies
    # The dropped socket is closed by the server: reading it to the end terminates.
    async with asyncio.timeout(10):
        try:
            while await reader.read(65536):
                pass
        except ConnectionError:
            pass
    writer.close()
    for sub in fast:
        await sub.close()


async def test_listen_connection_is_re_established_and_catches_up(
    live_client: Client, pool: asyncpg.Pool
) -> None:
    hub = hub_of(live_client)
    sub = await subscribe(live_client)
    await asyncio.wait_for(hub.listening.wait(), 5)
    assert hub.stats.listener_connects == 1
    pid = hub.listener_pid
    assert pid is not None
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
    for _ in range(10):  # some of these commit while nobody listens
        await issue(live_client)
    await sub.wait_seq(10)
    assert hub.stats.listener_connects == 2
    assert hub.listener_pid not in (None, pid)
    assert sub.event_seqs() == list(range(1, 11))
    assert sub.state == await server_snapshot(live_client)
    await sub.close()


async def test_counter_channel_gets_its_counter_and_services_with_prev_seq(
    live_client: Client,
) -> None:
    mine = await subscribe(live_client, "counter:90")
    await open_counters(live_client, 1, 90)
    await issue(live_client, "BDC")  # not served at 90: filtered out
    await issue(live_client, "SOC")
    status, _ = await act(live_client, 1, "call_next")  # BDC at counter 1: filtered out
    assert status == 200
    status, _ = await act(live_client, 90, "call_next")
    assert status == 200
    final = await server_snapshot(live_client)
    await mine.wait_for(lambda s: len(s.events) == 3)
    got = [(e["event"]["type"], e["seq"], e["prev_seq"]) for e in mine.events]
    assert got == [("counter.opened", 2, 0), ("ticket.issued", 4, 2), ("ticket.called", 6, 4)]
    assert mine.resyncs_sent == 0
    assert mine.state is not None
    assert mine.state["counters"][-1] == final["counters"][-1]
    assert mine.state["waiting"]["SOC"] == final["waiting"]["SOC"] == 0


async def test_refuses_unknown_halls_and_channels_before_upgrading(live_client: Client) -> None:
    resp = await live_client.get("/api/v1/halls/nope/live")
    assert resp.status == 404
    for channel in ("tv", "counter:77", "counter:x"):
        resp = await live_client.get(f"/api/v1/halls/test/live?channel={channel}")
        assert resp.status in (404, 422), channel
        assert resp.content_type == "application/problem+json"


async def test_shutdown_closes_websockets_with_going_away(live_client: Client) -> None:
    sub = await subscribe(live_client)
    await live_client.server.close()
    assert await sub.wait_closed() == CLOSE_GOING_AWAY


async def test_static_files_are_served(live_client: Client) -> None:
    resp = await live_client.get("/static/live.js")
    assert resp.status == 200
    assert resp.content_type == "text/javascript"
    assert "export class LiveClient" in await resp.text()
    resp = await live_client.get("/static/..%2F..%2Fapp.py")
    assert resp.status == 404
