"""FEATURE: what the display slice adds to the server (wired by hall/app.py)."""

from __future__ import annotations

from display.devices import SCREEN, STRIP
from hall.features import Feature

FEATURE = Feature(name="display", device_roles=(STRIP, SCREEN))
