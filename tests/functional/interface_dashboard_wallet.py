"""interface_dashboard_wallet: the operator's flows on the web dashboard (sosocoin's test
flows 1, 3 and 4), in headless Chromium through the page only: send from the wallet form and
follow the transaction from the pool into a block and the recipient's balance; an account
history longer than a page; and, on a second node sharing the chain (a basic node: it says it
has no miner, and that a sync has no peer to ask until it has one), add a peer by its page
URL and sync a node that was behind. (The page itself: interface_dashboard.py.)"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from common.crypto import Signer
from common.types import Transaction
from tests.framework import browser as br
from tests.framework.browser import HEIGHT_AT_LEAST, WAIT, goto, stat
from tests.framework.node import TestNode
from tests.framework.util import wait_until

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestNode]:
    with TestNode.create(tmp_path_factory.mktemp("wallet-node"), interval_ms=250) as n:
        yield n.start("state", "miner", "api")


def test_send_from_the_wallet_form(node: TestNode, desktop: Page) -> None:
    """sosocoin flow 3: send from the wallet form; see the transaction in the pool, then in
    a block, then in the recipient's balance — all through the page."""
    seen: list[bytes] = []
    desktop.on("response", lambda r: seen.append(r.body()) if "/api/" in r.url
               and r.request.method != "HEAD" and "events" not in r.url else None)
    wait_until(lambda: node.api.balance(node.chain.validator.address) >= 1000, timeout=20,
               what="the validator's first rewards")
    to = os.urandom(20).hex()
    goto(desktop, node.url, "#/wallet")
    desktop.wait_for_selector("#wallet-stats", timeout=WAIT)
    # client-side validation: nothing is sent, each field says what is wrong
    desktop.fill("#send-to", "not-an-address")
    desktop.fill("#send-amount", "0")
    desktop.fill("#send-data", "abc")
    desktop.click("#send-form button[type=submit]")
    assert desktop.get_attribute("#send-to", "aria-invalid") == "true"
    assert "40 hex" in desktop.inner_text("#send-to-error")
    assert "at least 1" in desktop.inner_text("#send-amount-error")
    assert "even number" in desktop.inner_text("#send-data-error")
    assert desktop.evaluate("() => document.activeElement.id") == "send-to"
    desktop.fill("#send-amount", "99999999999999")
    desktop.fill("#send-data", "")
    desktop.click("#send-form button[type=submit]")
    assert "exceeds what is available" in desktop.inner_text("#send-amount-error")
    br.screenshot(desktop, "wallet-invalid-desktop")
    # a refusal by the node shows its code and message (simulated: a full pool)
    desktop.route("**/api/v1/wallet/send", lambda route: route.fulfill(
        status=503, content_type="application/json",
        body='{"error": {"code": "pool_full", "message": "the pool is full; retry later"}}'))
    desktop.fill("#send-to", to)
    desktop.fill("#send-amount", "5")
    desktop.click("#send-form button[type=submit]")
    desktop.wait_for_selector("#send-result .notice.bad", timeout=WAIT)
    assert "pool_full" in desktop.inner_text("#send-result")
    assert "retry later" in desktop.inner_text("#send-result")
    desktop.unroute("**/api/v1/wallet/send")
    # the real send, with mining paused so the transaction waits in the pool
    node.client.set_mining(False)
    try:
        desktop.fill("#send-to", to)
        desktop.fill("#send-amount", "777")
        desktop.fill("#send-fee", "3")
        desktop.fill("#send-data", "0xC0FFEE")
        desktop.click("#send-form button[type=submit]")
        desktop.wait_for_selector("#send-result .notice.ok a", timeout=WAIT)
        tx_id = desktop.get_attribute("#send-result .notice.ok a", "title")
        assert tx_id and len(tx_id) == 64
        assert desktop.get_attribute("#send-to", "aria-invalid") == "false"
        br.screenshot(desktop, "wallet-sent-desktop")
        goto(desktop, node.url, "#/pool")
        desktop.wait_for_selector(f"#pool-list a[title='{tx_id}']", timeout=WAIT)
        br.screenshot(desktop, "pool-desktop")
        desktop.click(f"#pool-list a[title='{tx_id}']")
        desktop.wait_for_selector("#tx-status", timeout=WAIT)
        assert "pending" in desktop.inner_text("#tx-status")
        br.screenshot(desktop, "tx-pending-desktop")
    finally:
        node.client.set_mining(True)
    # the page follows it into a block by itself
    desktop.wait_for_selector("#tx-status .badge.ok", timeout=WAIT)
    assert "Included in block" in desktop.inner_text("#tx-status")
    desktop.wait_for_selector("text=Checked in this browser", timeout=WAIT)  # Merkle proof
    assert "c0ffee" in desktop.inner_text("main")
    br.screenshot(desktop, "tx-confirmed-desktop")
    desktop.click("#tx-status a")  # the block
    desktop.wait_for_selector(f"main a[title='{tx_id}']", timeout=WAIT)
    br.screenshot(desktop, "block-desktop")
    goto(desktop, node.url, f"#/account/{to}")
    desktop.wait_for_selector("#account-stats", timeout=WAIT)
    assert stat(desktop, "Balance") == "777"
    desktop.wait_for_selector(f"main a[title='{tx_id}']", timeout=WAIT)  # its history
    br.screenshot(desktop, "account-desktop")
    secrets = [node.chain.validator.secret.hex(), node.chain.developer.secret.hex(),
               node.chain.password]
    assert seen and not any(s.encode() in body for body in seen for s in secrets)


