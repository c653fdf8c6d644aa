"""Regenerate ccoin's test vectors (the JSON files next to this script).

    .venv/bin/python tests/vectors/generate.py

Every key is an Ed25519 key whose 32-byte seed is SHA-256(b"ccoin-vector-<N>"), so every
file is byte-for-byte reproducible, except the RSA transaction in transactions.json: RSA key
generation is random, so that entry is kept from the existing file unless `--new-rsa` is
given (its checks are decode, id and signature, not equality with a fresh signature).
Bytes are lowercase hex everywhere; see README.md for each file's format. bus_catalogue.json
records the bus message catalogue's shape per `BUS_VERSION` and is only ever extended.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from common import authorities, consensus, crypto, messages  # noqa: E402
from common.encoding import pack  # noqa: E402
from common.genesis import genesis_block  # noqa: E402
from common.merkle import merkle_proof, merkle_root  # noqa: E402
from common.statehash import element, from_scratch, root_of, update  # noqa: E402
from common.types import Account, Block, BlockHeader, Transaction  # noqa: E402
from runtime.config import load_genesis  # noqa: E402


def vector_key(n: int) -> crypto.PrivateKey:
    return crypto.PrivateKey(crypto.KeyType.ED25519,
                             hashlib.sha256(b"ccoin-vector-%d" % n).digest())


def h(b: bytes) -> str:
    return b.hex()


# --- transactions -----------------------------------------------------------------------------

TX_CASES: list[dict[str, Any]] = [
    {"name": "minimal", "key": 1, "chain_id": 1, "nonce": 0, "to_key": 2, "amount": 1,
     "fee": 0, "data": ""},
    {"name": "with fee and data", "key": 2, "chain_id": 7, "nonce": 3, "to_key": 3,
     "amount": 250, "fee": 10, "data": h(b"ccoin feature 8: a data payload")},
    {"name": "maximal integers", "key": 3, "chain_id": 2**32 - 1, "nonce": 2**63 - 1,
     "to_key": 1, "amount": 2**63 - 1, "fee": 2**63 - 1, "data": "ff" * 16},
    {"name": "integer widths", "key": 4, "chain_id": 128, "nonce": 256, "to_key": 5,
     "amount": 65536, "fee": 2**32, "data": "00"},
]


def tx_vector(case: dict[str, Any]) -> dict[str, Any]:
    k = vector_key(case["key"])
    tx = Transaction.create(crypto.Signer(k), chain_id=case["chain_id"], nonce=case["nonce"],
                            to=vector_key(case["to_key"]).address, amount=case["amount"],
                            fee=case["fee"], data=bytes.fromhex(case["data"]))
    return {
        "name": case["name"],
        "seed": h(hashlib.sha256(b"ccoin-vector-%d" % case["key"]).digest()),
        "key_type": 0,
        "public_key": h(k.public_key),
        "tx": {"chain_id": tx.chain_id, "nonce": tx.nonce, "to": h(tx.to),
               "amount": tx.amount, "fee": tx.fee, "data": h(tx.data)},
        "signing_payload": h(tx.signing_payload()),
        "signature": h(tx.signature),
        "raw": h(tx.raw),
        "id": h(tx.id),
        "sender": h(tx.sender),
    }


def rsa_vector() -> dict[str, Any]:
    k = crypto.PrivateKey.generate(crypto.KeyType.RSA)
    tx = Transaction.create(crypto.Signer(k), chain_id=7, nonce=0,
                            to=vector_key(1).address, amount=42, fee=1, data=b"rsa")
    return {"name": "rsa-2048", "raw": h(tx.raw), "id": h(tx.id), "sender": h(tx.sender),
            "public_key": h(tx.public_key), "signing_payload": h(tx.signing_payload())}


def transactions(new_rsa: bool) -> dict[str, Any]:
    old = HERE / "transactions.json"
    rsa = None
    if old.exists() and not new_rsa:
        rsa = json.loads(old.read_text()).get("rsa")
    return {"ed25519": [tx_vector(c) for c in TX_CASES], "rsa": rsa or [rsa_vector()]}


# --- headers and blocks -----------------------------------------------------------------------

HEADER_FIELDS = ("height", "parent", "timestamp", "coinbase", "tx_root", "state_root",
                 "difficulty", "nonce", "extra", "vote", "signer_key_type",
                 "signer_public_key", "signature")


def header_json(header: BlockHeader) -> dict[str, Any]:
    return {name: (h(v) if isinstance(v, bytes) else v)
            for name, v in zip(HEADER_FIELDS, header.fields(), strict=True)}


def header_vectors() -> list[dict[str, Any]]:
    sealer = crypto.Signer(vector_key(10))
    txs = [Transaction.create(crypto.Signer(vector_key(1)), chain_id=7, nonce=n,
                              to=vector_key(2).address, amount=100 + n, fee=n)
           for n in range(3)]
    base = BlockHeader(
        height=1, parent=hashlib.sha256(b"ccoin-vector-parent").digest(),
        timestamp=1_700_000_010_000, coinbase=sealer.address,
        tx_root=merkle_root([tx.id for tx in txs]),
        state_root=hashlib.sha256(b"ccoin-vector-state").digest(), difficulty=8, nonce=0,
        extra=b"ccoin")
    poa = consensus.solve_proof(consensus.with_signer(base, sealer), 1 << 20)
    assert poa is not None
    poa = consensus.sign_header(poa, sealer)
    pow_ = consensus.solve_proof(base.replace(coinbase=vector_key(11).address), 1 << 20)
    assert pow_ is not None
    voting = sealed(base.replace(vote=authorities.encode_vote(vector_key(12).address, True)),
                    sealer)
    checkpoint = sealed(base.replace(height=30_000, vote=b"".join(
        vector_key(n).address for n in (10, 13, 14))), sealer)
    out = []
    for name, header, seal_key in (("poa sealed, difficulty 8", poa, 10),
                                   ("pow, difficulty 8", pow_, None),
                                   ("poa voting to authorize key 12", voting, 10),
                                   ("poa checkpoint listing keys 10, 13, 14", checkpoint, 10)):
        block = Block(header, tuple(txs))
        out.append({
            "name": name, "seal_key": seal_key, "header": header_json(header),
            "raw": h(header.raw), "seal_hash": h(header.seal_hash), "hash": h(header.hash),
            "leading_zero_bits": crypto.leading_zero_bits(header.seal_hash),
            "txs": [h(tx.raw) for tx in txs], "block_raw": h(block.raw),
        })
    return out


def sealed(header: BlockHeader, sealer: crypto.Signer) -> BlockHeader:
    solved = consensus.solve_proof(consensus.with_signer(header, sealer), 1 << 20)
    assert solved is not None
    return consensus.sign_header(solved, sealer)


# --- authority votes --------------------------------------------------------------------------

# (voter key, subject key or None for no vote, authorize) per block, from height 1 on, over
# the genesis authorities keys 20, 21, 22 and epoch 8: two votes add key 23 (2 of 3), three
# remove key 20 (3 of 4; its own open vote for key 24 goes with it), and the checkpoint at
# height 8 lists the set and clears the vote left open.
VOTE_STEPS: list[tuple[int, int | None, bool]] = [
    (20, 23, True), (21, 23, True), (20, 24, True), (21, 20, False), (22, 20, False),
    (23, 20, False), (21, 24, True), (22, None, True),
]


def authority_vectors() -> dict[str, Any]:
    from types import SimpleNamespace

    genesis_signers = [vector_key(n).address for n in (20, 21, 22)]
    snap = authorities.genesis_snapshot(genesis_signers)
    epoch = 8
    steps = []
    for height, (voter, subject, authorize) in enumerate(VOTE_STEPS, start=1):
        if authorities.is_checkpoint(epoch, height):
            vote = authorities.checkpoint_field(snap)
        elif subject is None:
            vote = b""
        else:
            vote = authorities.encode_vote(vector_key(subject).address, authorize)
        header = SimpleNamespace(height=height, coinbase=vector_key(voter).address, vote=vote)
        snap = authorities.apply_header(True, epoch, snap, header)
        steps.append({"height": height, "voter": h(header.coinbase), "vote": h(vote),
                      "signers": [h(a) for a in snap.signers],
                      "votes": [[h(v.voter), h(v.subject), v.authorize] for v in snap.votes],
                      "snapshot": h(snap.encode())})
    return {"epoch": epoch, "genesis_signers": [h(a) for a in genesis_signers],
            "steps": steps}


# --- Merkle -----------------------------------------------------------------------------------


def merkle_txid(i: int) -> bytes:
    return hashlib.sha256(b"ccoin-merkle-%d" % i).digest()


def merkle_vectors() -> dict[str, Any]:
    roots = [{"count": n, "root": h(merkle_root([merkle_txid(i) for i in range(n)]))}
             for n in range(0, 9)]
    proofs = []
    for n, index in ((5, 4), (7, 2), (8, 5)):
        ids = [merkle_txid(i) for i in range(n)]
        proofs.append({"count": n, "index": index, "txid": h(ids[index]),
                       "root": h(merkle_root(ids)),
                       "proof": [[left, h(sib)] for left, sib in merkle_proof(ids, index)]})
    return {"txid_rule": "sha256(b'ccoin-merkle-<i>')",
            "txids": [h(merkle_txid(i)) for i in range(8)], "roots": roots, "proofs": proofs}


# --- MuHash -----------------------------------------------------------------------------------


def muhash_vectors() -> dict[str, Any]:
    state = [(vector_key(1).address, Account(1000, 0)), (vector_key(2).address, Account(5, 3)),
             (vector_key(3).address, Account(0, 1)), (vector_key(4).address, Account(2**63 - 1, 7))]
    value = from_scratch(state)
    addr, old = state[1]
    new = Account(4, 4)
    after = update(value, [(addr, old, new)])
    return {
        "empty": {"value": h((1).to_bytes(384, "big")), "root": h(root_of(1))},
        "elements": [{"address": h(a), "balance": acc.balance, "nonce": acc.nonce,
                      "encoding": h(pack([a, acc.balance, acc.nonce])),
                      "element": h(element(a, acc).to_bytes(384, "big"))} for a, acc in state],
        "value": h(value.to_bytes(384, "big")), "root": h(root_of(value)),
        "update": {"address": h(addr), "old": [old.balance, old.nonce],
                   "new": [new.balance, new.nonce], "value": h(after.to_bytes(384, "big")),
                   "root": h(root_of(after))},
    }


# --- genesis ----------------------------------------------------------------------------------


def genesis_vectors() -> dict[str, Any]:
    g = load_genesis(HERE / "seed_genesis.json")
    block = genesis_block(g)
    return {"file": "seed_genesis.json",
            "consensus_params": h(pack(g.consensus_params())),
            "extra": h(block.header.extra), "state_root": h(block.header.state_root),
            "nonce": block.header.nonce, "header": header_json(block.header),
            "header_raw": h(block.header.raw), "hash": h(block.hash)}


# --- the bus catalogue's shape ---------------------------------------------------------------


def bus_catalogue() -> dict[str, Any]:
    """The shape of the bus catalogue under the current `BUS_VERSION`, with the fingerprint
    of every version recorded so far. A version's record is never rewritten: a changed shape
    needs a new version (the bus refuses messages of another version, so two installations
    that disagree about a message's shape cannot talk past each other)."""
    path = HERE / "bus_catalogue.json"
    history = json.loads(path.read_text())["history"] if path.exists() else {}
    version, fingerprint = str(messages.BUS_VERSION), messages.fingerprint()
    if history.get(version, fingerprint) != fingerprint:
        raise SystemExit(f"the bus catalogue's shape changed but BUS_VERSION is still {version}:"
                         " bump it in common/messages/envelope.py, then run this again")
    return {"bus_version": messages.BUS_VERSION, "fingerprint": fingerprint,
            "history": {**history, version: fingerprint},
            "messages": messages.catalogue_shape()}


def build_all(new_rsa: bool = False) -> dict[str, Any]:
    return {"transactions.json": transactions(new_rsa), "headers.json": header_vectors(),
            "merkle.json": merkle_vectors(), "muhash.json": muhash_vectors(),
            "genesis.json": genesis_vectors(), "authorities.json": authority_vectors()}


def dump(value: Any) -> str:
    return json.dumps(value, indent=2) + "\n"


def main() -> None:
    everything = {**build_all("--new-rsa" in sys.argv), "bus_catalogue.json": bus_catalogue()}
    for name, value in everything.items():
        (HERE / name).write_text(dump(value))
        print(f"wrote {HERE / name}")


if __name__ == "__main__":
    main()
