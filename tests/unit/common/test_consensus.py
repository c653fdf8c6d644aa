"""Consensus rules: each invalid-block class, PoA turns and weights, PoW retargeting."""

from __future__ import annotations

from typing import Any

import pytest

from common import consensus, crypto, errors
from common.genesis import Genesis
from common.merkle import merkle_root
from common.types import ZERO_ADDRESS, Block, BlockHeader
from tests.framework.rules import (
    GENESIS_TIME,
    INTERVAL_MS,
    Chain,
    address,
    make_genesis,
    poa_genesis,
    seal,
    signer,
    transfer,
)

A0, A1, A2 = (signer(100 + i) for i in range(3))  # the PoA authorities, in genesis order


def expect(exc_type: type[errors.CcoinError], code: str, fn: Any, *args: Any, **kw: Any) -> None:
    with pytest.raises(exc_type) as info:
        fn(*args, **kw)
    assert type(info.value) is exc_type, info.value
    assert info.value.code == code


@pytest.fixture
def poa() -> Chain:
    return Chain(poa_genesis(3, difficulty=4))


@pytest.fixture
def pow_chain() -> Chain:
    return Chain(make_genesis(difficulty=3))


def resolve(header: BlockHeader) -> BlockHeader:
    """A fresh HashCash proof for a header changed after sealing."""
    solved = consensus.solve_proof(header.replace(nonce=0), 1 << 20)
    assert solved is not None
    return solved


def with_header(block: Block, header: BlockHeader) -> Block:
    return Block(header, block.txs)


# --- a valid PoA chain ------------------------------------------------------------------------


def test_authorities_and_turns(poa: Chain) -> None:
    g = poa.genesis
    assert g.miners == (A0.address, A1.address, A2.address)
    assert [consensus.in_turn_signer(g.miners, h) for h in range(4)] == [
        A0.address, A1.address, A2.address, A0.address]
    assert consensus.recency_window(g.miners) == 1


@pytest.mark.parametrize("n, window", [(1, 0), (2, 1), (3, 1), (4, 2), (5, 2), (7, 3)])
def test_recency_window_is_half_the_authorities(n: int, window: int) -> None:
    assert consensus.recency_window(poa_genesis(n).miners) == window


def test_valid_poa_chain(poa: Chain) -> None:
    txs = [transfer(1, address(2), 10, nonce=0, fee=1)]
    block = poa.build_and_apply(txs)
    h = block.header
    assert h.coinbase == h.signer == A1.address
    assert crypto.leading_zero_bits(h.seal_hash) >= 4 and h.difficulty == 4
    assert crypto.verify(0, A1.public_key, h.seal_hash, h.signature)
    assert poa.view(A1.address).balance == 100 + 1
    for _ in range(5):
        poa.build_and_apply()
    assert len(poa.blocks) == 7


def test_block_weight_poa(poa: Chain) -> None:
    g = poa.genesis
    assert consensus.block_weight(g, poa.tip, g.miners) == 0  # genesis
    in_turn = poa.build()  # height 1: A1's turn
    assert consensus.block_weight(g, in_turn.header, g.miners) == 2
    out_of_turn = poa.build(sealer=A0)
    poa.validate(out_of_turn)  # out of turn is allowed, just lighter
    assert consensus.block_weight(g, out_of_turn.header, g.miners) == 1


def test_block_weight_pow(pow_chain: Chain) -> None:
    g = pow_chain.genesis
    for bits in (0, 1, 3, 10):
        h = pow_chain.tip.replace(height=5, difficulty=bits)
        assert consensus.block_weight(g, h, ()) == 2**bits


def test_fork_choice_weight_first_then_ties() -> None:
    low, high = b"\x01" * 32, b"\x02" * 32
    for g in (poa_genesis(), make_genesis()):
        assert consensus.is_better_tip(g, 5, high, 4, low)  # more weight wins
        assert not consensus.is_better_tip(g, 3, low, 4, high)
        assert not consensus.is_better_tip(g, 4, high, 4, low)  # a tie never moves up
    # equal weight: PoA takes the lower hash (both sides agree), PoW keeps the first seen
    assert consensus.is_better_tip(poa_genesis(), 4, low, 4, high)
    assert not consensus.is_better_tip(make_genesis(), 4, low, 4, high)


