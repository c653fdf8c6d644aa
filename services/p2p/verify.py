"""Stateless checks of what peers send, before anything reaches state (DESIGN §1, §5).

A relayed transaction is decoded strictly and its signature verified. Of a block, p2p reads
each transaction's id, chain id, key and signed message (`common.signed`: state decodes the
transactions in full, once), checks the body (`consensus.check_body`: size, Merkle root,
duplicates, chain id), the header's HashCash proof and PoA seal, and every signature.

Signature checks dominate the cost, so the ids of transactions already verified are kept in
a bounded cache: a transaction is one hash of its bytes, so a cached id means exactly these
bytes verified. A block full of transactions relayed to us earlier therefore costs one seal
check, not one check per transaction.

Everything stateful (parent known, nonces, balances, state root, recency) is state's job.
"""

from __future__ import annotations

from common import consensus, errors, signed
from common.genesis import Genesis
from common.signed import SignedBlock, SignedTx
from common.types import Transaction
from services.p2p.scoring import LruSet

VERIFIED_CACHE = 200_000


class Verifier:
    def __init__(self, genesis: Genesis, capacity: int = VERIFIED_CACHE) -> None:
        self.genesis = genesis
        self.verified: LruSet[bytes] = LruSet(capacity)
        self.signature_checks = 0  # how many signatures were really verified
        self.cache_hits = 0

    def check_signature(self, tx: Transaction) -> None:
        """`BadSignature` unless `tx` verifies (or verified before)."""
        if tx.id in self.verified:
            self.cache_hits += 1
            return
        self.signature_checks += 1
        consensus.verify_transaction_signature(tx)
        self.verified.add(tx.id)

    def check_tx(self, raw: bytes) -> Transaction:
        """Decode and verify one relayed transaction: `Malformed`, `WrongChain` or
        `BadSignature` when it is not acceptable from any peer."""
        tx = Transaction.decode(raw)
        if tx.chain_id != self.genesis.network_id:
            raise errors.WrongChain(f"transaction for chain {tx.chain_id}")
        self.check_signature(tx)
        return tx

    def check_block(self, raw: bytes) -> SignedBlock:
        """Read a block and run every check that needs no chain state; raise the typed
        `InvalidBlock` (or `Malformed`) of the first failure."""
        block, unverified = self.check_block_shape(raw)
        bad = first_bad_signature(unverified)
        if bad is not None:
            raise bad_signature_in(block, unverified[bad])
        self.remember(unverified)
        return block

    def check_block_shape(self, raw: bytes) -> tuple[SignedBlock, list[SignedTx]]:
        """Everything but the signatures: read, proof, seal, body. Returns the block and
        its transactions whose signatures are not in the cache (still to verify)."""
        block = signed.read_block(raw)
        header = block.header
        if header.height == 0:
            raise errors.BadHeight("a genesis block is never relayed")
        consensus.check_proof(header)
        # membership is state's check: only it knows the set at the parent (votes change it)
        consensus.check_seal_signature(self.genesis, header)
        consensus.check_body(self.genesis, header, block.tx_ids, block.chain_ids())
        verified = self.verified
        unverified = [tx for tx in block.txs if tx.id not in verified]
        self.cache_hits += len(block.txs) - len(unverified)
        return block, unverified

    def remember(self, txs: list[SignedTx], *, cache: bool = True) -> None:
        """Record signatures verified elsewhere (a worker thread) as verified; `cache`:
        also keep their ids, so the same bytes are not verified again."""
        self.signature_checks += len(txs)
        if cache:
            self.verified.update(tx.id for tx in txs)


def first_bad_signature(txs: list[SignedTx]) -> int | None:
    """Index of the first transaction whose signature does not verify. Pure and GIL-free in
    its hot part (libsodium), so several threads can run it on parts of one block."""
    for index, tx in enumerate(txs):
        if not tx.verifies():
            return index
    return None


def bad_signature_in(block: SignedBlock, tx: SignedTx) -> errors.BlockTransactionInvalid:
    index = block.txs.index(tx)
    return errors.BlockTransactionInvalid(f"transaction {index} has a bad signature")
