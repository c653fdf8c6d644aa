"""Merkle roots of transaction ids and inclusion proofs."""

from __future__ import annotations

import hashlib

import pytest

from common.merkle import EMPTY_ROOT, merkle_proof, merkle_root, verify_proof


def ids(n: int, tag: bytes = b"tx") -> list[bytes]:
    return [hashlib.sha256(tag + bytes([i])).digest() for i in range(n)]


def leaf(x: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + x).digest()


def node(a: bytes, b: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + a + b).digest()


def test_empty_and_single() -> None:
    assert merkle_root([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()
    one = ids(1)
    assert merkle_root(one) == leaf(one[0])
    assert merkle_proof(one, 0) == []
    assert verify_proof(one[0], [], merkle_root(one))


def test_construction_for_small_lists() -> None:
    a, b, c = ids(3)
    assert merkle_root([a, b]) == node(leaf(a), leaf(b))
    # the odd node is promoted, not paired with itself
    assert merkle_root([a, b, c]) == node(node(leaf(a), leaf(b)), leaf(c))


@pytest.mark.parametrize("n", range(1, 18))
def test_every_proof_verifies(n: int) -> None:
    txids = ids(n)
    root = merkle_root(txids)
    for i, txid in enumerate(txids):
        proof = merkle_proof(txids, i)
        assert verify_proof(txid, proof, root), (n, i)
        assert len(proof) <= max(n - 1, 0).bit_length()


@pytest.mark.parametrize("n", range(1, 18))
def test_proofs_fail_against_another_root_or_leaf(n: int) -> None:
    txids = ids(n)
    other_root = merkle_root(ids(n, b"other"))
    for i, txid in enumerate(txids):
        proof = merkle_proof(txids, i)
        assert not verify_proof(txid, proof, other_root)
        assert not verify_proof(hashlib.sha256(b"x" + txid).digest(), proof,
                                merkle_root(txids))
        if proof:
            side, sibling = proof[0]
            flipped = [(not side, sibling), *proof[1:]]
            assert not verify_proof(txid, flipped, merkle_root(txids))


def test_proof_index_out_of_range() -> None:
    with pytest.raises(IndexError):
        merkle_proof(ids(3), 3)
    with pytest.raises(IndexError):
        merkle_proof(ids(3), -1)
    with pytest.raises(IndexError):
        merkle_proof([], 0)


@pytest.mark.parametrize("n", range(1, 18))
def test_duplicated_last_element_changes_the_root(n: int) -> None:
    # CVE-2012-2459: in Bitcoin, [.., x] and [.., x, x] could share a root.
    txids = ids(n)
    assert merkle_root(txids + [txids[-1]]) != merkle_root(txids)


def test_roots_differ_for_order_and_content() -> None:
    a, b, c, d = ids(4)
    assert merkle_root([a, b]) != merkle_root([b, a])
    assert merkle_root([a, b, c]) != merkle_root([a, b, c, d])
    # an inner node is never mistaken for a leaf (domain separation)
    assert merkle_root([a, b]) != merkle_root([node(leaf(a), leaf(b))])
    roots = {merkle_root(ids(n)) for n in range(0, 18)}
    assert len(roots) == 18


def rfc6962_root(txids: list[bytes]) -> bytes:
    """RFC 6962 §2.1 Merkle Tree Hash over the ids, split at the largest power of two < n."""
    if not txids:
        return hashlib.sha256(b"").digest()
    if len(txids) == 1:
        return leaf(txids[0])
    k = 1
    while k * 2 < len(txids):
        k *= 2
    return node(rfc6962_root(txids[:k]), rfc6962_root(txids[k:]))


def test_equals_rfc6962_tree_hash() -> None:
    txids = ids(70)
    for n in range(0, 70):
        assert merkle_root(txids[:n]) == rfc6962_root(txids[:n]), n
