"""Store-and-forward of ratings and case status changes to the upstream 好差评 platform.

Records are enqueued by triggers (migration 0050) in the transaction that writes the rating or
the status change, so nothing is ever written without its outbox row. The sender locks a batch
of due records under ``FOR UPDATE SKIP LOCKED`` (several server processes never send the same
record at once), POSTs each as JSON with its idempotency key (``Idempotency-Key`` header and the
``key`` field), and marks it delivered only on a 2xx answer whose body is a JSON object that
does not say ``ok: false``. Anything else (refusal, garbage, timeout, connection error) is
retried with exponential backoff; after ``max_attempts`` tries the record is a dead letter and
an alarm is raised. A record whose answer was lost is sent again under the same key, so the
platform (which deduplicates by key) stores it exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

from evaluator import repo
from evaluator.domain import CASE_TYPE_NAMES, LEVEL_NAMES, STATUS_NAMES, CaseStatus, CaseType
from hall.config.models import HallConfig, Upstream
from hall.domain.errors import HallError
from hall.ports import Clock
from hall.storage.uow import acquire
from hall.web.state import CLOCK, DIRECTORY, POOL

log = logging.getLogger(__name__)

POLL_S = 1.0
"""How often due retries are looked for when no new record is announced."""
BATCH = 20
"""Records sent concurrently per transaction."""

CHANNEL_CODES = {"pad": "01", "web_pad": "02", "phone": "03"}


def _iso(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def rating_payload(r: asyncpg.Record, config: HallConfig) -> dict[str, Any]:
    names = {x.code: x.text for x in config.evaluation.bad_reasons}
    codes = list(r["reason_codes"] or [])
    level = r["level"]
    return {
        "record_type": "rating",
        "hall": r["hall_id"],
        "channel": CHANNEL_CODES.get(r["channel"], r["channel"]),
        "case_number": r["case_number"],
        "matter_code": r["matter_code"],
        "matter_impl_code": r["matter_impl_code"],
        "matter_name": r["matter_name"],
        "service": r["service"],
        "ticket_number": r["ticket_number"],
        "window": r["counter_number"],
        "clerk": r["clerk"],
        "level": level,
        "level_name": LEVEL_NAMES.get(level, "未评价") if level else "未评价",
        "not_rated_reason": r["not_rated_reason"],
        "dims": list(r["dims"]) if r["dims"] else None,
        "reason_codes": codes,
        "reason_texts": [names.get(c, c) for c in codes],
        "comment": r["comment"],
        "pad_id": r["device_uid"],
        "visit_id": r["session_id"],
        "rated_at": _iso(r["rated_at"]),
    }


def case_payload(r: asyncpg.Record) -> dict[str, Any]:
    return {
        "record_type": "case_status",
        "case_number": r["case_number"],
        "source": r["source"],
        "case_type": r["case_type"],
        "case_type_name": CASE_TYPE_NAMES[CaseType(r["case_type"])],
        "matter_code": r["matter_code"],
        "matter_impl_code": r["matter_impl_code"],
        "matter_name": r["matter_name"],
        "status": r["to_status"],
        "status_name": STATUS_NAMES[CaseStatus(r["to_status"])],
        "from_status": r["from_status"],
        "accepted_on": _iso(r["accepted_on"]),
        "due_on": _iso(r["due_on"]),
        "promised_days": r["promised_days"],
        "window": r["counter_number"],
        "clerk": r["clerk"],
        "ticket_number": r["ticket_number"],
        "changed_at": _iso(r["at"]),
        "note": r["note"],
    }


def mapped(payload: dict[str, Any], upstream: Upstream, key: str) -> dict[str, Any]:
    """Our field names → the platform's (``field_map``), plus the key and region."""
    out = {upstream.field_map.get(k, k): v for k, v in payload.items()}
    out[upstream.field_map.get("key", "key")] = key
    if upstream.region_code:
        out[upstream.field_map.get("region_code", "region_code")] = upstream.region_code
    return out


def backoff(upstream: Upstream, attempts: int) -> float:
    """Delay before the next try after ``attempts`` failed ones (exponential, jittered)."""
    base: float = min(upstream.backoff_max_s, upstream.backoff_s * 2 ** min(attempts - 1, 30))
    return base * random.uniform(0.8, 1.0)


