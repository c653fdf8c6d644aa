"""Merkle root of a block's transaction ids, and inclusion proofs.

Leaves are SHA-256(0x00 || txid), inner nodes SHA-256(0x01 || left || right); a node without
a sibling is promoted unchanged instead of paired with itself. Domain-separated leaves and no
duplication mean no two different transaction lists share a root (Bitcoin's CVE-2012-2459
came from duplicating the last node).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()


def _leaf(txid: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + txid).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_root(txids: Sequence[bytes]) -> bytes:
    if not txids:
        return EMPTY_ROOT
    # _leaf and _node written out: every block is hashed here in p2p, state and the miner's
    # template, about two hashes per transaction, and the calls cost a third of the time
    sha256 = hashlib.sha256
    level = [sha256(b"\x00" + t).digest() for t in txids]
    while len(level) > 1:
        pairs = zip(level[0::2], level[1::2])  # an odd last node has no partner here
        nxt = [sha256(b"\x01" + left + right).digest() for left, right in pairs]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def merkle_proof(txids: Sequence[bytes], index: int) -> list[tuple[bool, bytes]]:
    """Siblings from leaf to root as (sibling_is_left, hash) pairs; levels where the node
    had no sibling are skipped."""
    if not 0 <= index < len(txids):
        raise IndexError(index)
    level = [_leaf(t) for t in txids]
    proof: list[tuple[bool, bytes]] = []
    while len(level) > 1:
        sibling = index ^ 1
        if sibling < len(level):
            proof.append((sibling < index, level[sibling]))
        nxt = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
        index //= 2
    return proof


def verify_proof(txid: bytes, proof: Sequence[tuple[bool, bytes]], root: bytes) -> bool:
    acc = _leaf(txid)
    for sibling_is_left, sibling in proof:
        acc = _node(sibling, acc) if sibling_is_left else _node(acc, sibling)
    return acc == root
