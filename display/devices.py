"""Device roles of the display slice: window strips follow their counter, hall screens list
the latest calls of their own counters."""

from __future__ import annotations

from display.screen import screen_requests
from display.strip import strip_requests
from firmware_bridge.messages import Request
from hall.config.models import Device, DeviceClass
from hall.services.device_roles import DeviceRole, Scene


def render_strip(scene: Scene, device: Device) -> tuple[Request, ...]:
    view = scene.counters.get(device.counter) if device.counter is not None else None
    if view is None:
        return ()
    return strip_requests(view.number, view.state, view.ticket_number)


def render_screen(scene: Scene, device: Device) -> tuple[Request, ...]:
    screen = next((s for s in scene.rules.hall.screens if s.id == device.screen), None)
    if screen is None:
        return ()
    shown = [c for c in scene.recent_calls if not screen.counters or c[1] in screen.counters]
    return screen_requests(shown, screen.rows)


STRIP = DeviceRole(DeviceClass.STRIP, render=render_strip)
SCREEN = DeviceRole(DeviceClass.SCREEN, render=render_screen, shows_calls=True)