class Sender:
    def __init__(
        self,
        pool: asyncpg.Pool,
        config: HallConfig,
        clock: Clock,
        session: aiohttp.ClientSession,
    ) -> None:
        self.pool = pool
        self.config = config
        self.clock = clock
        self.session = session
        self.wake = asyncio.Event()
        self.sent = 0

    async def payload(self, conn: asyncpg.Connection, kind: str, ref: int) -> dict[str, Any]:
        if kind == "rating":
            r = await repo.rating_record(conn, ref)
            if r is None:  # pragma: no cover - ratings are append-only
                raise LookupError(f"rating {ref} is gone")
            return rating_payload(r, self.config)
        c = await repo.case_event_record(conn, ref)
        if c is None:  # pragma: no cover - case events are append-only
            raise LookupError(f"case event {ref} is gone")
        return case_payload(c)

    async def post(self, upstream: Upstream, key: str, body: dict[str, Any]) -> str | None:
        """None when the platform took the record; otherwise why not."""
        headers = {"Idempotency-Key": key, "Content-Type": "application/json"}
        if upstream.token:
            headers["Authorization"] = f"Bearer {upstream.token}"
        try:
            async with self.session.post(
                upstream.url,
                data=json.dumps(body, ensure_ascii=False).encode("utf-8"),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=upstream.timeout_s),
            ) as response:
                text = await response.text(errors="replace")
                if not 200 <= response.status < 300:
                    return f"HTTP {response.status}: {text[:120]}"
                try:
                    answer = json.loads(text)
                except ValueError:
                    return f"garbage answer: {text[:120]!r}"
                if not isinstance(answer, dict) or answer.get("ok") is False:
                    return f"refused: {text[:120]}"
                return None
        except TimeoutError:
            return "timeout"
        except aiohttp.ClientError as exc:
            return f"{type(exc).__name__}: {exc}"

    async def run_once(self) -> int:
        """Send every due record once; returns how many were delivered.

        Up to ``BATCH`` due records are locked in one transaction and sent concurrently; each
        is marked by its own answer, and the marks commit together. A crash before that commit
        sends the batch again under the same keys."""
        upstream = self.config.evaluation.upstream
        if upstream is None:
            return 0
        delivered = 0
        while True:
            async with acquire(self.pool) as conn, conn.transaction():
                rows = await repo.due_records(conn, BATCH)
                if not rows:
                    return delivered
                bodies = [
                    mapped(await self.payload(conn, r["kind"], r["ref_id"]), upstream, r["key"])
                    for r in rows
                ]
                errors = await asyncio.gather(
                    *(self.post(upstream, r["key"], b) for r, b in zip(rows, bodies, strict=True))
                )
                for rec, error in zip(rows, errors, strict=True):
                    if error is None:
                        await repo.mark_delivered(conn, rec["id"])
                        delivered += 1
                    else:
                        await self.failed(conn, upstream, rec, error)

    async def failed(
        self, conn: asyncpg.Connection, upstream: Upstream, rec: asyncpg.Record, error: str
    ) -> None:
        attempts = rec["attempts"] + 1
        dead = attempts >= upstream.max_attempts
        await repo.mark_failed(conn, rec["id"], error, backoff(upstream, attempts), dead)
        log.warning("upstream record %s not delivered (try %d): %s", rec["key"], attempts, error)
        if dead:
            await repo.raise_alarm(
                conn,
                rec["hall_id"],
                "upstream_dead_letter",
                rec["id"],
                f"好差评上报失败 {attempts} 次，已转入死信：{rec['key']}（{error[:60]}）",
                self.clock.now(),
            )

    async def loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except (OSError, HallError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("upstream sender: %s; retrying", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), POLL_S)
            self.wake.clear()


SENDER = web.AppKey("evaluator_sender", Sender)


def on_outbox_notify(app: web.Application, payload: str) -> None:
    sender = app.get(SENDER)
    if sender is not None:
        sender.wake.set()


async def sending(app: web.Application) -> AsyncIterator[None]:
    """Task: the upstream sender, for the app's lifetime."""
    async with aiohttp.ClientSession() as session:
        sender = Sender(app[POOL], app[DIRECTORY].config, app[CLOCK], session)
        app[SENDER] = sender
        task = asyncio.create_task(sender.loop(), name="evaluator-upstream")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


OVERDUE_EVERY_S = 60.0


async def overdue_watch(app: web.Application) -> AsyncIterator[None]:
    """Task: raise alarms for overdue 差评 tasks (once a minute)."""
    from evaluator.web import EVALUATOR

    async def watch() -> None:
        while True:
            try:
                await app[EVALUATOR].sweep_overdue()
            except (OSError, HallError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("overdue sweep: %s", exc)
            await asyncio.sleep(OVERDUE_EVERY_S)

    task = asyncio.create_task(watch(), name="evaluator-overdue")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
