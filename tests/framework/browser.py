"""Headless Chromium for the dashboard tests: Debian's `chromium` driven by Playwright, and
the few page helpers those tests share.

Playwright's own browser download is never used (this machine reaches no CDN): the tests
launch `/usr/bin/chromium`, which `make browser` (a prerequisite of `make test`) installs
with apt when it runs as root. Without it, or without the `playwright` package, the browser
tests skip and say why. Chromium gets a fresh profile per launch (Playwright makes a
temporary user-data dir) and the flags that keep it off the network; it resolves
VISITOR_HOST to 127.0.0.1, so a test can reach the node by a name that is not loopback's.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.framework.util import ROOT

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, ViewportSize

CHROMIUM = Path(os.environ.get("CCOIN_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
DESKTOP: ViewportSize = {"width": 1366, "height": 768}  # the most common laptop screen
PHONE: ViewportSize = {"width": 390, "height": 844}  # a common phone, in CSS pixels
VISITOR_HOST = "ccoin-visitor.test"  # mapped to 127.0.0.1 inside Chromium only
WAIT = 20_000  # ms, for the page to show something
# page functions, not expressions: the page's CSP forbids eval, and Playwright evaluates a
# bare expression string with it
HASH_IS = "h => location.hash === h"
HEIGHT_AT_LEAST = ("t => Number((document.querySelector('#stats .stat:nth-child(2) dd')"
                   "?.textContent ?? '-1').replace(/,/g, '')) >= t")


def unavailable_reason() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    if not CHROMIUM.exists():
        how = "run `make browser` as root" if os.geteuid() != 0 else "`make browser` installs it"
        return f"Debian's chromium is not installed at {CHROMIUM} ({how})"
    return None


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium for one test module."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=[*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {VISITOR_HOST} 127.0.0.1"])
        try:
            yield browser
        finally:
            browser.close()


class PageErrors:
    """Collects what the page reports as broken: uncaught errors and console errors,
    except failed requests the test expects (e.g. a 404 from a route a node lacks)."""

    def __init__(self, page: Page, allow: tuple[str, ...] = ()) -> None:
        self.errors: list[str] = []
        self.allow = allow
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("console", self._console)

    def _console(self, msg: Any) -> None:
        if msg.type != "error":
            return
        text = f"console: {msg.text} @ {msg.location.get('url', '')}"
        if "Failed to load resource" in msg.text or any(a in text for a in self.allow):
            return  # a REST answer the page handles (404 of a missing route, 409, 503...)
        self.errors.append(text)

    def check(self) -> None:
        assert not self.errors, "\n".join(self.errors)


def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Save a PNG under test-artifacts/dashboard/ and return its path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page, animations="disabled")
    return path


def clean_artifacts() -> None:
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)


def goto(page: Page, url: str, route: str = "") -> None:
    """Open the dashboard at `url` on `route` (`#/wallet`...), once its page is drawn."""
    page.goto(f"{url}/{route}")
    page.wait_for_selector("main h1", timeout=WAIT)


def stat(page: Page, label: str) -> str:
    """The value of the stat card labelled `label`."""
    return page.locator(".stat", has=page.locator("dt", has_text=label)).locator("dd") \
        .inner_text()
