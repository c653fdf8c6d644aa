"""Fixtures the dashboard's browser tests share: one headless Chromium per test module, and
a fresh desktop-sized page per test whose page errors fail the test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.framework import browser as br

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    reason = br.unavailable_reason()
    if reason:
        pytest.skip(reason)
    with br.chromium() as b:
        yield b


@pytest.fixture
def desktop(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=br.DESKTOP)
    page = context.new_page()
    errors = br.PageErrors(page)
    yield page
    context.close()
    errors.check()