# --- invalid PoA blocks -----------------------------------------------------------------------


def test_unsigned_block(poa: Chain) -> None:
    block = poa.build()
    unsigned = with_header(block, block.header.replace(signature=b""))
    expect(errors.BadSeal, "bad_seal", poa.validate, unsigned)
    no_seal = block.header.replace(signer_key_type=0, signer_public_key=b"", signature=b"")
    expect(errors.BadSeal, "bad_seal", poa.validate, with_header(block, resolve(no_seal)))


def test_seal_by_another_key(poa: Chain) -> None:
    block = poa.build()  # A1 names itself as signer...
    forged = block.header.replace(signature=A0.sign(block.header.seal_hash))  # ...A0 signs
    expect(errors.BadSeal, "bad_seal", poa.validate, with_header(block, forged))


def test_seal_over_another_message(poa: Chain) -> None:
    block = poa.build()
    wrong = block.header.replace(signature=A1.sign(block.header.hash))
    expect(errors.BadSeal, "bad_seal", poa.validate, with_header(block, wrong))
    garbage = block.header.replace(signature=bytes(64))
    expect(errors.BadSeal, "bad_seal", poa.validate, with_header(block, garbage))


def test_coinbase_must_be_the_signer(poa: Chain) -> None:
    block = poa.build(sealer=A1, coinbase=A2.address)
    expect(errors.BadSeal, "bad_seal", poa.validate, block)


def test_unauthorised_signer(poa: Chain) -> None:
    outsider = signer(5)
    block = poa.build(sealer=outsider)
    assert block.header.coinbase == outsider.address
    expect(errors.UnauthorizedSigner, "unauthorized_signer", poa.validate, block)


def test_signer_too_recent(poa: Chain) -> None:
    poa.build_and_apply(sealer=A1)  # height 1, in turn
    again = poa.build(sealer=A1)  # height 2 (A2's turn): A1 sealed the previous block
    expect(errors.SignerTooRecent, "signer_too_recent", poa.validate, again)
    poa.build_and_apply(sealer=A0)  # out of turn, but not recent: fine
    poa.build_and_apply(sealer=A1)  # height 3: A1 is out of the 1-block window again
    assert [b.header.coinbase for b in poa.blocks[1:]] == [A1.address, A0.address, A1.address]


def test_weak_hashcash(poa: Chain) -> None:
    block = poa.build()
    h = block.header
    nonce = next(n for n in range(1000)
                 if crypto.leading_zero_bits(h.replace(nonce=n).seal_hash) < h.difficulty)
    weak = h.replace(nonce=nonce, signature=b"")
    weak = consensus.sign_header(weak, A1)  # properly signed, proof too weak
    expect(errors.WeakProof, "weak_proof", poa.validate, with_header(block, weak))


def test_wrong_difficulty(poa: Chain) -> None:
    for bits in (3, 5):  # proof solved at the stated difficulty, which is not the rule's
        block = poa.build(difficulty=bits)
        assert crypto.leading_zero_bits(block.header.seal_hash) >= bits
        expect(errors.WrongDifficulty, "wrong_difficulty", poa.validate, block)


def test_bad_merkle_root(poa: Chain) -> None:
    txs = [transfer(1, address(2), 10, nonce=0), transfer(1, address(2), 10, nonce=1)]
    block = poa.build(txs, tx_root=merkle_root([txs[1].id, txs[0].id]))
    consensus.validate_header(poa.genesis, poa.tip, block.header, now_ms=block.header.timestamp,
                              recent_signers=[], anchor_timestamp=None,
                              snapshot=poa.snapshot)
    expect(errors.BadTxRoot, "bad_tx_root", consensus.validate_body, poa.genesis, block)
    dropped = Block(poa.build(txs).header, (txs[0],))  # body missing a transaction
    expect(errors.BadTxRoot, "bad_tx_root", consensus.validate_body, poa.genesis, dropped)