def test_account_history_turns_pages(node: TestNode, desktop: Page) -> None:
    """An account with more history than one page: the pager says which entries show, and
    Older/Newer walk the whole history, newest first."""
    dev = Signer(node.chain.developer)
    to = os.urandom(20)
    count = 57  # a page of 50 and one of 7
    nonce = node.http.get(f"/api/v1/accounts/{dev.address.hex()}").json()["pending_nonce"]
    chain_id = node.http.get("/api/v1/status").json()["network_id"]
    txs = [Transaction.create(dev, chain_id=chain_id, nonce=nonce + i, to=to, amount=i + 1)
           for i in range(count)]
    reply = node.http.post("/api/v1/txs/batch", json={"txs": [
        {"chain_id": t.chain_id, "nonce": t.nonce, "key_type": "ed25519",
         "public_key": t.public_key.hex(), "to": t.to.hex(), "amount": t.amount, "fee": t.fee,
         "data": "", "signature": t.signature.hex()} for t in txs]})
    assert reply.status_code == 200 and not [r for r in reply.json()["results"] if "error" in r]
    total = count * (count + 1) // 2
    wait_until(lambda: node.api.balance(to) == total, timeout=20,
               what="every transfer confirmed")
    goto(desktop, node.url, f"#/account/{to.hex()}")
    desktop.wait_for_selector("#history-range:has-text('1–50 of 57')", timeout=WAIT)
    pager = "nav[aria-label='History pages']"
    newer, older = f"{pager} button:has-text('Newer')", f"{pager} button:has-text('Older')"
    assert desktop.is_disabled(newer) and desktop.is_enabled(older)

    def amounts() -> list[str]:
        return desktop.locator("main table tbody tr td:nth-child(6)").all_inner_texts()
    assert amounts() == [f"+{a}" for a in range(count, 7, -1)]  # newest first: 57 … 8
    desktop.click(older)
    desktop.wait_for_selector("#history-range:has-text('51–57 of 57')", timeout=WAIT)
    assert amounts() == [f"+{a}" for a in range(7, 0, -1)]
    assert desktop.is_enabled(newer) and desktop.is_disabled(older)
    br.screenshot(desktop, "account-history-page-2-desktop")
    desktop.click(newer)
    desktop.wait_for_selector("#history-range:has-text('1–50 of 57')", timeout=WAIT)
    assert amounts()[0] == f"+{count}"


