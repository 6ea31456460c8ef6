"""Golden tests: a rendered ticket's bytes read back to the expected GBK lines, QR and cut."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest
from escpos.printer import Dummy

from firmware_bridge.emulators.printer import (
    COVER_OPEN,
    OK,
    PAPER_NEAR_END,
    PAPER_OUT,
    CutKind,
    EscPosPrinter,
    PrinterCondition,
)
from kiosk.escpos import (
    Encoding,
    PrinterStatus,
    StatusError,
    decode_status,
    encode,
    qr_bytes,
    status_request,
)
from kiosk.layout import COLUMNS, Template, TicketFacts, ticket_lines, width_of, wrap
from tests.kiosk.escpos_reader import read

URL = "http://10.1.2.3:8080/t/{token}"
TOKEN = "q8Jx2mVb0aZr7yTkLw3nEg"
FACTS = TicketFacts(
    hall="XX县政务服务中心",
    number="A023",
    service="不动产登记",
    zone="二楼综合受理区",
    token=TOKEN,
    issued_at=datetime(2024, 5, 20, 9, 12, 31),
    people_ahead=5,
    estimated_wait_s=600,
)
TEMPLATE = Template(
    header=("{hall}",),
    footer=("请留意叫号，过号请重新取号",),
    after_qr=("当日有效 · 监督电话 12345",),
    page_url=URL,
)


def test_golden_80mm_ticket() -> None:
    data = encode(ticket_lines(FACTS, TEMPLATE, 80))
    page = read(data)
    assert page.initialised and page.chinese
    assert page.texts == [
        "XX县政务服务中心",
        "不动产登记 · 二楼综合受理区",
        "A023",
        "您前面还有 5 人在等候",
        "预计等候约 7 至 13 分钟",
        "取号时间 2024-05-20 09:12",
        "请留意叫号，过号请重新取号",
        "",  # the line feed that ends the QR code
        "当日有效 · 监督电话 12345",
    ]
    title, number = page.lines[0], page.lines[2]
    assert (title.width, title.height, title.bold, title.align) == (2, 2, True, 1)
    assert (number.width, number.height, number.bold) == (3, 3, True)
    assert (page.lines[1].width, page.lines[1].bold) == (1, False)
    assert page.qr == [f"http://10.1.2.3:8080/t/{TOKEN}"]
    assert page.cuts == ["partial"]
    assert data.endswith(b"\x1dV\x01")
    assert b"A023" in data and "不动产登记".encode("gbk") in data
    assert len(data) <= 400, len(data)


def test_58mm_ticket_fits_32_columns_and_shrinks_a_long_title() -> None:
    facts = replace(FACTS, hall="某某市某某区政务服务中心")
    page = read(encode(ticket_lines(facts, TEMPLATE, 58)))
    for line in page.lines:
        assert width_of(line.text) * line.width <= COLUMNS[58], line
    assert page.lines[0].text == "某某市某某区政务服务中心"  # 24 columns: too wide at 2×
    assert page.lines[0].width == 1 and page.lines[0].bold
    assert "A023" in page.texts and page.qr == [f"http://10.1.2.3:8080/t/{TOKEN}"]


def test_the_printer_emulator_reads_the_same_ticket() -> None:
    data = encode(ticket_lines(FACTS, TEMPLATE, 80))
    printer = EscPosPrinter(chinese_default=False)
    assert printer.feed(data) == b""
    assert printer.unknown_commands == []
    [job] = printer.jobs
    assert job.text_lines == tuple(t for t in read(data).texts if t)
    assert [q.text for q in job.qr_codes] == [f"http://10.1.2.3:8080/t/{TOKEN}"]
    assert job.cut is CutKind.PARTIAL
    assert (job.lines[0].style.width, job.lines[0].style.bold) == (2, True)
    assert job.lines[2].style.width == 3


def test_qr_bytes_equal_python_escpos_native_qr() -> None:
    reference = Dummy()
    reference.qr(f"http://10.1.2.3:8080/t/{TOKEN}", native=True, size=6)
    assert qr_bytes(f"http://10.1.2.3:8080/t/{TOKEN}", 6) == reference.output


def test_without_page_url_no_qr_and_reprint_is_marked() -> None:
    facts = replace(FACTS, reprint=True)
    page = read(encode(ticket_lines(facts, Template(), 80)))
    assert page.qr == []
    assert "（补打）" in page.texts


def test_no_open_window_says_so_instead_of_a_wait() -> None:
    facts = replace(FACTS, served_now=False, estimated_wait_s=None)
    texts = read(encode(ticket_lines(facts, TEMPLATE, 80))).texts
    assert "当前暂无窗口办理此业务，请留意叫号" in texts
    assert not any("前面还有" in t for t in texts)


def test_gb18030_prints_a_rare_hanzi_gbk_lacks() -> None:
    facts = replace(FACTS, hall="𠮷县政务服务中心")
    gbk = encode(ticket_lines(facts, Template(), 80), Encoding.GBK)
    gb18030 = encode(ticket_lines(facts, Template(), 80), Encoding.GB18030)
    assert read(gbk).texts[0] == "?县政务服务中心"
    assert read(gb18030, "gb18030").texts[0] == "𠮷县政务服务中心"


def test_wrap_never_splits_a_character_and_respects_columns() -> None:
    text = "请携带身份证原件及复印件、不动产权证书到二楼综合受理区办理"
    lines = wrap(text, 16)
    assert "".join(lines) == text
    assert all(width_of(line) <= 16 for line in lines)


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (OK, PrinterStatus()),
        (PAPER_NEAR_END, PrinterStatus(near_end=True)),
        (PAPER_OUT, PrinterStatus(offline=True, paper_out=True, near_end=True)),
        (COVER_OPEN, PrinterStatus(offline=True, cover_open=True)),
    ],
)
def test_status_from_the_emulators_answers(
    condition: PrinterCondition, expected: PrinterStatus
) -> None:
    printer = EscPosPrinter()
    printer.set_condition(condition)
    answers = printer.feed(b"".join(status_request(n) for n in (1, 2, 4)))
    status = decode_status(dict(zip((1, 2, 4), answers, strict=True)))
    assert status == expected
    assert status.can_print is (condition in (OK, PAPER_NEAR_END))


def test_a_byte_that_is_no_status_answer_is_refused() -> None:
    with pytest.raises(StatusError):
        decode_status({1: 0x41})  # 'A': text echoed by a wrong device, not a status


def test_service_wait_text_on_kiosk_buttons() -> None:
    from kiosk.layout import service_wait_text

    assert service_wait_text(None) == "暂无窗口办理"
    assert service_wait_text(20) == "无需等候"
    assert service_wait_text(600) == "约 7 至 13 分钟"
    # The estimator's own range, when it gives one, instead of ±25 %.
    assert service_wait_text(600, 300, 1500) == "约 5 至 25 分钟"
    assert service_wait_text(30, 0, 150) == "约 1 至 3 分钟"


@pytest.mark.parametrize("paper", [58, 80])
def test_the_longest_ticket_stays_within_400_bytes(paper: int) -> None:
    """An appointment ticket, reprinted, with the zone and a two-line template: the most a
    ticket says (a ticket at 9600 baud takes 1 ms a byte on the wire)."""
    facts = replace(
        FACTS,
        hall="某某市某某区政务服务中心",
        people_ahead=None,
        reprint=True,
        wait_line="预约时段 10:40-11:10",
        note="预约号在预约时段优先叫号，请于 10:40 前到场",
    )
    data = encode(ticket_lines(facts, TEMPLATE, paper))
    assert len(data) <= 400, len(data)
    page = read(data)
    assert "预约时段 10:40-11:10" in page.texts and page.qr and page.cuts == ["partial"]
