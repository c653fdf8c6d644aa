"""Stateless checks of what peers send (verify.py), and the cache of verified signatures."""

from __future__ import annotations

import pytest

from common.errors import BadSignature, BlockTransactionInvalid, WrongChain
from common.types import Transaction
from services.p2p.verify import Verifier
from tests.framework import rules


def test_a_block_of_already_verified_transactions_costs_no_signature_check() -> None:
    genesis = rules.poa_genesis(n_miners=1)
    txs = tuple(rules.transfer(1, bytes(20), 1, nonce=i) for i in range(30))
    verifier = Verifier(genesis)
    for tx in txs:  # relayed one by one first
        verifier.check_tx(tx.raw)
    assert verifier.signature_checks == 30
    block = rules.Chain(genesis).build(txs)
    assert verifier.check_block(block.raw).hash == block.hash
    assert verifier.signature_checks == 30 and verifier.cache_hits == 30
    forged = txs[0].with_signature(bytes(64))
    with pytest.raises(BadSignature):
        verifier.check_tx(forged.raw)
    other_chain = Transaction.create(rules.signer(1), chain_id=genesis.network_id + 1, nonce=0,
                                     to=bytes(20), amount=1)
    with pytest.raises(WrongChain):
        verifier.check_tx(other_chain.raw)
    bad = rules.Chain(genesis).build((forged,))
    with pytest.raises(BlockTransactionInvalid):
        verifier.check_block(bad.raw)
