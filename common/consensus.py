"""Consensus rules: who may seal, how heavy a block is, what a valid header and body are.

PoA (genesis `miners` non-empty) follows Clique (EIP-225): `signers` is the authority set
at a block's parent (`common.authorities`: the genesis `miners`, changed by votes), the
in-turn signer for height h is `signers[h % n]` and its blocks weigh 2, out-of-turn blocks
weigh 1, and a signer may seal at most one of any floor(n/2)+1 consecutive blocks; every
block also carries a HashCash
proof of `difficulty` leading zero bits over its seal hash. PoW (no `miners`) is open
mining with sosocoin's retargeting; a block weighs 2^difficulty. Fork choice: the greatest
total weight, ties to the first seen.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from common import authorities, crypto, errors
from common.authorities import Snapshot
from common.encoding import pack
from common.genesis import Genesis
from common.merkle import merkle_root
from common.types import (
    HEADER_DOMAIN,
    MAX_BLOCK_TXS,
    ZERO_ADDRESS,
    Block,
    BlockHeader,
    Transaction,
)

MAX_FUTURE_MS = 5_000


def in_turn_signer(signers: Sequence[bytes], height: int) -> bytes:
    """`signers`: the set at the parent of the block at `height`."""
    return signers[height % len(signers)]


def recency_window(signers: Sequence[bytes]) -> int:
    """How many previous blocks a signer must not have sealed: floor(n/2) of the set at the
    parent of the block checked."""
    return len(signers) // 2


def block_weight(genesis: Genesis, header: BlockHeader, signers: Sequence[bytes]) -> int:
    """`signers`: the set at the header's parent (unused in PoW)."""
    if header.height == 0:
        return 0
    if genesis.is_poa:
        return 2 if header.coinbase == in_turn_signer(signers, header.height) else 1
    return 2**header.difficulty


def is_better_tip(genesis: Genesis, candidate_weight: int, candidate_hash: bytes,
                  current_weight: int, current_hash: bytes) -> bool:
    """Fork choice: strictly more total weight wins. At equal weight, PoW keeps the tip it
    saw first (Bitcoin's rule, which does not reward withholding blocks); PoA takes the
    lower block hash. Two out-of-turn authorities sealing the same height make forks of
    equal weight, and with first-seen each side keeps its own and Clique stalls until some
    heavier block happens to arrive (EIP-3436); a total order every node computes alike
    makes them agree as soon as they have seen both blocks."""
    if candidate_weight != current_weight:
        return candidate_weight > current_weight
    return genesis.is_poa and candidate_hash < current_hash


def next_difficulty(genesis: Genesis, parent: BlockHeader, anchor_timestamp: int | None) -> int:
    """Difficulty the child of `parent` must carry.

    PoA: the genesis `difficulty`, always. PoW: unchanged except at each multiple of
    `retarget_blocks` K, where the time the last K intervals took (from the anchor, the
    block K+1 below the child, to the parent) is compared with K intervals: under half,
    +1; over double, -1 (sosocoin's rule)."""
    if genesis.is_poa:
        return genesis.difficulty
    height = parent.height + 1
    if height == 1:
        return genesis.difficulty
    current = parent.difficulty
    k = genesis.retarget_blocks
    if height % k or anchor_timestamp is None:
        return current
    expected = k * genesis.interval_ms
    taken = parent.timestamp - anchor_timestamp
    if taken < expected // 2:
        return min(current + 1, 255)
    if taken > expected * 2:
        return max(current - 1, 0)
    return current


def retarget_anchor_height(genesis: Genesis, height: int) -> int | None:
    """Height whose timestamp `next_difficulty` needs for a block at `height`, if any.

    The anchor is never the genesis block: its timestamp is a constant of the genesis file
    (0 by default), not a mining time, so the first window that would reach it is skipped."""
    if genesis.is_poa or height <= 1 or height % genesis.retarget_blocks:
        return None
    anchor = height - genesis.retarget_blocks - 1
    return anchor if anchor >= 1 else None


def check_proof(header: BlockHeader) -> None:
    if crypto.leading_zero_bits(header.seal_hash) < header.difficulty:
        raise errors.WeakProof(f"seal hash has fewer than {header.difficulty} leading zero bits")


def check_seal(genesis: Genesis, header: BlockHeader, signers: Sequence[bytes]) -> None:
    """PoA: signed by an authority of `signers` (the set at the parent) whose address is the
    coinbase. PoW: no seal."""
    check_seal_signature(genesis, header)
    if genesis.is_poa and header.signer not in signers:
        raise errors.UnauthorizedSigner(f"{header.signer.hex()} is not an authority")


def check_seal_signature(genesis: Genesis, header: BlockHeader) -> None:
    """The part of `check_seal` that needs no chain (p2p runs it before state): PoA: sealed,
    by the coinbase's key, and the signature verifies; PoW: no seal."""
    if not genesis.is_poa:
        if header.signer_key_type or header.signer_public_key or header.signature:
            raise errors.BadSeal("a PoW block carries no seal")
        return
    if not header.signer_public_key or not header.signature:
        raise errors.BadSeal("block is not sealed")
    if header.signer != header.coinbase:
        raise errors.BadSeal("coinbase must be the signer's address")
    if not crypto.verify(header.signer_key_type, header.signer_public_key, header.seal_hash,
                         header.signature):
        raise errors.BadSeal("seal signature does not verify")


