"""The kiosk's HTTP routes: printers and print jobs for hall staff (补打, cancel)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from hall.domain.errors import InvalidInput
from hall.web.api import API, actor_of, json, json_list, parse_body
from hall.web.bridge import BRIDGE
from hall.web.routes import Access, Route
from hall.web.state import CLOCK, DIRECTORY, POOL, QUEUE
from kiosk import repo
from kiosk.service import PrintService

PRINT = web.AppKey("kiosk_print", PrintService)
JOB_STATES = frozenset({"queued", "printing", "printed", "held", "cancelled"})
STATE_LABELS = {
    "unknown": "未检测",
    "ok": "正常",
    "near_end": "纸将用尽",
    "paper_out": "缺纸",
    "cover_open": "纸仓盖未关",
    "error": "打印机故障",
    "offline": "打印机离线",
    "no_answer": "打印机无响应",
}


async def printing(app: web.Application) -> AsyncIterator[None]:
    """Task: the print service and its printer workers, for the app's lifetime."""
    service = PrintService(
        app[POOL], app[DIRECTORY], app[QUEUE], app[CLOCK], device_link=app.get(BRIDGE)
    )
    app[PRINT] = service
    await service.start()
    try:
        yield
    finally:
        await service.stop()


def on_print_notify(app: web.Application, payload: str) -> None:
    app[PRINT].notified(payload)


# --- bodies -----------------------------------------------------------------------------------


class ReprintBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    number: Annotated[str, Field(pattern=r"^[A-Za-z]{1,2}\d{1,5}$")]
    kiosk: Annotated[str, Field(min_length=1, max_length=32)] | None = None


class PrintJobOut(BaseModel):
    id: int
    number: str | None
    """The ticket's number; None for a notice slip (一次性告知单)."""
    matter: str | None
    """The notice slip's matter (实施编码); None for a ticket."""
    kiosk: str
    kind: str
    state: str
    reason: str | None
    attempts: int
    created_at: datetime
    printed_at: datetime | None


class PrinterOut(BaseModel):
    name: str
    kiosk: str
    state: str
    state_label: str
    since: datetime
    checked_at: datetime | None


def _job_out(job: repo.JobRow) -> PrintJobOut:
    return PrintJobOut(
        id=job.id,
        number=job.number,
        matter=job.matter,
        kiosk=job.kiosk,
        kind=job.kind,
        state=job.state,
        reason=job.reason,
        attempts=job.attempts,
        created_at=job.created_at,
        printed_at=job.printed_at,
    )


# --- handlers ---------------------------------------------------------------------------------


def _hall(request: web.Request) -> str:
    hall_id = request.match_info["hall"]
    request.app[DIRECTORY].hall(hall_id)  # NotFound for an unknown hall
    return hall_id


async def list_printers(request: web.Request) -> web.Response:
    rows = await repo.printer_states(request.app[POOL], _hall(request))
    return json_list(
        [
            PrinterOut(
                name=r.printer,
                kiosk=r.kiosk,
                state=r.state,
                state_label=STATE_LABELS.get(r.state, r.state),
                since=r.since,
                checked_at=r.checked_at,
            )
            for r in rows
        ]
    )


async def list_jobs(request: web.Request) -> web.Response:
    hall_id = _hall(request)
    raw = request.query.get("state", "queued,printing,held")
    states = [s for s in raw.split(",") if s]
    if not states or not set(states) <= JOB_STATES:
        raise InvalidInput("state 只能是 queued, printing, printed, held, cancelled", state=raw)
    jobs = await repo.jobs_of_hall(request.app[POOL], hall_id, states)
    return json_list([_job_out(j) for j in jobs])


async def reprint(request: web.Request) -> web.Response:
    hall_id = _hall(request)
    body = await parse_body(request, ReprintBody)
    service = request.app[PRINT]
    job_id = await service.reprint(hall_id, body.number, body.kiosk, actor_of(request))
    job = await repo.job(request.app[POOL], job_id)
    assert job is not None
    return json(_job_out(job), status=201)


async def cancel_job(request: web.Request) -> web.Response:
    hall_id = _hall(request)
    raw = request.match_info["id"]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 12:
        raise InvalidInput("id 必须是数字", parameter="id")
    await request.app[PRINT].cancel(hall_id, int(raw), actor_of(request))
    job = await repo.job(request.app[POOL], int(raw))
    assert job is not None
    return json(_job_out(job))


ROUTES = [
    Route(
        "GET",
        f"{API}/halls/{{hall}}/printers",
        list_printers,
        "kiosk_printers",
        "取号机打印机状态",
        Access.HALL_STAFF,
        response=PrinterOut,
        response_list=True,
        tags=("kiosk",),
    ),
    Route(
        "GET",
        f"{API}/halls/{{hall}}/print-jobs",
        list_jobs,
        "kiosk_print_jobs",
        "打印任务（默认：未完成的）；?state=held,printed…",
        Access.HALL_STAFF,
        response=PrintJobOut,
        response_list=True,
        tags=("kiosk",),
    ),
    Route(
        "POST",
        f"{API}/halls/{{hall}}/print-jobs",
        reprint,
        "kiosk_reprint",
        "补打：今日某号在取号机上重新打印",
        Access.HALL_STAFF,
        body=ReprintBody,
        response=PrintJobOut,
        tags=("kiosk",),
    ),
    Route(
        "POST",
        f"{API}/halls/{{hall}}/print-jobs/{{id}}/cancel",
        cancel_job,
        "kiosk_cancel_print_job",
        "取消排队或暂停的打印任务",
        Access.HALL_STAFF,
        response=PrintJobOut,
        tags=("kiosk",),
    ),
]
