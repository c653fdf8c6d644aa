"""interface_rest: the REST gateway over the real bus: a dev chain with real state, miner and
api processes, driven over HTTP the way a client would (interface tests, in Bitcoin Core's
terms).

One node serves the whole module. Every response body is recorded so the last test can
check that no private key ever left the node.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from client import Client
from common.crypto import KeyType, PrivateKey, Signer
from common.encoding import pack
from common.types import Transaction
from tests.framework.node import TestNode
from tests.framework.ports import free_port
from tests.framework.rest import assert_error
from tests.framework.util import wait_until
from tools.devchain import DEV_FUNDS, DevChain

CHAIN = 1337
TOKEN = "test-admin-token-" + os.urandom(8).hex()
BATCH_FUNDS = 10**9
SEEN: list[bytes] = []  # every response body of the module


@dataclass
class Node:
    node: TestNode
    chain: DevChain
    url: str
    http: httpx.Client
    batcher: Signer


def _record(response: httpx.Response) -> None:
    response.read()
    SEEN.append(response.content)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    batcher = Signer(PrivateKey.generate(KeyType.ED25519))
    test_node = TestNode.create(tmp_path_factory.mktemp("api-node"), interval_ms=500,
                                extra_alloc={batcher.address: BATCH_FUNDS},
                                config={"api": {"admin_token": TOKEN}})
    try:
        test_node.start("state", "miner", "api")
        with httpx.Client(base_url=test_node.url, timeout=20.0,
                          event_hooks={"response": [_record]}) as http:
            yield Node(test_node, test_node.chain, test_node.url, http, batcher)
    finally:
        codes = test_node.stop()
    assert codes.get("api") == 0, f"the gateway's exit status on SIGTERM: {codes}"


def tx_doc(tx: Transaction) -> dict[str, Any]:
    return {"chain_id": tx.chain_id, "nonce": tx.nonce,
            "key_type": "ed25519" if tx.key_type == 0 else "rsa",
            "public_key": tx.public_key.hex(), "to": tx.to.hex(), "amount": tx.amount,
            "fee": tx.fee, "data": tx.data.hex(), "signature": tx.signature.hex()}


def account(node: Node, address: bytes) -> dict[str, Any]:
    r = node.http.get(f"/api/v1/accounts/{address.hex()}")
    assert r.status_code == 200, r.text
    doc: dict[str, Any] = r.json()
    return doc


def height(node: Node) -> int:
    h: int = node.http.get("/api/v1/status").json()["height"]
    return h


def confirmed(node: Node, tx_id: str, timeout: float = 30.0) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        doc = node.http.get(f"/api/v1/txs/{tx_id}").json()
        return doc if doc.get("status") == "confirmed" else None

    doc: dict[str, Any] = wait_until(check, timeout=timeout,
                                     what=f"transaction {tx_id[:16]} to be confirmed")
    return doc


# --- reads -----------------------------------------------------------------------------------


def batcher_transfers(node: Node, count: int, amount: int) -> tuple[bytes, list[Transaction]]:
    """`count` transfers of `amount` (fee 1) from the batcher, from its pending nonce on, to
    a new address (returned first)."""
    base = account(node, node.batcher.address)["pending_nonce"]
    to = os.urandom(20)
    return to, [Transaction.create(node.batcher, chain_id=CHAIN, nonce=base + i, to=to,
                                   amount=amount, fee=1) for i in range(count)]


def test_health_and_status_shape(node: Node) -> None:
    health = node.http.get("/health")
    assert health.status_code == 200
    assert health.json()["state"] == "ok"
    st = node.http.get("/api/v1/status").json()
    for key in ("network_id", "genesis", "height", "head", "total_weight", "peers", "syncing",
                "mining", "version", "state_root", "mempool", "authorities"):
        assert key in st, key
    assert st["network_id"] == CHAIN and st["peers"] == 0 and st["syncing"] is False
    assert len(st["genesis"]) == 64 and len(st["head"]) == 64
    assert st["authorities"] == [node.chain.validator.address.hex()]
    assert st["mining"] is True
    assert set(st["mempool"]) == {"count", "bytes", "ready"}
    root = node.http.get("/", follow_redirects=False)
    assert root.status_code == 200 and root.headers["content-type"].startswith("text/html")


def test_blocks_appear_and_read_back(node: Node) -> None:
    wait_until(lambda: height(node) >= 3, timeout=30, what="3 blocks")
    count = node.http.get("/api/v1/blocks/count").json()["count"]
    assert count >= 4
    page = node.http.get("/api/v1/blocks", params={"limit": 3}).json()
    heights = [b["header"]["height"] for b in page["blocks"]]
    assert heights == sorted(heights, reverse=True) and len(heights) == 3
    asc = node.http.get("/api/v1/blocks", params={"start": 0, "limit": 2, "order": "asc"})
    assert [b["header"]["height"] for b in asc.json()["blocks"]] == [0, 1]
    by_height = node.http.get("/api/v1/blocks/1").json()
    by_hash = node.http.get(f"/api/v1/blocks/{by_height['hash']}").json()
    assert by_height["hash"] == by_hash["hash"] == asc.json()["blocks"][1]["hash"]
    header = by_hash["header"]
    for key in ("height", "parent", "timestamp", "coinbase", "tx_root", "state_root",
                "difficulty", "nonce", "extra", "signer", "signature"):
        assert key in header, key
    assert header["signer"] == node.chain.validator.address.hex()
    assert header["parent"] == node.http.get("/api/v1/blocks/0").json()["hash"]
    assert by_hash["on_main_chain"] is True and by_hash["confirmations"] >= 1
    assert isinstance(by_hash["txs"], list) and by_hash["total_weight"] >= 1
    assert_error(node.http.get("/api/v1/blocks/99999999"), 404, "not_found")
    assert_error(node.http.get(f"/api/v1/blocks/{'ab' * 32}"), 404, "not_found")
    assert_error(node.http.get(f"/api/v1/txs/{'ab' * 32}"), 404, "not_found")


def test_unknown_account_is_empty(node: Node) -> None:
    acc = account(node, b"\x42" * 20)
    assert acc == {"address": "42" * 20, "balance": 0, "nonce": 0, "pending_nonce": 0}


# --- submission ------------------------------------------------------------------------------


def test_signed_transfer_is_confirmed_with_the_right_balances(node: Node) -> None:
    dev = Signer(node.chain.developer)
    to = os.urandom(20)
    before = account(node, dev.address)
    assert before["balance"] == DEV_FUNDS
    tx = Transaction.create(dev, chain_id=CHAIN, nonce=before["pending_nonce"], to=to,
                            amount=12_345, fee=7, data=b"hello")
    r = node.http.post("/api/v1/txs", json=tx_doc(tx))
    assert r.status_code == 202, r.text
    assert r.json() == {"id": tx.id.hex()}
    seen = node.http.get(f"/api/v1/txs/{tx.id.hex()}").json()
    assert seen["status"] in ("pending", "confirmed") and seen["from"] == dev.address.hex()
    doc = confirmed(node, tx.id.hex())
    assert doc["amount"] == 12_345 and doc["fee"] == 7 and doc["data"] == b"hello".hex()
    assert doc["confirmations"] >= 1 and doc["index"] == 0 and len(doc["block"]) == 64
    block = node.http.get(f"/api/v1/blocks/{doc['block']}").json()
    assert block["header"]["height"] == doc["height"]
    assert [t["id"] for t in block["txs"]] == [tx.id.hex()]
    assert account(node, to)["balance"] == 12_345
    after = account(node, dev.address)
    assert after["balance"] == DEV_FUNDS - 12_345 - 7
    assert after["nonce"] == after["pending_nonce"] == before["nonce"] + 1
    # the same nonce again: state knows it is spent
    again = Transaction.create(dev, chain_id=CHAIN, nonce=tx.nonce, to=to, amount=1, fee=7)
    assert_error(node.http.post("/api/v1/txs", json=tx_doc(again)), 409, "nonce_too_low")


def test_raw_form_is_accepted(node: Node) -> None:
    dev = Signer(node.chain.developer)
    nonce = account(node, dev.address)["pending_nonce"]
    tx = Transaction.create(dev, chain_id=CHAIN, nonce=nonce, to=os.urandom(20), amount=1,
                            fee=1)
    r = node.http.post("/api/v1/txs", json={"raw": tx.raw.hex()})
    assert r.status_code == 202 and r.json()["id"] == tx.id.hex()
    assert node.http.get(f"/api/v1/txs/{tx.id.hex()}").status_code == 200
    pool = node.http.get("/api/v1/mempool", params={"limit": 1000}).json()
    assert set(pool) >= {"count", "bytes", "txs"}
    confirmed(node, tx.id.hex())


def test_batch_gives_per_item_results(node: Node) -> None:
    b = node.batcher
    base = account(node, b.address)["pending_nonce"]
    to = os.urandom(20)
    good = [Transaction.create(b, chain_id=CHAIN, nonce=base + i, to=to, amount=100, fee=1)
            for i in range(3)]
    wrong_chain = Transaction.create(b, chain_id=CHAIN + 1, nonce=base + 3, to=to, amount=1)
    far_ahead = Transaction.create(b, chain_id=CHAIN, nonce=base + 10_000, to=to, amount=1,
                                   fee=1)
    poor = Signer(PrivateKey.generate())
    broke = Transaction.create(poor, chain_id=CHAIN, nonce=0, to=to, amount=5, fee=1)
    items: list[Any] = [
        tx_doc(good[0]),
        {**tx_doc(good[1]), "signature": "00" * 64},
        {"raw": good[1].raw.hex()},
        {**tx_doc(good[2]), "amount": True},
        tx_doc(wrong_chain),
        tx_doc(good[0]),
        tx_doc(far_ahead),
        tx_doc(broke),
        tx_doc(good[2]),
        42,
    ]
    r = node.http.post("/api/v1/txs/batch", json={"txs": items})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert len(results) == len(items)
    outcome = [res.get("status") or res["error"]["code"] for res in results]
    assert outcome == ["accepted", "bad_signature", "accepted", "malformed", "wrong_chain",
                       "duplicate", "nonce_gap", "insufficient_funds", "accepted", "malformed"]
    assert r.json()["accepted"] == 3
    assert [results[i]["id"] for i in (0, 2, 8)] == [t.id.hex() for t in good]
    assert results[4]["id"] == wrong_chain.id.hex() and "id" not in results[3]
    for tx in good:
        confirmed(node, tx.id.hex())
    assert account(node, to)["balance"] == 300


def test_batch_of_thousands(node: Node) -> None:
    _, txs = batcher_transfers(node, 2000, amount=1)
    r = node.http.post("/api/v1/txs/batch", json={"txs": [{"raw": t.raw.hex()} for t in txs]})
    assert r.status_code == 200, r.text
    codes = {res.get("status") or res["error"]["code"] for res in r.json()["results"]}
    # state bounds how far ahead of the account nonce it queues; what it refuses is a gap
    assert codes <= {"accepted", "nonce_gap"} and r.json()["accepted"] > 0
    assert r.json()["results"][0] == {"id": txs[0].id.hex(), "status": "accepted"}


def test_the_python_client_posts_batches_in_the_binary_form(node: Node) -> None:
    to, txs = batcher_transfers(node, 50, amount=3)
    forged = txs[1].with_signature(bytes(64))
    with Client(node.url) as client:
        results = client.submit_batch([txs[0], forged, *txs[1:]])
    assert [r.get("status") or r["error"]["code"] for r in results] == \
        ["accepted", "bad_signature"] + ["accepted"] * 49
    assert [r["id"] for r in results] == [t.id.hex() for t in (txs[0], forged, *txs[1:])]
    confirmed(node, txs[-1].id.hex())
    assert account(node, to)["balance"] == 150
    # a body that is not a msgpack array of transactions fails as a whole
    for body in (b"\xc1", pack({"txs": []}), pack([txs[0].raw]) + b"\x00"):
        assert_error(node.http.post("/api/v1/txs/batch", content=body,
                                    headers={"content-type": "application/msgpack"}),
                     400, "malformed")


def test_concurrent_single_posts(node: Node) -> None:
    """Single submissions arriving together share bus round trips; each still gets its own
    answer."""
    to, txs = batcher_transfers(node, 40, amount=2)
    bad = {**tx_doc(txs[0]), "nonce": txs[0].nonce + 41}  # signature no longer matches

    async def post_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=node.url, timeout=20.0) as client:
            return await asyncio.gather(
                *[client.post("/api/v1/txs", json=tx_doc(tx)) for tx in txs],
                client.post("/api/v1/txs", json=bad))

    responses = asyncio.run(post_all())
    for tx, r in zip(txs, responses[:-1]):
        assert r.status_code == 202 and r.json() == {"id": tx.id.hex()}, r.text
    assert_error(responses[-1], 400, "bad_signature")
    confirmed(node, txs[-1].id.hex())
    assert account(node, to)["balance"] == 80


# --- every bad input class -------------------------------------------------------------------


def test_each_bad_input_gets_its_4xx_code(node: Node) -> None:
    dev = Signer(node.chain.developer)
    nonce = account(node, dev.address)["pending_nonce"]
    tx = Transaction.create(dev, chain_id=CHAIN, nonce=nonce + 5_000, to=os.urandom(20),
                            amount=1, fee=1)
    ok = tx_doc(tx)
    post = node.http.post
    cases: list[tuple[httpx.Response, int, str]] = [
        (post("/api/v1/txs", json={**ok, "amount": True}), 400, "malformed"),
        (post("/api/v1/txs", json={**ok, "amount": 1.0}), 400, "malformed"),
        (post("/api/v1/txs", json={**ok, "amount": "1"}), 400, "malformed"),
        (post("/api/v1/txs", content=json.dumps({**ok, "amount": 2**64})), 400, "malformed"),
        (post("/api/v1/txs", json={**ok, "amount": -1}), 400, "malformed"),
        (post("/api/v1/txs", json={**ok, "extra": 1}), 400, "malformed"),
        (post("/api/v1/txs", json={**ok, "to": "zz" * 20}), 400, "malformed"),
        (post("/api/v1/txs", json={**ok, "to": "ab" * 19}), 400, "malformed"),
        (post("/api/v1/txs", json={**ok, "public_key": "abc"}), 400, "malformed"),
        (post("/api/v1/txs", json={**ok, "key_type": "dsa"}), 400, "malformed"),
        (post("/api/v1/txs", json=[ok]), 400, "malformed"),
        (post("/api/v1/txs", content=b"\x00\xff garbage"), 400, "malformed"),
        (post("/api/v1/txs", content=b""), 400, "malformed"),
        (post("/api/v1/txs", json={"raw": "9900"}), 400, "malformed"),
        (post("/api/v1/txs", json={**ok, "data": "00" * 1025}), 413, "too_large"),
        (post("/api/v1/txs", content=b"{" + b" " * (5 * 1024 * 1024) + b"}"), 413,
         "too_large"),
        (post("/api/v1/txs", json={**ok, "signature": "11" * 64}), 400, "bad_signature"),
        (post("/api/v1/txs", json={**ok, "fee": 2}), 400, "bad_signature"),
        (post("/api/v1/txs", json={**ok, "chain_id": 1}), 400, "wrong_chain"),
        (post("/api/v1/txs", json=ok), 409, "nonce_gap"),
        (post("/api/v1/txs/batch", json={"txs": [ok] * 5001}), 413, "too_large"),
        (post("/api/v1/txs/batch", json=[ok]), 400, "malformed"),
        (node.http.get("/api/v1/accounts/not-an-address"), 400, "malformed"),
        (node.http.get("/api/v1/txs/" + "g" * 64), 400, "malformed"),
        (node.http.get("/api/v1/blocks/-1"), 400, "malformed"),
        (node.http.get("/api/v1/blocks", params={"limit": 0}), 400, "malformed"),
        (node.http.get("/api/v1/mempool", params={"offset": "x"}), 400, "malformed"),
        (node.http.get("/api/v1/nothing-here"), 404, "not_found"),
        (node.http.put("/api/v1/txs"), 405, "method_not_allowed"),
    ]
    poor = Signer(PrivateKey.generate())
    broke = Transaction.create(poor, chain_id=CHAIN, nonce=0, to=os.urandom(20), amount=10)
    cases.append((post("/api/v1/txs", json=tx_doc(broke)), 400, "insufficient_funds"))
    for response, status, code in cases:
        assert_error(response, status, code)


def test_nothing_crashes_on_odd_input(node: Node) -> None:
    odd = [b"null", b"true", b"0", b'"x"', b"{}", b'{"raw": null}', b'{"txs": null}',
           b"[" * 100_000, b'{"a":' * 5000, "{\"to\": \"\u00e9\"}".encode(), b"\xc3\x28",
           b'{"nonce": 1e400}', b'{"data": "' + b"0" * 100_000 + b'"}']
    for body in odd:
        for path in ("/api/v1/txs", "/api/v1/txs/batch", "/api/v1/wallet/send"):
            r = node.http.post(path, content=body)
            assert 400 <= r.status_code < 500, (path, body[:40], r.text)
            assert "error" in r.json()
    for path in ("/api/v1/blocks/%00", "/api/v1/accounts/%F0%9F%92%A9",
                 "/api/v1/txs/" + "0" * 10_000, "/api/v1/blocks/" + "9" * 400):
        r = node.http.get(path)
        assert 400 <= r.status_code < 500 and "error" in r.json(), (path, r.text)


# --- admin -----------------------------------------------------------------------------------


def test_admin_routes_refuse_proxied_or_foreign_requests(node: Node) -> None:
    for headers in ({"X-Forwarded-For": "203.0.113.7"}, {"Forwarded": "for=203.0.113.7"},
                    {"X-Real-IP": "203.0.113.7"}, {"Host": "attacker.example"},
                    {"Origin": "https://attacker.example"},
                    {"Authorization": "Bearer not-the-token"}):
        for method, path in (("GET", "/api/v1/wallet"), ("POST", "/api/v1/wallet/send"),
                             ("POST", "/api/v1/mining/start"), ("POST", "/api/v1/mining/stop")):
            r = node.http.request(method, path, headers=headers,
                                  json={"to": "00" * 20, "amount": 1})
            assert_error(r, 403, "forbidden")
    # public routes do not care
    assert node.http.get("/api/v1/status", headers={"X-Forwarded-For": "1.2.3.4"}).is_success


def test_admin_routes_accept_loopback_and_the_token(node: Node) -> None:
    assert node.http.get("/api/v1/wallet").status_code == 200
    auth = {"Authorization": f"Bearer {TOKEN}", "X-Forwarded-For": "203.0.113.7",
            "Host": "node.example"}
    r = node.http.get("/api/v1/wallet", headers=auth)
    assert r.status_code == 200, r.text
    wallet = r.json()
    assert wallet["address"] == node.chain.validator.address.hex()
    assert wallet["can_sign"] is True and wallet["key_type"] == "ed25519"
    assert wallet["public_key"] == node.chain.validator.public_key.hex()
    assert set(wallet) >= {"address", "balance", "nonce", "pending_nonce"}


def test_wallet_send(node: Node) -> None:
    wait_until(lambda: account(node, node.chain.validator.address)["balance"] >= 1000,
               timeout=30, what="the validator to earn rewards")
    to = os.urandom(20)
    r = node.http.post("/api/v1/wallet/send", json={"to": to.hex(), "amount": 250, "fee": 3,
                                                    "data": "cafe"})
    assert r.status_code == 202, r.text
    sent = r.json()
    assert sent["from"] == node.chain.validator.address.hex() and len(sent["id"]) == 64
    # a second send right away takes the next nonce
    r2 = node.http.post("/api/v1/wallet/send", json={"to": to.hex(), "amount": 5})
    assert r2.status_code == 202, r2.text
    assert r2.json()["nonce"] == sent["nonce"] + 1
    doc = confirmed(node, sent["id"])
    assert doc["from"] == node.chain.validator.address.hex() and doc["data"] == "cafe"
    confirmed(node, r2.json()["id"])
    assert account(node, to)["balance"] == 255
    assert_error(node.http.post("/api/v1/wallet/send", json={"to": to.hex(), "amount": 0}),
                 400, "malformed")
    assert_error(node.http.post("/api/v1/wallet/send",
                                json={"to": to.hex(), "amount": 10**18}),
                 400, "insufficient_funds")


def test_mining_control(node: Node) -> None:
    m = node.http.get("/api/v1/mining").json()
    assert set(m) >= {"mining", "validator"}
    assert m["mining"] is True and m["validator"] is True
    assert m["address"] == node.chain.validator.address.hex()
    try:
        stopped = node.http.post("/api/v1/mining/stop")
        assert stopped.status_code == 200 and stopped.json()["mining"] is False
        assert node.http.get("/api/v1/mining").json()["mining"] is False
        wait_until(lambda: node.http.get("/api/v1/status").json()["mining"] is False,
                   timeout=5, what="status to show mining stopped")
        h = height(node)
        # the behaviour under test is that nothing happens: three intervals without a block
        time.sleep(1.5)
        assert height(node) <= h + 1  # at most one block that was already being sealed
    finally:
        started = node.http.post("/api/v1/mining/start",
                                 headers={"Authorization": f"Bearer {TOKEN}"})
    assert started.status_code == 200 and started.json()["mining"] is True
    h = height(node)
    wait_until(lambda: height(node) > h, timeout=30, what="blocks again")


def test_second_gateway_with_workers(node: Node, tmp_path_factory: pytest.TempPathFactory,
                                     ) -> None:
    """Another gateway (two uvicorn workers) on the same node: gateways are stateless."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    api2 = node.node.start_gateway("api2", port=port, workers=2)
    try:
        with httpx.Client(base_url=url, timeout=20.0, event_hooks={"response": [_record]}) as c:
            statuses = [c.get("/api/v1/status").json()["network_id"] for _ in range(10)]
            assert statuses == [CHAIN] * 10
            assert c.get("/api/v1/wallet").json()["can_sign"] is True
    finally:
        assert api2.stop() == 0


def test_health_reports_state_down(node: Node) -> None:
    """Last but one: stops state. The gateway keeps answering, with 503s."""
    node.node.stop_service("state")
    r = node.http.get("/health")
    assert r.status_code == 503 and r.json()["state"] == "unavailable"
    assert r.json()["error"]["code"] == "unavailable"
    assert_error(node.http.get("/api/v1/blocks/count"), 503, "unavailable")
    assert node.node.process("api").alive()


def test_private_keys_never_appear_in_any_response(node: Node) -> None:
    assert len(SEEN) > 50
    secrets = [node.chain.validator.secret, node.chain.developer.secret]
    signing_keys = [Signer(k)._sk for k in (node.chain.validator, node.chain.developer)]
    needles = [s.hex() for s in secrets + signing_keys] + [node.chain.password]
    for body in SEEN:
        text = body.decode("utf-8", "replace").lower()
        for needle in needles:
            assert needle.lower() not in text
