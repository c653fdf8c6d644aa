"""Stateless checks of what peers send, before anything reaches state (DESIGN §1, §5).

A transaction is decoded strictly and its signature verified; a block is decoded, its body
checked (`consensus.validate_body`: size, Merkle root, duplicates, chain id) and its header's
HashCash proof and PoA seal verified. Signature checks dominate the cost, so the ids of
transactions already verified are kept in a bounded cache: a transaction is one hash of
its bytes, so a cached id means exactly these bytes verified. A block full of transactions
relayed to us earlier therefore costs one seal check, not one check per transaction.

Everything stateful (parent known, nonces, balances, state root, recency) is state's job.
"""

from __future__ import annotations

from common import consensus, errors
from common.genesis import Genesis
from common.types import Block, Transaction
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

    def check_block(self, raw: bytes) -> Block:
        """Decode a block and run every check that needs no chain state; raise the typed
        `InvalidBlock` (or `Malformed`) of the first failure."""
        block = Block.decode(raw)
        header = block.header
        if header.height == 0:
            raise errors.BadHeight("a genesis block is never relayed")
        consensus.check_proof(header)
        consensus.check_seal(self.genesis, header)
        consensus.validate_body(self.genesis, block, verify_signatures=False)
        for index, tx in enumerate(block.txs):
            try:
                self.check_signature(tx)
            except errors.BadSignature:
                raise errors.BlockTransactionInvalid(
                    f"transaction {index} has a bad signature") from None
        return block
