"""Device roles of the display slice: window strips follow their counter, hall screens list
the latest calls of their own counters and services. A recall changes the role's generation,
so the kernel re-sends the unchanged text and the device flashes it again. Each role names its
inputs, so a pass re-renders only the devices a change concerns."""

from __future__ import annotations

from display.screen import screen_requests, shown_calls
from display.strip import strip_requests
from firmware_bridge.messages import Request
from hall.config.models import Device, DeviceClass, Screen
from hall.services.device_roles import DeviceRole, Scene
from hall.storage.devices_repo import CounterDeviceView


def _view(scene: Scene, device: Device) -> CounterDeviceView | None:
    return scene.counters.get(device.counter) if device.counter is not None else None


def render_strip(scene: Scene, device: Device) -> tuple[Request, ...]:
    view = _view(scene, device)
    if view is None:
        return ()
    idle, shown = strip_requests(
        view.number, view.state, view.ticket_number, scene.rules.hall.display
    )
    # What the strip shows first: SET_IDLE does not change the content on show (HB/1 §10.2),
    # so when both go out (a recall, a resync) the call is not one bus transaction late.
    return (shown, idle)


def strip_generation(scene: Scene, device: Device) -> int:
    """Each recall of the ticket being called is a new generation."""
    view = _view(scene, device)
    return view.ticket_recalls if view is not None and view.state == "calling" else 0


def strip_inputs(scene: Scene, device: Device) -> object:
    """What ``render_strip`` and ``strip_generation`` read."""
    view = _view(scene, device)
    if view is None:
        return None
    recalls = view.ticket_recalls if view.state == "calling" else 0
    return (view.number, view.state, view.ticket_number, recalls, scene.rules.hall.display)


def _screen(scene: Scene, device: Device) -> Screen | None:
    return next((s for s in scene.rules.hall.screens if s.id == device.screen), None)


def render_screen(scene: Scene, device: Device) -> tuple[Request, ...]:
    screen = _screen(scene, device)
    if screen is None:
        return ()
    return screen_requests(shown_calls(screen, scene.recent_calls), screen.rows)


def screen_generation(scene: Scene, device: Device) -> int:
    """The seq of the newest call shown: a recall of the top row flashes it again."""
    screen = _screen(scene, device)
    if screen is None:
        return 0
    calls = shown_calls(screen, scene.recent_calls)
    return calls[0].event_id if calls else 0


def screen_inputs(scene: Scene, device: Device) -> object:
    """What ``render_screen`` and ``screen_generation`` read: the screen's config and the
    calls it may show (a call at another window leaves it as it is)."""
    screen = _screen(scene, device)
    if screen is None:
        return None
    return (screen, shown_calls(screen, scene.recent_calls))


STRIP = DeviceRole(
    DeviceClass.STRIP, render=render_strip, generation=strip_generation, inputs=strip_inputs
)
SCREEN = DeviceRole(
    DeviceClass.SCREEN,
    render=render_screen,
    shows_calls=True,
    generation=screen_generation,
    inputs=screen_inputs,
)