# --- sosocoin flows 1 and 4: a second node, with p2p ------------------------------------------


def test_add_a_peer_and_sync_a_node_that_was_behind(tmp_path: Path, browser: Browser) -> None:
    """Node A seals blocks alone; node B shares its genesis, starts later and is behind.
    On B's page (a basic node: no miner): "Sync now" with no peer says there is no one to
    sync from; add A as a peer by its page URL (flow 1), see it in both peer tables (and on
a phone), press "Sync now"
    (flow 4) and watch B's height reach A's, with the same blocks."""
    with TestNode.create(tmp_path / "a", name="A", interval_ms=200) as a, \
            TestNode.sharing_chain(a, tmp_path / "b", name="B") as b:
        a.enable_p2p()
        b.enable_p2p()
        a.start("state", "miner", "p2p", "api")
        assert a.http.get("/api/v1/peers").json()["p2p"] is True
        wait_until(lambda: a.api.height() >= 8, timeout=20, what="node A to get ahead")
        b.start("state", "p2p", "api")
        context = browser.new_context(viewport=br.DESKTOP)
        page = context.new_page()
        goto(page, b.url, "#/operate")
        page.wait_for_selector("#peer-form", timeout=WAIT)
        # B's own address, ready to copy for another node's form
        page.wait_for_selector("#own-endpoint code", timeout=WAIT)
        assert page.text_content("#own-endpoint code") == b.p2p_endpoint
        page.wait_for_selector("#mining:has-text('No miner on this node')", timeout=WAIT)
        page.click("#sync-now")
        page.wait_for_selector("#network-result:has-text('No peer to sync from')", timeout=WAIT)
        # as sosocoin's users do: by the other node's page URL (B reads A's status for its
        # p2p endpoint)
        page.fill("#peer-endpoint", f"{a.url}/")
        page.click("#peer-form button[type=submit]")
        page.wait_for_selector("#network-result .notice.ok", timeout=WAIT)
        # the answer waited for the handshake: it names the node now linked
        a_id = a.http.get("/api/v1/peers").json()["node_id"]
        assert page.text_content("#network-result .notice.ok") == (
            f"Connected to node {a_id[:8]}…{a_id[-6:]} at {a.p2p_endpoint} (outbound).")

        def peer_rows(url: str) -> int:
            goto(page, url, "#/operate")
            page.wait_for_selector("#peer-list p", timeout=WAIT)
            return page.locator("#peer-list tbody tr").count()

        wait_until(lambda: peer_rows(b.url) >= 1, timeout=30, what="B to list A as a peer")
        br.screenshot(page, "peers-b-desktop")
        wait_until(lambda: peer_rows(a.url) >= 1, timeout=30, what="A to list B as a peer")
        br.screenshot(page, "peers-a-desktop")
        # on a phone, the peers table is one card per peer, nothing cut off
        phone = browser.new_context(viewport=br.PHONE, is_mobile=True, has_touch=True)
        small = phone.new_page()
        goto(small, a.url, "#/operate")
        small.wait_for_selector("#peer-list tbody tr", timeout=WAIT)
        assert small.evaluate("() => [...document.querySelectorAll('#peer-list .table-wrap')]"
                              ".every((w) => w.scrollWidth <= w.clientWidth + 1)")
        assert small.locator("#peer-list td[data-label='Height']").is_visible()
        br.screenshot(small, "peers-a-phone")
        phone.close()
        target = a.api.height()
        goto(page, b.url, "#/operate")
        page.wait_for_selector("#sync-now", timeout=WAIT)
        page.click("#sync-now")
        page.wait_for_selector("#network-result .notice.ok", timeout=WAIT)
        goto(page, b.url)
        page.wait_for_function(HEIGHT_AT_LEAST, arg=target, timeout=60_000)
        assert "no miner on this node" in stat(page, "Mining")
        assert stat(page, "Peers") == "1"
        br.screenshot(page, "synced-b-desktop")
        assert a.api.block(target)["hash"] == b.api.block(target)["hash"]
        context.close()
