"""FEATURE: what the kiosk slice adds to the server (wired by hall/app.py)."""

from __future__ import annotations

from hall.config.models import Hall
from hall.features import Feature, Listener, Migrations, PairingKind
from hall.web.start_page import Audience, PageLink
from kiosk import appointments_web, follow, guide_web, lookup, pages, web
from kiosk.keys import KIOSK_KEYS
from kiosk.service import CHANNEL


def _kiosks(hall: Hall) -> list[tuple[str, str]]:
    return [(k.id, k.name) for k in hall.kiosks]


KIOSK_PAIRING = PairingKind(
    kind="kiosk",
    label_zh="取号机",
    access="kiosk",
    targets=_kiosks,
    next_page=lambda hall, device: "/kiosk",
)
"""A kiosk page in a browser, paired as one of the hall's configured kiosks."""

FEATURE = Feature(
    name="kiosk",
    routes=(
        *web.ROUTES,
        *pages.ROUTES,
        *guide_web.ROUTES,
        *appointments_web.ROUTES,
        *follow.ROUTES,
        *lookup.ROUTES,
    ),
    migrations=Migrations("kiosk", first=30, last=39),
    tasks=(web.printing, pages.issuing, appointments_web.desk, follow.following),
    listeners=(
        Listener(CHANNEL, web.on_print_notify),
        Listener(follow.EVENTS_CHANNEL, follow.on_hall_events),
    ),
    device_roles=(KIOSK_KEYS,),
    pages=(
        PageLink("/kiosk", "取号机（触摸屏取号）", Audience.DEVICE),
        PageLink("/lookup/{hall}", "排队进度查询（输入号码）", Audience.CITIZEN),
    ),
    on_shutdown=(follow.closing,),
    pairing_kinds=(KIOSK_PAIRING,),
)
