"""Print jobs against the ESC/POS printer emulator: no ticket is ever lost."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from firmware_bridge.emulators.line import LineEndpoint
from firmware_bridge.emulators.printer import (
    COVER_OPEN,
    OK,
    PAPER_NEAR_END,
    PAPER_OUT,
    SILENT,
    EscPosPrinter,
    PrinterCondition,
    PrintJob,
)
from hall.domain.errors import QuotaExhausted
from hall.ports import FixedClock
from hall.services.directory import Directory
from hall.services.queue import IssueTicket, QueueService
from kiosk import repo
from kiosk.service import PrintService
from tests.kiosk.conftest import Bench, kiosk_config, numbers_of


async def states(pool: asyncpg.Pool) -> list[tuple[str, str, str | None]]:
    rows = await pool.fetch(
        "SELECT t.display_number, j.state, j.reason FROM kiosk_print_jobs j"
        " JOIN tickets t ON t.id = j.ticket_id ORDER BY j.id"
    )
    return [(r["display_number"], r["state"], r["reason"]) for r in rows]


async def alarm_kinds(pool: asyncpg.Pool) -> list[str]:
    return [a[2] for a in reversed(await repo.alarms(pool, "test"))]


async def test_tickets_print_in_order_with_their_numbers_and_qr(
    bench: Bench, pool: asyncpg.Pool
) -> None:
    views = [await bench.issue() for _ in range(3)]
    assert [await bench.settled(v) for v in views] == ["printed"] * 3
    assert bench.printed_numbers() == ["A001", "A002", "A003"]
    job = bench.printer.jobs[0]
    assert [q.text for q in job.qr_codes] == [f"http://hall.test/t/{views[0].token}"]
    assert "不动产登记" in job.text_lines
    assert bench.printer.status_requests[:4] == [1, 2, 3, 4]  # HB1.md §13, before the job
    assert [s.state for s in await repo.printer_states(pool, "test")] == ["ok"]
    assert await alarm_kinds(pool) == []


async def test_a_ticket_without_a_kiosk_printer_has_no_job(
    bench: Bench, pool: asyncpg.Pool
) -> None:
    await bench.issue(kiosk="k2")  # k2 has no printer: the page shows the ticket
    await bench.issue(kiosk=None)  # staff at a desk
    printed = await bench.issue()
    assert await bench.settled(printed) == "printed"
    assert await states(pool) == [("A003", "printed", None)]


async def test_near_end_prints_and_warns(bench: Bench, pool: asyncpg.Pool) -> None:
    bench.printer.set_condition(PAPER_NEAR_END)
    view = await bench.issue()
    assert await bench.settled(view) == "printed"
    assert [s.state for s in await repo.printer_states(pool, "test")] == ["near_end"]
    assert await alarm_kinds(pool) == ["near_end"]


@pytest.mark.parametrize(
    ("condition", "reason"),
    [(PAPER_OUT, "paper_out"), (COVER_OPEN, "cover_open"), (SILENT, "no_answer")],
)
async def test_a_printer_that_cannot_print_holds_the_job_and_prints_it_on_recovery(
    bench: Bench, pool: asyncpg.Pool, condition: PrinterCondition, reason: str
) -> None:
    bench.printer.set_condition(condition)
    view = await bench.issue()
    assert await bench.settled(view) == "held"
    assert bench.printer.jobs == []
    assert await states(pool) == [("A001", "held", reason)]
    assert await alarm_kinds(pool) == [reason]

    bench.printer.set_condition(OK)  # paper loaded, cover closed, cable back
    job = await bench.service.wait_settled(view.ticket.id, 0.0)
    assert job is not None
    await _wait_printed(bench, pool, 1)
    assert bench.printed_numbers() == ["A001"]
    assert await alarm_kinds(pool) == [reason, "ok"]


async def _wait_printed(bench: Bench, pool: asyncpg.Pool, count: int) -> None:
    """Until ``count`` jobs are printed; the worker probes every 50 ms."""
    async with asyncio.timeout(10):
        async with bench.service.changed:
            while (
                await pool.fetchval("SELECT count(*) FROM kiosk_print_jobs WHERE state = 'printed'")
                < count
            ):
                await bench.service.changed.wait()


async def test_paper_out_mid_queue_loses_no_ticket(bench: Bench, pool: asyncpg.Pool) -> None:
    def after_job(job: PrintJob) -> None:
        if len(bench.printer.jobs) == 2:
            bench.printer.set_condition(PAPER_OUT)  # the roll ends while A002 is cut

    bench.printer.on_job = after_job
    views = [await bench.issue() for _ in range(5)]
    assert [await bench.settled(v) for v in views] == [
        "printed",
        "held",  # out of paper at its end: it may be torn, so it prints again
        "held",
        "held",
        "held",
    ]
    assert await alarm_kinds(pool) == ["paper_out"]

    bench.printer.set_condition(OK)
    await _wait_printed(bench, pool, 5)
    numbers = bench.printed_numbers()
    assert numbers == ["A001", "A002", "A002", "A003", "A004", "A005"]
    assert [s for _, s, _ in await states(pool)] == ["printed"] * 5


async def test_staff_reprint_and_cancel(bench: Bench, pool: asyncpg.Pool) -> None:
    view = await bench.issue()
    assert await bench.settled(view) == "printed"
    job_id = await bench.service.reprint("test", "a001", None, "staff:c001")
    bench.service.wake("test", "k1")
    await _wait_printed(bench, pool, 2)
    assert bench.printed_numbers() == ["A001", "A001"]
    assert "（补打）" in bench.printer.jobs[1].text_lines
    assert (await repo.job(pool, job_id)).kind == "reprint"  # type: ignore[union-attr]

    bench.printer.set_condition(PAPER_OUT)
    held = await bench.issue()
    assert await bench.settled(held) == "held"
    job = await repo.latest_job_of_ticket(pool, held.ticket.id)
    assert job is not None
    await bench.service.cancel("test", job.id, "staff:c001")
    bench.printer.set_condition(OK)
    third = await bench.issue()
    assert await bench.settled(third) == "printed"
    assert bench.printed_numbers() == ["A001", "A001", "A003"]  # A002 was cancelled
    assert [s for _, s, _ in await states(pool)] == ["printed", "printed", "cancelled", "printed"]


async def test_jobs_left_by_a_crash_print_at_the_next_start(
    pool: asyncpg.Pool, clock: FixedClock
) -> None:
    """Tickets committed while no printer worker ran (a kill -9 between the ticket's commit
    and its printing, or in the middle of printing) are printed when the server starts."""
    printer = EscPosPrinter(chinese_default=False)
    async with LineEndpoint(printer) as endpoint:
        port = await endpoint.serve_tcp()
        directory = Directory(kiosk_config(f"tcp://127.0.0.1:{port}"))
        queue = QueueService(pool, directory, clock)
        async with pool.acquire() as conn:  # as the run before the crash left it
            await repo.sync_printers(conn, [repo.PrinterRow("test", "k1", "p1")], clock.now())
        for _ in range(3):
            await queue.issue(IssueTicket(hall_id="test", service_code="BDC", kiosk="k1"))
        # The first was being printed when the process died.
        await pool.execute("UPDATE kiosk_print_jobs SET state = 'printing' WHERE id = 1")
        service = PrintService(pool, directory, queue, clock, probe_s=0.05, status_timeout_s=0.2)
        await service.start()
        try:
            bench = Bench(printer, endpoint, service, queue)
            await _wait_printed(bench, pool, 3)
        finally:
            await service.stop()
    assert sorted(numbers_of(j) for j in printer.jobs) == ["A001", "A002", "A003"]
    assert [s for _, s, _ in await states(pool)] == ["printed"] * 3


async def test_a_printer_on_a_serial_line(pool: asyncpg.Pool, clock: FixedClock) -> None:
    printer = EscPosPrinter(chinese_default=False)
    async with LineEndpoint(printer) as endpoint:
        pair = await endpoint.attach_pty()
        directory = Directory(kiosk_config(pair.slave_path))
        queue = QueueService(pool, directory, clock)
        service = PrintService(pool, directory, queue, clock, probe_s=0.05, status_timeout_s=0.3)
        await service.start()
        try:
            bench = Bench(printer, endpoint, service, queue)
            view = await bench.issue()
            assert await bench.settled(view) == "printed"
        finally:
            await service.stop()
    assert bench.printed_numbers() == ["A001"]


async def test_ticket_and_job_are_one_statement(pool: asyncpg.Pool, clock: FixedClock) -> None:
    """Every kiosk ticket has its job; a ticket refused by its quota leaves no job behind; a
    job cannot exist without its ticket."""
    directory = Directory(kiosk_config(quota=1))
    async with pool.acquire() as conn:
        await repo.sync_printers(conn, [repo.PrinterRow("test", "k1", "p1")], clock.now())
    queue = QueueService(pool, directory, clock)
    view = await queue.issue(IssueTicket(hall_id="test", service_code="BDC", kiosk="k1"))
    assert await states(pool) == [(view.ticket.display_number, "queued", None)]
    with pytest.raises(QuotaExhausted):
        await queue.issue(IssueTicket(hall_id="test", service_code="BDC", kiosk="k1"))
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await pool.execute(
            "INSERT INTO kiosk_print_jobs (ticket_id, hall_id, kiosk, created_at, updated_at)"
            " VALUES (999, 'test', 'k1', now(), now())"
        )
    assert await states(pool) == [(view.ticket.display_number, "queued", None)]


async def test_an_idle_printer_is_probed_so_paper_out_is_known_before_a_tap(
    bench: Bench, pool: asyncpg.Pool
) -> None:
    key = ("test", "k1")
    bench.printer.set_condition(PAPER_NEAR_END)
    assert await bench.service.probe(key) == "near_end"
    bench.printer.set_condition(PAPER_OUT)
    assert await bench.service.probe(key) == "paper_out"
    assert await bench.service.probe(key) == "paper_out"  # no second alarm
    bench.printer.set_condition(OK)
    assert await bench.service.probe(key) == "ok"
    assert await alarm_kinds(pool) == ["near_end", "paper_out", "ok"]
    assert bench.printer.jobs == []


async def test_the_worker_probes_by_itself_when_idle(pool: asyncpg.Pool, clock: FixedClock) -> None:
    printer = EscPosPrinter(chinese_default=False)
    printer.set_condition(PAPER_OUT)
    async with LineEndpoint(printer) as endpoint:
        port = await endpoint.serve_tcp()
        directory = Directory(kiosk_config(f"tcp://127.0.0.1:{port}"))
        service = PrintService(
            pool, directory, QueueService(pool, directory, clock), clock, idle_probe_s=0.05
        )
        await service.start()
        try:
            async with asyncio.timeout(10), service.changed:
                while [s.state for s in await repo.printer_states(pool, "test")] != ["paper_out"]:
                    await service.changed.wait()
        finally:
            await service.stop()


async def test_a_ticket_that_cannot_be_rendered_does_not_block_the_queue(
    bench: Bench, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = bench.service.render
    broken = {"A001"}

    async def render(job: repo.JobRow) -> bytes:
        if job.number in broken:
            raise ValueError("a layout this code did not expect")
        return await real(job)

    monkeypatch.setattr(bench.service, "render", render)
    first, second = await bench.issue(), await bench.issue()
    assert await bench.settled(first) == "cancelled"
    assert await bench.settled(second) == "printed"
    assert await states(pool) == [("A001", "cancelled", "render_error"), ("A002", "printed", None)]
