"""FEATURE: what the evaluator slice adds to the server (wired by hall/app.py)."""

from __future__ import annotations

from evaluator import pages, upstream, web
from evaluator.devices import PAD
from evaluator.repo import OUTBOX_CHANNEL
from hall.features import Feature, Listener, Migrations
from hall.web.start_page import Audience, PageHook, PageLink

FEATURE = Feature(
    name="evaluator",
    routes=(*web.ROUTES, *pages.ROUTES),
    migrations=Migrations("evaluator", first=50, last=59),
    tasks=(web.evaluator_service, upstream.sending, upstream.overdue_watch),
    listeners=(Listener(OUTBOX_CHANNEL, upstream.on_outbox_notify),),
    device_roles=(PAD,),
    pages=(
        PageLink("/pad/{hall}", "网页评价器（平板；地址后加 ?counter=窗口号）", Audience.DEVICE),
        PageLink(
            "/ratings?hall={hall}", "好差评管理（评价列表、差评整改、上报）", Audience.MANAGER
        ),
    ),
    page_hooks=(PageHook("counter.finish", pages.CASE_FORM),),
)
