"""FEATURE: what the display slice adds to the server (wired by hall/app.py)."""

from __future__ import annotations

from display import web
from display.devices import SCREEN, STRIP
from hall.features import Feature
from hall.web.start_page import Audience, PageLink

FEATURE = Feature(
    name="display",
    routes=web.ROUTES,
    tasks=(web.voice_task,),
    on_shutdown=(web.end_streams,),
    device_roles=(STRIP, SCREEN),
    pages=(PageLink("/tv/{hall}", "叫号电视（大厅综合屏）", Audience.DEVICE),),
)
