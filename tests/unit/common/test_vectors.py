"""Recompute the committed test vectors (tests/vectors/*.json) from their inputs.

The vectors are the contract with other implementations (docs/protocol.md): a change here
is a consensus change. Each test derives the outputs from the stored inputs with `common`,
so it fails if either the code or the file drifts.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from common import authorities, consensus, crypto
from common.consensus import verify_transaction_signature
from common.encoding import pack
from common.genesis import genesis_block
from common.merkle import merkle_proof, merkle_root, verify_proof
from common.statehash import MuHash, element, from_scratch, root_of, update
from common.types import Account, Block, BlockHeader, Transaction
from runtime.config import load_genesis

VECTORS = Path(__file__).resolve().parents[2] / "vectors"


def load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text())


def x(value: str) -> bytes:
    return bytes.fromhex(value)


def seed_key(seed_hex: str) -> crypto.PrivateKey:
    return crypto.PrivateKey(crypto.KeyType.ED25519, x(seed_hex))


def header_from_json(doc: dict[str, Any]) -> BlockHeader:
    values: dict[str, Any] = {k: (x(v) if isinstance(v, str) else v) for k, v in doc.items()}
    return BlockHeader(**values)


# --- transactions -----------------------------------------------------------------------------


@pytest.mark.parametrize("vec", load("transactions.json")["ed25519"], ids=lambda v: v["name"])
def test_ed25519_transaction(vec: dict[str, Any]) -> None:
    n = None
    for i in range(64):
        if hashlib.sha256(b"ccoin-vector-%d" % i).hexdigest() == vec["seed"]:
            n = i
    assert n is not None, "seed must be sha256(b'ccoin-vector-N')"
    k = seed_key(vec["seed"])
    assert k.public_key.hex() == vec["public_key"]
    t = vec["tx"]
    unsigned = Transaction(t["chain_id"], t["nonce"], 0, k.public_key, x(t["to"]), t["amount"],
                           t["fee"], x(t["data"]), b"")
    assert unsigned.signing_payload().hex() == vec["signing_payload"]
    assert x(vec["signing_payload"]).startswith(b"\x99" + pack("ccoin/tx"))  # 9-item array
    signature = k.sign(unsigned.signing_payload())
    assert signature.hex() == vec["signature"]  # Ed25519 is deterministic
    tx = unsigned.with_signature(signature)
    assert tx.raw.hex() == vec["raw"]
    assert tx.id.hex() == vec["id"] == hashlib.sha256(x(vec["raw"])).hexdigest()
    assert tx.sender.hex() == vec["sender"]
    assert vec["sender"] == hashlib.sha256(b"\x00" + k.public_key).hexdigest()[:40]
    decoded = Transaction.decode(x(vec["raw"]))
    assert decoded == tx
    verify_transaction_signature(decoded)


@pytest.mark.parametrize("vec", load("transactions.json")["rsa"], ids=lambda v: v["name"])
def test_rsa_transaction(vec: dict[str, Any]) -> None:
    tx = Transaction.decode(x(vec["raw"]))
    assert tx.key_type == crypto.KeyType.RSA
    assert tx.id.hex() == vec["id"] == hashlib.sha256(x(vec["raw"])).hexdigest()
    assert tx.public_key.hex() == vec["public_key"]
    assert tx.sender.hex() == vec["sender"]
    assert vec["sender"] == hashlib.sha256(b"\x01" + tx.public_key).hexdigest()[:40]
    assert tx.signing_payload().hex() == vec["signing_payload"]
    verify_transaction_signature(tx)
    assert crypto.verify(1, tx.public_key, x(vec["signing_payload"]), tx.signature)


# --- headers and blocks -----------------------------------------------------------------------


@pytest.mark.parametrize("vec", load("headers.json"), ids=lambda v: v["name"])
def test_header(vec: dict[str, Any]) -> None:
    header = header_from_json(vec["header"])
    assert header.raw.hex() == vec["raw"]
    assert header.hash.hex() == vec["hash"] == hashlib.sha256(x(vec["raw"])).hexdigest()
    seal_payload = pack(["ccoin/header", *header.fields()[:-1]])
    assert header.seal_hash.hex() == vec["seal_hash"] == hashlib.sha256(seal_payload).hexdigest()
    assert crypto.leading_zero_bits(header.seal_hash) == vec["leading_zero_bits"]
    assert vec["leading_zero_bits"] >= header.difficulty
    consensus.check_proof(header)
    txs = tuple(Transaction.decode(x(raw)) for raw in vec["txs"])
    assert header.tx_root == merkle_root([tx.id for tx in txs])
    block = Block(header, txs)
    assert block.raw.hex() == vec["block_raw"]
    assert Block.decode(x(vec["block_raw"])) == block
    if vec["seal_key"] is not None:
        sealer = crypto.Signer(seed_key(hashlib.sha256(b"ccoin-vector-%d" % vec["seal_key"])
                                        .hexdigest()))
        assert header.signer == sealer.address == header.coinbase
        assert sealer.sign(header.seal_hash) == header.signature
        assert crypto.verify(0, header.signer_public_key, header.seal_hash, header.signature)
    else:
        assert header.signature == b"" and header.signer_public_key == b""


# --- Merkle -----------------------------------------------------------------------------------


def test_merkle_vectors() -> None:
    vec = load("merkle.json")
    txids = [hashlib.sha256(b"ccoin-merkle-%d" % i).digest() for i in range(8)]
    assert [t.hex() for t in txids] == vec["txids"]
    for item in vec["roots"]:
        assert merkle_root(txids[:item["count"]]).hex() == item["root"], item["count"]
    for item in vec["proofs"]:
        ids = txids[:item["count"]]
        proof = [(bool(left), x(sib)) for left, sib in item["proof"]]
        assert merkle_proof(ids, item["index"]) == proof
        assert verify_proof(x(item["txid"]), proof, x(item["root"]))
        assert item["root"] == merkle_root(ids).hex()


# --- MuHash -----------------------------------------------------------------------------------


def test_muhash_vectors() -> None:
    vec = load("muhash.json")
    assert root_of(1).hex() == vec["empty"]["root"]
    assert MuHash().value().to_bytes(384, "big").hex() == vec["empty"]["value"]
    state = []
    for item in vec["elements"]:
        addr, acc = x(item["address"]), Account(item["balance"], item["nonce"])
        assert pack([addr, acc.balance, acc.nonce]).hex() == item["encoding"]
        assert element(addr, acc).to_bytes(384, "big").hex() == item["element"]
        state.append((addr, acc))
    value = from_scratch(state)
    assert value.to_bytes(384, "big").hex() == vec["value"]
    assert root_of(value).hex() == vec["root"]
    up = vec["update"]
    after = update(value, [(x(up["address"]), Account(*up["old"]), Account(*up["new"]))])
    assert after.to_bytes(384, "big").hex() == up["value"]
    assert root_of(after).hex() == up["root"]


# --- genesis ----------------------------------------------------------------------------------


def test_seed_genesis_vector() -> None:
    vec = load("genesis.json")
    g = load_genesis(VECTORS / vec["file"])
    assert pack(g.consensus_params()).hex() == vec["consensus_params"]
    assert hashlib.sha256(x(vec["consensus_params"])).hexdigest() == vec["extra"]
    block = genesis_block(g)
    assert block.header == header_from_json(vec["header"])
    assert block.header.raw.hex() == vec["header_raw"]
    assert block.header.state_root.hex() == vec["state_root"]
    assert block.header.extra.hex() == vec["extra"] and block.header.nonce == vec["nonce"]
    assert block.hash.hex() == vec["hash"]


# --- the generator and the files agree ---------------------------------------------------------


def test_generator_reproduces_the_files() -> None:
    spec = importlib.util.spec_from_file_location("ccoin_vectors", VECTORS / "generate.py")
    assert spec is not None and spec.loader is not None
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    for name, value in generate.build_all().items():  # keeps the stored RSA entry
        assert generate.dump(value) == (VECTORS / name).read_text(), name


def test_readme_describes_every_file() -> None:
    readme = (VECTORS / "README.md").read_text()
    for path in VECTORS.glob("*.json"):
        assert path.name in readme, path.name


# --- authority votes --------------------------------------------------------------------------


def test_authority_votes() -> None:
    """Each step's vote field, folded over the one before, gives the recorded set, open votes
    and snapshot bytes."""
    doc = load("authorities.json")
    snap = authorities.genesis_snapshot(x(a) for a in doc["genesis_signers"])
    for step in doc["steps"]:
        header = SimpleNamespace(height=step["height"], coinbase=x(step["voter"]),
                                 vote=x(step["vote"]))
        snap = authorities.apply_header(True, doc["epoch"], snap, header)
        assert [a.hex() for a in snap.signers] == step["signers"]
        assert [[v.voter.hex(), v.subject.hex(), v.authorize] for v in snap.votes] == step["votes"]
        assert snap.encode().hex() == step["snapshot"]
        assert authorities.Snapshot.decode(x(step["snapshot"])) == snap
