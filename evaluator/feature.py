"""FEATURE: what the evaluator slice adds to the server (wired by hall/app.py)."""

from __future__ import annotations

from evaluator import pages, upstream, web
from evaluator.devices import PAD
from evaluator.repo import OUTBOX_CHANNEL
from hall.features import Feature, Listener, Migrations

FEATURE = Feature(
    name="evaluator",
    routes=(*web.ROUTES, *pages.ROUTES),
    migrations=Migrations("evaluator", first=50, last=59),
    tasks=(web.evaluator_service, upstream.sending, upstream.overdue_watch),
    listeners=(Listener(OUTBOX_CHANNEL, upstream.on_outbox_notify),),
    device_roles=(PAD,),
)
