"""FEATURE: what the evaluator slice adds to the server (wired by hall/app.py)."""

from __future__ import annotations

from evaluator import pages, upstream, web
from evaluator.devices import PAD
from evaluator.repo import OUTBOX_CHANNEL
from hall.config.models import Hall
from hall.features import Feature, Listener, Migrations, PairingKind
from hall.web.start_page import Audience, PageHook, PageLink


def pad_targets(hall: Hall) -> list[tuple[str, str]]:
    """A web pad (tablet) can be paired for any counter of the hall; its id is the number."""
    return [
        (str(c.number), f"{c.number}号窗口评价器" + (f"（{c.name}）" if c.name else ""))
        for c in sorted(hall.counters, key=lambda c: c.number)
    ]


PAD_PAIRING = PairingKind(
    kind="pad",
    label_zh="网页评价器",
    access="display",
    targets=pad_targets,
    next_page=lambda hall, device: f"/pad/{hall}?counter={device}",
)
"""A tablet showing the web rating pad of one counter (``/pad/{hall}?counter=N``)."""

FEATURE = Feature(
    name="evaluator",
    routes=(*web.ROUTES, *pages.ROUTES),
    migrations=Migrations("evaluator", first=50, last=59),
    tasks=(web.evaluator_service, upstream.sending, upstream.overdue_watch),
    listeners=(Listener(OUTBOX_CHANNEL, upstream.on_outbox_notify),),
    device_roles=(PAD,),
    pages=(
        PageLink("/pad/{hall}", "网页评价器（平板，在 /pair 配对为窗口评价器）", Audience.DEVICE),
        PageLink(
            "/ratings?hall={hall}", "好差评管理（评价列表、差评整改、上报）", Audience.MANAGER
        ),
    ),
    page_hooks=(PageHook("counter.finish", pages.CASE_FORM),),
    pairing_kinds=(PAD_PAIRING,),
)
