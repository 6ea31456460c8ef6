"""The contract between the kernel's device service and the feature slices' device rules.

The kernel receives every device event exactly once and computes what every device should
show, but it does not know what a caller key, a rating or a kiosk key means, nor what a strip
says: each feature slice declares a :class:`DeviceRole` for the device classes it owns
(counters/: callers, display/: strips and hall screens, evaluator/: pads, kiosk/: kiosk key
boards) in its ``FEATURE``, and the composition root hands them to the device service.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

import asyncpg

from firmware_bridge.bridge import EventResult
from firmware_bridge.messages import Event, Request
from hall.config.models import Device, DeviceClass
from hall.domain.tickets import CounterStatus
from hall.ports import Clock
from hall.services.directory import Directory, HallRules
from hall.services.queue import QueueService
from hall.storage.devices_repo import CounterDeviceView
from hall.storage.uow import UnitOfWork

__all__ = [
    "DeviceContext",
    "DeviceEvent",
    "DeviceRole",
    "EventHandler",
    "EventResult",
    "Generation",
    "Inputs",
    "Loader",
    "RecentCall",
    "Renderer",
    "Scene",
    "roles_by_class",
]


@dataclass(frozen=True, slots=True)
class DeviceContext:
    """The kernel services a device role may use while it handles an event."""

    directory: Directory
    queue: QueueService
    clock: Clock


@dataclass(frozen=True, slots=True)
class DeviceEvent:
    """A decoded event of a configured device of ``hall_id``."""

    hall_id: str
    device: Device
    event: Event
    uid: str
    actor: str
    """Who the audit log names when no clerk is signed in: ``device:BUS/ADDRESS``."""
    now: datetime
    counter: CounterStatus | None = None
    """The device's counter as the event's key statement locked it (FOR UPDATE), for a role
    with ``locks_counter``; None when nothing was locked for it (the counter is not active,
    or the role does not declare it): the handler then reads and locks it itself."""


class RecentCall(NamedTuple):
    """One call or recall of the event log."""

    event_id: int
    """The event's id: unique, and fixed when the event is written (its seq comes later,
    from the sequencer), so what is rendered from it does not change when it is numbered."""
    number: str
    counter: int
    service: str | None
    recall: bool


@dataclass(frozen=True, slots=True)
class Scene:
    """What a hall's devices are rendered from, read once per desired-state pass."""

    rules: HallRules
    counters: Mapping[int, CounterDeviceView]
    recent_calls: Sequence[RecentCall]
    """The latest calls and recalls, newest first; read only when the hall has a device that
    shows them (``DeviceRole.shows_calls``)."""
    staff_names: Mapping[str, str]
    now: datetime
    extras: Mapping[DeviceClass, object] = field(default_factory=dict)
    """What each role's ``load`` read for this pass (e.g. the pads' rating sessions)."""


EventHandler = Callable[[DeviceContext, UnitOfWork, DeviceEvent], Awaitable[EventResult | None]]
"""Runs inside the event's transaction, after its key was stored; ``None`` means "not mine".

A refusal raises a ``HallError``: the transaction is rolled back, the event's key is stored
again with the refusal (so a re-delivery is a duplicate) and the device beeps."""
Renderer = Callable[[Scene, Device], tuple[Request, ...]]
Generation = Callable[[Scene, Device], int]
"""A number that, when it changes, makes the device's whole desired state be sent again even
if it equals what the device already shows (e.g. a recall: same text, but flash again)."""
Loader = Callable[[asyncpg.Connection, str], Awaitable[object]]
"""Reads what a role renders from beyond the kernel's scene, once per pass and hall."""
Inputs = Callable[[Scene, Device], object]
"""Everything a role's ``render`` and ``generation`` read of the scene for one device, as a
value compared with ``==``: while it equals the last pass's, the device keeps its last render
(a pass then costs what changed). A role whose output depends on anything else, the clock
say, declares none and is rendered on every pass."""


@dataclass(frozen=True, slots=True)
class DeviceRole:
    """A feature's rules for one device class."""

    device_class: DeviceClass
    handle: EventHandler | None = None
    render: Renderer | None = None
    shows_calls: bool = False
    sign_in: EventHandler | None = None
    """LOGIN/LOGOUT (HB1.md §11) of a device of any class bound to a counter, when that
    class's own handler does not take it (a pad's LOGIN): at most one role declares it."""
    generation: Generation | None = None
    load: Loader | None = None
    inputs: Inputs | None = None
    locks_counter: bool = False
    """The handler acts on the device's counter under its row lock: the kernel takes that lock
    in the statement that stores the event's key (one round trip less per event) and hands
    the locked counter over in ``DeviceEvent.counter``."""


def roles_by_class(roles: Sequence[DeviceRole]) -> dict[DeviceClass, DeviceRole]:
    """One role per device class; two features claiming the same class is a wiring error."""
    out: dict[DeviceClass, DeviceRole] = {}
    for role in roles:
        if role.device_class in out:
            raise ValueError(f"two device roles for {role.device_class}")
        out[role.device_class] = role
    return out
