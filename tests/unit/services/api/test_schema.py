"""The REST gateway's stateless half: strict JSON validation (every class of bad input gets
its error code), JSON rendering of domain objects, the admin rule, and the app's own error
shapes (404/405/validation/413, no miner), all without a running node."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import msgpack
import orjson
import pytest
from starlette.requests import HTTPConnection

from common import messages
from common.crypto import KeyType, PrivateKey, Signer
from common.errors import CcoinError, Forbidden
from common.types import MAX_AMOUNT, Block, BlockHeader, Transaction
from runtime.config import parse_config
from services.api import schema
from services.api.admin import check_admin, is_loopback_ip, is_loopback_name
from services.api.app import create_app

CHAIN = 1337
ED = Signer(PrivateKey(KeyType.ED25519, bytes(range(32))))
TO = bytes.fromhex("11" * 20)


def signed(nonce: int = 0, chain_id: int = CHAIN, signer: Signer = ED, **kw: Any) -> Transaction:
    return Transaction.create(signer, chain_id=chain_id, nonce=nonce, to=TO,
                              amount=kw.pop("amount", 10), fee=kw.pop("fee", 1), **kw)


def as_json(tx: Transaction, **changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "chain_id": tx.chain_id, "nonce": tx.nonce,
        "key_type": schema.KEY_TYPE_NAMES[tx.key_type], "public_key": tx.public_key.hex(),
        "to": tx.to.hex(), "amount": tx.amount, "fee": tx.fee, "data": tx.data.hex(),
        "signature": tx.signature.hex(),
    }
    doc.update(changes)
    return {k: v for k, v in doc.items() if v is not DROP}


DROP = object()


def code_of(fn: Any, *args: Any) -> str:
    with pytest.raises(CcoinError) as info:
        fn(*args)
    return info.value.code


# --- transactions in -------------------------------------------------------------------------


def test_valid_transaction_round_trips_in_every_accepted_form() -> None:
    tx = signed(data=b"\x01\x02")
    assert schema.parse_submission(as_json(tx), CHAIN) == tx
    assert schema.parse_submission(as_json(tx, key_type=0), CHAIN) == tx
    assert schema.parse_submission(as_json(tx, to="0x" + TO.hex().upper()), CHAIN) == tx
    assert schema.parse_submission({"raw": tx.raw.hex()}, CHAIN) == tx
    # what GET /txs/{id} shows can be posted back: id and from are checked, not refused
    echoed = as_json(tx, id=tx.id.hex(), **{"from": tx.sender.hex()})
    assert schema.parse_submission(echoed, CHAIN) == tx
    no_data = signed()
    assert schema.parse_submission(as_json(no_data, data=DROP), CHAIN) == no_data


def test_rsa_transaction_is_accepted() -> None:
    rsa = Signer(PrivateKey.generate(KeyType.RSA))
    tx = signed(signer=rsa)
    assert schema.parse_submission(as_json(tx), CHAIN) == tx
    assert schema.parse_submission(as_json(tx, key_type=1), CHAIN) == tx


BAD_FIELDS: list[tuple[str, dict[str, Any], str]] = [
    ("amount is a bool", {"amount": True}, "malformed"),
    ("fee is a bool", {"fee": False}, "malformed"),
    ("amount is a float", {"amount": 10.0}, "malformed"),
    ("amount is a string", {"amount": "10"}, "malformed"),
    ("amount is null", {"amount": None}, "malformed"),
    ("amount is 2^64", {"amount": 2**64}, "malformed"),
    ("amount is 2^63", {"amount": MAX_AMOUNT + 1}, "malformed"),
    ("amount is negative", {"amount": -1}, "malformed"),
    ("amount is zero", {"amount": 0}, "malformed"),
    ("nonce is negative", {"nonce": -1}, "malformed"),
    ("chain id is 2^32", {"chain_id": 2**32}, "malformed"),
    ("fee is missing", {"fee": DROP}, "malformed"),
    ("signature is missing", {"signature": DROP}, "malformed"),
    ("unknown field", {"memo": "hi"}, "malformed"),
    ("unknown key type", {"key_type": "secp256k1"}, "malformed"),
    ("key type 2", {"key_type": 2}, "malformed"),
    ("key type true", {"key_type": True}, "malformed"),
    ("to is short", {"to": "11" * 19}, "malformed"),
    ("to is long", {"to": "11" * 21}, "malformed"),
    ("to is not hex", {"to": "zz" * 20}, "malformed"),
    ("to has whitespace", {"to": "11 " + "11" * 19}, "malformed"),
    ("to is a number", {"to": 11}, "malformed"),
    ("data has odd length", {"data": "abc"}, "malformed"),
    ("data has unicode digits", {"data": "\u0661\u0662"}, "malformed"),
    ("data is too long", {"data": "00" * 1025}, "too_large"),
    ("public key too long", {"public_key": "00" * 601}, "too_large"),
    ("public key wrong length", {"public_key": "00" * 31}, "malformed"),
    ("signature too long", {"signature": "00" * 513}, "too_large"),
    ("signature flipped", {"signature": "00" * 64}, "bad_signature"),
    ("signature empty", {"signature": ""}, "bad_signature"),
    ("amount changed after signing", {"amount": 11}, "bad_signature"),
    ("id does not match", {"id": "00" * 32}, "malformed"),
    ("from does not match", {"from": "00" * 20}, "malformed"),
]


@pytest.mark.parametrize("why,changes,code", BAD_FIELDS, ids=[b[0] for b in BAD_FIELDS])
def test_bad_transaction_field(why: str, changes: dict[str, Any], code: str) -> None:
    assert code_of(schema.parse_submission, as_json(signed(), **changes), CHAIN) == code


def test_wrong_chain_is_refused_before_the_signature_check() -> None:
    tx = signed(chain_id=CHAIN + 1)
    assert code_of(schema.parse_submission, as_json(tx), CHAIN) == "wrong_chain"
    assert code_of(schema.parse_submission, as_json(tx, signature="00" * 64), CHAIN) \
        == "wrong_chain"


@pytest.mark.parametrize("value", [None, [], "tx", 1, True, {"raw": 1}, {"raw": "zz"},
                                   {"raw": ""}, {"raw": "90"}, {"raw": "00" * 3000},
                                   {"raw": "aa", "amount": 1}])
def test_bad_transaction_shapes(value: Any) -> None:
    assert code_of(schema.parse_submission, value, CHAIN) in ("malformed", "too_large")


def test_raw_must_be_canonical() -> None:
    tx = signed()
    # nonce 0 packed as a uint8 (0xcc 0x00) instead of a fixint: same value, other bytes
    fields = tx.fields()
    noncanon = b"\x99" + msgpack.packb(fields[0]) + b"\xcc\x00" + b"".join(
        msgpack.packb(f, use_bin_type=True) for f in fields[2:])
    assert msgpack.unpackb(noncanon) == msgpack.unpackb(tx.raw) and noncanon != tx.raw
    assert code_of(schema.parse_submission, {"raw": noncanon.hex()}, CHAIN) == "malformed"


def test_loads_refuses_what_is_not_json() -> None:
    for body in (b"", b"{", b"NaN", b"\xff", b'{"a": 1}x', b"[" * 2000 + b"]" * 2000):
        assert code_of(schema.loads, body) == "malformed"
    # integers beyond 64 bits come back as floats, which no int field accepts
    assert type(schema.loads(b"18446744073709551616")) is float


# --- batches ---------------------------------------------------------------------------------


def test_batch_gives_one_outcome_per_item_in_order() -> None:
    good = [signed(n) for n in range(3)]
    items = [as_json(good[0]), {"raw": good[1].raw.hex()}, as_json(good[2], amount=True),
             as_json(signed(3), signature="00" * 64), as_json(signed(4, chain_id=7)),
             as_json(good[0]), "nonsense"]
    out = schema.parse_batch(orjson.dumps({"txs": items}), CHAIN)
    assert out[:2] == good[:2]
    codes = [o.error.code if isinstance(o, schema.Rejected) else "ok" for o in out]
    assert codes == ["ok", "ok", "malformed", "bad_signature", "wrong_chain", "duplicate",
                     "malformed"]
    ids = [o.id if isinstance(o, schema.Rejected) else o.id for o in out]
    assert ids[2] == b"" and ids[5] == good[0].id and len(ids[3]) == len(ids[4]) == 32


@pytest.mark.parametrize("body,code", [
    (b"[]", "malformed"), (b"{}", "malformed"), (b'{"txs": {}}', "malformed"),
    (b'{"txs": [], "extra": 1}', "malformed"), (b"not json", "malformed"),
    (orjson.dumps({"txs": [{}] * (schema.MAX_BATCH + 1)}), "too_large"),
])
def test_bad_batch_bodies(body: bytes, code: str) -> None:
    assert code_of(schema.parse_batch, body, CHAIN) == code


def test_empty_batch_is_fine() -> None:
    assert schema.parse_batch(b'{"txs": []}', CHAIN) == []


# --- other inputs ----------------------------------------------------------------------------


def test_block_ref() -> None:
    assert schema.parse_block_ref("0") == (0, b"")
    assert schema.parse_block_ref("42") == (42, b"")
    assert schema.parse_block_ref("ab" * 32) == (0, b"\xab" * 32)
    assert schema.parse_block_ref("0x" + "ab" * 32) == (0, b"\xab" * 32)
    for bad in ("", "-1", "01", "1.0", "1e3", "\u0661", "9" * 19, "ab" * 31, "zz" * 32,
                "head", " 1"):
        assert code_of(schema.parse_block_ref, bad) == "malformed", bad


def test_send_request() -> None:
    req = schema.parse_send({"to": TO.hex(), "amount": 5})
    assert (req.to, req.amount, req.fee, req.data) == (TO, 5, 0, b"")
    req = schema.parse_send({"to": TO.hex(), "amount": 5, "fee": 2, "data": "ff"})
    assert (req.fee, req.data) == (2, b"\xff")
    bad: Any
    for bad in ({"to": TO.hex()}, {"amount": 5}, {"to": TO.hex(), "amount": 0},
                {"to": TO.hex(), "amount": 5, "from": TO.hex()},
                {"to": TO.hex(), "amount": 5.5}, [], {"to": "x", "amount": 1},
                {"to": TO.hex(), "amount": 1, "fee": -1}):
        assert code_of(schema.parse_send, bad) == "malformed", bad


# --- domain out ------------------------------------------------------------------------------


def test_tx_json_is_what_clients_can_post_back() -> None:
    tx = signed(data=b"hello")
    doc = schema.tx_json(tx)
    assert doc["id"] == tx.id.hex() and doc["from"] == tx.sender.hex()
    assert doc["amount"] == 10 and doc["key_type"] == "ed25519" and doc["data"] == "68656c6c6f"
    doc.pop("size")
    assert schema.parse_submission(doc, CHAIN) == tx


def test_block_and_tx_reply_json() -> None:
    tx = signed()
    header = BlockHeader(height=3, parent=b"\x01" * 32, timestamp=5, coinbase=TO,
                         tx_root=b"\x02" * 32, state_root=b"\x03" * 32, difficulty=4, nonce=9,
                         extra=b"x")
    block = Block(header, (tx,))
    doc = schema.block_json(block, total_weight=6, confirmations=2)
    assert doc["hash"] == block.hash.hex() and doc["txs"][0]["id"] == tx.id.hex()
    for key in ("height", "parent", "timestamp", "coinbase", "tx_root", "state_root",
                "difficulty", "nonce", "extra", "signer", "signature"):
        assert key in doc["header"]
    assert doc["header"]["state_root"] == "03" * 32 and doc["total_weight"] == 6
    assert schema.block_json(block, full=False)["txs"] == [tx.id.hex()]
    pending = schema.tx_reply_json(messages.TxReply(tx.raw, "pending", b"", -1, -1, 0))
    assert pending["status"] == "pending" and pending["block"] is None
    done = schema.tx_reply_json(messages.TxReply(tx.raw, "confirmed", block.hash, 3, 0, 2))
    assert (done["block"], done["height"], done["index"], done["confirmations"]) == \
        (block.hash.hex(), 3, 0, 2)


def test_every_wire_error_code_has_a_4xx_or_503_status() -> None:
    from common.errors import REGISTRY, http_status

    tx_codes = ("malformed", "too_large", "bad_signature", "wrong_chain", "nonce_too_low",
                "nonce_gap", "insufficient_funds", "duplicate", "underpriced", "not_found",
                "forbidden", "invalid_transaction")
    for code in tx_codes:
        assert code in REGISTRY
        assert 400 <= http_status(code) < 500, code
    assert http_status("pool_full") == 503
    assert http_status("unavailable") == 503
    assert http_status("something_new") == 500


# --- admin rule ------------------------------------------------------------------------------


def conn(peer: str | None = "127.0.0.1", host: str = "127.0.0.1:8000",
         **headers: str) -> HTTPConnection:
    raw = [(b"host", host.encode())] + [(k.replace("_", "-").lower().encode(), v.encode())
                                        for k, v in headers.items()]
    return HTTPConnection({"type": "http", "headers": raw,
                           "client": (peer, 5555) if peer else None})


def test_loopback_detection() -> None:
    ip: str | None
    name: str | None
    for ip in ("127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"):
        assert is_loopback_ip(ip)
    for ip in ("10.0.0.1", "0.0.0.0", "::", "testclient", "", None, "localhost"):
        assert not is_loopback_ip(ip)
    for name in ("localhost", "LOCALHOST", "127.0.0.1", "[::1]", "app.localhost"):
        assert is_loopback_name(name)
    for name in ("evil.com", "127.0.0.1.evil.com", "localhost.evil.com", "", None):
        assert not is_loopback_name(name)


def test_admin_rule() -> None:
    check_admin(conn(), "")
    check_admin(conn(host="localhost:8000"), "")
    check_admin(conn("::1", host="[::1]:8000"), "")
    check_admin(conn(origin="http://127.0.0.1:8000"), "")
    check_admin(conn(origin="https://dash.example"), "", ("https://dash.example",))
    refused = [
        conn("10.1.2.3"), conn(None), conn("testclient"),
        conn(x_forwarded_for="127.0.0.1"), conn(forwarded="for=127.0.0.1"),
        conn(x_real_ip="127.0.0.1"),
        conn(host="evil.com:8000"),  # DNS rebinding
        conn(host=""), conn(host="[::1"),
        conn(origin="https://evil.com"), conn(origin="null"),  # cross-site page
    ]
    for c in refused:
        with pytest.raises(Forbidden):
            check_admin(c, "")


def test_admin_token() -> None:
    token = "s3cret-token"
    check_admin(conn("10.1.2.3", authorization=f"Bearer {token}"), token)
    check_admin(conn("127.0.0.1", x_forwarded_for="8.8.8.8",
                     authorization=f"bearer {token}"), token)
    check_admin(conn(), token)  # loopback alone still suffices (DESIGN §6)
    for c in (conn("10.1.2.3"), conn("10.1.2.3", authorization="Bearer wrong"),
              conn("10.1.2.3", authorization=token),
              conn(authorization="Bearer wrong")):  # a wrong token is refused even locally
        with pytest.raises(Forbidden):
            check_admin(c, token)
    # with no token configured, a presented one means nothing
    with pytest.raises(Forbidden):
        check_admin(conn("10.1.2.3", authorization="Bearer "), "")


# --- the app without a node: its own error shapes ------------------------------------------


@contextmanager
def offline_app(tmp_path: Path, **api: Any) -> Iterator[tuple[httpx.AsyncClient, Any]]:
    """The gateway app in-process, its bus endpoints pointing at nothing."""
    config = parse_config({
        "app": {"base_path": str(tmp_path)},
        "api": api,
        "endpoints": {"state": f"ipc://{tmp_path}/nostate.sock",
                      "miner": f"ipc://{tmp_path}/nominer.sock"},
    })
    app = create_app(config, CHAIN, body_limit=64 * 1024)
    loop = asyncio.new_event_loop()
    gw = app.state.gateway
    loop.run_until_complete(gw.start())
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 4242))
    client = httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000")
    try:
        yield client, loop
    finally:
        loop.run_until_complete(client.aclose())
        loop.run_until_complete(gw.close())
        loop.close()


def test_app_error_shapes(tmp_path: Path) -> None:
    with offline_app(tmp_path) as (client, loop):
        def call(method: str, url: str, **kw: Any) -> httpx.Response:
            return loop.run_until_complete(client.request(method, url, **kw))

        cases: list[tuple[httpx.Response, int, str]] = [
            (call("GET", "/nope"), 404, "not_found"),
            (call("DELETE", "/api/v1/status"), 405, "method_not_allowed"),
            (call("GET", "/api/v1/blocks?limit=101"), 400, "malformed"),
            (call("GET", "/api/v1/blocks?limit=true"), 400, "malformed"),
            (call("GET", "/api/v1/blocks?start=-5"), 400, "malformed"),
            (call("GET", "/api/v1/blocks/nope"), 400, "malformed"),
            (call("GET", "/api/v1/txs/1234"), 400, "malformed"),
            (call("GET", "/api/v1/accounts/xyz"), 400, "malformed"),
            (call("GET", "/api/v1/mempool?limit=100000"), 400, "malformed"),
            (call("POST", "/api/v1/txs", content=b"{"), 400, "malformed"),
            (call("POST", "/api/v1/txs", content=b"x" * 70_000), 413, "too_large"),
            (call("POST", "/api/v1/txs", json=as_json(signed(), amount=True)), 400,
             "malformed"),
            (call("POST", "/api/v1/txs", json=as_json(signed(), signature="00" * 64)), 400,
             "bad_signature"),
            (call("POST", "/api/v1/txs", json=as_json(signed(chain_id=1))), 400,
             "wrong_chain"),
            (call("POST", "/api/v1/txs/batch", content=b"[]"), 400, "malformed"),
            (call("POST", "/api/v1/mining/start"), 409, "not_a_validator"),
            (call("POST", "/api/v1/mining/stop", headers={"X-Forwarded-For": "1.2.3.4"}),
             403, "forbidden"),
            (call("GET", "/api/v1/wallet"), 409, "no_wallet"),
            (call("POST", "/api/v1/wallet/send", json={"to": TO.hex(), "amount": 1}), 409,
             "no_wallet"),
        ]
        for response, status, code in cases:
            assert response.status_code == status, (response.request.url, response.text)
            assert response.json() == {"error": {"code": code,
                                                 "message": response.json()["error"]["message"]}}
        assert "GET" in cases[1][0].headers.get("allow", "")
        mining = call("GET", "/api/v1/mining").json()
        assert mining["mining"] is False and mining["validator"] is False


def test_app_chunked_body_over_the_limit(tmp_path: Path) -> None:
    with offline_app(tmp_path) as (client, loop):
        async def chunks() -> Any:
            for _ in range(10):
                yield b"x" * 10_000

        r = loop.run_until_complete(client.post("/api/v1/txs/batch", content=chunks()))
        assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"


def test_openapi_documents_the_routes(tmp_path: Path) -> None:
    with offline_app(tmp_path) as (client, loop):
        doc = loop.run_until_complete(client.get("/openapi.json")).json()
        paths = doc["paths"]
        for path in ("/health", "/api/v1/status", "/api/v1/blocks", "/api/v1/blocks/{ref}",
                     "/api/v1/txs", "/api/v1/txs/batch", "/api/v1/txs/{tx_id}",
                     "/api/v1/accounts/{address}", "/api/v1/mempool", "/api/v1/mining",
                     "/api/v1/mining/start", "/api/v1/wallet", "/api/v1/wallet/send"):
            assert path in paths, path
        schemas = doc["components"]["schemas"]
        for name in ("TxIn", "RawTxIn", "BatchIn", "SendIn", "ErrorOut", "BlockOut"):
            assert name in schemas, name
        body = paths["/api/v1/txs"]["post"]["requestBody"]["content"]["application/json"]
        assert body["schema"]["oneOf"][0]["$ref"] == "#/components/schemas/TxIn"
        docs = loop.run_until_complete(client.get("/docs"))
        assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_wallet_key_load_failure_is_reported_not_fatal(tmp_path: Path) -> None:
    key = PrivateKey.generate()
    from runtime.keystore import Keystore

    Keystore(tmp_path / "keystore").save(key, "right", n=2**10)
    os.environ.pop("CCOIN_PASSWORD", None)
    pw = tmp_path / "pw.txt"
    pw.write_text("wrong\n")
    config = parse_config({"app": {"base_path": str(tmp_path)},
                           "client": {"account_address": key.address.hex()},
                           "keystore": {"password_file": str(pw)}})
    from services.api.wallet import NodeWallet

    wallet = NodeWallet.load(config)
    assert wallet.address == key.address and not wallet.can_sign
    assert key.secret.hex() not in repr(wallet)
    assert code_of(wallet.require_signer) == "wallet_unavailable"
