"""The web dashboard (issue 5): sosocoin's node page, in a real headless Chromium against a
real node (state + miner + api processes on a dev chain).

The first tests need no browser: the page and its assets as served (and as shipped in the
wheel), and the admin hint. The browser tests walk sosocoin's test flows as a person would,
through the page only: mine and see the reward, send from the wallet form and follow the
transaction from the pool into a block and the recipient's balance, the search box for each
kind of key, and a visitor who is not the operator; adding a peer and syncing a node that was
behind, on a second node with p2p.

Screenshots of every page, at desktop and phone width, land in test-artifacts/dashboard/.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pytest

from common.crypto import Signer
from common.types import Transaction
from tests.framework import browser as br
from tests.framework.node import TestNode
from tests.framework.util import ROOT, wait_until

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize

TOKEN = "dash-token-" + os.urandom(8).hex()
VISITOR_HOST = "ccoin-visitor.test"  # mapped to 127.0.0.1 inside Chromium only
STATIC = ROOT / "services" / "api" / "static"
WAIT = 20_000  # ms, for the page to show something
WINDOW = 50  # blocks the page's charts hold (static/live.js)
# page functions, not expressions: the page's CSP forbids eval, and Playwright evaluates a
# bare expression string with it
HASH_IS = "h => location.hash === h"
HEIGHT_AT_LEAST = ("t => Number((document.querySelector('#stats .stat:nth-child(2) dd')"
                   "?.textContent ?? '-1').replace(/,/g, '')) >= t")

@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestNode]:
    with TestNode.create(tmp_path_factory.mktemp("dash-node"), interval_ms=500,
                         config={"api": {"admin_token": TOKEN}}) as n:
        yield n.start("state", "miner", "api")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    reason = br.unavailable_reason()
    if reason:
        pytest.skip(reason)
    br.clean_artifacts()
    with br.chromium([f"--host-resolver-rules=MAP {VISITOR_HOST} 127.0.0.1"]) as b:
        yield b


@pytest.fixture
def desktop(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=br.DESKTOP)
    page = context.new_page()
    errors = br.PageErrors(page)
    yield page
    context.close()
    errors.check()


def height(node: TestNode) -> int:
    h: int = node.http.get("/api/v1/status").json()["height"]
    return h


def balance(node: TestNode, address: str) -> int:
    b: int = node.http.get(f"/api/v1/accounts/{address}").json()["balance"]
    return b


def mining(node: TestNode, on: bool) -> None:
    assert node.http.post(f"/api/v1/mining/{'start' if on else 'stop'}").status_code == 200


def goto(page: Page, url: str, route: str = "") -> None:
    page.goto(f"{url}/{route}")
    page.wait_for_selector("main h1", timeout=WAIT)


def int_text(page: Page, selector: str) -> int:
    return int(re.sub(r"[^0-9]", "", page.inner_text(selector)) or "-1")


def stat(page: Page, label: str) -> str:
    """The value of the stat card labelled `label`."""
    return page.locator(".stat", has=page.locator("dt", has_text=label)).locator("dd") \
        .inner_text()


# --- the page as served, no browser -----------------------------------------------------------


def test_page_assets_and_headers(node: TestNode) -> None:
    r = node.http.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "connect-src 'self'" in csp and r.headers["x-content-type-options"] == "nosniff"
    html = r.text
    # everything the page loads is on this origin: no CDN, no external request
    refs = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert refs and all(ref.startswith(("/", "#", "data:")) for ref in refs), refs
    types = {".js": "text/javascript", ".css": "text/css"}
    served: dict[str, str] = {}
    for path in sorted(STATIC.iterdir()):
        if path.suffix not in types:
            continue
        a = node.http.get(f"/static/{path.name}")
        assert a.status_code == 200, path.name
        assert a.headers["content-type"].startswith(types[path.suffix])
        assert a.content == path.read_bytes()
        served[path.name] = a.text
        again = node.http.get(f"/static/{path.name}", headers={"If-None-Match": a.headers["etag"]})
        assert again.status_code == 304
    for name, text in served.items():
        for module in re.findall(r"""(?:import|from)\s+['"]([^'"]+)['"]""", text):
            assert module.startswith("./") and module[2:] in served, (name, module)
        assert not re.search(r"""(fetch|EventSource|import)\(\s*['"`]https?:""", text), name
        assert "innerHTML" not in text and "insertAdjacentHTML" not in text, name
    assert sum(len(t) for t in served.values()) < 150_000  # small: no framework
    for bad in ("/static/nothing.js", "/static/..%2fapp.py", "/static/.hidden.js",
                "/static/dashboard.py"):
        r = node.http.get(bad)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", bad


def test_whoami_follows_the_admin_rule(node: TestNode) -> None:
    def who(**headers: str) -> dict[str, Any]:
        r = node.http.get("/api/v1/dashboard/whoami", headers=headers)
        assert r.status_code == 200
        doc: dict[str, Any] = r.json()
        return doc

    assert who() == {"admin": True, "reason": None}
    for headers in ({"Host": "node.example"}, {"X-Forwarded-For": "203.0.113.9"},
                    {"Origin": "https://attacker.example"},
                    {"Authorization": "Bearer wrong"}):
        doc = who(**headers)
        assert doc["admin"] is False and doc["reason"], headers
    assert who(Host="node.example", Authorization=f"Bearer {TOKEN}")["admin"] is True


def test_assets_ship_in_the_wheel(tmp_path: Path) -> None:
    """Build the wheel from a copy of the sources, install it into a bare folder, and serve
    the page from there: the static files are package data."""
    src = tmp_path / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("common", "runtime", "client", "services", "tools"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, src / name)
    out = tmp_path / "dist"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                            str(out), str(src)], capture_output=True, text=True, timeout=180)
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    wheel = next(out.glob("ccoin-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {p.name for p in STATIC.iterdir() if p.suffix in (".html", ".js", ".css")}
    assert shipped and {f"services/api/static/{n}" for n in shipped} <= names
    site = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q",
                              "--target", str(site), str(wheel)],
                             capture_output=True, text=True, timeout=120)
    assert install.returncode == 0, install.stderr[-2000:]
    probe = (
        "import pathlib, services.api.dashboard as d\n"
        "from fastapi.testclient import TestClient\n"
        "from runtime.config import NodeConfig\n"
        "from services.api.app import create_app\n"
        "assert str(pathlib.Path(d.__file__).resolve()).startswith("
        f"{str(site.resolve())!r}), d.__file__\n"
        "c = TestClient(create_app(NodeConfig(base_path=pathlib.Path('.')), 1))\n"
        "r = c.get('/'); assert r.status_code == 200 and 'app.js' in r.text, r.text\n"
        "r = c.get('/static/app.js'); assert r.status_code == 200 and 'import' in r.text\n"
        "print('served', len(d.assets()))\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(site)
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=tmp_path, env=env, timeout=60)
    assert run.returncode == 0 and run.stdout.startswith("served"), run.stderr[-3000:]


