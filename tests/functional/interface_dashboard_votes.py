"""interface_dashboard_votes: the authority votes in the dashboard (issue 14), in headless
Chromium against a real one-authority node (state + miner + api).

On the Operate page the operator proposes an address that is no authority for removal (so
already true: `done`) and discards it with its button, is told an address that is not 40
hex characters is not one, then proposes a new authority: the node's only authority votes
for it in its next block, which passes the vote (1 of 1), and the overview shows the change
at that block and the new authority in the table. (A second authority that never seals then
stops the chain: the test is this file's alone.)"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.framework import browser as br
from tests.framework.browser import WAIT, goto
from tests.framework.node import TestNode

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestNode]:
    with TestNode.create(tmp_path_factory.mktemp("votes-node"), interval_ms=250) as n:
        yield n.start("state", "miner", "api")


# every table on the page fits its box (no column cut off behind a scroll edge)
TABLES_FIT = ("() => [...document.querySelectorAll('.table-wrap')]"
              ".filter((w) => w.scrollWidth > w.clientWidth + 1).length")


def test_propose_discard_and_see_the_set_change(node: TestNode, desktop: Page,
                                                 browser: Browser) -> None:
    outsider, newcomer = os.urandom(20).hex(), os.urandom(20).hex()
    goto(desktop, node.url, "#/operate")
    desktop.wait_for_selector("#proposal-form", timeout=WAIT)
    assert "This node proposes nothing." in desktop.inner_text("#own-proposals")

    desktop.fill("#proposal-address", "12ab")
    desktop.click("#proposal-form button[type=submit]")
    assert desktop.get_attribute("#proposal-address", "aria-invalid") == "true"
    assert "40 hex characters" in desktop.inner_text("#proposal-result")

    desktop.fill("#proposal-address", outsider)
    desktop.select_option("#proposal-direction", "false")
    desktop.click("#proposal-form button[type=submit]")
    row = desktop.locator("#own-proposals tr", has=desktop.locator(f"a[title='{outsider}']"))
    row.locator("text=done").wait_for(timeout=WAIT)  # not an authority: nothing to vote
    assert "votes to remove" in desktop.inner_text("#proposal-result")
    row.locator("button", has_text="Discard").click()
    desktop.wait_for_selector("#own-proposals:has-text('This node proposes nothing.')",
                              timeout=WAIT)
    assert f"no longer votes about {outsider}" in desktop.inner_text("#proposal-result")

    desktop.fill("#proposal-address", newcomer)
    desktop.select_option("#proposal-direction", "true")
    desktop.click("#proposal-form button[type=submit]")
    desktop.locator(f"#own-proposals tr:has(a[title='{newcomer}'])").wait_for(timeout=WAIT)
    br.screenshot(desktop, "operate-votes-desktop")

    goto(desktop, node.url, "#/")
    added = f"#votes tr:has(a[title='{newcomer}']):has-text('added')"
    desktop.wait_for_selector(added, timeout=WAIT)
    desktop.wait_for_selector(f"#authorities table a[title='{newcomer}']", timeout=WAIT)
    votes = node.api.get("/api/v1/consensus")["votes"]
    assert votes["authorities"] == [node.chain.validator.address.hex(), newcomer]
    change = votes["changes"][-1]
    assert desktop.inner_text(added).startswith(f"#{change['height']}")
    br.screenshot(desktop, "overview-votes-desktop")

    context = browser.new_context(viewport=br.PHONE, is_mobile=True, has_touch=True)
    phone = context.new_page()
    errors = br.PageErrors(phone)
    try:  # at phone width the panels' tables become cards: nothing cut off
        for route, ready, name in (("#/", added, "overview-votes-phone"),
                                   ("#/operate", "#proposal-form", "operate-votes-phone")):
            goto(phone, node.url, route)
            phone.wait_for_selector(ready, timeout=WAIT)
            assert phone.evaluate(TABLES_FIT) == 0, name
            br.screenshot(phone, name)
    finally:
        context.close()
    errors.check()
