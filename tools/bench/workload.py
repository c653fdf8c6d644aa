"""The bench's workload: deterministic accounts and the transfers among them, all signed
before the clock starts, so the run times the node and not the signing."""

from __future__ import annotations

import hashlib
import random

from client import sign_transfer
from common import crypto
from common.types import Transaction

CHAIN_ID = 1337
SEED = 7  # the same transfers in every run: runs compare


def bench_key(i: int) -> crypto.Signer:
    """The i-th bench account's key: seed = SHA-256(b"ccoin-bench-<i>")."""
    seed = hashlib.sha256(b"ccoin-bench-%d" % i).digest()
    return crypto.Signer(crypto.PrivateKey(crypto.KeyType.ED25519, seed))


def accounts(n: int) -> list[crypto.Signer]:
    """The funded bench accounts (keys 1..n; key 0 signs the verification probe)."""
    return [bench_key(i + 1) for i in range(n)]


def presign(n_txs: int, signers: list[crypto.Signer]) -> list[Transaction]:
    """`n_txs` transfers, sender by sender in turn, to random accounts among `signers`. The
    k-th run of len(signers) transfers holds every sender's nonce k, so a batch of them is
    ready at once."""
    rng = random.Random(SEED)
    n_accounts = len(signers)
    nonces = [0] * n_accounts
    txs = []
    for i in range(n_txs):
        s = i % n_accounts
        to = signers[rng.randrange(n_accounts)].address
        txs.append(sign_transfer(signers[s], chain_id=CHAIN_ID, nonce=nonces[s], to=to,
                                 amount=1 + rng.randrange(100), fee=1))
        nonces[s] += 1
    return txs