# --- in the browser ------------------------------------------------------------------------


def test_overview_is_live_without_a_polling_storm(node: TestNode, desktop: Page) -> None:
    wait_until(lambda: height(node) >= 3, timeout=20, what="a few blocks")
    api_requests: list[str] = []
    desktop.on("request", lambda req: api_requests.append(req.url)
               if "/api/v1/" in req.url else None)
    goto(desktop, node.url)
    desktop.wait_for_selector("#stats .stat", timeout=WAIT)
    first = int(stat(desktop, "Height").replace(",", ""))
    desktop.wait_for_function(HEIGHT_AT_LEAST, arg=first + 3, timeout=WAIT)
    assert desktop.inner_text("#live") == "live"  # the event stream, not polling
    assert re.fullmatch(r"\d+ txs\n\d+ ready · \d+(\.\d)? (B|KiB)", stat(desktop, "Pool")), \
        stat(desktop, "Pool")
    assert stat(desktop, "Network").startswith("#1337") and stat(desktop, "Syncing") == "no"
    assert "in turn" in desktop.inner_text("#authorities")
    assert node.chain.validator.address.hex()[:8] in desktop.inner_text("#authorities")
    desktop.wait_for_selector("#chart-interval svg path.line", timeout=WAIT)
    desktop.wait_for_selector("#chart-txs svg rect.bar", state="attached", timeout=WAIT)
    label = desktop.get_attribute("#chart-interval svg", "aria-label") or ""
    assert label.startswith("Block interval over blocks"), label
    assert desktop.locator("#latest tbody tr").count() == 8
    # blocks every 0.5 s: the page still asks at most about once a second
    # (wait_for_timeout, not time.sleep: Playwright's sync API delivers page events only
    # while it is called)
    api_requests.clear()
    desktop.wait_for_timeout(5000)
    status_calls = [u for u in api_requests if u.endswith("/api/v1/status")]
    assert 3 <= len(status_calls) <= 7 and len(api_requests) <= 16, api_requests
    br.screenshot(desktop, "overview-desktop")


