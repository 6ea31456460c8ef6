"""What a waiting ticket's holder reads about their wait: a ticket transferred to a closed window
says the window is not open (not "0 people ahead, 0 s"); an appointment ticket shows its slot,
not the walk-in queue; on the printed ticket, the kiosk's screen and the /t page alike."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from hall.config.models import HallConfig
from hall.ports import FixedClock
from hall.services.directory import Directory
from hall.services.queue import IssueTicket, QueueService
from kiosk import repo
from kiosk.escpos import encode
from kiosk.layout import Template, TicketFacts, ticket_lines
from kiosk.service import PrintService
from kiosk.standing import Waiting, standing
from tests.access_helpers import admin_headers, device_headers, staff_headers
from tests.kiosk.conftest import kiosk_config
from tests.kiosk.escpos_reader import read

Client = TestClient[web.Request, web.Application]
TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # 10:00 in the hall
EARLY = timedelta(minutes=15)
BASE = Waiting(people_ahead=0, estimated_wait_s=0.0, serving_counters=(1, 2))


def say(w: Waiting) -> tuple[int | None, str, str | None]:
    s = standing(w, now=NOW, tz=TZ, early=EARLY)
    return s.people_ahead, s.wait_text, s.note


def test_a_ticket_for_a_closed_window_says_so_not_zero_ahead() -> None:
    closed = replace(BASE, target_counter=5, target_state="closed")
    assert say(closed) == (None, "5号窗口尚未开放，开放后将为您叫号", "您的号码已转到5号窗口")
    unknown = replace(BASE, target_counter=5, target_state=None)
    assert say(unknown)[1] == "5号窗口尚未开放，开放后将为您叫号"
    paused = replace(BASE, target_counter=5, target_state="paused")
    assert say(paused)[:2] == (None, "5号窗口暂停服务，恢复后将为您叫号")
    open_ = replace(BASE, target_counter=5, target_state="idle")
    assert say(open_) == (None, "请留意5号窗口叫号", "您的号码已转到5号窗口，请留意叫号")


def test_no_open_window_names_the_windows_and_keeps_the_place() -> None:
    none_open = replace(BASE, people_ahead=3, estimated_wait_s=None)
    assert say(none_open) == (3, "1、2号窗口尚未开放，请稍候", None)
    first = replace(none_open, people_ahead=0)
    assert say(first) == (None, "1、2号窗口尚未开放，请稍候", None)  # not "0 ahead"
    many = replace(none_open, serving_counters=(1, 2, 3, 4))
    assert say(many)[1] == "办理此业务的窗口尚未开放，请稍候"


def test_an_appointment_shows_its_slot_and_its_rule_not_the_walk_in_queue() -> None:
    start = NOW + timedelta(minutes=40)
    appt = replace(
        BASE, people_ahead=7, estimated_wait_s=900.0, appointment_start=start,
        appointment_end=start + timedelta(minutes=30),
    )  # fmt: skip
    assert say(appt) == (
        None, "预约时段 10:40-11:10", "预约号在预约时段优先叫号，请于 10:40 前到场",
    )  # fmt: skip
    due = replace(appt, appointment_start=NOW + timedelta(minutes=10))
    assert say(due)[2] == "预约号优先叫号，请留意叫号"
    no_window = replace(appt, estimated_wait_s=None)
    assert say(no_window)[2] == "1、2号窗口尚未开放，开放后预约号优先叫号"


def test_a_walk_in_ticket_keeps_its_place_and_estimate() -> None:
    assert say(replace(BASE, people_ahead=4, estimated_wait_s=600.0)) == (
        4, "预计等候约 7 至 13 分钟", None,
    )  # fmt: skip


def test_the_printed_ticket_carries_the_slot_and_rule() -> None:
    facts = TicketFacts(
        hall="测试政务服务中心", number="A001", service="不动产登记", token="t" * 22,
        issued_at=datetime(2026, 11, 24, 10, 0), people_ahead=None, estimated_wait_s=600.0,
        wait_line="预约时段 10:40-11:10", note="预约号优先叫号，请留意叫号",
    )  # fmt: skip
    texts = read(encode(ticket_lines(facts, Template(page_url="http://h/t/{token}")))).texts
    assert "预约时段 10:40-11:10" in texts and "预约号优先叫号，请留意叫号" in texts
    assert not any("前面还有" in t or "预计等候" in t for t in texts)


# --- through the server ---------------------------------------------------------------------


@pytest.fixture(autouse=True)
def secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HALL_SECRET_KEY", "ab" * 32)


@pytest.fixture
def config() -> HallConfig:
    data: dict[str, Any] = kiosk_config(None).model_dump(mode="json", exclude_none=True)
    hall = data["halls"][0]
    hall["counter_rules"] = {"transfer_to_closed": True}
    for svc in hall["services"]:
        if svc["code"] == "BDC":
            svc["priority_classes"] = ["appointment"]
    return HallConfig.model_validate(data)


async def follow(client: Client, token: str) -> Any:
    resp = await client.get(f"/api/v1/tickets/{token}/follow")
    assert resp.status == 200
    return await resp.json()


async def test_the_page_of_a_ticket_transferred_to_a_closed_window(client: Client) -> None:
    clerk = await staff_headers(client, "c001", counters=(1,))
    base = "/api/v1/halls/test/counters"
    resp = await client.post("/api/v1/halls/test/tickets", json={"service": "BDC"}, headers=clerk)
    token = (await resp.json())["token"]
    assert (await client.post(f"{base}/1/open", json={}, headers=clerk)).status == 200
    assert (await client.post(f"{base}/1/call_next", json={}, headers=clerk)).status == 200
    moved = await client.post(f"{base}/1/transfer", json={"to_counter": 3}, headers=clerk)
    assert moved.status == 200, await moved.text()

    page = await follow(client, token)
    assert page["state"] == "waiting"
    assert page["people_ahead"] is None  # not "0 people ahead"
    assert page["wait_text"] == "3号窗口尚未开放，开放后将为您叫号"
    assert page["note"] == "您的号码已转到3号窗口"

    other = await staff_headers(client, "c003", counters=(3,))
    assert (await client.post(f"{base}/3/open", json={}, headers=other)).status == 200
    page = await follow(client, token)
    assert page["wait_text"] == "请留意3号窗口叫号"


async def test_an_appointment_ticket_shows_its_slot_on_screen_and_page(
    client: Client, clock: FixedClock
) -> None:
    admin = await admin_headers(client, "standing-admin")
    start = clock.now() + timedelta(minutes=40)
    body = {
        "code": "SLOT01", "service": "BDC", "slot_start": start.isoformat(),
        "slot_end": (start + timedelta(minutes=30)).isoformat(),
    }  # fmt: skip
    assert (await client.post("/api/v1/halls/test/appointments", json=body, headers=admin)).ok
    # Walk-ins ahead do not make the appointment's holder read "N people ahead".
    for _ in range(2):
        await client.post("/api/v1/halls/test/tickets", json={"service": "BDC"}, headers=admin)
    k1 = await device_headers(client, "kiosk", device_id="k1")
    resp = await client.post("/api/v1/kiosk/appointments", json={"code": "SLOT01"}, headers=k1)
    assert resp.status == 201, await resp.text()
    screen = await resp.json()
    assert screen["ticket"]["people_ahead"] is None
    assert screen["wait_text"] == "预约时段 10:40-11:10"
    page = await follow(client, screen["page_url"].rsplit("/", 1)[1])
    assert page["people_ahead"] is None
    assert page["wait_text"] == "预约时段 10:40-11:10"
    assert page["note"] == "办理此业务的窗口尚未开放，开放后预约号优先叫号"
    clerk = await staff_headers(client, "c001", counters=(1,))
    opened = await client.post("/api/v1/halls/test/counters/1/open", json={}, headers=clerk)
    assert opened.status == 200
    page = await follow(client, screen["page_url"].rsplit("/", 1)[1])
    assert page["note"] == "预约号在预约时段优先叫号，请于 10:40 前到场"


async def test_the_printed_appointment_ticket_shows_its_slot(
    pool: asyncpg.Pool, config: HallConfig, clock: FixedClock
) -> None:
    directory = Directory(config)
    queue = QueueService(pool, directory, clock)
    start = clock.now() + timedelta(minutes=40)
    view = await queue.issue(
        IssueTicket(
            hall_id="test", service_code="BDC", kiosk="k1", priority_class="appointment",
            appointment_start=start, appointment_end=start + timedelta(minutes=30),
        )
    )  # fmt: skip
    service = PrintService(pool, directory, queue, clock)
    job = repo.JobRow(
        1, view.ticket.id, "test", "k1", "ticket", "printing", None, 0, clock.now(), None,
        view.token, view.ticket.display_number,
    )  # fmt: skip
    texts = read(await service.render(job)).texts
    assert "预约时段 10:40-11:10" in texts
    assert not any("前面还有" in t for t in texts)