def check_recency(genesis: Genesis, header: BlockHeader, recent_signers: Sequence[bytes],
                  signers: Sequence[bytes]) -> None:
    """`recent_signers`: coinbases of the `recency_window` blocks before this one."""
    window = recency_window(signers)
    if genesis.is_poa and window and header.coinbase in recent_signers[-window:]:
        raise errors.SignerTooRecent(f"{header.coinbase.hex()} sealed a recent block")


def validate_header(genesis: Genesis, parent: BlockHeader, header: BlockHeader, *, now_ms: int,
                    recent_signers: Sequence[bytes], anchor_timestamp: int | None,
                    snapshot: Snapshot) -> Snapshot:
    """Everything about a header that needs only its ancestors (not the state).
    `snapshot`: the authorities at the parent; returns the authorities after `header`."""
    if header.parent != parent.hash:
        raise errors.UnknownParent("parent hash does not match")
    if header.height != parent.height + 1:
        raise errors.BadHeight(f"height {header.height} after {parent.height}")
    if header.timestamp <= parent.timestamp:
        raise errors.BadTimestamp("timestamp does not rise")
    if header.timestamp > now_ms + MAX_FUTURE_MS:
        raise errors.BadTimestamp("timestamp is too far in the future")
    expected = next_difficulty(genesis, parent, anchor_timestamp)
    if header.difficulty != expected:
        raise errors.WrongDifficulty(f"difficulty {header.difficulty}, expected {expected}")
    check_proof(header)
    check_seal(genesis, header, snapshot.signers)
    check_recency(genesis, header, recent_signers, snapshot.signers)
    if not genesis.is_poa and header.coinbase == ZERO_ADDRESS:
        raise errors.BadSeal("coinbase is the zero address")
    return authorities.apply_header(genesis.is_poa, genesis.epoch, snapshot, header)


def transaction_signature_verifies(tx: Transaction) -> bool:
    return crypto.verify(tx.key_type, tx.public_key, tx.signing_payload(), tx.signature)


def verify_transaction_signature(tx: Transaction) -> None:
    if not transaction_signature_verifies(tx):
        raise errors.BadSignature("signature does not verify")


def validate_body(genesis: Genesis, block: Block, *, verify_signatures: bool = True) -> None:
    """Stateless checks of the body: size, Merkle root, no duplicates, chain id, signatures."""
    txs = block.txs
    check_body(genesis, block.header, [tx.id for tx in txs], [tx.chain_id for tx in txs])
    if verify_signatures:
        for index, tx in enumerate(txs):
            if not transaction_signature_verifies(tx):
                raise errors.BlockTransactionInvalid(f"transaction {index} has a bad signature")


def check_body(genesis: Genesis, header: BlockHeader, ids: Sequence[bytes],
               chain_ids: Iterable[int]) -> None:
    """`validate_body` but the signatures, from the transactions' ids and chain ids alone
    (p2p reads just these from a block's bytes: `common.signed`)."""
    if len(ids) > min(genesis.max_bound, MAX_BLOCK_TXS):
        raise errors.BlockTooLarge(f"{len(ids)} transactions > max_bound {genesis.max_bound}")
    if len(set(ids)) != len(ids):
        raise errors.DuplicateTransaction("a transaction appears twice")
    if merkle_root(ids) != header.tx_root:
        raise errors.BadTxRoot("transactions do not match tx_root")
    for index, chain_id in enumerate(chain_ids):
        if chain_id != genesis.network_id:
            raise errors.BlockTransactionInvalid(f"transaction {index} is for another chain")


def with_signer(header: BlockHeader, signer: crypto.Signer) -> BlockHeader:
    """Name the sealing key; done before the proof search since the seal hash covers it."""
    return header.replace(signer_key_type=int(signer.key.key_type),
                          signer_public_key=signer.public_key, signature=b"")


def sign_header(header: BlockHeader, signer: crypto.Signer) -> BlockHeader:
    """Attach the PoA seal signature over the seal hash (which covers the nonce)."""
    return header.replace(signature=signer.sign(header.seal_hash))


def seal(header: BlockHeader, signer: crypto.Signer | None, max_tries: int,
         ) -> BlockHeader | None:
    """`header` sealed in one go as the miner seals it: the key named (PoA, when `signer`),
    the proof found within `max_tries` (None if not), then signed. The miner itself
    searches in chunks between its staleness checks."""
    if signer is not None:
        header = with_signer(header, signer)
    solved = solve_proof(header, max_tries)
    if solved is None or signer is None:
        return solved
    return sign_header(solved, signer)


def solve_proof(header: BlockHeader, max_tries: int) -> BlockHeader | None:
    """Search nonces from `header.nonce` for a HashCash proof; None after `max_tries`.

    The seal hash is SHA-256 of a msgpack array, which is its header byte followed by the
    packed elements, so everything but the nonce is packed once."""
    fields: list[object] = [HEADER_DOMAIN, *header.fields()[:-1]]
    nonce_at = 8  # domain + 7 fields before the nonce
    prefix = b"\x9d" + b"".join(pack(f) for f in fields[:nonce_at])
    suffix = b"".join(pack(f) for f in fields[nonce_at + 1:])
    assert fields.__len__() == 13 and prefix[:1] == pack(fields)[:1]
    nonce = header.nonce
    bits = header.difficulty
    limit = 1 << (256 - bits)
    sha = hashlib.sha256
    for _ in range(max_tries):
        if int.from_bytes(sha(prefix + pack(nonce) + suffix).digest(), "big") < limit:
            return header.replace(nonce=nonce)
        nonce = (nonce + 1) % 2**64
    return None
