"""FEATURE: what the display slice adds to the server (wired by hall/app.py)."""

from __future__ import annotations

from display import web
from display.devices import SCREEN, STRIP
from hall.config.models import Hall
from hall.features import Feature, PairingKind
from hall.web.start_page import Audience, PageLink


def _screens(hall: Hall) -> list[tuple[str, str]]:
    return [(s.id, s.name) for s in hall.screens]


DISPLAY_PAIRING = PairingKind(
    kind="display",
    label_zh="大厅电视/显示屏",
    access="display",
    targets=_screens,
    next_page=lambda hall, device: f"/tv/{hall}",
    aliases=("tv",),
)
"""A TV page paired as one of the hall's configured screens (``tv`` is another name)."""

FEATURE = Feature(
    name="display",
    routes=web.ROUTES,
    tasks=(web.voice_task,),
    on_shutdown=(web.end_streams,),
    device_roles=(STRIP, SCREEN),
    pages=(PageLink("/tv/{hall}", "叫号电视（大厅综合屏）", Audience.DEVICE),),
    pairing_kinds=(DISPLAY_PAIRING,),
)
