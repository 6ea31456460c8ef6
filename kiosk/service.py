"""Print jobs: one worker per configured printer prints its kiosk's jobs in order.

A job exists from the ticket's own INSERT (migration 0030), so it is in the database before
anyone is told about the ticket. Several server processes may share one database: each
printer is driven by one process at a time, the holder of its lease (a session advisory lock
on the service's lease connection). The others try to take the lease every ``probe_s``; the
process that takes it first prints again any job the previous holder left half-done (its
session ended, so its lock did). The worker checks the printer (DLE EOT) before and after
each job; a printer with paper out, cover open, an error or no answer holds the job and every
job queued behind it (the kiosk page then shows the ticket on screen), records an alarm, and
is probed every ``probe_s`` until it can print again, when the held jobs print in order.
Paper near its end prints on with a warning.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date

import asyncpg

from hall.config.models import Hall, HallConfig, Printer
from hall.domain.calendar import business_day
from hall.domain.errors import InvalidInput, NotFound
from hall.ports import Clock
from hall.services.directory import Directory
from hall.services.queue import QueueService
from kiosk import guide, repo, standing, tunnel
from kiosk.escpos import Encoding, PrinterStatus, encode
from kiosk.layout import Template, TicketFacts, ticket_lines
from kiosk.printer import Opener, Outcome, PrinterDriver, open_channel

log = logging.getLogger(__name__)

PROBE_S = 2.0
"""How often a printer that cannot print is asked again (cheap: three status bytes)."""
IDLE_PROBE_S = 60.0
"""How often an idle printer is asked, so paper out or near its end is known before a tap."""
CHANNEL = "kiosk_print"

Key = tuple[str, str]  # (hall, kiosk)


def template_of(hall: Hall) -> Template:
    t = hall.ticket
    return Template(tuple(t.header), tuple(t.footer), tuple(t.after_qr), t.page_url)


def state_of(status: PrinterStatus | None, reason: str | None = None) -> str:
    if status is None:
        return "no_answer"
    if status.problem is not None:
        return status.problem
    if reason is not None:
        return reason
    return "near_end" if status.near_end else "ok"


@dataclass
class _Worker:
    printer: Printer
    driver: PrinterDriver
    wake: asyncio.Event
    task: asyncio.Task[None] | None = None
    leased: bool = False
    """This process holds the printer's lease and may print on it."""


LEASE_CLASS = 30
"""First key of the printers' advisory locks (two-int keyspace; 30: the kiosk's range)."""


