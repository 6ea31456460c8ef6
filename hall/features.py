"""The contract between the kernel and a feature slice (kiosk/, counters/, display/, …).

Each feature package exports one ``FEATURE`` (in its ``feature.py``) that lists everything it
adds to the server: its routes, its migrations folder with its own number range, background
tasks that live as long as the app, handlers of database notifications, and the rules of the
device classes it owns. The composition
root (``hall/app.py``) is the only kernel module that names features; it hands each
``FEATURE`` to :func:`install`. Nothing else in ``hall/`` imports a feature.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from importlib.abc import Traversable

from aiohttp import web

from hall.services.device_roles import DeviceRole
from hall.web.pairing_kinds import PAIRING_KINDS, PairingKinds
from hall.web.pairing_kinds import PairingKind as PairingKind
from hall.web.routes import Route, register
from hall.web.start_page import PageHook, PageLink, add_pages
from hall.web.state import DEVICE_ROLES, NOTIFIER

Task = Callable[[web.Application], AsyncIterator[None]]
"""An aiohttp ``cleanup_ctx`` step: set up, ``yield`` while the app runs, then clean up."""
Hook = Callable[[web.Application], Awaitable[None]]
"""An aiohttp ``on_shutdown`` handler: end long-lived requests before the server waits for
them (websockets, long polls)."""

_NUMBERED = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
KERNEL_LATE_FIRST, KERNEL_LATE_LAST = 100, 119
"""The kernel's second migration range (hall/storage/migrations), after every feature's: core
changes once 0001-0009 was full. They run after the features' files, which is fine for
changes to core objects. No feature may number a file in it."""


@dataclass(frozen=True, slots=True)
class Migrations:
    """A feature's migrations folder and the file numbers it may use (both ends included)."""

    package: str
    folder: str = "migrations"
    first: int = 30
    last: int = 39

    def files(self) -> list[tuple[str, str]]:
        """(name, sql) of each migration, in order; a misnamed or out-of-range file raises."""
        root: Traversable = resources.files(self.package) / self.folder
        out: list[tuple[str, str]] = []
        for entry in root.iterdir():
            if not entry.name.endswith(".sql"):
                continue
            match = _NUMBERED.match(entry.name)
            if match is None or not self.first <= int(match.group(1)) <= self.last:
                raise ValueError(
                    f"migration {self.package}/{self.folder}/{entry.name} must be named "
                    f"NNNN_name.sql with NNNN in {self.first:04d}-{self.last:04d}"
                )
            out.append((entry.name, entry.read_text(encoding="utf-8")))
        return sorted(out)


@dataclass(frozen=True, slots=True)
class Listener:
    """Call ``handler(app, payload)`` for each NOTIFY on ``channel`` (in the event loop)."""

    channel: str
    handler: Callable[[web.Application, str], None]


@dataclass(frozen=True, slots=True)
class Feature:
    """Everything one feature slice adds to the app."""

    name: str
    routes: Sequence[Route] = ()
    migrations: Migrations | None = None
    tasks: Sequence[Task] = ()
    """Started in order after the kernel's database and LISTEN connection, stopped before."""
    listeners: Sequence[Listener] = field(default_factory=tuple)
    device_roles: Sequence[DeviceRole] = ()
    pages: Sequence[PageLink] = ()
    """Pages the start page lists for every hall."""
    page_hooks: Sequence[PageHook] = ()
    """ES modules this feature plugs into other features' pages (hall.web.start_page)."""
    """What its device classes do with their events and show (hall.services.device_roles)."""
    on_shutdown: Sequence[Hook] = ()
    """Run when the server starts to stop: end long-lived requests (long polls)."""
    pairing_kinds: Sequence[PairingKind] = ()
    """Browser devices of this slice that pair at /pair (hall.web.pairing_kinds)."""


def check_ranges(features: Sequence[Feature]) -> None:
    """Refuse overlapping migration ranges and duplicate feature names."""
    seen: dict[str, Feature] = {}
    for feature in features:
        if feature.name in seen:
            raise ValueError(f"feature {feature.name!r} installed twice")
        seen[feature.name] = feature
    ranges = sorted(
        (f.migrations.first, f.migrations.last, f.name) for f in features if f.migrations
    )
    if any(first < 30 for first, _, _ in ranges):
        raise ValueError("feature migrations must be numbered 0030 or higher")
    for first, last, name in ranges:
        if first <= KERNEL_LATE_LAST and last >= KERNEL_LATE_FIRST:
            raise ValueError(
                f"feature {name!r} may not use migration numbers "
                f"{KERNEL_LATE_FIRST:04d}-{KERNEL_LATE_LAST:04d} (the kernel's)"
            )
    for (_, last, name), (first, _, other) in itertools.pairwise(ranges):
        if first <= last:
            raise ValueError(f"features {name!r} and {other!r} share migration numbers")


def pairing_kinds(features: Sequence[Feature]) -> PairingKinds:
    """Every feature's pairing kinds; a name or alias declared twice raises."""
    return PairingKinds(k for f in features for k in f.pairing_kinds)


def migration_sources(features: Sequence[Feature]) -> list[Migrations]:
    check_ranges(features)
    return [f.migrations for f in features if f.migrations is not None]


def install(app: web.Application, feature: Feature) -> None:
    """Register a feature's routes, tasks and listeners on the app (before it starts)."""
    register(app, list(feature.routes))
    app[DEVICE_ROLES] = (*app.get(DEVICE_ROLES, ()), *feature.device_roles)
    add_pages(app, feature.pages, feature.page_hooks)
    kinds = (*app.get(PAIRING_KINDS, ()), *feature.pairing_kinds)
    PairingKinds(kinds)  # refuses a kind declared twice
    app[PAIRING_KINDS] = kinds
    for task in feature.tasks:
        app.cleanup_ctx.append(task)
    if feature.listeners:
        app.cleanup_ctx.append(_listening(feature.listeners))
    for hook in feature.on_shutdown:
        app.on_shutdown.append(hook)


def _listening(listeners: Sequence[Listener]) -> Task:
    async def run(app: web.Application) -> AsyncIterator[None]:
        notifier = app[NOTIFIER]
        subs = [
            await notifier.subscribe(item.channel, functools.partial(item.handler, app))
            for item in listeners
        ]
        try:
            yield
        finally:
            for sub in subs:
                await notifier.unsubscribe(sub)

    return run