def test_the_pool_chart_starts_from_the_nodes_samples(node: TestNode, desktop: Page) -> None:
    """A page opened on a quiet chain draws the pool's size over the last blocks at once,
    from the gateway's samples, instead of waiting for new blocks to sample."""
    wait_until(lambda: height(node) >= 4, timeout=20, what="a few blocks")
    mining(node, False)
    try:
        wait_until(lambda: node.http.get("/api/v1/mempool/history").json()["samples"][-1][
            "height"] == height(node), timeout=20, what="the last block sealed")
        samples = node.http.get("/api/v1/mempool/history").json()["samples"][-WINDOW:]
        assert len(samples) >= 3
        goto(desktop, node.url)
        desktop.wait_for_selector("#chart-mempool svg", timeout=WAIT)
        label = desktop.get_attribute("#chart-mempool svg", "aria-label") or ""
        first, last = samples[0]["height"], samples[-1]["height"]
        assert label.startswith(f"Pool size over blocks {first} to {last}:"), label
    finally:
        mining(node, True)


def test_mine_and_see_the_reward(node: TestNode, desktop: Page) -> None:
    """sosocoin flow 2 from the Operate page: stop mining, start it again, watch blocks
    grow and the validator's balance with them."""
    goto(desktop, node.url, "#/operate")
    desktop.wait_for_selector("#mining-stop:enabled", timeout=WAIT)
    try:
        desktop.click("#mining-stop")
        desktop.wait_for_selector("#mining-result .notice.ok", timeout=WAIT)
        desktop.wait_for_selector("#mining-stats:has-text('stopped')", timeout=WAIT)
        desktop.wait_for_selector("#mining-start:enabled", timeout=WAIT)
        stopped_at = height(node)
        # the behaviour under test is that nothing happens: three intervals without a block
        time.sleep(1.5)
        assert height(node) <= stopped_at + 1  # at most the block already being sealed
        goto(desktop, node.url, "#/wallet")
        desktop.wait_for_selector("#wallet-stats", timeout=WAIT)
        before = int(stat(desktop, "Balance").replace(",", ""))
        goto(desktop, node.url, "#/operate")
        desktop.click("#mining-start")
        desktop.wait_for_selector("#mining-stop:enabled", timeout=WAIT)
    finally:
        mining(node, True)  # whatever happened above, the other tests need blocks
    br.screenshot(desktop, "operate-desktop")
    goto(desktop, node.url, "#/wallet")
    desktop.wait_for_function(
        "b => Number(document.querySelector('#wallet-stats dd').textContent.replace(/,/g, ''))"
        " >= b + 300", arg=before, timeout=WAIT)  # three more rewards of 100, seen live
    assert height(node) >= stopped_at + 3