def test_bad_state_root(poa: Chain) -> None:
    block = poa.build([transfer(1, address(2), 10, nonce=0)], state_root=bytes(32))
    poa.validate(block)
    expect(errors.BadStateRoot, "bad_state_root", poa.apply, block)


def test_excess_reward(poa: Chain) -> None:
    # the reward is implicit in the account model: only the state root can carry excess
    block = poa.build([transfer(1, address(2), 10, nonce=0, fee=2)],
                      reward=poa.genesis.reward + 1)
    poa.validate(block)
    expect(errors.BadStateRoot, "bad_state_root", poa.apply, block)
    assert poa.view(A1.address).balance == 0


def test_timestamp_must_rise(poa: Chain) -> None:
    parent_ts = poa.tip.timestamp
    for ts in (parent_ts, parent_ts - 1):
        block = poa.build(timestamp=ts)
        expect(errors.BadTimestamp, "bad_timestamp", poa.validate, block,
               now_ms=parent_ts + INTERVAL_MS)
    poa.validate(poa.build(timestamp=parent_ts + 1))


def test_timestamp_in_the_future(poa: Chain) -> None:
    block = poa.build()
    ts = block.header.timestamp
    poa.validate(block, now_ms=ts - consensus.MAX_FUTURE_MS)  # at the bound: fine
    expect(errors.BadTimestamp, "bad_timestamp", poa.validate, block,
           now_ms=ts - consensus.MAX_FUTURE_MS - 1)


def test_parent_and_height(poa: Chain) -> None:
    block = poa.build()
    orphan = resolve(block.header.replace(parent=bytes(32), signature=b""))
    expect(errors.UnknownParent, "unknown_parent", poa.validate,
           with_header(block, consensus.sign_header(orphan, A1)))
    skipped = resolve(block.header.replace(height=2, signature=b""))
    expect(errors.BadHeight, "bad_height", poa.validate,
           with_header(block, consensus.sign_header(skipped, A1)))


def test_duplicate_transaction_in_body(poa: Chain) -> None:
    tx = transfer(1, address(2), 10, nonce=0)
    header = poa.build([tx]).header.replace(tx_root=merkle_root([tx.id, tx.id]))
    block = Block(header, (tx, tx))
    expect(errors.DuplicateTransaction, "duplicate_transaction", consensus.validate_body,
           poa.genesis, block)


def test_mutated_duplicate_does_not_share_the_valid_root(poa: Chain) -> None:
    # CVE-2012-2459: the mutated body must not match the honest header's tx_root
    txs = [transfer(1, address(2), 10, nonce=n) for n in range(3)]
    honest = poa.build(txs)
    mutated = Block(honest.header, (*txs, txs[-1]))
    with pytest.raises(errors.InvalidBlock):
        consensus.validate_body(poa.genesis, mutated)
    consensus.validate_body(poa.genesis, honest)


def test_overspending_pair_in_one_block(poa: Chain) -> None:
    poor = Chain(poa_genesis(3, difficulty=4, alloc={address(1): 100}))
    first, second = (transfer(1, address(2), 60, nonce=n) for n in range(2))
    header = poor.build([first]).header.replace(tx_root=merkle_root([first.id, second.id]))
    block = Block(header, (first, second))
    expect(errors.BlockTransactionInvalid, "invalid_block_transaction", poor.apply, block,
           validate=False)


def test_body_too_many_transactions() -> None:
    chain = Chain(make_genesis(max_bound=2))
    txs = [transfer(1, address(2), 1, nonce=n) for n in range(3)]
    block = Block(chain.build(txs[:2]).header.replace(tx_root=merkle_root([t.id for t in txs])),
                  tuple(txs))
    expect(errors.BlockTooLarge, "block_too_large", consensus.validate_body, chain.genesis, block)


