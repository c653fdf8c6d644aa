"""interface_dashboard: the web dashboard (issue 5), sosocoin's node page, against a real node
(state + miner + api processes on a dev chain).

The first tests need no browser: the page and its assets as served (and as shipped in the
wheel), and the admin hint. The browser tests (headless Chromium) look at the page as a
person would: the overview live from the event stream without a polling storm, the overview
following what no event announces (mining stopped, p2p down) within seconds, the pool
chart, mining stopped and started from the Operate page with the reward seen live, the
search box for each kind of key, an older gateway the page degrades on, a visitor who is
not the operator, and every page at desktop and phone width. (The operator's wallet,
history and peer flows: interface_dashboard_wallet.py.)

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

from tests.framework import browser as br
from tests.framework.browser import HASH_IS, HEIGHT_AT_LEAST, VISITOR_HOST, WAIT, goto, stat
from tests.framework.node import TestNode
from tests.framework.util import ROOT, wait_until

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize

TOKEN = "dash-token-" + os.urandom(8).hex()
ASSUMED = "ab" * 32  # a block hash no chain here holds
STATIC = ROOT / "services" / "api" / "static"
WINDOW = 50  # blocks the page's charts hold (static/live.js)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestNode]:
    with TestNode.create(tmp_path_factory.mktemp("dash-node"), interval_ms=500,
                         config={"api": {"admin_token": TOKEN},
                                 # a block no peer has: the overview shows assume-valid on
                                 "sync": {"assume_valid": ASSUMED}}) as n:
        n.enable_p2p()  # no peers: its own p2p, to be stopped and started by a test
        yield n.start("state", "p2p", "miner", "api")


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
    wait_until(lambda: node.api.height() >= 3, timeout=20, what="a few blocks")
    api_requests: list[str] = []
    desktop.on("request", lambda req: api_requests.append(req.url)
               if "/api/v1/" in req.url else None)
    goto(desktop, node.url)
    desktop.wait_for_selector("#stats .stat", timeout=WAIT)
    first = int(stat(desktop, "Height").replace(",", ""))
    desktop.wait_for_function(HEIGHT_AT_LEAST, arg=first + 3, timeout=WAIT)
    assert desktop.inner_text("#live") == "live"  # the event stream, not polling
    # the readiness badge: this validator seals, its head advances (GET /api/v1/ready)
    desktop.wait_for_selector("#ready.ok:text-is('ready')", timeout=WAIT)
    assert "passes" in (desktop.get_attribute("#ready", "title") or "")
    assert re.fullmatch(r"\d+ txs\n\d+ ready · \d+(\.\d)? (B|KiB)", stat(desktop, "Pool")), \
        stat(desktop, "Pool")
    assert stat(desktop, "Network").startswith("#1337") and stat(desktop, "Syncing") == "no"
    assert stat(desktop, "Assume-valid") == \
        "searching\n0 signatures skipped · no peer has shown the block yet"
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


def _shows(page: Page, label: str, text: str, timeout: float = WAIT) -> None:
    """Wait until the stat card `label` shows `text`."""
    page.wait_for_selector(f".stat:has(dt:text-is('{label}')) dd:has-text('{text}')",
                           timeout=timeout)


# the page's view of the Page Visibility API, switched as a browser does when the tab is
# hidden or shown (headless Chromium keeps every page visible by itself)
SET_HIDDEN = ("hidden => { Object.defineProperty(document, 'hidden', {configurable: true, "
              "get: () => hidden}); document.dispatchEvent(new Event('visibilitychange')); }")


def test_the_overview_follows_mining_and_p2p_within_seconds(node: TestNode,
                                                            desktop: Page) -> None:
    """No event says that mining stopped or p2p went down: the page re-reads the status
    every 2 s while it is visible (and not at all while hidden), so the overview shows
    either within 5 s without a reload, and p2p down as unknown peers, not "0"; the
    Operate page follows both back."""
    status_calls: list[str] = []
    desktop.on("request", lambda r: status_calls.append(r.url)
               if r.url.endswith("/api/v1/status") else None)
    goto(desktop, node.url)
    _shows(desktop, "Mining", "mining")
    _shows(desktop, "Peers", "none connected")
    try:
        node.client.set_mining(False)
        _shows(desktop, "Mining", "stopped", timeout=5000)
        # a quiet chain: a status read every 2 s (the block sealed as mining stopped may
        # add one)
        status_calls.clear()
        desktop.wait_for_timeout(4200)
        assert 1 <= len(status_calls) <= 3, status_calls
        # hidden: no reads at all; shown again: one at once
        desktop.evaluate(SET_HIDDEN, True)
        status_calls.clear()
        desktop.wait_for_timeout(2500)  # longer than the 2 s between reads
        assert status_calls == []
        with desktop.expect_request(lambda r: r.url.endswith("/api/v1/status"), timeout=1500):
            desktop.evaluate(SET_HIDDEN, False)

        node.stop_service("p2p")
        _shows(desktop, "Peers", "unknown", timeout=5000)
        assert "no p2p service answers" in stat(desktop, "Peers")
        assert stat(desktop, "Syncing") == "unknown"
        assert desktop.locator("#stats dt", has_text="Assume-valid").count() == 0  # p2p says it
        br.screenshot(desktop, "overview-stopped-desktop")
        # the Operate page follows them too: its peers panel comes back with p2p, its miner
        # panel sees mining started from elsewhere
        goto(desktop, node.url, "#/operate")
        desktop.wait_for_selector("#network:has-text('not running')", timeout=WAIT)
        desktop.wait_for_selector("#mining-stats:has-text('stopped')", timeout=WAIT)
        node.restart("p2p")
        desktop.wait_for_selector("#peer-list:has-text('0 peers')", timeout=5000)
        desktop.wait_for_selector("#peer-form", timeout=WAIT)
    finally:
        if not node.process("p2p").alive():
            node.restart("p2p")
        node.client.set_mining(True)
    desktop.wait_for_selector("#mining-stats .badge.ok:text-is('mining')", timeout=5000)


def test_the_pool_chart_starts_from_the_nodes_samples(node: TestNode, desktop: Page) -> None:
    """A page opened on a quiet chain draws the pool's size since the last blocks at once,
    from the gateway's samples at each head, instead of starting empty."""
    wait_until(lambda: node.api.height() >= 4, timeout=20, what="a few blocks")
    node.client.set_mining(False)
    try:
        wait_until(lambda: node.http.get("/api/v1/mempool/history").json()["samples"][-1][
            "height"] == node.api.height(), timeout=20, what="the last block sealed")
        height = node.api.height()
        samples = [s for s in node.http.get("/api/v1/mempool/history").json()["samples"]
                   if s["height"] > height - WINDOW]  # the blocks the page holds
        assert len(samples) >= 3
        goto(desktop, node.url)
        desktop.wait_for_selector("#chart-mempool svg", timeout=WAIT)
        label = desktop.get_attribute("#chart-mempool svg", "aria-label") or ""
        # over time, from the time of the first of those blocks (then sampled every read)
        sealed = node.http.get(f"/api/v1/blocks/{samples[0]['height']}").json()
        first = desktop.evaluate(
            "ms => new Intl.DateTimeFormat('en-GB', {hour: '2-digit', minute: '2-digit', "
            "second: '2-digit'}).format(new Date(ms))", sealed["header"]["timestamp"])
        assert label.startswith(f"Pool size over time, {first} to "), label
        # the only authority seals no more: the consensus panel says so without a new block
        desktop.wait_for_selector("#authorities .notice.bad:has-text('waiting: authority')",
                                  timeout=WAIT)
        assert "with 1 authority it must be online" in desktop.inner_text("#authorities")
    finally:
        node.client.set_mining(True)


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
        stopped_at = node.api.height()
        # the behaviour under test is that nothing happens: three intervals without a block
        time.sleep(1.5)
        assert node.api.height() <= stopped_at + 1  # at most the block already being sealed
        goto(desktop, node.url, "#/wallet")
        desktop.wait_for_selector("#wallet-stats", timeout=WAIT)
        before = int(stat(desktop, "Balance").replace(",", ""))
        goto(desktop, node.url, "#/operate")
        desktop.click("#mining-start")
        desktop.wait_for_selector("#mining-stop:enabled", timeout=WAIT)
    finally:
        node.client.set_mining(True)  # whatever happened above, the other tests need blocks
    br.screenshot(desktop, "operate-desktop")
    goto(desktop, node.url, "#/wallet")
    desktop.wait_for_selector("#wallet-stats dd", timeout=WAIT)  # drawn once /wallet answers
    desktop.wait_for_function(
        "b => Number(document.querySelector('#wallet-stats dd').textContent.replace(/,/g, ''))"
        " >= b + 300", arg=before, timeout=WAIT)  # three more rewards of 100, seen live
    assert node.api.height() >= stopped_at + 3