class PrintService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        directory: Directory,
        queue: QueueService,
        clock: Clock,
        *,
        opener: Opener = open_channel,
        probe_s: float = PROBE_S,
        idle_probe_s: float = IDLE_PROBE_S,
        status_timeout_s: float | None = None,
        device_link: tunnel.DeviceLink | None = None,
    ) -> None:
        self.pool = pool
        self.directory = directory
        self.queue = queue
        self.clock = clock
        self.probe_s = probe_s
        self.idle_probe_s = idle_probe_s
        self.changed = asyncio.Condition()
        self.workers: dict[Key, _Worker] = {}
        self.device_link = device_link
        self._lease_conn: asyncpg.pool.PoolConnectionProxy | None = None
        self._lease_lock = asyncio.Lock()
        polls = {b.name: b.options.poll_interactive_ms / 1000 for b in directory.config.buses}
        for printer in directory.config.printers:
            if printer.url is not None:
                driver = PrinterDriver(printer.url, opener=opener)
            elif printer.tunnel is not None and device_link is not None:
                # Behind a kiosk board: its answers wait for the board's next poll.
                driver = PrinterDriver(
                    tunnel.tunnel_url(printer.tunnel),
                    opener=tunnel.opener(device_link),
                    status_timeout_s=tunnel.status_timeout(polls.get(printer.tunnel.bus, 0.25)),
                )
            else:
                log.warning("printer %s: no device link for its HB/1 tunnel", printer.name)
                continue
            if status_timeout_s is not None:
                driver.status_timeout_s = status_timeout_s
            self.workers[(printer.hall, printer.kiosk)] = _Worker(printer, driver, asyncio.Event())

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        now = self.clock.now()
        rows = [
            repo.PrinterRow(w.printer.hall, k[1], w.printer.name) for k, w in self.workers.items()
        ]
        async with self.pool.acquire() as conn:
            await repo.sync_printers(conn, rows, now)
        for key, worker in self.workers.items():
            worker.wake.set()  # jobs queued or held before this start
            worker.task = asyncio.create_task(self._run(key, worker), name=f"printer {key}")

    async def stop(self) -> None:
        tasks = [w.task for w in self.workers.values() if w.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for worker in self.workers.values():
            worker.task = None
            await worker.driver.close()
        await self._drop_leases()

    # --- leases: one process prints on a printer ------------------------------------------

    async def _drop_leases(self) -> None:
        """Forget every lease and give back the lease connection (its session's locks end)."""
        conn, self._lease_conn = self._lease_conn, None
        for worker in self.workers.values():
            worker.leased = False
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.execute("SELECT pg_advisory_unlock_all()")
            with contextlib.suppress(Exception):
                await self.pool.release(conn)

    async def lease(self, key: Key) -> bool:
        """Whether this process may print on the printer now: it holds the lease (still, as
        the lease connection answers) or has just taken it."""
        worker = self.workers[key]
        async with self._lease_lock:
            try:
                if self._lease_conn is None:
                    self._lease_conn = await self.pool.acquire()
                conn = self._lease_conn
                if worker.leased:
                    await conn.fetchval("SELECT 1")  # the session, and so its locks, lives
                    return True
                tunnelled = worker.printer.tunnel
                if tunnelled is not None and not (
                    self.device_link is not None and self.device_link.reaches(tunnelled.bus)
                ):
                    # Its answers reach only the process that runs its board's bus: the
                    # printer is that process's to drive.
                    return False
                name = f"kiosk-printer/{worker.printer.hall}/{worker.printer.name}"
                got = await conn.fetchval(
                    "SELECT pg_try_advisory_lock($1, hashtext($2))", LEASE_CLASS, name
                )
                if not got:
                    return False
                worker.leased = True
                hall_id, kiosk = key
                # The previous holder's session ended mid-job: print that job again (a ticket
                # twice beats none). Nobody else prints on this printer now.
                interrupted = await repo.requeue_interrupted(
                    self.pool, self.clock.now(), hall_id, kiosk
                )
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                log.warning("printer leases lost with their database connection")
                await self._drop_leases()
                return False
        log.info("printer %s: this process prints on it", worker.printer.name)
        if interrupted:
            log.warning("%d print job(s) interrupted by a stop are printed again", interrupted)
        return True

    def wake(self, hall_id: str, kiosk: str) -> None:
        """Look for jobs of this kiosk now."""
        worker = self.workers.get((hall_id, kiosk))
        if worker is not None:
            worker.wake.set()

    def notified(self, payload: str) -> None:
        """A NOTIFY on ``kiosk_print``: a job was added for {"hall", "kiosk"}."""
        try:
            data = json.loads(payload)
            key = (str(data["hall"]), str(data["kiosk"]))
        except (ValueError, KeyError, TypeError):
            log.warning("bad %s payload %r", CHANNEL, payload)
            return
        self.wake(*key)

    # --- the worker -----------------------------------------------------------------------

    async def _run(self, key: Key, worker: _Worker) -> None:
        idle_check = False
        while True:
            held = False
            try:
                if not await self.lease(key):
                    held = True  # another process prints here: ask again at the probe period
                else:
                    if idle_check:
                        await self.probe(key)
                    held = await self.drain(key)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                log.exception("printer %s: printing failed; trying again", worker.printer.name)
                held = True
            idle_check = False
            try:
                async with asyncio.timeout(self.probe_s if held else self.idle_probe_s):
                    await worker.wake.wait()
            except TimeoutError:
                idle_check = not held
            worker.wake.clear()

    async def probe(self, key: Key) -> str:
        """Ask an idle printer how it is; a change is stored and raises an alarm."""
        worker = self.workers[key]
        state = state_of(await worker.driver.status())
        async with self.pool.acquire() as conn, conn.transaction():
            await self._note_state(conn, worker, state)
        await self._changed()
        return state

    async def drain(self, key: Key) -> bool:
        """Print the kiosk's jobs until none is left (False) or the printer stops (True)."""
        worker = self.workers[key]
        hall_id, kiosk = key
        while True:
            async with self.pool.acquire() as conn:
                if not await repo.has_open_jobs(conn, hall_id, kiosk):
                    return False
            if not await self.lease(key):
                return True  # the lease was lost: whoever holds it now prints
            # The printer is asked (DLE EOT) while the job is claimed and laid out: its round
            # trip (for a tunnel, a poll of the kiosk board) overlaps the database's.
            asking = asyncio.ensure_future(worker.driver.status())
            try:
                job, data = await self._next_job(hall_id, kiosk)
            finally:
                status = await asking
            ready = status is not None and status.can_print
            if job is None:
                if not ready:
                    await self._stopped(worker, state_of(status))
                return not ready
            if data is None:
                continue  # it could not be laid out and was cancelled
            if not ready:
                await self._finish(worker, job, Outcome(False, status, state_of(status)))
                return True
            outcome = await worker.driver.print_job(data, status)
            await self._finish(worker, job, outcome)
            if not outcome.printed:
                return True

    async def _next_job(self, hall_id: str, kiosk: str) -> tuple[repo.JobRow | None, bytes | None]:
        """Claim the kiosk's next job and lay it out (None: no job, or none it could print)."""
        async with self.pool.acquire() as conn:
            job = await repo.claim_next(conn, hall_id, kiosk, self.clock.now())
        if job is None:
            return None, None
        await self._changed()
        try:
            return job, await self.render(job)
        except Exception:
            # A ticket this code cannot lay out (a config it did not expect) would block
            # every job behind it: it is cancelled and logged; the citizen has the ticket
            # on the kiosk screen, and staff can reprint once the cause is fixed.
            log.exception("print job %d cannot be rendered; cancelled", job.id)
            async with self.pool.acquire() as conn:
                await repo.cancel_printing(conn, job.id, "render_error", self.clock.now())
            await self._changed()
            return job, None

    async def _finish(self, worker: _Worker, job: repo.JobRow, outcome: Outcome) -> None:
        now = self.clock.now()
        state = state_of(outcome.status, None if outcome.printed else outcome.reason)
        # The job's new state and the printer's alarm commit together: whoever sees the one
        # sees the other.
        async with self.pool.acquire() as conn, conn.transaction():
            if outcome.printed:
                await repo.mark_printed(conn, job.id, now)
            else:
                await repo.hold(conn, job.id, outcome.reason or "error", now)
                await repo.hold_queued(conn, job.hall_id, job.kiosk, outcome.reason or "error", now)
            await self._note_state(conn, worker, state)
        await self._changed()

    async def _stopped(self, worker: _Worker, state: str) -> None:
        now = self.clock.now()
        async with self.pool.acquire() as conn, conn.transaction():
            await repo.hold_queued(conn, worker.printer.hall, worker.printer.kiosk, state, now)
            await self._note_state(conn, worker, state)
        await self._changed()

    async def _note_state(self, conn: asyncpg.Connection, worker: _Worker, state: str) -> None:
        p = worker.printer
        old = await repo.set_printer_state(conn, p.hall, p.name, p.kiosk, state, self.clock.now())
        if old is None:
            return
        if state == "ok":
            log.info("printer %s of kiosk %s/%s prints again", p.name, p.hall, p.kiosk)
        elif state == "near_end":
            log.warning("printer %s of kiosk %s/%s: paper near its end", p.name, p.hall, p.kiosk)
        else:
            log.error("printer %s of kiosk %s/%s: %s; jobs held", p.name, p.hall, p.kiosk, state)

    async def _changed(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    # --- rendering ------------------------------------------------------------------------

    async def render(self, job: repo.JobRow) -> bytes:
        """The job's ticket (with its place in the queue as of now) or notice slip as ESC/POS
        bytes."""
        if job.kind == "notice":
            return self.render_notice(job)
        assert job.token is not None  # every job but a notice has its ticket
        view = await self.queue.ticket_status(job.token)
        rules = self.directory.hall(job.hall_id)
        svc = rules.service(view.ticket.service_code)
        worker = self.workers.get((job.hall_id, job.kiosk))
        paper = worker.printer.paper_width if worker else 80
        encoding = Encoding(str(worker.printer.encoding)) if worker else Encoding.GBK
        now = self.clock.now()
        said = await standing.read(self.pool, rules, view, now)
        facts = TicketFacts(
            hall=rules.hall.name,
            number=view.ticket.display_number,
            service=view.service_name,
            zone=svc.zone,
            token=job.token,
            issued_at=view.ticket.issued_at.astimezone(rules.tz),
            people_ahead=None if said is None else said.people_ahead,
            estimated_wait_s=view.estimated_wait_s,
            wait_low_s=view.wait_low_s,
            wait_high_s=view.wait_high_s,
            reprint=job.kind == "reprint",
            wait_line="" if said is None else said.wait_text,
            note=None if said is None else said.note,
        )
        return encode(ticket_lines(facts, template_of(rules.hall), paper), encoding)

    def _paper(self, hall_id: str, kiosk: str) -> tuple[int, Encoding]:
        worker = self.workers.get((hall_id, kiosk))
        if worker is None:
            return 80, Encoding.GBK
        return worker.printer.paper_width, Encoding(str(worker.printer.encoding))

    def render_notice(self, job: repo.JobRow) -> bytes:
        rules = self.directory.hall(job.hall_id)
        kiosk = rules.hall.kiosk(job.kiosk)
        entries = guide.entries_for(self.directory.config, rules.hall, kiosk) if kiosk else []
        entry = next((e for e in entries if e.matter.impl_code == job.matter), None)
        if entry is None:
            raise NotFound(f"事项 {job.matter} 不在本机的办事指南中", matter=job.matter)
        paper, encoding = self._paper(job.hall_id, job.kiosk)
        facts = guide.NoticeFacts(rules.hall.name, entry, self.clock.now().astimezone(rules.tz))
        return encode(guide.notice_lines(facts, paper), encoding)

    async def notice(self, hall_id: str, kiosk: str, matter: str) -> int:
        """Queue the notice slip (一次性告知单) of ``matter`` on the kiosk's printer."""
        if (hall_id, kiosk) not in self.workers:
            raise NotFound("本机没有打印机，请拍照保存告知单", kiosk=kiosk)
        async with self.pool.acquire() as conn:
            return await repo.add_notice(conn, hall_id, kiosk, matter, self.clock.now())

    async def wait_job(self, job_id: int, timeout_s: float) -> repo.JobRow | None:
        """The job once printed, held or cancelled, or as it is at the timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            async with self.changed:
                job = await repo.job(self.pool, job_id)
                left = deadline - loop.time()
                if job is None or job.state not in ("queued", "printing") or left <= 0:
                    return job
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(left, 0.5)):
                        await self.changed.wait()

    # --- queries and staff actions --------------------------------------------------------

    async def wait_settled(self, ticket_id: int, timeout_s: float) -> repo.JobRow | None:
        """The ticket's latest job once printed, held or cancelled, or as it is at the timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            async with self.changed:
                job = await repo.latest_job_of_ticket(self.pool, ticket_id)
                left = deadline - loop.time()
                if job is None or job.state not in ("queued", "printing") or left <= 0:
                    return job
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(left, 0.5)):
                        await self.changed.wait()

    async def reprint(self, hall_id: str, number: str, kiosk: str | None, by: str) -> int:
        """补打: a new job for today's ticket ``number`` at ``kiosk`` (default: where it was
        issued)."""
        rules = self.directory.hall(hall_id)
        now = self.clock.now()
        day: date = business_day(now, rules.tz, rules.hall.day_boundary)
        async with self.pool.acquire() as conn:
            found = await repo.ticket_of_number(conn, hall_id, number.strip().upper(), day)
            if found is None:
                raise NotFound(f"今日没有 {number} 号", number=number)
            ticket_id, issued_at = found
            target = kiosk or issued_at
            if target is None or (hall_id, target) not in self.workers:
                raise InvalidInput("请指定一台有打印机的取号机", kiosk=target)
            return await repo.add_reprint(conn, ticket_id, hall_id, target, by, now)

    async def cancel(self, hall_id: str, job_id: int, by: str) -> None:
        self.directory.hall(hall_id)
        async with self.pool.acquire() as conn:
            if not await repo.cancel(conn, hall_id, job_id, by, self.clock.now()):
                raise NotFound("没有可取消的打印任务", job=job_id)
        await self._changed()


@contextlib.asynccontextmanager
async def running(service: PrintService) -> AsyncIterator[PrintService]:
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


def printers_of(config: HallConfig, hall_id: str) -> list[Printer]:
    return [p for p in config.printers if p.hall == hall_id]