def test_body_transaction_for_another_chain_or_badly_signed(poa: Chain) -> None:
    other = transfer(1, address(2), 1, nonce=0, chain_id=99)
    block = Block(poa.build().header.replace(tx_root=merkle_root([other.id])), (other,))
    expect(errors.BlockTransactionInvalid, "invalid_block_transaction", consensus.validate_body,
           poa.genesis, block)
    good = transfer(1, address(2), 1, nonce=0)
    forged = good.with_signature(signer(2).sign(good.signing_payload()))
    block = Block(poa.build().header.replace(tx_root=merkle_root([forged.id])), (forged,))
    expect(errors.BlockTransactionInvalid, "invalid_block_transaction", consensus.validate_body,
           poa.genesis, block)
    consensus.validate_body(poa.genesis, block, verify_signatures=False)  # p2p's cache path


# --- PoW --------------------------------------------------------------------------------------


def test_valid_pow_chain(pow_chain: Chain) -> None:
    for n in range(3):
        block = pow_chain.build_and_apply([transfer(1, address(2), 1, nonce=n)])
        assert block.header.signature == b"" and block.header.signer_public_key == b""
        assert crypto.leading_zero_bits(block.header.seal_hash) >= 3


def test_pow_weak_proof(pow_chain: Chain) -> None:
    h = pow_chain.build().header
    nonce = next(n for n in range(1000)
                 if crypto.leading_zero_bits(h.replace(nonce=n).seal_hash) < 3)
    expect(errors.WeakProof, "weak_proof", pow_chain.validate,
           Block(h.replace(nonce=nonce), ()))


def test_pow_block_carries_no_seal(pow_chain: Chain) -> None:
    sealed = pow_chain.build()
    header = consensus.sign_header(
        resolve(consensus.with_signer(sealed.header, signer(0))), signer(0))
    expect(errors.BadSeal, "bad_seal", pow_chain.validate, Block(header, ()))


def test_pow_coinbase_not_zero(pow_chain: Chain) -> None:
    block = pow_chain.build(coinbase=ZERO_ADDRESS)
    expect(errors.BadSeal, "bad_seal", pow_chain.validate, block)


def pow_genesis(**kw: Any) -> Genesis:
    return make_genesis(difficulty=6, retarget_blocks=10, interval_ms=10_000, **kw)


def parent_at(height: int, timestamp: int, difficulty: int) -> BlockHeader:
    return BlockHeader(height=height, parent=bytes(32), timestamp=timestamp,
                       coinbase=address(0), tx_root=bytes(32), state_root=bytes(32),
                       difficulty=difficulty, nonce=0, extra=b"")


