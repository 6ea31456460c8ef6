"""App-scoped objects, each under its own typed key."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from hall.ports import Clock
from hall.services.directory import Directory
from hall.services.queue import QueueService

POOL = web.AppKey("pool", asyncpg.Pool)
DIRECTORY = web.AppKey("directory", Directory)
QUEUE = web.AppKey("queue", QueueService)
CLOCK = web.AppKey("clock", Clock)
