"""The citizen's ticket page follows its ticket live: a long poll per ticket, read-only.

``GET /api/v1/tickets/{token}/follow?since=VERSION`` answers at once when the ticket's view
differs from ``since`` and otherwise waits until the hall's events move (the sequencer's
``hall_events`` notices, which every server process hears) or ``HOLD_S`` pass. It answers
only what the token's holder may see: their own number, place, wait range and window, nothing
about other citizens. Each poll reads the ticket again at most every ``MIN_GAP_S`` however busy
the hall is, so hundreds of phones cost a few queries a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json as jsonlib
from collections.abc import AsyncIterator

from aiohttp import web
from pydantic import BaseModel

from hall.domain.errors import InvalidInput, NotFound
from hall.domain.tickets import TicketState
from hall.services.queue import TicketView
from hall.storage import sequencer
from hall.web.api import API, json
from hall.web.routes import Access, Route
from hall.web.state import CLOCK, DIRECTORY, POOL, QUEUE
from kiosk import standing
from kiosk.standing import Standing

HOLD_S = 25.0
"""How long a poll waits for a change; phones and proxies keep a request open that long."""
EVENTS_CHANNEL = sequencer.EVENTS_CHANNEL
"""The sequencer's notices: a hall's committed events are numbered (every process hears it)."""
MIN_GAP_S = 1.0
"""Least time between two reads of one poll's ticket."""
VERSION_MAX = 64


class TicketLiveOut(BaseModel):
    version: str
    """Pass back as ``since``: the answer waits until something here changes."""
    number: str
    service_name: str
    state: str
    state_label: str
    people_ahead: int | None
    wait_text: str
    """The estimate as a range ("预计等候约 6 至 10 分钟"), or why there is none."""
    counter: int | None
    call_text: str | None
    """"请到5号窗口" while the ticket is called."""
    note: str | None
    final: bool
    """The ticket is finished, missed or cancelled: nothing will change any more."""


class HallChanges:
    """One asyncio event per hall, set and replaced whenever the hall's events move."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self.closing = False

    def close(self) -> None:
        """The server is stopping: every poll answers now instead of holding."""
        self.closing = True
        for hall_id in list(self._events):
            self.moved(hall_id)

    def event(self, hall_id: str) -> asyncio.Event:
        if self.closing:
            done = asyncio.Event()
            done.set()
            return done
        found = self._events.get(hall_id)
        if found is None:
            found = self._events[hall_id] = asyncio.Event()
        return found

    def moved(self, hall_id: str) -> None:
        found = self._events.pop(hall_id, None)
        if found is not None:
            found.set()


CHANGES = web.AppKey("kiosk_hall_changes", HallChanges)


async def following(app: web.Application) -> AsyncIterator[None]:
    app[CHANGES] = HallChanges()
    yield


async def closing(app: web.Application) -> None:
    """On shutdown: polls answer at once, so the server does not wait out their hold."""
    app[CHANGES].close()


def on_hall_events(app: web.Application, payload: str) -> None:
    notice = sequencer.sequenced(payload)
    if notice is not None:
        app[CHANGES].moved(notice[0])


_FINAL = {TicketState.DONE, TicketState.NO_SHOW, TicketState.CANCELLED}
_NOTES = {
    TicketState.SERVING: "正在为您办理",
    TicketState.DONE: "办理完成，感谢您的耐心等候",
    TicketState.NO_SHOW: "您的号码已过号，如需办理请重新取号",
    TicketState.CANCELLED: "该号码已取消",
    TicketState.PARKED: "您的号码已暂挂，请留意窗口工作人员的呼叫",
}


def live_view(view: TicketView, said: Standing | None = None) -> TicketLiveOut:
    """What the page shows; ``said``: the standing of a waiting ticket (kiosk/standing.py)."""
    t = view.ticket
    waiting = t.state is TicketState.WAITING
    call = f"请到{t.counter_number}号窗口" if t.state is TicketState.CALLED else None
    note = _NOTES.get(t.state)
    if waiting and said is not None:
        note = said.note
    body = {
        "number": t.display_number,
        "service_name": view.service_name,
        "state": str(t.state),
        "state_label": view.state_label,
        "people_ahead": said.people_ahead if waiting and said is not None else None,
        "wait_text": said.wait_text if waiting and said is not None else "",
        "counter": t.counter_number,
        "call_text": call,
        "note": note,
        "final": t.state in _FINAL,
        "recalls": t.recall_count,  # a recall is news even when nothing else changed
    }
    version = hashlib.sha256(
        jsonlib.dumps(body, sort_keys=True, ensure_ascii=False).encode()
    ).hexdigest()[:16]
    body.pop("recalls")
    return TicketLiveOut(version=version, **body)


async def follow(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    since = request.query.get("since", "")
    if len(since) > VERSION_MAX:
        raise InvalidInput("since 参数过长", parameter="since")
    if not 10 <= len(token) <= 64:
        raise NotFound("未找到该号码，请确认二维码是否正确")
    queue = request.app[QUEUE]
    pool = request.app[POOL]
    changes = request.app[CHANGES]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + HOLD_S
    hall_id: str | None = None
    while True:
        # The hall's event is taken before the read: a change after the read still wakes us.
        moved = changes.event(hall_id) if hall_id is not None else None
        view = await queue.ticket_status(token)
        rules = request.app[DIRECTORY].hall(view.ticket.hall_id)
        said = await standing.read(pool, rules, view, request.app[CLOCK].now())
        out = live_view(view, said)
        left = deadline - loop.time()
        if out.version != since or out.final or left <= 0 or changes.closing:
            break
        if moved is None:
            hall_id = view.ticket.hall_id  # now known: read again with its event in hand
            continue
        read_at = loop.time()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(left):
                await moved.wait()
        gap = MIN_GAP_S - (loop.time() - read_at)
        if gap > 0 and loop.time() + gap < deadline and not changes.closing:
            await asyncio.sleep(gap)  # rate limit: a busy hall moves many times a second
    response = json(out)
    response.headers["Cache-Control"] = "no-store"
    return response


ROUTES = [
    Route(
        "GET",
        f"{API}/tickets/{{token}}/follow",
        follow,
        "ticket_follow",
        "市民排队号页面：等待本号码的变化（长轮询，?since= 上次的 version）",
        Access.TICKET_TOKEN,
        response=TicketLiveOut,
        tags=("kiosk",),
    ),
]