def test_search_box_takes_every_kind_of_key(node: TestNode, desktop: Page) -> None:
    wait_until(lambda: node.api.height() >= 3, timeout=20, what="a few blocks")
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


def test_block_page_shows_the_accounts_it_changed(node: TestNode, desktop: Page) -> None:
    """The seed's "a single block and all its transaction data and state": the block page
    lists each account the block changed, balance and nonce before -> after, as the
    block's JSON has them."""
    to = os.urandom(20).hex()
    validator = node.chain.validator.address.hex()  # the sender, and the block's coinbase
    wait_until(lambda: node.api.balance(node.chain.validator.address) >= 200, timeout=20,
               what="the validator's first rewards")
    sent = node.http.post("/api/v1/wallet/send", json={"to": to, "amount": 123, "fee": 2})
    assert sent.status_code == 202, sent.text
    tx_id = sent.json()["id"]
    wait_until(lambda: node.http.get(f"/api/v1/txs/{tx_id}").json()["status"] == "confirmed",
               timeout=20, what="the transfer to be confirmed")
    height = node.http.get(f"/api/v1/txs/{tx_id}").json()["height"]
    changes = node.http.get(f"/api/v1/blocks/{height}").json()["changes"]
    assert {c["address"] for c in changes} == {validator, to}
    goto(desktop, node.url, f"#/block/{height}")
    desktop.wait_for_selector("table.changes tbody tr", timeout=WAIT)
    rows = desktop.evaluate("""() => [...document.querySelectorAll('table.changes tbody tr')]
        .map((tr) => [tr.querySelector('a').title,
                      ...[...tr.querySelectorAll('td')].slice(1).map((td) => td.textContent)])""")

    def change(c: dict[str, Any]) -> str:
        d = c["after"]["balance"] - c["before"]["balance"]
        return f"{d:+,}" if d > 0 else f"{d:,}"

    assert rows == [[c["address"], f"{c['before']['balance']:,} → {c['after']['balance']:,}",
                     change(c), f"{c['before']['nonce']:,} → {c['after']['nonce']:,}"]
                    for c in changes]
    assert rows[[r[0] for r in rows].index(to)][1:] == ["0 → 123", "+123", "0 → 0"]
    desktop.locator("section[aria-labelledby='p-accounts-changed']").scroll_into_view_if_needed()
    br.screenshot(desktop, "block-changes-desktop", full_page=False)


# routes of issue 4 (and later) that an older gateway lacks (it answers 404 "no route ...")
NEWER_ROUTES = re.compile(r"/api/v1/(events|consensus|peers|mempool/history|ready)$|"
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
        assert page.inner_text("#live") == "updating every 2 s"
        page.wait_for_selector("#authorities:has-text('not available')", timeout=WAIT)
        assert "in turn" in page.inner_text("#authorities")  # from /status alone
        assert page.locator("#ready").is_hidden()  # no readiness route: no badge
        first = int(stat(page, "Height").replace(",", ""))
        status_calls.clear()
        page.wait_for_timeout(6500)  # routes and events are served only inside such calls
        assert 2 <= len(status_calls) <= 4, status_calls  # every 2 s, not a storm
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
    wait_until(lambda: node.api.height() >= 5, timeout=20, what="a few blocks")
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
