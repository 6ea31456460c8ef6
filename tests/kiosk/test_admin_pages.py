"""Pages for hall staff in headless Chromium: a manager logs in at /admin/devices, approves the
code a kiosk shows at /pair, sees the kiosk paired, revokes it, and the kiosk is unpaired."""

from __future__ import annotations

import asyncpg
from playwright.async_api import Dialog

from hall.security.passwords import hash_password
from hall.storage import access_repo
from tests.access_helpers import FAST_SCRYPT, PASSWORD
from tests.browser import BROWSER_TEST, chromium, watched
from tests.servers import ServerProcess

pytestmark = BROWSER_TEST


async def manager(pool: asyncpg.Pool, job_no: str, halls: list[str]) -> None:
    async with pool.acquire() as conn:
        await access_repo.save_account(
            conn,
            job_no,
            password_hash=hash_password(PASSWORD, FAST_SCRYPT),
            name="周主任",
            roles=["manager"],
            halls=halls,
            counters=[],
        )


async def test_manager_approves_and_revokes_a_kiosk_from_the_page(
    page_server: ServerProcess, pool: asyncpg.Pool
) -> None:

    server = page_server
    await manager(pool, "m01", ["test"])
    async with chromium() as browser:
        errors: list[str] = []
        kiosk_ctx = await browser.new_context(viewport={"width": 1080, "height": 1920})
        kiosk = watched(await kiosk_ctx.new_page(), errors)
        await kiosk.goto(f"{server.url}/kiosk")
        await kiosk.wait_for_url("**/pair", timeout=10_000)
        await kiosk.wait_for_function(
            "/^\\d{6}$/.test(document.querySelector('#code').textContent)", timeout=10_000
        )
        code = (await kiosk.text_content("#code")) or ""

        admin_ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
        admin = watched(await admin_ctx.new_page(), errors)
        await admin.goto(f"{server.url}/admin/devices")
        await admin.wait_for_selector("#login:not([hidden])", timeout=10_000)
        await admin.fill("#job-no", "m01")
        await admin.fill("#password", "wrong-password-1")
        dialogs: list[str] = []

        async def answer(dialog: Dialog) -> None:
            dialogs.append(dialog.message)
            await dialog.accept()

        admin.once("dialog", answer)
        await admin.click("#login button")
        # The answer clears the password field (and says why): only then type again.
        await admin.wait_for_function("document.querySelector('#password').value === ''")
        assert await admin.is_visible("#login")  # a wrong password does not get in
        await admin.fill("#password", PASSWORD)
        await admin.click("#login button")

        # The code the kiosk shows is listed; approve it as kiosk k1 from its row.
        row = admin.locator(f"#pending tr[data-code='{code}']")
        await row.wait_for(timeout=10_000)
        labels = await row.locator("select option").all_text_contents()
        assert any(t.startswith("取号机 k1") for t in labels)
        assert any(t.startswith("取号机 k2") for t in labels)
        await row.locator("select").select_option("kiosk:k1")
        await row.locator("button").click()
        await admin.wait_for_function(
            "document.querySelector('#msg').textContent.includes('已批准配对码')"
        )

        # The kiosk finishes pairing by itself and becomes the touch kiosk of k1.
        await kiosk.wait_for_url("**/kiosk", timeout=10_000)
        await kiosk.wait_for_selector(".svc[data-service=BDC]", timeout=10_000)
        paired = admin.locator("#paired tr[data-device='kiosk:k1']")
        await paired.wait_for(timeout=10_000)
        assert await admin.locator(f"#pending tr[data-code='{code}']").count() == 0

        # Revoking it sends the kiosk back to /pair at its next request.
        admin.once("dialog", lambda d: d.accept())
        await paired.locator("button").click()
        await admin.wait_for_function(
            "document.querySelector('#msg').textContent.includes('已吊销')"
        )
        # The list is read again after the message: wait for the row to go.
        await admin.locator("#paired tr[data-device='kiosk:k1']").wait_for(
            state="detached", timeout=10_000
        )
        revoked = await pool.fetchval(
            "SELECT count(*) FROM device_tokens WHERE device_id = 'k1'"
            " AND revoked_at IS NOT NULL AND revoked_by = 'm01'"
        )
        assert revoked == 1
        await kiosk.click(".svc[data-service=BDC]")
        await kiosk.wait_for_url("**/pair", timeout=15_000)
        assert await pool.fetchval("SELECT count(*) FROM tickets") == 0
        assert dialogs[0] == "工号或密码错误"
        assert errors == []


async def test_codes_are_approved_by_typing_them_and_bad_codes_say_why(
    page_server: ServerProcess, pool: asyncpg.Pool
) -> None:

    server = page_server
    await manager(pool, "m02", ["test"])
    async with chromium() as browser:
        tv = await (await browser.new_context()).new_page()
        await tv.goto(f"{server.url}/pair")
        await tv.wait_for_function(
            "/^\\d{6}$/.test(document.querySelector('#code').textContent)", timeout=10_000
        )
        code = (await tv.text_content("#code")) or ""
        admin = await (await browser.new_context()).new_page()
        await admin.goto(f"{server.url}/admin/devices")
        await admin.fill("#job-no", "m02")
        await admin.fill("#password", PASSWORD)
        await admin.click("#login button")
        await admin.wait_for_selector("#app:not([hidden])", timeout=10_000)

        wrong = "000000" if code != "000000" else "000001"
        await admin.fill("#approve-code", wrong)
        await admin.select_option("#approve-target", "kiosk:k2")
        await admin.click("#approve-form button")
        await admin.wait_for_function(
            f"document.querySelector('#msg').textContent.includes('{wrong}')"
        )
        assert "没有等待批准的配对码" in ((await admin.text_content("#msg")) or "")
        assert await pool.fetchval("SELECT count(*) FROM device_tokens") == 0

        await admin.fill("#approve-code", code)
        await admin.select_option("#approve-target", "kiosk:k2")
        await admin.click("#approve-form button")
        await tv.wait_for_url("**/kiosk", timeout=10_000)
        kinds = await pool.fetch("SELECT kind, device_id, created_by FROM device_tokens")
        assert [(r["kind"], r["device_id"]) for r in kinds] == [("kiosk", "k2")]
