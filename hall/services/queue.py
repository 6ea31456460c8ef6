"""Queue use cases: issue tickets, counter actions, what citizens and screens see.

Each public method runs one unit of work: it reads state, folds events through the domain
functions, writes the results and the events, and commits before returning. Nothing is
reported as done before it is in the database.
"""

from __future__ import annotations

import collections
import contextlib
import enum
import hashlib
import json
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg

from hall.config.models import Purpose, Service, TransferPlacement
from hall.domain.calendar import business_day, is_open, next_opening
from hall.domain.errors import (
    Conflict,
    CounterBusy,
    HallError,
    IdempotencyMismatch,
    IllegalTransition,
    InvalidInput,
    NoActiveTicket,
    NotFound,
    OutsideHours,
    PurposeNotAllowed,
    QueueEmpty,
    QuotaExhausted,
    Unavailable,
)
from hall.domain.estimate import (
    DEFAULT_CV,
    PAUSE_GUESS_S,
    RANGE_MIN_S,
    CallCurve,
    OpenCounter,
    QueueState,
    WaitForecast,
    aged_priority_wait,
    call_curve,
    curve_forecast,
    estimate_wait,
    mean_service_seconds,
    spread,
    typical_seconds,
)
from hall.domain.pii import mask_text
from hall.domain.policy import (
    Candidate,
    CounterContext,
    new_normal_since_priority,
    rank_with_reasons,
)
from hall.domain.tickets import (
    ACTIVE_STATES,
    TICKET_STATE_LABELS,
    CounterState,
    CounterStatus,
    Event,
    EventType,
    Ticket,
    TicketState,
    apply_counter,
    apply_ticket,
    issue_ticket,
)
from hall.ports import Clock
from hall.services.directory import Directory, HallRules
from hall.services.group_commit import BatchAborted, GroupCommit, Statement
from hall.storage import repo
from hall.storage.access_repo import AuditEntry, audit_values
from hall.storage.commit_notices import note_events
from hall.storage.uow import PENDING_AUDIT, UnitOfWork, acquire

# Call-next reads the heads of its queues, then tries them best first; a round ends when all
# were taken by other counters. 64 rounds cover every window of the largest hall pressing 叫号
# at the same instant.
_MAX_CLAIM_ROUNDS = 64
# An action is decided again when its counter changed between read and write: only another
# action on the same counter (a double click, a keypad and a terminal) does that.
_MAX_ACTION_ATTEMPTS = 5
# How long a call is remembered for call-next's stale heads (QueueService._called): longer
# than any heads read takes; a read older than this only costs a round trip, as before.
_CALLED_KEPT_S = 10.0
PURPOSE_LABELS = {
    Purpose.APPLY: "办理",
    Purpose.CONSULT: "咨询",
    Purpose.COLLECT: "取件",
    Purpose.SUPPLEMENT: "补正",
    Purpose.COMPLAIN: "投诉",
}


