"""FEATURE: what the manager slice adds to the server (wired by hall/app.py)."""

from __future__ import annotations

from hall.features import Feature, Migrations
from manager import admin, web

FEATURE = Feature(
    name="manager",
    routes=(*web.ROUTES, *admin.ROUTES),
    migrations=Migrations("manager", first=70, last=79),
)
