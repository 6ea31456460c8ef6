"""Pages in Debian's headless Chromium (Playwright), for the browser tests."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from tests.access_helpers import PASSWORD

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page, ViewportSize

F = TypeVar("F", bound=Callable[..., Any])

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update"]  # fmt: skip
BROWSER_TEST = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed"),
]
"""The marks of a browser test (``pytestmark = BROWSER_TEST``)."""


@asynccontextmanager
async def chromium(args: Sequence[str] = CHROMIUM_ARGS) -> AsyncIterator[Browser]:
    """A fresh headless Chromium started with ``args``, closed when the block ends."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=list(args))
        try:
            yield browser
        finally:
            await browser.close()


def watched(page: Page, errors: list[str]) -> Page:
    """``page``, its uncaught script errors added to ``errors`` as they happen."""
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page


@asynccontextmanager
async def chromium_page(width: int, height: int) -> AsyncIterator[tuple[Page, list[str]]]:
    """A zh-CN page of ``width`` × ``height`` in a fresh Chromium, and the uncaught script
    errors it raises (a test ends with ``assert errors == []``)."""
    async with chromium() as browser:
        errors: list[str] = []
        viewport: ViewportSize = {"width": width, "height": height}
        yield watched(await browser.new_page(viewport=viewport, locale="zh-CN"), errors), errors


async def staff_login(page: Page, job_no: str, ready: str, password: str = PASSWORD) -> None:
    """Sign in with the page's shared login form (#login); wait for ``ready`` to show."""
    await page.fill("#login input[name=job_no]", job_no)
    await page.fill("#login input[name=password]", password)
    await page.click("#login button")
    await page.wait_for_selector(ready, timeout=10_000)


def browser_test(test: F) -> F:
    """Mark one test as a browser test (what ``BROWSER_TEST`` does for a module)."""
    for mark in BROWSER_TEST:
        test = mark(test)
    return test
