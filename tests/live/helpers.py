"""A Python live client that follows the protocol of docs/live.md, and small test utilities."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import aiohttp

RECENT = 20


def apply_patch(state: dict[str, Any], patch: Mapping[str, Any]) -> None:
    """The same fold as applyPatch in hall/web/static/live.js."""
    for counter in patch.get("counters", []):
        numbers = [c["number"] for c in state["counters"]]
        if counter["number"] in numbers:
            state["counters"][numbers.index(counter["number"])] = counter
        else:
            state["counters"].append(counter)
            state["counters"].sort(key=lambda c: c["number"])
    state["waiting"].update(patch.get("waiting", {}))
    if "call" in patch:
        state["recent_calls"].insert(0, patch["call"])
        del state["recent_calls"][RECENT:]


class Subscriber:
    """Reads one websocket in a task: keeps the state, the seqs seen and receipt times.

    ``lose_events`` makes it ignore the next events with those seqs, as if they had been lost,
    to exercise gap detection.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        *,
        name: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.session = session
        self.url = url
        self.headers = dict(headers or {})
        self.name = name
        self.state: dict[str, Any] | None = None
        self.seq: int | None = None
        self.snapshot_seqs: list[int] = []
        self.events: list[dict[str, Any]] = []  # every applied event message
        self.received_at: dict[int, float] = {}  # seq -> time.perf_counter() at receipt
        self.resyncs_sent = 0
        self.pings = 0
        self.close_code: int | None = None
        self.lose_events: set[int] = set()
        self.answer_pings = True
        self._awaiting_snapshot = True
        self._changed = asyncio.Condition()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._task: asyncio.Task[None] | None = None

    async def connect(self) -> Subscriber:
        self._ws = await self.session.ws_connect(
            self.url, heartbeat=None, autoping=True, headers=self.headers
        )
        self._awaiting_snapshot = True
        self.close_code = None
        self._task = asyncio.create_task(self._read(self._ws))
        await self.wait_for(lambda s: not s._awaiting_snapshot, within_s=10)
        return self

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                break
            now = time.perf_counter()
            data = json.loads(msg.data)
            await self._handle(ws, data, now)
            async with self._changed:
                self._changed.notify_all()
        self.close_code = ws.close_code
        async with self._changed:
            self._changed.notify_all()

    async def _handle(
        self, ws: aiohttp.ClientWebSocketResponse, m: dict[str, Any], now: float
    ) -> None:
        kind = m["type"]
        if kind == "snapshot":
            self.state = m["state"]
            self.seq = m["seq"]
            self.snapshot_seqs.append(m["seq"])
            self._awaiting_snapshot = False
        elif kind == "event":
            self.received_at.setdefault(m["seq"], now)
            if self._awaiting_snapshot:
                return
            if m["seq"] in self.lose_events:
                self.lose_events.discard(m["seq"])
                return
            if m["prev_seq"] != self.seq:
                await self._resync(ws)
                return
            assert self.state is not None
            apply_patch(self.state, m["patch"])
            self.state["seq"] = m["seq"]
            self.seq = m["seq"]
            self.events.append(m)
        elif kind == "ping":
            self.pings += 1
            if self.answer_pings:
                await ws.send_json({"type": "pong", "t": m["t"], "seq": self.seq})
            if not self._awaiting_snapshot and m["seq"] != self.seq:
                await self._resync(ws)

    async def _resync(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._awaiting_snapshot = True
        self.resyncs_sent += 1
        await ws.send_json({"type": "resync"})

    async def wait_for(self, predicate: Callable[[Subscriber], bool], within_s: float = 10) -> None:
        async with asyncio.timeout(within_s), self._changed:
            await self._changed.wait_for(lambda: predicate(self))

    async def wait_seq(self, seq: int, within_s: float = 10) -> None:
        await self.wait_for(
            lambda s: s.seq is not None and s.seq >= seq and not s._awaiting_snapshot, within_s
        )

    async def wait_closed(self, within_s: float = 10) -> int | None:
        if self._task is not None:
            async with asyncio.timeout(within_s):
                await asyncio.gather(self._task, return_exceptions=True)
        return self.close_code

    def event_seqs(self) -> list[int]:
        return [e["seq"] for e in self.events]

    def numbers_called(self) -> list[str]:
        return [e["event"]["number"] for e in self.events if e["event"]["type"] == "ticket.called"]


# --- TOML -------------------------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dt.time | dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
        )
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def to_toml(data: Mapping[str, Any]) -> str:
    """Write a config dict as TOML: top-level lists of dicts become arrays of tables, the rest
    inline values (enough for hall configs)."""
    lines: list[str] = []
    for key, value in data.items():
        if not (isinstance(value, list) and value and all(isinstance(v, dict) for v in value)):
            lines.append(f"{key} = {_toml_value(value)}")
    for key, value in data.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for item in value:
                lines.append(f"\n[[{key}]]")
                lines.extend(f"{k} = {_toml_value(v)}" for k, v in item.items())
    return "\n".join(lines) + "\n"


def write_config_toml(config_json: Mapping[str, Any], path: Path) -> Path:
    path.write_text(to_toml(config_json), encoding="utf-8")
    return path
