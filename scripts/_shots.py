"""What the screenshot scripts share: staff accounts to sign in with, and the sign-in steps."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from hall.security.passwords import ScryptParams, hash_password
from hall.storage import access_repo

ADMIN_JOB_NO, ADMIN_PASSWORD = "bench-admin", "bench-admin-1"
"""The admin account that bench._support.admin_headers creates."""


async def save_staff(
    dsn: str,
    job_no: str,
    password: str,
    *,
    name: str,
    roles: Sequence[str],
    halls: Sequence[str] = ("demo",),
    counters: Sequence[int] = (),
) -> None:
    """Create (or replace) a staff account, with a cheap password hash (screenshots only)."""
    conn = await asyncpg.connect(dsn)
    try:
        await access_repo.save_account(
            conn,
            job_no,
            password_hash=hash_password(password, ScryptParams(n=2**4, r=8, p=1)),
            name=name,
            roles=list(roles),
            halls=list(halls),
            counters=list(counters),
        )
    finally:
        await conn.close()


async def sign_in(
    page: Any,
    job_no: str,
    password: str,
    *,
    ready: str,
    job_field: str = "#job_no",
    password_field: str = "#password",
    submit: str | None = None,
    timeout_ms: float = 30_000,
) -> None:
    """Fill a page's sign-in form, send it (``submit`` clicked, else Enter in the password
    field), and wait for ``ready`` to show."""
    await page.fill(job_field, job_no)
    await page.fill(password_field, password)
    if submit is None:
        await page.press(password_field, "Enter")
    else:
        await page.click(submit)
    await page.wait_for_selector(ready, timeout=timeout_ms)
