"""FEATURE: what the evaluator slice adds to the server (wired by hall/app.py)."""

from __future__ import annotations

from evaluator.devices import PAD
from hall.features import Feature

FEATURE = Feature(name="evaluator", device_roles=(PAD,))
