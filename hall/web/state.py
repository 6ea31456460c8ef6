"""App-scoped objects, each under its own typed key."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from hall.ports import Clock
from hall.services.device_roles import DeviceRole
from hall.services.directory import Directory
from hall.services.queue import QueueService
from hall.storage.commit_notices import CommitNotices
from hall.storage.notify import Notifier

POOL = web.AppKey("pool", asyncpg.Pool)
DIRECTORY = web.AppKey("directory", Directory)
QUEUE = web.AppKey("queue", QueueService)
CLOCK = web.AppKey("clock", Clock)
NOTIFIER = web.AppKey("notifier", Notifier)
"""The process's one LISTEN connection (hall.storage.notify), started after the pool."""
COMMIT_NOTICES = web.AppKey("commit_notices", CommitNotices)
"""The halls whose events this process's pool committed (hall.storage.commit_notices)."""
DEVICE_ROLES = web.AppKey("device_roles", tuple[DeviceRole, ...])
"""The device roles of the installed features (hall.features.install), for the device service."""
READ_TIMEOUT = web.AppKey("read_timeout", float)
"""Seconds a request body may take to arrive (``Settings.read_timeout_s``)."""
