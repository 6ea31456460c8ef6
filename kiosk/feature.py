"""FEATURE: what the kiosk slice adds to the server (wired by hall/app.py)."""

from __future__ import annotations

from hall.features import Feature, Migrations

FEATURE = Feature(
    name="kiosk",
    migrations=Migrations("kiosk", first=30, last=39),
)
