"""A fake upstream 好差评 platform on 127.0.0.1 that misbehaves on purpose.

It stores each record once by its idempotency key (as the real platform must), counts every
POST per key, and answers according to its current ``mode``:

- ``ok``: store, answer ``{"ok": true}`` (``"duplicate": true`` for a key already stored);
- ``fail``: answer 503 without storing;
- ``garbage``: store nothing, answer 200 with a body that is not JSON;
- ``store_then_hang``: store the record, then never answer (the sender times out, or is killed,
  and sends the same key again: the platform has then seen it twice);
- ``hang``: store nothing and never answer.
A ``script`` of modes is used first, one per request, before ``mode``.

``GET /api/cases?hall=…`` answers the platform's cases of a hall (``cases``, as the platform
names its fields) for the import; ``cases_mode`` ``fail`` or ``garbage`` makes it misbehave.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

from aiohttp import web

from tests.servers import free_port


class FakeUpstream:
    def __init__(self, token: str = "secret-token") -> None:
        self.token = token
        self.mode = "ok"
        self.script: list[str] = []
        self.stored: dict[str, dict[str, Any]] = {}
        self.posts: Counter[str] = Counter()
        self.unauthorised = 0
        self.changed = asyncio.Condition()
        self.cases: list[dict[str, Any]] = []
        self.cases_mode = "ok"
        self.case_queries: list[dict[str, str]] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/evaluations"

    async def handle(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            self.unauthorised += 1
            return web.json_response({"ok": False, "error": "unauthorised"}, status=401)
        body = await request.json()
        key = request.headers["Idempotency-Key"]
        assert key in (body.get("key"), body.get("idem"))
        self.posts[key] += 1
        mode = self.script.pop(0) if self.script else self.mode
        if mode == "fail":
            return web.json_response({"ok": False}, status=503)
        if mode == "garbage":
            return web.Response(text="<html>网关错误</html>", status=200)
        if mode == "hang":
            await asyncio.Event().wait()
        duplicate = key in self.stored
        if not duplicate:
            self.stored[key] = body
            async with self.changed:
                self.changed.notify_all()
        if mode == "store_then_hang":
            await asyncio.Event().wait()
        return web.json_response({"ok": True, "duplicate": duplicate})

    @property
    def cases_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/cases"

    async def list_cases(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            self.unauthorised += 1
            return web.json_response({"ok": False, "error": "unauthorised"}, status=401)
        self.case_queries.append(dict(request.query))
        if self.cases_mode == "fail":
            return web.json_response({"ok": False}, status=503)
        if self.cases_mode == "garbage":
            return web.Response(text="<html>网关错误</html>", status=200)
        hall = request.query.get("hall")
        return web.json_response({"cases": [c for c in self.cases if c.get("hall", hall) == hall]})

    async def wait_stored(self, count: int, within_s: float = 30) -> None:
        async with asyncio.timeout(within_s), self.changed:
            await self.changed.wait_for(lambda: len(self.stored) >= count)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/evaluations", self.handle)
        app.router.add_get("/api/cases", self.list_cases)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        self.port = self.port or free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def dump(self) -> str:
        return json.dumps({"stored": len(self.stored), "posts": dict(self.posts)})