def test_send_from_the_wallet_form(node: TestNode, desktop: Page) -> None:
    """sosocoin flow 3: send from the wallet form; see the transaction in the pool, then in
    a block, then in the recipient's balance — all through the page."""
    seen: list[bytes] = []
    desktop.on("response", lambda r: seen.append(r.body()) if "/api/" in r.url
               and r.request.method != "HEAD" and "events" not in r.url else None)
    wait_until(lambda: balance(node, node.chain.validator.address.hex()) >= 1000, timeout=20,
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
    assert "exceeds the balance" in desktop.inner_text("#send-amount-error")
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
    mining(node, False)
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
        mining(node, True)
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
    wait_until(lambda: balance(node, to.hex()) == total, timeout=20,
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


def test_search_box_takes_every_kind_of_key(node: TestNode, desktop: Page) -> None:
    wait_until(lambda: height(node) >= 3, timeout=20, what="a few blocks")
    block2 = node.http.get("/api/v1/blocks/2").json()
    sent = node.http.post("/api/v1/wallet/send", json={"to": "ab" * 20, "amount": 1})
    assert sent.status_code == 202, sent.text
    tx_id = sent.json()["id"]
    goto(desktop, node.url)

    def search(text: str) -> None:
        desktop.fill("#q", text)
        desktop.press("#q", "Enter")

    search("2")
    desktop.wait_for_selector("main h1:text-is('Block #2')", timeout=WAIT)
    assert desktop.evaluate("() => location.hash") == "#/block/2"
    search(block2["hash"].upper())
    desktop.wait_for_function(HASH_IS, arg=f"#/block/{block2['hash']}", timeout=WAIT)
    desktop.wait_for_selector(f"main code:text-is('{block2['hash']}')", timeout=WAIT)
    search(tx_id)
    desktop.wait_for_function(HASH_IS, arg=f"#/tx/{tx_id}", timeout=WAIT)
    desktop.wait_for_selector("#tx-status", timeout=WAIT)
    address = node.chain.validator.address.hex()
    search("0x" + address)
    desktop.wait_for_function(HASH_IS, arg=f"#/account/{address}", timeout=WAIT)
    desktop.wait_for_selector("#account-stats", timeout=WAIT)
    search("ee" * 32)
    desktop.wait_for_selector("#search-result:has-text('No block or transaction')",
                              timeout=WAIT)
    search("hello?")
    desktop.wait_for_selector("#search-result:has-text('40 hex')", timeout=WAIT)
    search("99999999")
    desktop.wait_for_selector("main:has-text('no block at height 99999999')", timeout=WAIT)


# routes of issue 4 (and later) that an older gateway lacks (it answers 404 "no route ...")
NEWER_ROUTES = re.compile(r"/api/v1/(events|consensus|peers|mempool/history)$|"
                          r"/api/v1/accounts/[0-9a-f]+/txs\?|/api/v1/txs/[0-9a-f]+/proof$")


def test_an_older_node_degrades_gracefully(node: TestNode, browser: Browser) -> None:
    """Against a gateway without the event stream, consensus, history, proofs and peers,
    the page says what is not available and polls /status every 5 s instead."""
    sent = node.http.post("/api/v1/wallet/send", json={"to": "ef" * 20, "amount": 9})
    tx_id = sent.json()["id"]
    wait_until(lambda: node.http.get(f"/api/v1/txs/{tx_id}").json()["status"] == "confirmed",
               timeout=20, what="a confirmed transaction")
    context = browser.new_context(viewport=br.DESKTOP)
    page = context.new_page()
    errors = br.PageErrors(page, allow=("EventSource",))

    def no_route(route: Any) -> None:
        path = route.request.url.split("//", 1)[1].split("/", 1)[1].split("?")[0]
        route.fulfill(status=404, content_type="application/json", body=json.dumps(
            {"error": {"code": "not_found", "message": f"no route GET /{path}"}}))

    page.route(NEWER_ROUTES, no_route)
    status_calls: list[float] = []
    page.on("request", lambda r: status_calls.append(time.monotonic())
            if r.url.endswith("/api/v1/status") else None)
    try:
        goto(page, node.url)
        page.wait_for_selector("#live[data-mode=polling]", timeout=WAIT)
        assert page.inner_text("#live") == "updating every 5 s"
        page.wait_for_selector("#authorities:has-text('not available')", timeout=WAIT)
        assert "in turn" in page.inner_text("#authorities")  # from /status alone
        first = int(stat(page, "Height").replace(",", ""))
        status_calls.clear()
        page.wait_for_timeout(6500)  # routes and events are served only inside such calls
        assert 1 <= len(status_calls) <= 3, status_calls  # a slow poll, not a storm
        assert int(stat(page, "Height").replace(",", "")) > first
        goto(page, node.url, f"#/tx/{tx_id}")
        page.wait_for_selector("main:has-text('Merkle proofs are not available')", timeout=WAIT)
        goto(page, node.url, f"#/account/{'ef' * 20}")
        page.wait_for_selector("main:has-text('history is not available')", timeout=WAIT)
        assert stat(page, "Balance") == "9"
        goto(page, node.url, "#/operate")
        page.wait_for_selector("#network:has-text('not available')", timeout=WAIT)
        assert page.locator("#peer-form, #sync-now").count() == 0
        page.wait_for_selector("#mining-stop", timeout=WAIT)  # the rest still works
        br.screenshot(page, "older-node-operate-desktop")
        errors.check()
    finally:
        context.close()


def _no_admin_controls(page: Page, url: str) -> None:
    goto(page, url)
    page.wait_for_selector("#who:has-text('Read-only visitor')", timeout=WAIT)
    nav = page.inner_text("#nav")
    assert "Wallet" not in nav and "Operate" not in nav
    for route, title in (("#/wallet", "Wallet"), ("#/operate", "Operate")):
        goto(page, url, route)
        page.wait_for_selector(f"main h1:text-is('{title}')", timeout=WAIT)
        page.wait_for_selector("main:has-text('for the node’s operator')", timeout=WAIT)
        assert page.locator("#send-form, #mining-start, #mining-stop, #peer-form, #sync-now") \
            .count() == 0
        assert page.locator("main button, main form").count() == 0


def test_visitor_sees_no_wallet_or_operate_controls(node: TestNode, browser: Browser) -> None:
    """The page as seen by someone who is not the operator: by a name that is not this
    machine's loopback (as another host would), or through a reverse proxy."""
    port = node.chain.api_port
    contexts: list[tuple[BrowserContext, str]] = [
        (browser.new_context(viewport=br.DESKTOP), f"http://{VISITOR_HOST}:{port}"),
        (browser.new_context(viewport=br.PHONE,
                             extra_http_headers={"X-Forwarded-For": "198.51.100.23"}), node.url),
    ]
    try:
        for i, (context, url) in enumerate(contexts):
            page = context.new_page()
            errors = br.PageErrors(page)
            _no_admin_controls(page, url)
            goto(page, url, "#/wallet")
            br.screenshot(page, f"visitor-wallet-{'desktop' if i == 0 else 'phone'}")
            errors.check()
        # the operator's token turns the panels on from anywhere
        page = contexts[0][0].pages[0]
        goto(page, contexts[0][1], "#/wallet")
        page.click("details.token summary")
        page.fill("#token", "wrong-token")
        page.click("#token-form button[type=submit]")
        page.wait_for_selector("#token-result:has-text('refused')", timeout=WAIT)
        assert page.locator("#send-form").count() == 0
        page.fill("#token", TOKEN)
        page.click("#token-form button[type=submit]")
        page.wait_for_selector("#send-form", timeout=WAIT)
        assert "Wallet" in page.inner_text("#nav")
        page.click("#token-forget")
        page.wait_for_selector("main:has-text('for the node’s operator')", timeout=WAIT)
    finally:
        for context, _ in contexts:
            context.close()


def test_every_page_at_desktop_and_phone_width(node: TestNode, browser: Browser) -> None:
    """A tour of every page, light and dark, desktop and phone: screenshots for review, and
    nothing wider than the screen on a phone."""
    wait_until(lambda: height(node) >= 5, timeout=20, what="a few blocks")
    sent = node.http.post("/api/v1/wallet/send", json={"to": "cd" * 20, "amount": 42,
                                                       "fee": 1, "data": "6869"})
    tx_id = sent.json()["id"]
    wait_until(lambda: node.http.get(f"/api/v1/txs/{tx_id}").json()["status"] == "confirmed",
               timeout=20, what="the tour's transaction to be confirmed")
    routes = {"overview": "", "explorer": "#/blocks", "pool": "#/pool",
              "block": "#/block/3", "tx": f"#/tx/{tx_id}", "account": f"#/account/{'cd' * 20}",
              "wallet": "#/wallet", "operate": "#/operate"}
    tours: list[tuple[str, ViewportSize, Literal["light", "dark"]]] = [
        ("desktop", br.DESKTOP, "light"), ("phone", br.PHONE, "light"),
        ("dark", br.DESKTOP, "dark")]
    for label, viewport, scheme in tours:
        context = browser.new_context(viewport=viewport, color_scheme=scheme,
                                      is_mobile=label == "phone", has_touch=label == "phone")
        page = context.new_page()
        errors = br.PageErrors(page)
        try:
            for name, route in routes.items():
                if label == "dark" and name not in ("overview", "tx", "wallet"):
                    continue
                goto(page, node.url, route)
                page.wait_for_function(
                    "() => !document.querySelector('main').textContent.includes('Loading')",
                    timeout=WAIT)
                if name == "overview":
                    page.wait_for_selector("#chart-txs svg", state="attached", timeout=WAIT)
                if name == "tx":
                    page.wait_for_selector("text=Checked in this browser", timeout=WAIT)
                overflow = page.evaluate(
                    "() => document.documentElement.scrollWidth - window.innerWidth")
                assert overflow <= 0, f"{name} is {overflow}px wider than a {label} screen"
                br.screenshot(page, f"{name}-{label}")
            errors.check()
        finally:
            context.close()


# --- sosocoin flows 1 and 4: a second node, with p2p ------------------------------------------


def test_add_a_peer_and_sync_a_node_that_was_behind(tmp_path: Path, browser: Browser) -> None:
    """Node A seals blocks alone; node B shares its genesis, starts later and is behind.
    On B's page: add A as a peer (flow 1), see it in both peer tables, press "Sync now"
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
        page.fill("#peer-endpoint", a.p2p_endpoint)
        page.click("#peer-form button[type=submit]")
        page.wait_for_selector("#network-result .notice.ok", timeout=WAIT)

        def peer_rows(url: str) -> int:
            goto(page, url, "#/operate")
            page.wait_for_selector("#peer-list p", timeout=WAIT)
            return page.locator("#peer-list tbody tr").count()

        wait_until(lambda: peer_rows(b.url) >= 1, timeout=30, what="B to list A as a peer")
        br.screenshot(page, "peers-b-desktop")
        wait_until(lambda: peer_rows(a.url) >= 1, timeout=30, what="A to list B as a peer")
        br.screenshot(page, "peers-a-desktop")
        target = a.api.height()
        goto(page, b.url, "#/operate")
        page.wait_for_selector("#sync-now", timeout=WAIT)
        page.click("#sync-now")
        page.wait_for_selector("#network-result .notice.ok", timeout=WAIT)
        goto(page, b.url)
        page.wait_for_function(HEIGHT_AT_LEAST, arg=target, timeout=60_000)
        br.screenshot(page, "synced-b-desktop")
        assert a.api.block(target)["hash"] == b.api.block(target)["hash"]
        context.close()