@dataclass(frozen=True, slots=True)
class IssueTicket:
    hall_id: str
    service_code: str
    purpose: Purpose = Purpose.APPLY
    priority_class: str | None = None
    appointment_start: datetime | None = None
    appointment_end: datetime | None = None
    kiosk: str | None = None
    idempotency_key: str | None = None

    def fingerprint(self) -> str:
        """What a repeated idempotency key must ask for again (stored with the ticket, so the
        formula may not change: a retry across an upgrade would be refused)."""
        body = {
            "hall_id": self.hall_id,
            "service_code": self.service_code,
            "purpose": self.purpose,
            "priority_class": self.priority_class,
            "appointment_start": self.appointment_start,
            "appointment_end": self.appointment_end,
            "kiosk": self.kiosk,
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class TicketView:
    """A ticket with its place in the queue, as citizens and clerks see it."""

    ticket: Ticket
    token: str
    service_name: str
    people_ahead: int | None
    estimated_wait_s: float | None  # the middle of the range below
    replayed: bool = False
    wait_low_s: float | None = None  # the range shown to citizens
    wait_high_s: float | None = None
    naive_wait_s: float | None = None  # people ahead × mean service time ÷ open counters

    @property
    def state_label(self) -> str:
        return TICKET_STATE_LABELS[self.ticket.state]


class CounterAction(enum.StrEnum):
    OPEN = "open"
    CALL_NEXT = "call_next"
    CALL = "call"
    RECALL = "recall"
    NO_SHOW = "no_show"
    START = "start"
    FINISH = "finish"
    TRANSFER = "transfer"
    PARK = "park"
    CALL_BACK = "call_back"
    CANCEL = "cancel"
    PAUSE = "pause"
    RESUME = "resume"
    CLOSE = "close"


# Actions decided on a kept counter and written through the action group commit
# (QueueService._act_batched): all but call-next read nothing; call-next reads its queues'
# heads on a connection it gives back before its write.
_BATCHED_ACTIONS = frozenset(
    {
        CounterAction.START,
        CounterAction.FINISH,
        CounterAction.RECALL,
        CounterAction.NO_SHOW,
        CounterAction.CALL_NEXT,
    }
)


# Actions whose decision reads nothing but their counter and its active ticket: in a
# transaction that holds the counter (UnitOfWork.counters), several in a row are decided one
# after the other and written in one statement (QueueService.act_steps).
_DECIDED_ON_THE_COUNTER = frozenset(
    {
        CounterAction.OPEN,
        CounterAction.START,
        CounterAction.FINISH,
        CounterAction.RECALL,
        CounterAction.NO_SHOW,
        CounterAction.PARK,
        CounterAction.CANCEL,
        CounterAction.PAUSE,
        CounterAction.RESUME,
        CounterAction.CLOSE,
    }
)


@dataclass(frozen=True, slots=True)
class ActionParams:
    clerk: str | None = None
    number: str | None = None  # display number for CALL / CALL_BACK
    to_service: str | None = None
    to_counter: int | None = None
    reason: str | None = None


def _masked(params: ActionParams) -> ActionParams:
    """``params`` with its free-text reason masked: it is shown on screens and sent to every
    feed, so never a personal number."""
    return replace(params, reason=mask_text(params.reason)) if params.reason else params


@dataclass(frozen=True, slots=True)
class CounterView:
    status: CounterStatus
    ticket: Ticket | None


@dataclass(frozen=True, slots=True)
class ServiceOverview:
    code: str
    name: str
    prefix: str
    waiting: int
    estimated_wait_s: float | None
    open_now: bool
    quota_left: int | None
    purposes: tuple[str, ...]
    wait_low_s: float | None = None
    wait_high_s: float | None = None


class QueueService:
    def __init__(
        self, pool: asyncpg.Pool, directory: Directory, clock: Clock, *, group_commit: bool = True
    ) -> None:
        self.pool = pool
        self.directory = directory
        self.clock = clock
        self.group_commit = GroupCommit(pool) if group_commit else None
        # Counter actions decided on a kept counter without any read (start, finish, …)
        # are written through this, so writes of one shape from several counters share a
        # pipeline and a commit (_act_batched).
        self.action_commit = GroupCommit(pool) if group_commit else None
        # Tickets this process's counters are calling right now, with the counter: another
        # counter of this process passes them over without a round trip (other processes
        # meet the row lock, which call-next skips too). A second press at the same counter
        # does not: its counter's lock decides, and it answers "busy", not "queue empty".
        self._calling: dict[int, tuple[str, int]] = {}
        # Tickets this process's counters called, with the monotonic time their write came
        # back, oldest first: a heads read sent before that time may still show one waiting
        # (its snapshot can predate the commit), and another counter of this process passes
        # it over instead of trying it (a round trip and a statement that finds it taken: a
        # fifth of the call writes in the deep-queue drain). A read sent after it shows the
        # ticket as it is, so a ticket waiting again (a transfer, a call-back) is not missed.
        self._called: dict[int, float] = {}
        self._called_order: collections.deque[tuple[float, int]] = collections.deque()
        # Each counter as this process's last autocommitted write of it left it, for its
        # next action to decide on without a round trip (_act_on). Safe across processes:
        # the write of an action holds only if the counter's version is still the one
        # decided on, and a refusal decided on it is checked against a fresh read.
        self._reads: dict[tuple[str, int], repo.CounterRead] = {}
        # Estimates given at issue, written by this server's next issue statement (or by
        # flush_estimates): recording them costs the hot path no round trip of its own.
        self._estimates: list[repo.EstimateRow] = []
        # Latest mean time at the counter, its spread and its share of priority tickets,
        # per (hall, service), as the statements that read a service's recent tickets
        # saw them; other services' means in a forecast come from here.
        self._pace: dict[tuple[str, str], tuple[float, float, float]] = {}
        # Call curves of a (hall, service, priority line), played once and read by every
        # forecast until the counters serving it change or CURVE_TTL_S passes (_forecast).
        self._curves: dict[tuple[str, str, bool], _Curve] = {}
        # What the last issued ticket's forecast took from its statement's counters and
        # finished tickets, per (hall, service): the next statements mostly read the same.
        self._lineups: dict[tuple[str, str], _Lineup] = {}
        self._paces: dict[tuple[str, str], _Pace] = {}
        self.forecast_steps = 0
        """Simulation steps the forecasts took (tests hold it bounded)."""

    async def flush_estimates(self) -> None:
        """Write the estimates not yet stored (at shutdown, and before measuring them)."""
        pending, self._estimates = self._estimates, []
        if not pending:
            return
        try:
            async with self.pool.acquire() as conn:
                await repo.write_estimates(conn, pending)
        except BaseException:
            self._estimates[:0] = pending
            raise

    # --- issuing --------------------------------------------------------------------------

    async def issue(
        self, cmd: IssueTicket, actor: str = "kiosk", *, uow: UnitOfWork | None = None
    ) -> TicketView:
        """Issue a ticket; with ``uow`` it joins that transaction and the caller commits."""
        rules = self.directory.hall(cmd.hall_id)
        svc = rules.service(cmd.service_code)
        if cmd.purpose not in svc.purposes:
            raise PurposeNotAllowed(
                f"「{svc.name}」不受理{PURPOSE_LABELS[cmd.purpose]}类事项", purpose=str(cmd.purpose)
            )
        if cmd.priority_class is not None and cmd.priority_class not in svc.priority_classes:
            raise InvalidInput(
                f"「{svc.name}」不接受优先类别 {cmd.priority_class}",
                priority_class=cmd.priority_class,
            )
        now = self.clock.now()
        if not rules.hall.issue_outside_hours and not is_open(
            now, rules.tz, rules.periods(svc), rules.calendar
        ):
            opens = next_opening(now, rules.tz, rules.periods(svc), rules.calendar)
            when = opens.astimezone(rules.tz).strftime("%m月%d日 %H:%M") if opens else None
            raise OutsideHours(
                f"「{svc.name}」当前不在办公时间" + (f"，{when} 开始取号" if when else ""),
                opens_at=opens.isoformat() if opens else None,
            )
        day = business_day(now, rules.tz, rules.hall.day_boundary)
        # Only a request with an idempotency key is compared with (and stores) its fingerprint.
        fingerprint = cmd.fingerprint() if cmd.idempotency_key is not None else ""
        if uow is not None:
            ticket, token, issued = await self._issue_on(
                uow.conn, rules, cmd, actor, svc, now, day, fingerprint, audit=None
            )
            return await self._issued_view(uow.conn, rules, ticket, token, issued)
        # A quota of one service in a shared number group is checked after numbering, under
        # the group's lock, so that case needs a transaction to undo the number; every other
        # ticket is one autocommitted statement and holds no lock across a round trip.
        shared_quota = svc.daily_quota is not None and svc.group != svc.code
        slot = PENDING_AUDIT.get()
        audit = slot.entry if slot is not None and not slot.committed else None

        Written = tuple[Ticket, str, repo.Issued | None]

        async def issue_on(conn: asyncpg.Connection) -> Written:
            return await self._issue_on(
                conn, rules, cmd, actor, svc, now, day, fingerprint, audit=audit
            )

        async def audited(written: Written) -> TicketView:
            # The audit row went in with a new ticket; a replay wrote nothing.
            ticket, token, issued = written
            if slot is not None and audit is not None and issued is not None:
                slot.committed = True
            if issued is not None:
                # The wait forecast needs no database: it is worked out after the commit,
                # outside the batch and its locks.
                return await self._issued_view(None, rules, ticket, token, issued)
            async with self.pool.acquire() as conn:
                return await self._issued_view(conn, rules, ticket, token, issued)

        if not shared_quota and self.group_commit is not None:
            # Tickets of one service share a transaction while the previous one flushes
            # (hall.services.group_commit); a failed batch is redone one by one. One service
            # per batch: a batch then locks the rows one ticket would (its number group's
            # counter, its service's tallies), so it cannot deadlock with a transfer that
            # locks two services' tallies. A ticket without an idempotency key is one
            # statement, which a batch of such tickets runs as one pipeline.
            key = (cmd.hall_id, svc.group, svc.code)
            written: Written | None = None
            if cmd.idempotency_key is None:
                prepared = self._issue_statement(rules, cmd, actor, svc, now, day, "", audit)
                try:
                    row = await self.group_commit.run(key, prepared.job)
                except BatchAborted:
                    self._estimates[:0] = prepared.estimates  # nothing was written
                except BaseException:
                    self._estimates[:0] = prepared.estimates  # written or not: rewriting
                    raise  # an estimate is harmless
                else:
                    written = self._issued(cmd, svc, actor, now, prepared, row)
            else:
                with contextlib.suppress(BatchAborted):
                    written = await self.group_commit.run(key, issue_on)
            if written is not None:
                return await audited(written)
        async with self.pool.acquire() as conn:
            for attempt in range(2):
                try:
                    async with contextlib.AsyncExitStack() as stack:
                        if shared_quota:
                            await stack.enter_async_context(conn.transaction())
                        done = await issue_on(conn)
                    return await audited(done)
                except asyncpg.UniqueViolationError as exc:
                    # Two requests with one idempotency key raced: nothing was written, and
                    # the next pass answers with the winner's ticket.
                    if attempt or cmd.idempotency_key is None:
                        raise
                    if "idempotency" not in str(exc.constraint_name):
                        raise
            raise AssertionError("unreachable")

    async def _issued_view(
        self,
        conn: asyncpg.Connection | None,
        rules: HallRules,
        ticket: Ticket,
        token: str,
        issued: repo.Issued | None,
    ) -> TicketView:
        """The view of a ticket just issued (its place came with it), or replayed."""
        if issued is None:
            return await self._view(conn, rules, ticket, token, replayed=True)
        view = await self._view(conn, rules, ticket, token, position=issued.position)
        if view.estimated_wait_s is not None:
            self._estimates.append(
                repo.EstimateRow(
                    ticket.id,
                    view.estimated_wait_s,
                    view.wait_low_s if view.wait_low_s is not None else view.estimated_wait_s,
                    view.wait_high_s if view.wait_high_s is not None else view.estimated_wait_s,
                    view.naive_wait_s,
                )
            )
        return view

    def _issue_statement(
        self,
        rules: HallRules,
        cmd: IssueTicket,
        actor: str,
        svc: Service,
        now: datetime,
        day: date,
        fingerprint: str,
        audit: AuditEntry | None,
    ) -> _IssueStatement:
        """The statement that numbers, inserts and logs a new ticket, with the estimates of
        earlier tickets it writes (taken from the pending ones: whoever runs it puts them
        back if it is not committed)."""
        own_group = svc.group == svc.code
        details = _issued_details(cmd, svc, day)
        token = secrets.token_urlsafe(16)
        estimates, self._estimates = self._estimates, []
        quota = svc.daily_quota if own_group else None
        sql, args = repo.issue_statement(
            hall_id=cmd.hall_id,
            number_group=svc.group,
            business_day=day,
            number_start=svc.number_start,
            service_code=svc.code,
            prefix=svc.prefix,
            width=svc.number_width,
            token=token,
            purpose=str(cmd.purpose),
            priority_class=cmd.priority_class,
            issued_at=now,
            appointment_start=cmd.appointment_start,
            appointment_end=cmd.appointment_end,
            kiosk=cmd.kiosk,
            idempotency_key=cmd.idempotency_key,
            idempotency_hash=fingerprint if cmd.idempotency_key else None,
            quota=quota,
            actor=actor,
            details=details,
            counters=rules.counters_serving(svc.code),
            others=_competing(rules, svc.code),
            estimates=estimates,
            audit=None if audit is None else audit_values(audit),
        )
        hall_id = cmd.hall_id

        def before(conn: asyncpg.Connection) -> None:
            note_events(conn, hall_id)

        # Without a quota the statement always numbers a ticket, so it returns its row.
        job = Statement(sql, args, before, one_row=quota is None)
        return _IssueStatement(job, token, details, estimates)

    def _issued(
        self,
        cmd: IssueTicket,
        svc: Service,
        actor: str,
        now: datetime,
        prepared: _IssueStatement,
        row: asyncpg.Record | None,
    ) -> tuple[Ticket, str, repo.Issued]:
        """The ticket an issue statement wrote; QuotaExhausted when it wrote none."""
        issued = repo.issued_from_row(row)
        if issued is None:
            self._estimates[:0] = prepared.estimates  # a refusal writes nothing
            raise QuotaExhausted(
                f"「{svc.name}」今日号源已取完（共 {svc.daily_quota} 个）",
                quota=svc.daily_quota,
            )
        event = Event(
            type=EventType.TICKET_ISSUED,
            at=now,
            actor=actor,
            ticket_id=issued.id,
            details={**prepared.details, "seq": issued.seq, "display_number": issued.number},
        )
        return issue_ticket(event), prepared.token, issued

    async def _issue_on(
        self,
        conn: asyncpg.Connection,
        rules: HallRules,
        cmd: IssueTicket,
        actor: str,
        svc: Service,
        now: datetime,
        day: date,
        fingerprint: str,
        *,
        audit: AuditEntry | None,
    ) -> tuple[Ticket, str, repo.Issued | None]:
        """Answer a repeated idempotency key, or number, insert and log a new ticket in one
        statement: (ticket, token, what the statement said, None for a replay). In a
        transaction when the caller opened one."""
        if cmd.idempotency_key is not None:
            found = await repo.ticket_by_idempotency_key(conn, cmd.hall_id, cmd.idempotency_key)
            if found is not None:
                ticket, token, stored = found
                if stored != fingerprint:
                    raise IdempotencyMismatch()
                return ticket, token, None
        prepared = self._issue_statement(rules, cmd, actor, svc, now, day, fingerprint, audit)
        try:
            row = await prepared.job(conn)
        except BaseException:
            # Nothing was written (or it is rolled back): the next statement takes them.
            self._estimates[:0] = prepared.estimates
            raise
        if svc.daily_quota is not None and svc.group != svc.code:
            # A shared group's transaction may still roll back: keep the estimates for a
            # later statement (rewriting one is harmless).
            self._estimates[:0] = prepared.estimates
            prepared = replace(prepared, estimates=[])
            # Its counter row stays locked until the caller's transaction ends, so this
            # count sees every ticket of the service; raising rolls the number back.
            if (
                row is not None
                and await repo.issued_today(conn, cmd.hall_id, svc.code, day) > svc.daily_quota
            ):
                row = None
        return self._issued(cmd, svc, actor, now, prepared, row)

    # --- counters -------------------------------------------------------------------------

    async def act(
        self,
        hall_id: str,
        counter_number: int,
        action: CounterAction,
        actor: str,
        params: ActionParams | None = None,
        *,
        uow: UnitOfWork | None = None,
    ) -> CounterView:
        """Run a counter action; with ``uow`` it joins that transaction and the caller commits.

        Optimistic: read the counter without a lock, decide, then write everything in one
        statement that holds only if nothing it was decided on has changed (else decide again).
        """
        rules = self.directory.hall(hall_id)
        rules.counter(counter_number)
        p = _masked(params or ActionParams())
        if uow is not None:
            # Its commit writes the request's audit row, with the events it buffers. It may
            # roll back: what it writes is never kept as this counter's read.
            return await self._act_on(
                uow.conn, rules, counter_number, action, actor, p, None, keep=False,
                held=uow.counters,
            )  # fmt: skip
        slot = PENDING_AUDIT.get()
        audit = slot.entry if slot is not None and not slot.committed else None
        view = None
        if action in _BATCHED_ACTIONS and self.action_commit is not None:
            view = await self._act_batched(rules, counter_number, action, actor, p, audit)
        if view is None:
            async with acquire(self.pool) as conn:
                view = await self._act_on(
                    conn, rules, counter_number, action, actor, p, audit, keep=True
                )
        if slot is not None and audit is not None:
            slot.committed = True
        return view

    def _handler(
        self, action: CounterAction
    ) -> Callable[[_ActionContext, ActionParams], Awaitable[CounterView]]:
        """The ``_do_…`` method that decides ``action``."""
        handler: Callable[[_ActionContext, ActionParams], Awaitable[CounterView]] = getattr(
            self, f"_do_{action.value}"
        )
        return handler

    async def act_steps(
        self,
        uow: UnitOfWork,
        hall_id: str,
        counter_number: int,
        steps: Sequence[tuple[CounterAction, str, ActionParams]],
    ) -> CounterView | None:
        """Counter actions (action, actor, params) one after the other in ``uow``'s
        transaction, as ``act`` runs each; the view after the last (None for no steps).

        Consecutive actions that read nothing but the counter (``_DECIDED_ON_THE_COUNTER``:
        a caller's 办结 on a called ticket starts and finishes it), on a counter the
        transaction holds (``UnitOfWork.counters``), are each decided on the counter as the
        one before left it and written together in one statement: the counter and ticket as
        the last left them, at the version the first was decided on, and every event in
        order. The rows end as the writes one by one would leave them; triggers on a ticket's
        update fire once for the whole change (the queue tallies' only concern moves to and
        from waiting, which none of these actions makes)."""
        rules = self.directory.hall(hall_id)
        rules.counter(counter_number)
        key = (hall_id, counter_number)
        view: CounterView | None = None
        decided: list[_ActionContext] = []
        try:
            for action, actor, params in steps:
                held = uow.counters.get(key)
                if held is None or action not in _DECIDED_ON_THE_COUNTER:
                    await self._write_decided(uow, rules, decided)
                    view = await self.act(hall_id, counter_number, action, actor, params, uow=uow)
                    continue
                p = _masked(params)
                self._reads.pop(key, None)  # this transaction writes the counter (as _act_on)
                handler = self._handler(action)
                ctx = _ActionContext(uow.conn, rules, held, actor, self.clock.now(), None)
                ctx.decided = []
                view = await handler(ctx, p)
                assert ctx.written is not None, "each of these actions writes its counter"
                uow.counters[key] = ctx.written
                decided.append(ctx)
        except HallError:
            # The steps before a refused one stand, as ``act`` one by one would leave them.
            await self._write_decided(uow, rules, decided)
            raise
        await self._write_decided(uow, rules, decided)
        return view

    async def _write_decided(
        self, uow: UnitOfWork, rules: HallRules, decided: list[_ActionContext]
    ) -> None:
        """Write the actions ``act_steps`` decided without writing, in one statement when
        they concern one ticket at most (always, for the actions it decides: each acts on the
        counter's active ticket, and after one that ends it, another finds none)."""
        writes = [w for ctx in decided for w in ctx.decided or ()]
        decided.clear()
        if not writes:
            return
        counters = [c for _, c, _ in writes if c is not None]
        tickets = [t for _, _, t in writes if t is not None]
        statements: list[tuple[list[Event], repo.CounterWrite | None, repo.TicketWrite | None]]
        if len(counters) == len(writes) > 1 and len({t.after.id for t in tickets}) <= 1:
            first, last = counters[0], counters[-1]
            tally = next((c.tally for c in reversed(counters) if c.tally is not None), None)
            statements = [
                (
                    [e for e, _, _ in writes],
                    repo.CounterWrite(last.status, first.version, tally),
                    repo.TicketWrite(tickets[0].before, tickets[-1].after) if tickets else None,
                )
            ]
            # The one statement bumps the counter's version once.
            key = (rules.hall.id, last.status.number)
            uow.counters[key] = replace(uow.counters[key], version=first.version + 1)
        else:
            statements = [([e], c, t) for e, c, t in writes]
        for events, counter, ticket in statements:
            try:
                await repo.write_action(
                    uow.conn, rules.hall.id, counter=counter, ticket=ticket, events=events
                )
            except repo.StaleRead:
                # Cannot happen under the counter's lock; refused rather than half-written.
                raise Conflict("窗口状态正在变化，请稍后重试") from None

    async def _act_batched(
        self,
        rules: HallRules,
        number: int,
        action: CounterAction,
        actor: str,
        p: ActionParams,
        audit: AuditEntry | None,
    ) -> CounterView | None:
        """An action decided on the counter as kept (``_reads``) and written through
        ``action_commit``, holding no connection while it waits for its batch (call-next
        reads its queues' heads on a connection it gives back first); None when it cannot
        be (no kept counter, a changed counter or ticket, a batch rolled back): nothing was
        written then, and the caller acts as usual, reading afresh. A refusal (an empty
        queue, a busy counter) stands if the counter is still as kept, as in ``_act_on``."""
        key = (rules.hall.id, number)
        kept = self._reads.pop(key, None)
        if kept is None:
            return None
        handler = self._handler(action)
        ctx = _ActionContext(
            None, rules, kept, actor, self.clock.now(), audit, batch=self.action_commit,
            pool=self.pool,
        )  # fmt: skip
        try:
            view = await handler(ctx, p)
        except HallError as exc:
            if isinstance(exc, Unavailable):
                raise  # the write may have been committed: as for any lost commit
            async with acquire(self.pool) as conn:
                fresh = await repo.counter_for_action(conn, *key)
            if fresh is None or fresh.version != kept.version:
                return None  # another process moved the counter on: decide again
            self._reads[key] = fresh
            raise
        except (repo.StaleRead, BatchAborted):
            return None
        if ctx.written is not None:
            self._reads[key] = ctx.written
        return view

    async def _act_on(
        self,
        conn: asyncpg.Connection,
        rules: HallRules,
        number: int,
        action: CounterAction,
        actor: str,
        p: ActionParams,
        audit: AuditEntry | None,
        *,
        keep: bool,
        held: dict[tuple[str, int], repo.CounterRead] | None = None,
    ) -> CounterView:
        """Decide and write one action; with ``keep`` (autocommitted writes) it may decide
        on the counter as kept, and the counter as the write left it is kept for this
        counter's next action in this process, which then decides on it without reading
        (``_reads``). ``held`` (``UnitOfWork.counters``) are the counters whose lock the
        transaction on ``conn`` holds, as it has them: the action decides on its counter's
        entry without reading it, and leaves the counter as it wrote it there."""
        key = (rules.hall.id, number)
        handler = self._handler(action)
        # Taken out while the action runs: a concurrent action on this counter reads, and
        # an action that ends without a committed write of the counter leaves none behind.
        kept = self._reads.pop(key, None)
        # Every other action writes its counter, whose version then decides whether the
        # counter it was decided on was current. Call-back writes only a ticket and answers
        # with the counter as read, so it always reads.
        if not keep or action is CounterAction.CALL_BACK:
            kept = None
        if held is not None:
            # Current: nobody else can change the counter (or its active ticket) under the
            # lock this transaction holds.
            kept = held.get(key)
        for _ in range(_MAX_ACTION_ATTEMPTS):
            read = kept if kept is not None else await repo.counter_for_action(conn, *key)
            if read is None:
                raise NotFound(f"{number}号窗口不存在", counter=number)
            ctx = _ActionContext(conn, rules, read, actor, self.clock.now(), audit)
            try:
                view = await handler(ctx, p)
            except repo.CounterChanged:
                kept = None
                if held is not None:
                    held.pop(key, None)  # not as held after all: read from here on
                continue  # another action (or process) on this counter committed in between
            except HallError as exc:
                if kept is None or held is not None or isinstance(exc, Unavailable):
                    raise
                # Refused on the kept read: refuse only if the counter is still as kept;
                # else another process moved it on, and the next attempt reads it.
                fresh = await repo.counter_for_action(conn, *key)
                if fresh is None or fresh.version != kept.version:
                    kept = None
                    continue
                self._reads[key] = fresh
                raise
            if ctx.written is not None:
                if keep:
                    self._reads[key] = ctx.written
                if held is not None:
                    held[key] = ctx.written
            return view
        raise Conflict(f"{number}号窗口状态正在变化，请稍后重试")

    async def _do_open(self, ctx: _ActionContext, p: ActionParams) -> CounterView:
        return await ctx.counter_event(EventType.COUNTER_OPENED, {"clerk": p.clerk or ctx.actor})

    async def _do_pause(self, ctx: _ActionContext, p: ActionParams) -> CounterView:
        if not p.reason:
            raise InvalidInput("暂停服务需要填写原因")
        return await ctx.counter_event(EventType.COUNTER_PAUSED, {"reason": p.reason})

    async def _do_resume(self, ctx: _ActionContext, p: ActionParams) -> CounterView:
        return await ctx.counter_event(EventType.COUNTER_RESUMED, {})

    async def _do_close(self, ctx: _ActionContext, p: ActionParams) -> CounterView:
        return await ctx.counter_event(EventType.COUNTER_CLOSED, {})

    async def _do_call_next(self, ctx: _ActionContext, p: ActionParams) -> CounterView:
        ctx.require_idle()
        config = ctx.rules.counter(ctx.status.number)
        counter_ctx = CounterContext(
            number=config.number,
            services=tuple((s.code, s.weight) for s in config.services),
            call_order=str(config.call_order),
            normal_since_priority=ctx.read.tally,
        )
        services = [s.code for s in config.services]
        taken: set[int] = set()  # tickets other counters called after they were read
        for _ in range(_MAX_CLAIM_ROUNDS):
            read_at = time.monotonic()
            found = await ctx.heads(
                services,
                appointments_from=ctx.now + ctx.rules.policy.appointment_early,
                exclude=taken,
            )
            numbers = {c.ticket_id: number for c, number in found}
            ranked = rank_with_reasons(
                [c for c, _ in found], counter_ctx, ctx.rules.policy, ctx.now
            )
            lost = len(taken)
            for candidate, reason in ranked:
                # The next best is as good a choice as a fresh read would give: taking a
                # ticket changes nobody else's place in the ranking.
                me = (ctx.rules.hall.id, config.number)
                if (
                    self._calling.get(candidate.ticket_id, me) != me
                    or self._called.get(candidate.ticket_id, -1.0) >= read_at
                ):
                    taken.add(candidate.ticket_id)
                    continue
                self._calling.setdefault(candidate.ticket_id, me)
                try:
                    view = await ctx.call(
                        candidate,
                        numbers[candidate.ticket_id],
                        reason,
                        tally=new_normal_since_priority(counter_ctx, reason),
                    )
                    self._note_called(candidate.ticket_id)
                    return view
                except repo.TicketChanged:
                    taken.add(candidate.ticket_id)
                finally:
                    if self._calling.get(candidate.ticket_id) == me:
                        del self._calling[candidate.ticket_id]
            if len(taken) == lost:
                raise QueueEmpty()  # nothing eligible was there to try
        raise Conflict("同时叫号的窗口过多，请重试")

    def _note_called(self, ticket_id: int) -> None:
        """Remember that this process just called ``ticket_id`` (``_called``); entries older
        than any heads read still in flight can tell nothing and are dropped."""
        now = time.monotonic()
        self._called[ticket_id] = now
        self._called_order.append((now, ticket_id))
        horizon = now - _CALLED_KEPT_S
        while self._called_order[0][0] < horizon:
            at, oldest = self._called_order.popleft()
            if self._called.get(oldest) == at:  # not called again since
                del self._called[oldest]

    async def _do_call(self, ctx: _ActionContext, p: ActionParams) -> CounterView:
        ctx.require_idle()
        ticket = await ctx.ticket_by_number(p.number)
        if ticket.state is not TicketState.WAITING:
            raise IllegalTransition(
                f"号码 {ticket.display_number} 当前{TICKET_STATE_LABELS[ticket.state]}，不能呼叫"
            )
        served = {s.code for s in ctx.rules.counter(ctx.status.number).services}
        if ticket.service_code not in served and ticket.target_counter != ctx.status.number:
            raise Conflict(f"号码 {ticket.display_number} 不属于本窗口办理的业务")
        if ticket.target_counter not in (None, ctx.status.number):
            raise Conflict(f"号码 {ticket.display_number} 已转至{ticket.target_counter}号窗口")
        return await ctx.ticket_event(ticket, EventType.TICKET_CALLED, {"specific": True})

    async def _do_recall(self, ctx: _ActionContext, p: ActionParams) -> CounterView:
        ticket = ctx.active()
        limit = ctx.rules.hall.call_policy.max_recalls
        if ticket.state is TicketState.CALLED and ticket.recall_count >= limit:
            raise Conflict(f"已重呼 {limit} 次，请标记过号", max_recalls=limit)
        return await ctx.ticket_event(ticket, EventType.TICKET_RECALLED, {})

    async def _do_no_show(self, ctx: _ActionContext, p: ActionParams) -> CounterView:
        return await ctx.ticket_event(ctx.active(), EventType.TICKET_NO_SHOW, {})

    async def _do_start(self, ctx: _ActionContext, p: ActionParams) -> CounterView:
        return await ctx.ticket_event(ctx.active(), EventType.TICKET_STARTED, {})

    async def _do_finish(self, ctx: _ActionContext, p: ActionParams) -> CounterView:
        return await ctx.ticket_event(ctx.active(), EventType.TICKET_FINISHED, {})

    async def _do_cancel(self, ctx: _ActionContext, p: ActionParams) -> CounterView:
        return await ctx.ticket_event(
            ctx.active(), EventType.TICKET_CANCELLED, {"reason": p.reason}
        )

    async def _do_park(self, ctx: _ActionContext, p: ActionParams) -> CounterView:
        return await ctx.ticket_event(ctx.active(), EventType.TICKET_PARKED, {"reason": p.reason})

    async def _do_transfer(self, ctx: _ActionContext, p: ActionParams) -> CounterView:
        ticket = ctx.active()
        if p.to_service is None and p.to_counter is None:
            raise InvalidInput("转办需要指定目标业务或目标窗口")
        target_code = p.to_service or ticket.service_code
        target = ctx.rules.service(target_code)
        if p.to_counter is not None:
            counter = ctx.rules.counter(p.to_counter)
            if p.to_counter == ctx.status.number:
                raise InvalidInput("不能转给本窗口")
            found = await repo.counter(ctx.conn, ctx.rules.hall.id, p.to_counter)
            if (
                found is not None
                and found[0].state is CounterState.CLOSED
                and not ctx.rules.hall.counter_rules.transfer_to_closed
            ):
                raise Conflict(
                    f"{p.to_counter}号窗口当前窗口关闭，不能转入；请转给已开启的窗口或转业务",
                    to_counter=p.to_counter,
                )
            if p.to_service is None and not any(s.code == target_code for s in counter.services):
                target_code = counter.services[0].code
        key = await ctx.placement(ticket, target_code, target.transfer_placement)
        return await ctx.ticket_event(
            ticket,
            EventType.TICKET_TRANSFERRED,
            {
                "from_service": ticket.service_code,
                "to_service": target_code,
                "to_counter": p.to_counter,
                "queue_key": key.isoformat(),
                "reason": p.reason,
            },
        )

    async def _do_call_back(self, ctx: _ActionContext, p: ActionParams) -> CounterView:
        ticket = await ctx.ticket_by_number(p.number)
        if ticket.state is not TicketState.PARKED:
            raise IllegalTransition(f"号码 {ticket.display_number} 未挂起，不能回呼")
        svc = ctx.rules.service(ticket.service_code)
        key = await ctx.placement(ticket, ticket.service_code, svc.transfer_placement)
        event = ctx.event(
            EventType.TICKET_CALLED_BACK,
            ticket,
            {"queue_key": key.isoformat(), "to_counter": ctx.status.number},
        )
        try:
            await ctx.write(event, ticket=(ticket, apply_ticket(ticket, event)))
        except repo.TicketChanged:
            raise Conflict(f"号码 {ticket.display_number} 的状态已变化，请刷新后重试") from None
        return CounterView(ctx.status, ctx.read.active)

    # --- reading --------------------------------------------------------------------------

    async def counter(self, hall_id: str, number: int) -> CounterView:
        self.directory.hall(hall_id).counter(number)
        async with self.pool.acquire() as conn:
            found = await repo.counter(conn, hall_id, number)
            if found is None:
                raise NotFound(f"{number}号窗口不存在", counter=number)
            return CounterView(found[0], await repo.active_ticket(conn, hall_id, number))

    async def ticket_status(self, token: str) -> TicketView:
        async with self.pool.acquire() as conn:
            ticket = await repo.ticket_by_token(conn, token)
            if ticket is None:
                raise NotFound("未找到该号码，请确认二维码是否正确")
            return await self._view(conn, self.directory.hall(ticket.hall_id), ticket, token)

    async def ticket_status_by_number(self, hall_id: str, number: str) -> TicketView:
        """The view of today's ticket with this printed number (a lookup without the QR)."""
        rules = self.directory.hall(hall_id)
        day = business_day(self.clock.now(), rules.tz, rules.hall.day_boundary)
        async with self.pool.acquire() as conn:
            found = await repo.ticket_and_token_by_number(conn, hall_id, day, number)
            if found is None:
                raise NotFound(f"今日没有号码 {number}，请核对号票上的号码", number=number)
            ticket, token = found
            return await self._view(conn, rules, ticket, token)

    async def services(self, hall_id: str) -> list[ServiceOverview]:
        rules = self.directory.hall(hall_id)
        now = self.clock.now()
        day = business_day(now, rules.tz, rules.hall.day_boundary)
        async with self.pool.acquire() as conn:
            stats = await repo.service_stats(conn, hall_id, day)
            counters = await repo.counters_now(conn, hall_id, now)
        for svc in rules.hall.services:
            _, _, recent = stats.get(svc.code, (0, 0, []))
            if recent:
                cycles = [c for _, c in recent]
                known = self._pace.get((hall_id, svc.code))
                self._pace[(hall_id, svc.code)] = (
                    typical_seconds(cycles, svc.default_service_minutes * 60),
                    spread(cycles, window=repo.RECENT_SERVICES),
                    0.0 if known is None else known[2],
                )
        result = []
        for svc in rules.hall.services:
            n, issued, recent = stats.get(svc.code, (0, 0, []))
            left = None if svc.daily_quota is None else max(0, svc.daily_quota - issued)
            # Someone taking a ticket now: behind everyone waiting (priority ones included).
            forecast = self._forecast(
                rules,
                svc.code,
                priority=False,
                normal_ahead=n,
                priority_waiting=0,
                counters=counters,
                others={c: float(stats.get(c, (0, 0, []))[0]) for c in _competing(rules, svc.code)},
                appointment_start=None,
                now=now,
            )
            result.append(
                ServiceOverview(
                    code=svc.code,
                    name=svc.name,
                    prefix=svc.prefix,
                    waiting=n,
                    estimated_wait_s=None if forecast is None else forecast.seconds,
                    open_now=rules.hall.issue_outside_hours
                    or is_open(now, rules.tz, rules.periods(svc), rules.calendar),
                    quota_left=left,
                    purposes=tuple(str(x) for x in svc.purposes),
                    wait_low_s=None if forecast is None else forecast.low_s,
                    wait_high_s=None if forecast is None else forecast.high_s,
                )
            )
        return result

    async def snapshot(self, hall_id: str, recent: int = 20) -> dict[str, Any]:
        """Everything a screen needs, consistent with one event ``seq``."""
        rules = self.directory.hall(hall_id)
        async with self.pool.acquire() as conn, repo.sequenced_read(conn, hall_id) as seq:
            counters = await repo.counters_of_hall(conn, hall_id)
            waiting = await repo.waiting_counts(conn, hall_id)
            calls = await repo.recent_calls(conn, hall_id, recent)
        return {
            "hall": {"id": hall_id, "name": rules.hall.name},
            "seq": seq,
            "counters": [
                {
                    "number": r["number"],
                    "name": r["name"],
                    "state": r["state"],
                    "state_since": r["state_since"].isoformat(),
                    "pause_reason": r["pause_reason"],
                    "ticket": None
                    if r["ticket_id"] is None
                    else {
                        "number": r["display_number"],
                        "service": r["service_code"],
                        "state": r["ticket_state"],
                    },
                }
                for r in counters
            ],
            "waiting": {s.code: waiting.get(s.code, 0) for s in rules.hall.services},
            "recent_calls": [
                {
                    "seq": r["seq"],
                    "at": r["at"].isoformat(),
                    "number": r["number"],
                    "counter": r["counter_number"],
                    "recall": r["type"] == str(EventType.TICKET_RECALLED),
                }
                for r in calls
            ],
        }

    async def _view(
        self,
        conn: asyncpg.Connection | None,
        rules: HallRules,
        ticket: Ticket,
        token: str,
        *,
        replayed: bool = False,
        position: repo.QueueFacts | None = None,
    ) -> TicketView:
        """The ticket with its place in the queue; ``position`` when it is already known
        (as ``repo.queue_position`` answers), else read."""
        svc = rules.service(ticket.service_code)
        if ticket.state is not TicketState.WAITING:
            return TicketView(ticket, token, svc.name, None, None, replayed)
        now = self.clock.now()
        if position is None:
            if conn is None:
                raise ValueError("a ticket's place is read through a connection")
            position = await repo.queue_position(
                conn,
                ticket,
                list(rules.counters_serving(svc.code)),
                others=_competing(rules, svc.code),
                at=now,
            )
        facts = position
        pace = self._pace_from(rules, svc, facts)
        lineup = self._lineup(rules, svc.code, facts.counters)
        naive = estimate_wait(facts.ahead, pace.naive_mean_s, lineup.open_all)
        self._pace[(rules.hall.id, svc.code)] = pace.pace
        priority = ticket.priority_class is not None
        # Those ahead include the priority tickets queued before it, which are counted apart
        # (for a normal ticket all waiting priority ones: the ratio calls them first anyway).
        normal_ahead = facts.ahead - facts.priority_waiting
        forecast = self._forecast(
            rules,
            svc.code,
            priority=priority,
            normal_ahead=max(0, normal_ahead),
            priority_waiting=facts.priority_waiting,
            counters=facts.counters,
            others={k: float(v) for k, v in facts.others.items()},
            appointment_start=ticket.appointment_start,
            now=now,
            lineup=lineup,
        )
        if forecast is None:
            return TicketView(
                ticket, token, svc.name, facts.ahead, None, replayed, None, None, naive
            )
        return TicketView(
            ticket,
            token,
            svc.name,
            facts.ahead,
            forecast.seconds,
            replayed,
            forecast.low_s,
            forecast.high_s,
            naive,
        )

    def _forecast(
        self,
        rules: HallRules,
        code: str,
        *,
        priority: bool,
        normal_ahead: int,
        priority_waiting: int,
        counters: list[tuple[int, str, float]],
        others: dict[str, float],
        appointment_start: datetime | None,
        now: datetime,
        lineup: _Lineup | None = None,
    ) -> WaitForecast | None:
        """Our estimate for a ticket of ``code`` (see ``call_curve``), from what one
        statement read: the counters serving it that are open or paused, and the waiting of
        the other services they serve (a share of it: other counters serve those too).

        The queues are played once per (hall, service, line) and the curve read by every
        forecast after it, shifted by the time since, until a counter serving the service
        changes state (a call, finish, pause, opening or closing) or ``CURVE_TTL_S`` passes,
        or a ticket further back than the curve reaches (and than ``CURVE_SLACK`` tickets
        issued since) asks: a ticket costs bounded CPU whatever the queue."""
        mean = self._pace_of(rules, code)[0]
        if lineup is None:
            lineup = self._lineup(rules, code, counters)
        mine = lineup.mine
        if not lineup.open_mine:
            return None  # only paused counters: say no counter serves it now
        ahead = priority_waiting if priority else normal_ahead
        found = self._curve(
            rules,
            code,
            priority,
            ahead,
            normal_ahead,
            priority_waiting,
            others,
            counters,
            mine,
            now,
        )
        if found is None:
            return None
        cached, age = found
        forecast = curve_forecast(cached.curve, ahead, cached.state, elapsed_s=age)
        if forecast is None:
            return None
        if priority and appointment_start is None:
            # While normal tickets wait past the aging limit, a priority one waits about as
            # long as a normal one issued with it.
            normal = self._curve(
                rules,
                code,
                False,
                normal_ahead,
                normal_ahead,
                priority_waiting,
                others,
                counters,
                mine,
                now,
            )
            point = None if normal is None else normal[0].curve.at(normal_ahead)
            if normal is not None and point is not None:
                seconds = aged_priority_wait(
                    forecast.seconds,
                    max(0.0, point[0] - normal[1]),
                    rules.policy.max_bypass.total_seconds(),
                )
                if seconds > forecast.seconds:
                    aged = curve_forecast(
                        normal[0].curve, normal_ahead, cached.state, elapsed_s=normal[1]
                    )
                    forecast = aged or forecast
        if appointment_start is not None:
            # Checked in for a slot: called once the slot opens by the next free counter,
            # if the queue has not reached it before.
            opens = (appointment_start - rules.policy.appointment_early - now).total_seconds()
            open_counters = self._open_counters(rules, code, counters, mean)
            first_free = min((c.busy_s for c in open_counters), default=0.0)
            at = max(0.0, opens, first_free)
            if at < forecast.seconds:
                half = max(RANGE_MIN_S, 0.5 * mean)
                forecast = WaitForecast(at, max(0.0, at - half), at + half, 0)
        return forecast

    def _lineup(
        self, rules: HallRules, code: str, counters: list[tuple[int, str, float]]
    ) -> _Lineup:
        """What a forecast takes from the states of the counters serving ``code``, worked
        out once for as long as the statements find those counters in the same states (the
        tickets of a batch, and every ticket between two counter actions, see them alike)."""
        seen = [(n, state) for n, state, _ in counters]
        key = (rules.hall.id, code)
        kept = self._lineups.get(key)
        if kept is not None and kept.rules is rules and kept.seen == seen:
            return kept
        serving = set(rules.counters_serving(code))
        mine = tuple(sorted((n, state) for n, state in seen if n in serving))
        lineup = _Lineup(
            rules=rules,
            seen=seen,
            mine=mine,
            open_all=sum(1 for _, state in seen if state in repo.OPEN_STATES),
            open_mine=any(state in repo.OPEN_STATES for _, state in mine),
        )
        self._lineups[key] = lineup
        return lineup

    def _pace_from(self, rules: HallRules, svc: Service, facts: repo.QueueFacts) -> _Pace:
        """The service's pace from its latest finished tickets as one statement read them,
        worked out again only when they differ from the last statement's (each figure sorts
        up to 40 of them; the next finish changes them)."""
        key = (rules.hall.id, svc.code)
        default = svc.default_service_minutes * 60
        kept = self._paces.get(key)
        if (
            kept is not None
            and kept.default_s == default
            and kept.priority_share == facts.priority_share
            and kept.recent == facts.recent
        ):
            return kept
        cycles = [c for _, c in facts.recent]
        pace = _Pace(
            recent=facts.recent,
            priority_share=facts.priority_share,
            default_s=default,
            naive_mean_s=mean_service_seconds([d for d, _ in facts.recent], default),
            pace=(
                typical_seconds(cycles, default, window=repo.RECENT_SERVICES),
                spread(cycles, window=repo.RECENT_SERVICES),
                facts.priority_share,
            ),
        )
        self._paces[key] = pace
        return pace

    def _curve(
        self,
        rules: HallRules,
        code: str,
        priority: bool,
        ahead: int,
        normal_ahead: int,
        priority_waiting: int,
        others: dict[str, float],
        counters: list[tuple[int, str, float]],
        mine: tuple[tuple[int, str], ...],
        now: datetime,
    ) -> tuple[_Curve, float] | None:
        """The cached curve of a line that covers ``ahead`` and how old it is, played anew
        when it is stale (see ``_forecast``); ``mine``: (number, state) of the counters
        serving the service, which a cached curve must have been played with."""
        key = (rules.hall.id, code, priority)
        cached = self._curves.get(key)
        age = None if cached is None else (now - cached.at).total_seconds()
        if (
            cached is None
            or age is None
            or not 0.0 <= age < CURVE_TTL_S
            or cached.counters != mine
            or (ahead >= len(cached.curve.times) and not cached.curve.capped)
        ):
            state = self._queue_state(
                rules, code, priority, normal_ahead, priority_waiting, others, counters
            )
            mean = self._pace_of(rules, code)[0]
            curve = call_curve(
                state, self._open_counters(rules, code, counters, mean), phantoms=CURVE_SLACK
            )
            if curve is None:
                return None
            self.forecast_steps += curve.steps
            cached = _Curve(curve, now, mine, state)
            self._curves[key] = cached
            age = 0.0
        return cached, age

    def _open_counters(
        self, rules: HallRules, code: str, counters: list[tuple[int, str, float]], mean: float
    ) -> list[OpenCounter]:
        """The counters serving ``code`` that are open or paused, with the time until each
        is free to call."""
        serving = set(rules.counters_serving(code))
        found: list[OpenCounter] = []
        for number, state, elapsed in counters:
            if number not in serving:
                continue
            config = rules.counter(number)
            if state == "idle":
                busy = 0.0
            elif state == "paused":
                busy = max(60.0, PAUSE_GUESS_S - elapsed)
            else:  # calling or serving: what is left of a visit already under way
                busy = max(mean - elapsed, 0.3 * mean)
            found.append(
                OpenCounter(
                    number=number,
                    services=tuple((s.code, s.weight) for s in config.services),
                    call_order=str(config.call_order),
                    busy_s=busy,
                )
            )
        return found

    def _queue_state(
        self,
        rules: HallRules,
        code: str,
        priority: bool,
        normal_ahead: int,
        priority_waiting: int,
        others: dict[str, float],
        counters: list[tuple[int, str, float]],
    ) -> QueueState:
        mean, cv, share = self._pace_of(rules, code)
        serving = set(rules.counters_serving(code))
        open_here = {n for n, _, _ in counters if n in serving}
        shared: dict[str, float] = {}
        for other, waiting in others.items():
            if other == code:
                continue
            everyone = len(rules.counters_serving(other)) or 1
            here = sum(
                1 for n in open_here if any(s.code == other for s in rules.counter(n).services)
            )
            shared[other] = waiting * here / everyone
        service_s = {c: self._pace_of(rules, c)[0] for c in shared}
        service_s[code] = mean
        return QueueState(
            service=code,
            priority=priority,
            normal_ahead=normal_ahead,
            priority_waiting=priority_waiting,
            waiting=shared,
            service_s=service_s,
            cv=cv,
            priority_ratio=rules.policy.priority_ratio,
            priority_share=share,
        )

    def _pace_of(self, rules: HallRules, code: str) -> tuple[float, float, float]:
        """Mean time at the counter per ticket of a service, its spread and its share of
        priority tickets, as last seen."""
        found = self._pace.get((rules.hall.id, code))
        if found is not None:
            return found
        return rules.service(code).default_service_minutes * 60, DEFAULT_CV, 0.0


CURVE_TTL_S = 1.0
"""How long a played call curve answers forecasts while its counters keep their states."""
CURVE_SLACK = 64
"""Tickets behind the one a curve is played for that it covers too (issued soon after)."""


@dataclass(frozen=True, slots=True)
class _Curve:
    curve: CallCurve
    at: datetime  # when it was played
    counters: tuple[tuple[int, str], ...]  # (number, state) of the counters it played
    state: QueueState  # what it was played from (its mean and spread make the range)


@dataclass(frozen=True, slots=True)
class _Lineup:
    """The counters serving a service as a statement found them (``QueueService._lineup``)."""

    rules: HallRules  # the configuration it was worked out with
    seen: list[tuple[int, str]]  # (number, state) of the open or paused counters read
    mine: tuple[tuple[int, str], ...]  # those serving the service, by number
    open_all: int  # open (not paused) among those read
    open_mine: bool  # one serving the service is open


@dataclass(frozen=True, slots=True)
class _Pace:
    """A service's pace from its latest finished tickets (``QueueService._pace_from``)."""

    recent: list[tuple[float, float]]  # as the statement read them
    priority_share: float
    default_s: float  # the service's configured time, used with too few of them
    naive_mean_s: float  # trimmed mean of the service times (the simple estimate)
    pace: tuple[float, float, float]  # what QueueService._pace keeps


def _competing(rules: HallRules, code: str) -> list[str]:
    """The other services of the counters that serve ``code``."""
    return list(rules.competing(code))


@dataclass(frozen=True, slots=True)
class _IssueStatement:
    """An issue statement ready to run, and what its caller needs of it afterwards."""

    job: Statement
    token: str
    details: dict[str, Any]
    estimates: list[repo.EstimateRow]


@dataclass
class _ActionContext:
    """What one attempt of a counter action decides on, and how it writes the outcome."""

    connection: asyncpg.Connection | None  # None: decided without a read, written by batch
    rules: HallRules
    read: repo.CounterRead
    actor: str
    now: datetime
    audit: AuditEntry | None
    written: repo.CounterRead | None = None  # the counter as this attempt's write left it
    batch: GroupCommit | None = None  # writes through this instead of the connection
    pool: asyncpg.Pool | None = None  # without a connection: call-next's reads take one
    # Writes decided but not sent, for QueueService.act_steps to send together.
    decided: list[tuple[Event, repo.CounterWrite | None, repo.TicketWrite | None]] | None = None

    @property
    def conn(self) -> asyncpg.Connection:
        assert self.connection is not None, "an action without reads reads nothing"
        return self.connection

    async def heads(
        self, services: list[str], *, appointments_from: datetime, exclude: set[int]
    ) -> list[tuple[Candidate, str]]:
        """Call-next's read of its queues' heads (``repo.call_heads``). Written through
        a batch, it reads on a connection of its own, given back before the write: the
        write waits for its batch's connection, and waiting for it while holding one could
        take the whole pool (20 counters, 10 connections) and wait for ever."""
        hall_id, number = self.rules.hall.id, self.status.number
        if self.connection is not None:
            return await repo.call_heads(
                self.connection, hall_id, number, services,
                appointments_from=appointments_from, exclude=exclude,
            )  # fmt: skip
        assert self.pool is not None, "an action without a connection reads through the pool"
        async with acquire(self.pool) as conn:
            return await repo.call_heads(
                conn, hall_id, number, services,
                appointments_from=appointments_from, exclude=exclude,
            )  # fmt: skip

    @property
    def status(self) -> CounterStatus:
        return self.read.status

    def require_idle(self) -> None:
        if self.status.state in (CounterState.CALLING, CounterState.SERVING):
            raise CounterBusy()
        if self.status.state is not CounterState.IDLE:
            raise IllegalTransition(f"{self.status.number}号窗口未开启服务，不能叫号")

    def event(self, type_: EventType, ticket: Ticket | None, details: dict[str, Any]) -> Event:
        full = dict(details)
        if ticket is not None:
            full.setdefault("display_number", ticket.display_number)
            full.setdefault("service_code", ticket.service_code)
        return Event(
            type=type_,
            at=self.now,
            actor=self.actor,
            ticket_id=ticket.id if ticket else None,
            counter_number=self.status.number,
            details=full,
        )

    async def write(
        self,
        event: Event,
        *,
        counter: CounterStatus | None = None,
        tally: int | None = None,
        ticket: tuple[Ticket, Ticket] | None = None,
    ) -> None:
        counter_write = (
            None if counter is None else repo.CounterWrite(counter, self.read.version, tally)
        )
        ticket_write = None if ticket is None else repo.TicketWrite(*ticket)
        hall_id = self.rules.hall.id
        audit = None if self.audit is None else audit_values(self.audit)
        if self.decided is not None:
            self.decided.append((event, counter_write, ticket_write))
        elif self.batch is None:
            await repo.write_action(
                self.conn,
                hall_id,
                counter=counter_write,
                ticket=ticket_write,
                events=[event],
                audit=audit,
            )
        else:
            query, values = repo.action_statement(
                hall_id,
                counter=counter_write,
                ticket=ticket_write,
                events=[event],
                audit=audit,
            )

            def before(conn: asyncpg.Connection) -> None:
                note_events(conn, hall_id)

            # Always one row (whether it wrote), so a batch commits at its pipeline's Sync;
            # same-shaped writes of other counters share it (hall.services.group_commit).
            job = Statement(query, values, before, one_row=True)
            row = await self.batch.run(("action", hash(query)), job)  # a key, not the text
            repo.action_outcome(row)
        if counter_write is not None:
            self.written = repo.read_after_write(self.read, counter_write, ticket_write)

    async def call(
        self, head: Candidate, display_number: str, reason: str, *, tally: int
    ) -> CounterView:
        """Call the waiting ticket ``head`` at this counter (``repo.call_statement``), the
        ticket as the write returned it; TicketChanged when it is no longer waiting or
        another transaction is taking it. What ``try_ticket_event`` does for a ticket read
        whole, with the ticket's id, service and number only."""
        # The details as ``event`` and ``try_ticket_event`` give them (the counter leaves idle).
        details = {
            "reason": reason,
            "display_number": display_number,
            "service_code": head.service_code,
            **self.left_state(),
        }
        event = Event(
            type=EventType.TICKET_CALLED,
            at=self.now,
            actor=self.actor,
            ticket_id=head.ticket_id,
            counter_number=self.status.number,
            details=details,
        )
        status = apply_counter(self.status, event)  # idle -> calling, or IllegalTransition
        counter_write = repo.CounterWrite(status, self.read.version, tally)
        hall_id = self.rules.hall.id
        query, values = repo.call_statement(
            hall_id,
            counter=counter_write,
            ticket_id=head.ticket_id,
            at=self.now,
            events=[event],
            audit=None if self.audit is None else audit_values(self.audit),
        )
        if self.batch is None:
            note_events(self.conn, hall_id)
            row = await self.conn.fetchrow(query, *values)
        else:

            def before(conn: asyncpg.Connection) -> None:
                note_events(conn, hall_id)

            job = Statement(query, values, before, one_row=True)
            row = await self.batch.run(("action", hash(query)), job)
        called = repo.call_outcome(row)
        self.written = repo.read_after_call(self.read, counter_write, called)
        return CounterView(status, called)

    def left_state(self) -> dict[str, Any]:
        """The state a counter leaves and how long it was in it (supervision reads these)."""
        held = max(0.0, (self.now - self.status.state_since).total_seconds())
        out: dict[str, Any] = {"from_state": str(self.status.state), "duration_s": round(held, 3)}
        if self.status.clerk:
            out["counter_clerk"] = self.status.clerk
        if self.status.pause_reason:
            out["pause_reason"] = self.status.pause_reason
        return out

    async def counter_event(self, type_: EventType, details: dict[str, Any]) -> CounterView:
        event = self.event(type_, None, {**details, **self.left_state()})
        status = apply_counter(self.status, event)
        await self.write(event, counter=status)
        return CounterView(status, None)

    def active(self) -> Ticket:
        if self.read.active is None:
            raise NoActiveTicket(f"{self.status.number}号窗口当前没有正在处理的号码")
        return self.read.active

    async def ticket_by_number(self, number: str | None) -> Ticket:
        if not number:
            raise InvalidInput("需要指定号码")
        day = business_day(self.now, self.rules.tz, self.rules.hall.day_boundary)
        ticket = await repo.ticket_by_number(self.conn, self.rules.hall.id, day, number.upper())
        if ticket is None:
            raise NotFound(f"今日没有号码 {number}")
        return ticket

    async def try_ticket_event(
        self,
        ticket: Ticket,
        type_: EventType,
        details: dict[str, Any],
        *,
        tally: int | None = None,
    ) -> CounterView:
        """Apply an event to a ticket and to this counter; TicketChanged when the ticket
        left the state it was read in (call-next writes through ``call``)."""
        event = self.event(type_, ticket, details)
        after = apply_ticket(ticket, event)
        status = apply_counter(self.status, event)
        if status.state is not self.status.state:
            event = replace(event, details={**event.details, **self.left_state()})
        await self.write(event, counter=status, tally=tally, ticket=(ticket, after))
        return CounterView(status, after if after.state in ACTIVE_STATES else None)

    async def ticket_event(
        self, ticket: Ticket, type_: EventType, details: dict[str, Any]
    ) -> CounterView:
        """Like ``try_ticket_event``, for a ticket the clerk chose: a change is a conflict."""
        try:
            return await self.try_ticket_event(ticket, type_, details)
        except repo.TicketChanged:
            raise Conflict(f"号码 {ticket.display_number} 的状态已变化，请刷新后重试") from None

    async def placement(
        self, ticket: Ticket, service_code: str, rule: TransferPlacement
    ) -> datetime:
        if rule is TransferPlacement.ISSUE_TIME:
            return ticket.issued_at
        head = await repo.head_queue_key(self.conn, self.rules.hall.id, service_code)
        if head is None:
            return min(ticket.issued_at, self.now)
        return min(head - timedelta(microseconds=1), ticket.issued_at)


def _issued_details(cmd: IssueTicket, svc: Service, day: date) -> dict[str, Any]:
    """The ``ticket.issued`` event details, but for the number (added once it is known)."""
    return {
        "hall_id": cmd.hall_id,
        "service_code": svc.code,
        "number_group": svc.group,
        "business_day": day.isoformat(),
        "purpose": str(cmd.purpose),
        "priority_class": cmd.priority_class,
        "appointment_start": _iso(cmd.appointment_start),
        "appointment_end": _iso(cmd.appointment_end),
        "kiosk": cmd.kiosk,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
