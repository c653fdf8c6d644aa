"""interface_dashboard_first_hour: the dashboard as sosocoin's user first meets it (issue 12),
in headless Chromium at 1366x768 and 390x844, against one real node (state + miner + api):
the API docs with every request off this machine blocked; the wallet's available balance
(pending sends subtracted, and the send form checking against it) and its public key; the
pool chart sampled while no block comes, with a y scale; the Operate page's miner panel
updated in place; and at phone width every table fitting, the footer's hash kept whole,
ids not written as amounts, and no pager for a history that fits one page. (Adding a peer
by its page URL: interface_dashboard_wallet.py, with two nodes.)

Screenshots land in test-artifacts/dashboard/ (first-hour-*.png)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

from tests.framework import browser as br
from tests.framework.browser import WAIT, goto, stat
from tests.framework.node import TestNode
from tests.framework.util import wait_until

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

# every table on the page fits its box (no column cut off behind a scroll edge)
TABLES_FIT = ("() => [...document.querySelectorAll('.table-wrap')]"
              ".filter((w) => w.scrollWidth > w.clientWidth + 1).map((w) => w.parentElement.id"
              " || w.querySelector('caption')?.textContent || '?')")


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestNode]:
    with TestNode.create(tmp_path_factory.mktemp("first-hour"), interval_ms=500) as n:
        yield n.start("state", "miner", "api")


def _mining_stopped(node: TestNode) -> None:
    """Mining off, and the block that was being sealed (if any) in."""
    node.client.set_mining(False)
    wait_until(lambda: node.http.get("/api/v1/mempool/history").json()["samples"][-1][
        "height"] == node.api.height(), timeout=20, what="the last block sealed")


def _send(node: TestNode, amount: int, fee: int, to: str = "ab" * 20) -> str:
    sent = node.http.post("/api/v1/wallet/send", json={"to": to, "amount": amount, "fee": fee})
    assert sent.status_code == 202, sent.text
    tx_id: str = sent.json()["id"]
    return tx_id


def test_docs_render_with_no_internet(node: TestNode, browser: Browser) -> None:
    """/docs loads Swagger UI from the node itself: with every request that leaves this
    machine aborted, the page still lists the operations."""
    outside: list[str] = []

    def only_local(route: Any) -> None:
        host = urlsplit(route.request.url).hostname
        if host in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort("internetdisconnected")

    for viewport, label in ((br.DESKTOP, "desktop"), (br.PHONE, "phone")):
        context = browser.new_context(viewport=viewport)
        page = context.new_page()
        errors = br.PageErrors(page)
        page.route("**/*", only_local)
        try:
            page.goto(f"{node.url}/docs")
            page.wait_for_selector(".opblock", timeout=WAIT)
            assert page.locator(".opblock").count() >= 20
            assert page.locator(".opblock-summary-path[data-path='/api/v1/peers']").count() >= 2
            assert "ccoin node API" in page.inner_text(".info .title")
            assert outside == [], outside
            br.screenshot(page, f"first-hour-docs-{label}", full_page=False)
            errors.check()
        finally:
            context.close()


def test_wallet_available_key_and_pool_chart(node: TestNode, browser: Browser) -> None:
    """With mining stopped and two sends in the pool: the wallet shows the balance, what the
    sends will spend and what is left, and refuses (in the page) an amount the balance
    covers but what is left does not; it shows the key's type and public half. The pool
    chart, sampled every few seconds, climbs although no block comes, on a y scale."""
    wait_until(lambda: node.api.height() >= 4, timeout=20, what="a few blocks")
    context = browser.new_context(viewport=br.DESKTOP)
    page = context.new_page()
    errors = br.PageErrors(page)
    try:
        _mining_stopped(node)
        goto(page, node.url)
        page.wait_for_selector("#chart-mempool svg", timeout=WAIT)
        height = node.api.height()
        before = int(page.get_attribute("#chart-mempool svg", "data-points") or 0)
        _send(node, 100, 2)
        _send(node, 50, 1)
        count = node.http.get("/api/v1/mempool").json()["count"]
        assert count >= 2
        # sampled on a timer: the last value says the pool's size with no new block
        page.wait_for_selector(f"#chart-mempool .chart-last:text-is('{count} txs')",
                               timeout=WAIT)
        page.wait_for_function(
            "n => Number(document.querySelector('#chart-mempool svg').dataset.points) >= n",
            arg=before + 2, timeout=WAIT)
        assert node.api.height() == height
        label = page.get_attribute("#chart-mempool svg", "aria-label") or ""
        assert label.startswith("Pool size over time, ") and f"last {count} txs" in label
        # each chart has a y scale: its bottom and a round top at or above the highest
        top = page.inner_text("#chart-mempool .chart-y-max")
        assert top.endswith(" txs") and int(top.split()[0]) >= count
        assert page.inner_text("#chart-mempool .chart-y-min") == "0 txs"
        assert page.inner_text("#chart-interval .chart-y-max").endswith(" s")
        br.screenshot(page, "first-hour-overview-pool-desktop")

        wallet = node.http.get("/api/v1/wallet").json()
        assert wallet["pending_out"] == 153
        assert wallet["available"] == wallet["balance"] - 153
        goto(page, node.url, "#/wallet")
        page.wait_for_selector("#wallet-stats", timeout=WAIT)

        def figure(label: str) -> int:
            return int(stat(page, label).splitlines()[0].replace(",", ""))

        assert figure("Balance") == wallet["balance"]
        assert figure("Pending out") == 153
        assert figure("Available") == wallet["available"]
        info = page.inner_text("#wallet-info")
        assert wallet["public_key"] in info.replace("\n", "") and "ed25519" in info
        # covered by the balance, not by what is left once the pool's sends are in
        page.fill("#send-to", "cd" * 20)
        page.fill("#send-amount", str(wallet["balance"] - 100))
        page.click("#send-form button[type=submit]")
        assert "exceeds what is available" in page.inner_text("#send-amount-error")
        assert f"{wallet['available']:,}" in page.inner_text("#send-amount-error")
        br.screenshot(page, "first-hour-wallet-pending-desktop")
        errors.check()
        # the pool's transactions on a phone: one card each, nothing cut off
        phone = browser.new_context(viewport=br.PHONE, is_mobile=True, has_touch=True)
        small = phone.new_page()
        goto(small, node.url, "#/pool")
        small.wait_for_selector("#pool-list tbody tr", timeout=WAIT)
        assert small.evaluate(TABLES_FIT) == []
        br.screenshot(small, "first-hour-pool-pending-phone")
        phone.close()
    finally:
        node.client.set_mining(True)
        context.close()


def test_operate_updates_the_miner_panel_in_place(node: TestNode, desktop: Page) -> None:
    """The miner panel is re-read every few seconds; its buttons are the same elements
    across reads (a button does not vanish under the operator's pointer), and follow a
    change of state made elsewhere."""
    goto(desktop, node.url, "#/operate")
    desktop.wait_for_selector("#mining-stop:enabled", timeout=WAIT)
    desktop.evaluate("() => { document.getElementById('mining-stop').dataset.mark = 'kept'; }")
    for _ in range(2):  # two polls of the miner (about 3 s apart while blocks come)
        with desktop.expect_response(lambda r: r.url.endswith("/api/v1/mining"),
                                     timeout=WAIT):
            pass
    assert desktop.get_attribute("#mining-stop", "data-mark") == "kept"
    try:
        node.client.set_mining(False)
        desktop.wait_for_selector("#mining-start:enabled", timeout=WAIT)
        desktop.wait_for_selector("#mining-stats .badge.warn:text-is('stopped')", timeout=WAIT)
        assert desktop.get_attribute("#mining-stop", "data-mark") == "kept"
        assert desktop.is_disabled("#mining-stop")
    finally:
        node.client.set_mining(True)
    desktop.wait_for_selector("#mining-stop:enabled", timeout=WAIT)


def test_phone_tables_footer_ids_and_pager(node: TestNode, browser: Browser) -> None:
    """At 390 px every table fits (wide ones as one card per row), the footer's genesis
    hash stays on one line, ids and heights are digits (chain id 1337, not 1,337), and a
    history that fits one page shows no pager."""
    to = os.urandom(20).hex()
    tx_id = _send(node, 7, 1, to)
    wait_until(lambda: node.http.get(f"/api/v1/txs/{tx_id}").json()["status"] == "confirmed",
               timeout=20, what="the transaction confirmed")
    routes = {"overview": "", "explorer": "#/blocks", "pool": "#/pool", "tx": f"#/tx/{tx_id}",
              "account": f"#/account/{to}", "wallet": "#/wallet", "operate": "#/operate"}
    # (at 1366 x 768: interface_dashboard.py's tour of every page)
    for viewport, label in ((br.PHONE, "phone"),):
        context = browser.new_context(viewport=viewport, is_mobile=True, has_touch=True)
        page = context.new_page()
        errors = br.PageErrors(page)
        try:
            for name, route in routes.items():
                goto(page, node.url, route)
                page.wait_for_function(
                    "() => !document.querySelector('main').textContent.includes('Loading')",
                    timeout=WAIT)
                if name == "overview":
                    page.wait_for_selector("#latest tbody tr", timeout=WAIT)
                    assert "," not in stat(page, "Height")
                if name == "tx":
                    chain = page.locator("main dt:text-is('Chain id') + dd").inner_text()
                    assert chain == "1337"
                if name == "account":
                    page.wait_for_selector("#history-range:has-text('1–1 of 1')",
                                           state="attached", timeout=WAIT)
                    assert page.locator("nav[aria-label='History pages']").is_hidden()
                assert page.evaluate(TABLES_FIT) == [], f"{name}: a table is cut off"
                # the footer's genesis hash on one line, the full value in its title
                page.wait_for_selector("#genesis a", timeout=WAIT)
                assert page.evaluate(
                    "() => document.querySelector('#genesis').getClientRects().length") == 1
                genesis = node.http.get("/api/v1/status").json()["genesis"]
                assert genesis in (page.get_attribute("#genesis a", "title") or "")
                br.screenshot(page, f"first-hour-{name}-{label}")
            errors.check()
        finally:
            context.close()
