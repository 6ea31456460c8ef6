"""FEATURE: what the counters slice adds to the server (wired by hall/app.py)."""

from __future__ import annotations

from counters.devices import CALLER
from hall.features import Feature

FEATURE = Feature(name="counters", device_roles=(CALLER,))
