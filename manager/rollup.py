"""The roll-up task: every server process rolls up each hall's closed business days of the
last ``LOOK_BACK_DAYS`` days now and then, so monthly reports read narrow per-ticket rows
instead of the event log (``manager.reports.roll_up``; concurrent processes skip each other's
work). A report also rolls what it can before it runs, so the task only keeps that cheap."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web

from hall.web.state import CLOCK, DIRECTORY, POOL
from manager.reports import roll_up

log = logging.getLogger(__name__)

FIRST_S = 30.0
"""Wait after start-up before the first round (let the server settle first)."""
EVERY_S = 1800.0
LOOK_BACK_DAYS = 62


async def roll_all(app: web.Application) -> int:
    """One round over every hall; returns the number of days rolled."""
    rolled = 0
    directory = app[DIRECTORY]
    for hall_id in directory.hall_ids():
        rules = directory.hall(hall_id)
        today = app[CLOCK].now().astimezone(rules.tz).date()
        days = [today - timedelta(days=n) for n in range(LOOK_BACK_DAYS)]
        try:
            async with app[POOL].acquire() as conn:
                rolled += await roll_up(conn, rules, today, days)
        except Exception:
            log.exception("report roll-up of hall %s failed; next try in %.0f s", hall_id, EVERY_S)
    return rolled


async def rolling(app: web.Application) -> AsyncIterator[None]:
    """Task: a roll-up round shortly after start, then every ``EVERY_S`` seconds."""

    async def loop() -> None:
        await asyncio.sleep(FIRST_S)
        while True:
            await roll_all(app)
            await asyncio.sleep(EVERY_S)

    task = asyncio.create_task(loop(), name="manager-roll-up")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
