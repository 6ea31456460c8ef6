"""ESC/POS printer emulator: jobs made by python-escpos, and DLE EOT status over a real pty."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator

import pytest
from escpos.printer import Dummy, Network
from escpos.printer import Serial as EscposSerial

from firmware_bridge.emulators.line import LineEndpoint
from firmware_bridge.emulators.printer import (
    COVER_OPEN,
    CUTTER_ERROR,
    OK,
    PAPER_NEAR_END,
    PAPER_OUT,
    SILENT,
    Align,
    CutKind,
    EscPosPrinter,
    PrinterCondition,
    PrintJob,
)
from firmware_bridge.pty import PtyPair
from firmware_bridge.transport import open_serial_streams

TIMEOUT = 5.0
QR_URL = "https://zwfw.example.gov.cn/q/A023?d=20240520&h=1"
STATUS_QUERY = b"\x10\x04\x01\x10\x04\x02\x10\x04\x03\x10\x04\x04"


def ticket_bytes() -> bytes:
    """A queue ticket as the kiosk would print it (domain §7.1), rendered by python-escpos."""
    p = Dummy()
    p.hw("INIT")
    p._raw(b"\x1c\x26")  # FS &: Chinese mode, as HB/1 §13 allows the host to send
    p.set(align="center", bold=True, double_height=True, double_width=True)
    p.textln("XX县政务服务中心")
    p.set_with_default(align="center")
    p.textln("不动产登记 · 二楼综合受理区")
    p.set(align="center", double_height=True, double_width=True)
    p.textln("A023")
    p.set_with_default(align="center")
    p.textln("您前面还有 5 人在等候")
    p.textln("取号时间 2024-05-20 09:12:31")
    p.qr(QR_URL, native=True, size=6)
    p.textln("当日有效 · 监督电话 12345")
    p.cut(mode="PART")
    out: bytes = p.output
    return out


def check_ticket(job: PrintJob) -> None:
    assert job.text_lines == (
        "XX县政务服务中心",
        "不动产登记 · 二楼综合受理区",
        "A023",
        "您前面还有 5 人在等候",
        "取号时间 2024-05-20 09:12:31",
        "当日有效 · 监督电话 12345",
    )
    assert [qr.text for qr in job.qr_codes] == [QR_URL]
    assert job.qr_codes[0].module_size == 6
    assert job.cut is CutKind.PARTIAL
    title = job.lines[0].style
    assert (title.bold, title.width, title.height, title.align) == (True, 2, 2, Align.CENTER)
    assert job.lines[1].style.bold is False


def test_python_escpos_ticket_decodes_to_chinese_lines_and_qr() -> None:
    printer = EscPosPrinter()
    assert printer.feed(ticket_bytes()) == b""  # printing never answers on its own
    assert len(printer.jobs) == 1
    check_ticket(printer.jobs[0])
    assert printer.jobs[0].raw == ticket_bytes()
    assert printer.unknown_commands == []


def test_ticket_split_into_single_bytes_gives_the_same_job() -> None:
    # A serial line delivers arbitrary chunks; a GBK character may be cut in half.
    printer = EscPosPrinter()
    data = ticket_bytes()
    for i in range(len(data)):
        printer.feed(data[i : i + 1])
    assert len(printer.jobs) == 1
    check_ticket(printer.jobs[0])


def test_two_jobs_are_recorded_separately_and_barcodes_kept() -> None:
    p = Dummy()
    p.hw("INIT")
    p.textln("第一张")
    p.cut()
    p.hw("INIT")
    p.textln("第二张")
    p.barcode("{BA023", "CODE128", function_type="B")
    p.cut()
    printer = EscPosPrinter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        printer.feed(p.output)
    assert [job.text_lines for job in printer.jobs] == [("第一张",), ("第二张",)]
    assert [b.text for b in printer.jobs[1].barcodes] == ["A023"]
    assert printer.jobs[0].cut is CutKind.FULL


def test_chinese_mode_off_prints_code_page_characters() -> None:
    printer = EscPosPrinter()
    printer.feed(b"\x1b@\x1c.\x1bt\x00caf\x82\n\x1c&\xd6\xd0\n\x1dV\x00")
    assert printer.jobs[0].text_lines == ("café", "中")


@pytest.mark.parametrize(
    ("condition", "answers"),
    [
        (OK, "12 12 12 12"),
        (PAPER_NEAR_END, "12 12 12 1e"),
        (PAPER_OUT, "1a 32 12 7e"),
        (COVER_OPEN, "1a 16 12 12"),
        (CUTTER_ERROR, "1a 52 1a 12"),
    ],
)
def test_status_bytes_per_condition(condition: PrinterCondition, answers: str) -> None:
    printer = EscPosPrinter()
    printer.set_condition(condition)
    assert printer.feed(STATUS_QUERY) == bytes.fromhex(answers)
    assert printer.status_requests == [1, 2, 3, 4]


def test_silent_printer_answers_nothing_but_still_counts_the_query() -> None:
    printer = EscPosPrinter()
    printer.set_condition(SILENT)
    assert printer.feed(STATUS_QUERY) == b""
    assert printer.status_requests == [1, 2, 3, 4]


def test_job_sent_while_paper_out_records_the_condition() -> None:
    printer = EscPosPrinter()
    printer.set_condition(PAPER_OUT)
    printer.feed(ticket_bytes())
    assert printer.jobs[0].condition == PAPER_OUT


class PtyPrinter:
    def __init__(self, printer: EscPosPrinter, endpoint: LineEndpoint, pair: PtyPair) -> None:
        self.printer = printer
        self.endpoint = endpoint
        self.pair = pair
        self.jobs: asyncio.Queue[PrintJob] = asyncio.Queue()
        printer.on_job = self.jobs.put_nowait

    async def next_job(self) -> PrintJob:
        async with asyncio.timeout(TIMEOUT):
            return await self.jobs.get()


@pytest.fixture
async def pty_printer() -> AsyncIterator[PtyPrinter]:
    printer = EscPosPrinter()
    endpoint = LineEndpoint(printer)
    pair = await endpoint.attach_pty()
    yield PtyPrinter(printer, endpoint, pair)
    await endpoint.close()


async def test_status_over_pty_follows_condition_changes(pty_printer: PtyPrinter) -> None:
    reader, writer = await open_serial_streams(pty_printer.pair.slave_path)
    try:
        expected = {
            OK: "12 12 12 12",
            PAPER_NEAR_END: "12 12 12 1e",
            PAPER_OUT: "1a 32 12 7e",
            COVER_OPEN: "1a 16 12 12",
        }
        for condition, answers in expected.items():
            pty_printer.printer.set_condition(condition)
            writer.write(STATUS_QUERY)
            async with asyncio.timeout(TIMEOUT):
                assert await reader.readexactly(4) == bytes.fromhex(answers)

        # Silent: the host's 300 ms wait (HB/1 §13) ends without a byte ...
        pty_printer.printer.set_condition(SILENT)
        writer.write(b"\x10\x04\x01")
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await reader.readexactly(1)
        # ... and nothing late arrives: after recovery the next byte is the fresh answer.
        pty_printer.printer.set_condition(OK)
        writer.write(b"\x10\x04\x04")
        async with asyncio.timeout(TIMEOUT):
            assert await reader.readexactly(1) == b"\x12"

        writer.write(ticket_bytes())
        check_ticket(await pty_printer.next_job())
    finally:
        writer.close()


@pytest.mark.parametrize(
    ("condition", "online", "paper"),
    [(OK, True, 2), (PAPER_NEAR_END, True, 1), (PAPER_OUT, False, 0), (COVER_OPEN, False, 2)],
)
async def test_python_escpos_serial_client_reads_status(
    pty_printer: PtyPrinter, condition: PrinterCondition, online: bool, paper: int
) -> None:
    pty_printer.printer.set_condition(condition)

    def query() -> tuple[bool, int]:
        client = EscposSerial(devfile=pty_printer.pair.slave_path, timeout=0.3, dsrdtr=False)
        client.open()
        try:
            return client.is_online(), client.paper_status()
        finally:
            client.close()

    assert await asyncio.to_thread(query) == (online, paper)


async def test_network_printer_on_port_9100_style_tcp() -> None:
    printer = EscPosPrinter()
    jobs: asyncio.Queue[PrintJob] = asyncio.Queue()
    printer.on_job = jobs.put_nowait
    async with LineEndpoint(printer) as endpoint:
        port = await endpoint.serve_tcp("127.0.0.1", 0)

        def send() -> None:
            client = Network("127.0.0.1", port=port, timeout=5)
            client.open()
            client._raw(ticket_bytes())
            client.close()

        await asyncio.to_thread(send)
        async with asyncio.timeout(TIMEOUT):
            check_ticket(await jobs.get())
