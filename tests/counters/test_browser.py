"""The clerk terminal in headless Chromium: log in, open, call, recall, start, transfer,
finish, pause and resume, by keyboard shortcut and by mouse; after each step the page, the
hall's live display feed and the database agree. A stopped server shows the lost-connection
banner within 10 s, and the page resyncs when it returns."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from hall.config.models import HallConfig
from hall.security.passwords import hash_password
from hall.storage import access_repo
from tests.access_helpers import FAST_SCRYPT, PASSWORD, admin_bearer_in
from tests.browser import BROWSER_TEST, CHROMIUM, CHROMIUM_ARGS, chromium, watched
from tests.live.helpers import Subscriber
from tests.servers import ServerProcess, config_server

pytestmark = BROWSER_TEST


@pytest.fixture
async def server(
    database_url: str, pool: asyncpg.Pool, config: HallConfig, tmp_path: Path
) -> AsyncIterator[ServerProcess]:
    async with config_server(database_url, config, tmp_path) as proc:
        yield proc


async def clerk_account(
    pool: asyncpg.Pool, job_no: str, counters: list[int], roles: tuple[str, ...] = ("clerk",)
) -> None:
    async with pool.acquire() as conn:
        await access_repo.save_account(
            conn,
            job_no,
            password_hash=hash_password(PASSWORD, FAST_SCRYPT),
            name="王小明",
            roles=list(roles),
            halls=["test"],
            counters=counters,
        )


def counter_of(state: dict[str, Any] | None, number: int) -> dict[str, Any]:
    assert state is not None
    found: dict[str, Any] = next(c for c in state["counters"] if c["number"] == number)
    return found


async def test_a_clerk_works_a_counter_from_the_browser(
    server: ServerProcess, pool: asyncpg.Pool
) -> None:
    from playwright.async_api import Page, async_playwright

    admin = await admin_bearer_in(pool, "desk-admin")
    await clerk_account(pool, "c001", [1])
    async with (
        aiohttp.ClientSession(headers=admin) as api,
        async_playwright() as pw,
    ):

        async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            async with api.post(f"{server.url}/api/v1/halls/test{path}", json=body) as resp:
                data: dict[str, Any] = await resp.json()
                assert resp.status in (200, 201), data
                return data

        for _ in range(3):
            await post("/tickets", {"service": "BDC"})
        await post("/counters/2/open", {"clerk": "desk-admin"})
        tv = await Subscriber(
            api, f"{server.url.replace('http', 'ws')}/api/v1/halls/test/live?channel=display"
        ).connect()

        async def agree(page: Page, state: str, number: str | None) -> None:
            """The page, the TV feed and the database all show counter 1 so."""
            try:
                await page.wait_for_selector(f"#state[data-state={state}]", timeout=10_000)
            except Exception:
                said = await page.text_content("#error"), await page.text_content("#dialog-error")
                raise AssertionError(f"page never showed {state}; errors: {said}") from None
            assert await page.text_content("#t-number") == (number or "—")

            def shown(s: Subscriber) -> bool:
                c = counter_of(s.state, 1)
                on_tv = c["ticket"]["number"] if c["ticket"] else None
                return bool(c["state"] == state and on_tv == number)

            await tv.wait_for(shown)
            row = await pool.fetchrow(
                "SELECT c.state::text AS state, t.display_number FROM counters c"
                " LEFT JOIN tickets t ON t.hall_id = c.hall_id AND t.counter_number = c.number"
                " WHERE c.hall_id = 'test' AND c.number = 1"
            )
            assert (row["state"], row["display_number"]) == (state, number)

        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(
                viewport={"width": 1366, "height": 768}, locale="zh-CN"
            )
            errors: list[str] = []
            page = watched(await context.new_page(), errors)

            # Not signed in: the terminal sends the clerk to /login and back.
            await page.goto(f"{server.url}/counter?hall=test")
            await page.wait_for_url("**/login?next=*", timeout=10_000)
            await page.fill("#job_no", "c001")
            await page.fill("#password", "wrong-password-1")
            await page.click("#submit")
            await page.wait_for_selector("#error:not([hidden])")
            assert await page.text_content("#error") == "工号或密码错误"
            await page.fill("#password", PASSWORD)
            await page.press("#password", "Enter")
            await page.wait_for_url("**/counter?hall=test*", timeout=10_000)
            # The only assigned counter is taken at once; it is closed, not paused.
            await agree(page, "closed", None)
            assert await page.text_content("#state-label") == "窗口关闭"
            assert "王小明" in ((await page.text_content("#clerk")) or "")
            await page.wait_for_selector("#link[data-status=connected]", timeout=10_000)
            assert await page.is_disabled("button[data-action=call_next]")
            assert await page.is_hidden("#btn-locks")  # sign-in lockouts: managers only

            await page.keyboard.press("Alt+o")  # open
            await agree(page, "idle", None)
            # The call order the terminal lists: F1 calls its first number.
            await page.wait_for_function(
                "document.querySelector('#upcoming span.first')?.firstChild.textContent === 'A001'"
            )
            await page.keyboard.press("F1")  # call next
            await agree(page, "calling", "A001")
            await page.wait_for_function(
                "document.querySelector('#queues [data-service=BDC] b').textContent === '2'"
            )

            await page.click("button[data-action=recall]")  # by mouse
            await page.wait_for_function(
                "document.querySelector('#t-recalls').textContent.startsWith('已重呼 1 / 2')"
            )
            assert (
                await pool.fetchval(
                    "SELECT recall_count FROM tickets WHERE display_number = 'A001'"
                )
                == 1
            )
            await tv.wait_for(lambda s: bool(s.state and s.state["recent_calls"][0]["recall"]))

            await page.keyboard.press("F4")  # start
            await agree(page, "serving", "A001")

            # Transfer to counter 2 with a note; the citizen keeps the number.
            await page.keyboard.press("F8")
            await page.wait_for_selector("#dialog:not([hidden]) #d-target")
            await page.select_option("#d-target", "c:2")
            await page.fill("#d-note", "需补充材料")
            await page.keyboard.press("Enter")
            await agree(page, "idle", None)
            moved = await pool.fetchrow(
                "SELECT state::text AS state, target_counter FROM tickets"
                " WHERE display_number = 'A001'"
            )
            assert (moved["state"], moved["target_counter"]) == ("waiting", 2)

            # Call the next one and finish it with one key (start and finish).
            await page.keyboard.press("F1")
            await agree(page, "calling", "A002")
            await page.keyboard.press("F6")
            # The evaluator's case form (page hook counter.finish) opens in the finish panel;
            # with no case chosen, Enter finishes.
            await page.wait_for_selector("#dialog:not([hidden]) .finish-hooks select")
            await page.keyboard.press("Enter")
            await agree(page, "idle", None)
            assert (
                await pool.fetchval("SELECT state::text FROM tickets WHERE display_number = 'A002'")
                == "done"
            )

            # Pause with the second configured reason, then resume.
            await page.keyboard.press("Alt+p")
            await page.wait_for_selector("#dialog:not([hidden]) .choices")
            await page.keyboard.press("2")
            await page.keyboard.press("Enter")
            await agree(page, "paused", None)
            assert await page.text_content("#state-label") == "暂停服务（会议）"
            assert counter_of(tv.state, 1)["pause_reason"] == "会议"
            await page.keyboard.press("Alt+r")
            await agree(page, "idle", None)

            # A refusal says why, in the dialog, and changes nothing.
            await page.keyboard.press("F3")
            await page.wait_for_selector("#dialog:not([hidden]) #d-number")
            await page.keyboard.type("A999")
            await page.keyboard.press("Enter")
            await page.wait_for_selector("#dialog-error:not([hidden])")
            assert await page.text_content("#dialog-error") == "今日没有号码 A999"
            await page.keyboard.press("Escape")
            await agree(page, "idle", None)

            # A supervisor calls at this counter from elsewhere: the page follows live.
            await post("/counters/1/call_next", {})
            await agree(page, "calling", "A003")  # followed live, no reload

            # The server stops answering: the banner shows within 10 s; it returns: resync.
            assert server.proc is not None
            server.proc.send_signal(signal.SIGSTOP)
            try:
                await page.wait_for_selector("#offline:not([hidden])", timeout=10_000)
            finally:
                server.proc.send_signal(signal.SIGCONT)
            await page.wait_for_selector("#offline[hidden]", state="attached", timeout=20_000)
            await page.keyboard.press("F7")  # no-show
            await agree(page, "idle", None)
            assert errors == []
        finally:
            await browser.close()
            await tv.close()


async def test_a_manager_releases_a_keypad_sign_in_lockout_from_the_terminal(
    server: ServerProcess, pool: asyncpg.Pool
) -> None:
    from datetime import UTC, datetime

    from counters.signin import LOCK_AFTER, log_sign_in

    await clerk_account(pool, "c001", [1])
    await clerk_account(pool, "m001", [], roles=("manager",))
    async with pool.acquire() as conn:
        for _ in range(LOCK_AFTER):
            await log_sign_in(
                conn, hall_id="test", counter=1, device="device:b1/2", at=datetime.now(UTC),
                kind="login", method="pin", job_no="c001", refusal="wrong_credential",
            )  # fmt: skip
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1366, "height": 768}, locale="zh-CN")
        await page.goto(f"{server.url}/login?next=/counter%3Fhall%3Dtest%26counter%3D1")
        await page.fill("#job_no", "m001")
        await page.fill("#password", PASSWORD)
        await page.press("#password", "Enter")
        await page.wait_for_selector("#state[data-state=closed]", timeout=10_000)
        await page.wait_for_selector("#btn-locks:not([hidden])")
        await page.keyboard.press("Alt+l")
        row = await page.wait_for_selector('#locks li[data-lock="staff:c001"]')
        assert row is not None
        assert f"密码错误 {LOCK_AFTER} 次" in ((await row.text_content()) or "")
        await page.click('#locks li[data-lock="staff:c001"] button')
        await page.wait_for_function(
            "document.querySelector('#locks li')?.textContent === '当前没有锁定'"
        )
        released = await pool.fetchrow("SELECT hall_id, job_no, by_actor FROM sign_in_unlocks")
        assert tuple(released) == ("test", "c001", "m001")
        audited = await pool.fetchval(
            "SELECT count(*) FROM audit_log WHERE route = 'sign_in_unlock_staff'"
            " AND actor = 'm001' AND status = 200"
        )
        assert audited == 1
        await page.keyboard.press("Escape")
        await page.wait_for_selector("#dialog", state="hidden")
