"""Waiting for a condition in tests: poll it with a deadline (never a fixed sleep)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

WAIT_S = 5.0


async def eventually(check: Callable[[], Any], what: str, within: float = WAIT_S) -> None:
    """Wait until ``check()`` (sync or async) is truthy; fail with ``what`` after ``within`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)