def test_retarget_up_when_fast() -> None:
    g = pow_genesis()
    anchor = GENESIS_TIME
    fast = parent_at(9, anchor + 10 * 10_000 // 2 - 1, 6)  # under half the target time
    assert consensus.next_difficulty(g, fast, anchor) == 7


def test_retarget_down_when_slow() -> None:
    g = pow_genesis()
    anchor = GENESIS_TIME
    slow = parent_at(19, anchor + 2 * 10 * 10_000 + 1, 6)  # over double the target time
    assert consensus.next_difficulty(g, slow, anchor) == 5
    assert consensus.next_difficulty(g, parent_at(19, anchor + 10**9, 0), anchor) == 0


def test_retarget_unchanged_within_the_band() -> None:
    g = pow_genesis()
    anchor = GENESIS_TIME
    for taken in (10 * 10_000 // 2, 10 * 10_000, 2 * 10 * 10_000):
        assert consensus.next_difficulty(g, parent_at(9, anchor + taken, 6), anchor) == 6


def test_retarget_only_at_window_boundaries() -> None:
    g = pow_genesis()
    anchor = GENESIS_TIME
    for height in (10, 11, 15, 18):  # child heights 11, 12, 16, 19: mid-window
        fast = parent_at(height, anchor + 1, 6)
        assert consensus.next_difficulty(g, fast, anchor) == 6
        assert consensus.retarget_anchor_height(g, height + 1) is None
    assert consensus.next_difficulty(g, parent_at(9, anchor + 1, 6), None) == 6


def test_first_block_takes_the_genesis_difficulty() -> None:
    g = pow_genesis()
    assert consensus.next_difficulty(g, parent_at(0, GENESIS_TIME, 0), None) == 6


def test_retarget_anchor_height() -> None:
    g = pow_genesis()
    assert consensus.retarget_anchor_height(g, 10) is None  # would reach the genesis block
    assert consensus.retarget_anchor_height(g, 20) == 9  # 10 intervals: blocks 9..19
    assert consensus.retarget_anchor_height(g, 30) == 19
    assert consensus.retarget_anchor_height(g, 1) is None
    assert consensus.retarget_anchor_height(poa_genesis(), 10) is None


def test_poa_difficulty_is_fixed() -> None:
    g = poa_genesis(difficulty=4)
    assert consensus.next_difficulty(g, parent_at(9, GENESIS_TIME + 1, 4), GENESIS_TIME) == 4


def test_pow_chain_retargets_through_validation() -> None:
    chain = Chain(make_genesis(difficulty=2, retarget_blocks=4, interval_ms=10_000))
    for _ in range(3):  # blocks 1..3, 1 ms apart: far too fast
        chain.build_and_apply(timestamp=chain.tip.timestamp + 1)
    first = chain.build(timestamp=chain.tip.timestamp + 1)  # height 4: window reaches genesis
    assert first.header.difficulty == 2
    chain.apply(first)
    for _ in range(3):  # blocks 5..7
        chain.build_and_apply(timestamp=chain.tip.timestamp + 1)
    block = chain.build(timestamp=chain.tip.timestamp + 1)  # height 8: retarget over 3..7
    assert block.header.difficulty == 3
    chain.apply(block)
    kept = chain.build(timestamp=chain.tip.timestamp + 1)  # height 9: mid-window, keeps 3
    assert kept.header.difficulty == 3
    chain.apply(kept)
    wrong = chain.build(difficulty=2)
    expect(errors.WrongDifficulty, "wrong_difficulty", chain.validate, wrong)


# --- sealing helpers --------------------------------------------------------------------------


def test_solve_proof_finds_the_first_nonce() -> None:
    h = parent_at(1, GENESIS_TIME, 8)
    solved = consensus.solve_proof(h, 1 << 16)
    assert solved is not None and crypto.leading_zero_bits(solved.seal_hash) >= 8
    for n in range(solved.nonce):
        assert crypto.leading_zero_bits(h.replace(nonce=n).seal_hash) < 8
    assert consensus.solve_proof(parent_at(1, GENESIS_TIME, 60), 16) is None


def test_solve_proof_wraps_the_nonce() -> None:
    h = parent_at(1, GENESIS_TIME, 2).replace(nonce=2**64 - 1)
    solved = consensus.solve_proof(h, 1000)
    assert solved is not None and crypto.leading_zero_bits(solved.seal_hash) >= 2


def test_seal_helper_produces_a_verifiable_seal() -> None:
    g = poa_genesis(difficulty=4)
    h = parent_at(1, GENESIS_TIME, 4).replace(coinbase=A1.address)
    sealed = seal(g, h, A1)
    assert sealed.signer == A1.address
    assert crypto.verify(0, A1.public_key, sealed.seal_hash, sealed.signature)
    consensus.check_seal(g, sealed, g.miners)
    consensus.check_proof(sealed)


def test_seal_names_the_key_proves_and_signs_or_gives_up() -> None:
    h = parent_at(1, GENESIS_TIME, 4).replace(coinbase=A1.address)
    poa = consensus.seal(h, A1, 1 << 20)
    assert poa is not None and poa.signer == A1.address
    consensus.check_proof(poa)
    assert crypto.verify(0, A1.public_key, poa.seal_hash, poa.signature)
    pow_ = consensus.seal(h, None, 1 << 20)  # proof of work: no key, no signature
    assert pow_ is not None and pow_.signer == b"" and pow_.signature == b""
    consensus.check_proof(pow_)
    hard = parent_at(1, GENESIS_TIME, 40)  # 40 bits: not found in 10 tries
    assert consensus.seal(hard, A1, 10) is None
