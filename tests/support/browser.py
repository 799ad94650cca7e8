"""Debian's chromium, headless, driven by Playwright (which downloads no browser of its own)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
# As the probe of this machine runs it: no background traffic to hosts a closed network refuses.
CHROMIUM_ARGS = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def chromium() -> Iterator[Browser]:
    """The browser, for a test module's fixture; the test fails (not skips) where it is missing."""
    if not CHROMIUM.exists():
        pytest.fail(
            "the browser tests need Debian's chromium: `make test` installs it (apt-get install chromium)"
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@contextmanager
def playground(browser: Browser, url: str) -> Iterator[Page]:
    """The playground page of the gateway at `url`, once its model picker is filled; closed after."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.goto(f"{url}/playground")
        expect(page.locator("#model option")).not_to_have_count(0)
        yield page
    finally:
        context.close()
