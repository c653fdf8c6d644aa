"""The REST client library's HTTP side (client/http.py): a node's error reply comes back as
the very typed error the node raised (`common.errors`), anything else as a `CcoinError`
with the HTTP status; waiting for a confirmation tolerates an id the node does not know
yet, until the deadline. The server side is an httpx transport answering in process."""

from __future__ import annotations

import ssl

import httpx
import msgpack
import pytest

from client import Client, sign_transfer
from client.http import tls_context
from common.crypto import KeyType, PrivateKey, Signer
from common.errors import BadSignature, CcoinError, Malformed, TxTimeout
from common.signed import SignedTx
from services.api import schema


def test_client_error_shapes() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/html":
            return httpx.Response(502, text="<html>bad gateway</html>")
        if request.url.path == "/detail":
            return httpx.Response(422, json={"detail": "nope"})
        return httpx.Response(400, json={"error": {"code": "bad_signature",
                                                   "message": "signature does not verify"}})

    with Client("http://x", transport=httpx.MockTransport(handler)) as c:
        with pytest.raises(BadSignature) as info:  # the very class the node raised
            c.request("GET", "/api")
        assert (info.value.code, info.value.http_status) == ("bad_signature", 400)
        assert str(info.value) == "signature does not verify" and info.value.remote
        with pytest.raises(CcoinError, match="<html>bad gateway") as other:
            c.request("GET", "/html")
        assert (other.value.code, other.value.http_status) == ("http_502", 502)
        with pytest.raises(CcoinError, match="nope") as other:
            c.request("GET", "/detail")
        assert (other.value.code, other.value.http_status) == ("http_422", 422)


def test_wait_confirmed_tolerates_an_unknown_id_until_the_deadline() -> None:
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        return httpx.Response(404, json={"error": {"code": "not_found", "message": "?"}})

    seen: list[str] = []
    with Client("http://x", transport=httpx.MockTransport(handler)) as c:
        with pytest.raises(TxTimeout, match="unknown to the node"):
            c.wait_confirmed("ab" * 32, timeout=0.3, poll=0.05,
                             progress=lambda s, _: seen.append(s))
    assert calls["n"] >= 2 and set(seen) == {"unknown to the node"}


def test_not_ready_is_an_answer_not_an_error() -> None:
    reasons = ["state: state did not answer", "miner: stuck"]
    ready = {"ready": False, "reasons": reasons, "checks": {}}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/ready":
            return httpx.Response(503, json=ready)
        return httpx.Response(503, json={"error": {"code": "unavailable", "message": "down"}})

    with Client("http://x", transport=httpx.MockTransport(handler)) as c:
        answer = c.ready()
        assert (answer.ready, answer.reasons) == (False, tuple(reasons))
        assert answer.line() == "not ready: state: state did not answer; miner: stuck"
        with pytest.raises(CcoinError, match="down"):  # elsewhere a 503 is still a failure
            c.status()


def test_the_shared_tls_context_still_verifies_certificates() -> None:
    # made once per process for speed; it must stay httpx's verifying default
    assert tls_context() is tls_context()
    assert tls_context().verify_mode == ssl.CERT_REQUIRED and tls_context().check_hostname


def test_a_batch_goes_in_a_form_the_gateway_reads_back() -> None:
    signer = Signer(PrivateKey.generate(KeyType.ED25519))
    txs = [sign_transfer(signer, chain_id=9, nonce=n, to=b"\x05" * 20, amount=7, fee=1,
                         data=b"\x00" * n) for n in range(3)]

    refusal = {"code": "nonce_gap", "message": "later"}
    replies = [
        # the msgpack reply it asks for: ids as bytes, handed back in hex as JSON has them
        httpx.Response(200, content=msgpack.packb({"results": [
            {"id": txs[0].id, "status": "accepted"}, {"id": txs[1].id, "error": refusal},
            {"error": refusal}], "accepted": 1}), headers={"content-type": "application/msgpack"}),
        # a node that answers JSON
        httpx.Response(200, json={"results": [{"id": t.id.hex(), "status": "accepted"}
                                              for t in txs], "accepted": len(txs)}),
        # the same two, for a caller that keeps ids as bytes
        httpx.Response(200, content=msgpack.packb({"results": [
            {"id": txs[0].id, "status": "accepted"}, {"error": refusal}], "accepted": 1}),
            headers={"content-type": "application/msgpack"}),
        httpx.Response(200, json={"results": [{"id": t.id.hex(), "status": "accepted"}
                                              for t in txs], "accepted": len(txs)}),
        httpx.Response(200, json={"results": [{"id": "9c"}, {"id": "xyz"}]}),
        # msgpack that is not a batch reply
        httpx.Response(200, content=msgpack.packb({"results": [{"id": "9c"}]}),
                       headers={"content-type": "application/msgpack"}),
        httpx.Response(200, content=b"\xc1", headers={"content-type": "application/msgpack"}),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["content-type"] == "application/msgpack"
        assert request.headers["accept"] == "application/msgpack"
        assert schema.parse_batch(request.content, 9, binary=True) == [SignedTx.of(t)
                                                                       for t in txs]
        return replies.pop(0)

    with Client("http://x", transport=httpx.MockTransport(handler)) as c:
        assert c.submit_batch(txs) == [{"id": txs[0].id.hex(), "status": "accepted"},
                                       {"id": txs[1].id.hex(), "error": refusal},
                                       {"error": refusal}]
        assert [r["id"] for r in c.submit_batch(txs)] == [t.id.hex() for t in txs]
        assert c.submit_batch(txs, raw_ids=True) == [{"id": txs[0].id, "status": "accepted"},
                                                     {"error": refusal}]
        assert [r["id"] for r in c.submit_batch(txs, raw_ids=True)] == [t.id for t in txs]
        with pytest.raises(Malformed, match="not hex"):
            c.submit_batch(txs, raw_ids=True)
        for _ in range(2):
            with pytest.raises(Malformed):
                c.submit_batch(txs)
