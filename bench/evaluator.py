"""Upstream 好差评 outbox throughput: ``.venv/bin/python bench/evaluator.py [--records N]``.

A throwaway embedded PostgreSQL, ``hall serve`` with an upstream pointing at a loopback fake
platform (deduplicating by key, answering at once), N ratings written in one statement: prints
how long until every record is delivered, records per second, and the POSTs per record (1.0
when nothing was retried). Figures only mean something on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import asyncpg
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import embedded_database, free_port, server_process

CONFIG = """
[[halls]]
id = "bench"
name = "压测大厅"

[[halls.services]]
code = "a"
name = "甲"
prefix = "A"

[evaluation.upstream]
url = "http://127.0.0.1:{port}/api/evaluations"
token = "bench"
timeout_s = 5
"""


async def run(records: int) -> None:
    stored: set[str] = set()
    posts = 0

    async def handle(request: web.Request) -> web.Response:
        nonlocal posts
        posts += 1
        stored.add(request.headers["Idempotency-Key"])
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/api/evaluations", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        with embedded_database() as dsn:
            async with server_process(dsn, CONFIG.format(port=port)):
                conn = await asyncpg.connect(dsn)
                try:
                    start = time.perf_counter()
                    await conn.execute(
                        """INSERT INTO ratings (hall_id, level, channel, rated_at)
                           SELECT 'bench', 1 + g % 5, 'phone', now()
                           FROM generate_series(1, $1) g""",
                        records,
                    )
                    while len(stored) < records:  # noqa: ASYNC110 - the server is another process
                        await asyncio.sleep(0.01)
                    elapsed = time.perf_counter() - start
                    delivered = await conn.fetchval(
                        "SELECT count(*) FROM upstream_outbox WHERE state = 'delivered'"
                    )
                finally:
                    await conn.close()
    finally:
        await runner.cleanup()
    print(
        f"records {records}, stored by key {len(stored)}, POSTs {posts} "
        f"({posts / records:.2f} per record), marked delivered when all were stored: {delivered}"
    )
    print(f"all stored after {elapsed:.2f} s: {records / elapsed:.0f} records/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(run(args.records))


if __name__ == "__main__":
    main()
