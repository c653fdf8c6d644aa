"""The state service's chain on a real LevelDB: import, state roots, reorgs, journal,
atomic commits."""

from __future__ import annotations

from pathlib import Path

import pytest

from common import errors
from common.genesis import Genesis
from common.statehash import root_of
from common.types import Block
from services.state import schema
from services.state.chain import Chain
from services.state.results import TxLocation
from services.state.store import Batch, Store, StoreError, init_chain
from tests.framework import rules as rh

NOW = 2**62  # far future: timestamps of the built blocks are never "in the future"


def open_chain(path: Path, genesis: Genesis) -> Chain:
    return Chain(Store(path), genesis)


def pow_genesis() -> Genesis:
    return rh.make_genesis(difficulty=0)  # PoW, weight 1 per block: longest chain wins


def test_imports_blocks_and_agrees_with_the_reference_chain(tmp_path: Path) -> None:
    g = rh.poa_genesis(n_miners=1)
    ref = rh.Chain(g)
    chain = open_chain(tmp_path, g)
    assert chain.genesis_hash == ref.blocks[0].hash
    for n in range(5):
        txs = [rh.transfer(1, rh.address(9), 10 + n, nonce=n, fee=2)]
        block = ref.build_and_apply(txs)
        assert chain.import_block(block, NOW).status == "head"
    assert chain.head.header.hash == ref.tip.hash
    assert chain.account(rh.address(9)).balance == ref.view(rh.address(9)).balance
    assert root_of(chain.state_value_from_scratch()) == ref.tip.state_root
    loc = chain.store.tx_location(ref.blocks[3].txs[0].id)
    assert loc == TxLocation(ref.blocks[3].hash, 0)
    assert chain.import_block(ref.blocks[2], NOW).status == "known"


def test_invalid_block_changes_nothing(tmp_path: Path) -> None:
    g = rh.poa_genesis(n_miners=1)
    ref = rh.Chain(g)
    chain = open_chain(tmp_path, g)
    good = ref.build([rh.transfer(1, rh.address(9), 5, nonce=0)])
    bad_root = ref.build([rh.transfer(1, rh.address(9), 5, nonce=0)], reward=g.reward + 1)
    with pytest.raises(errors.BadStateRoot):
        chain.import_block(bad_root, NOW)
    assert chain.head.header.height == 0
    assert chain.account(rh.address(9)).balance == 0
    assert chain.import_block(good, NOW).status == "head"


def test_mutated_body_does_not_condemn_the_header(tmp_path: Path) -> None:
    g = rh.poa_genesis(n_miners=1)
    ref = rh.Chain(g)
    chain = open_chain(tmp_path, g)
    tx = rh.transfer(1, rh.address(9), 5, nonce=0)
    good = ref.build([tx])
    mutated = Block(good.header, (tx, tx))
    with pytest.raises(errors.InvalidBlock):
        chain.import_block(mutated, NOW)
    assert chain.import_block(good, NOW).status == "head"


def test_reorg_to_a_heavier_branch_returns_transactions_to_the_pool(tmp_path: Path) -> None:
    g = pow_genesis()
    a, b = rh.Chain(g), rh.Chain(g)
    chain = open_chain(tmp_path, g)
    only_on_a = rh.transfer(1, rh.address(9), 7, nonce=0)
    on_both = rh.transfer(2, rh.address(9), 3, nonce=0)
    for blk in (a.build_and_apply([only_on_a, on_both], coinbase=rh.address(20)),
                a.build_and_apply([], coinbase=rh.address(20))):
        assert chain.import_block(blk, NOW).status == "head"
    side = [b.build_and_apply([on_both], coinbase=rh.address(21)),
            b.build_and_apply([], coinbase=rh.address(21))]
    assert [chain.import_block(blk, NOW).status for blk in side] == ["side", "side"]
    tip = b.build_and_apply([], coinbase=rh.address(21))
    result = chain.import_block(tip, NOW)
    assert result.status == "head" and len(result.disconnected) == 2
    assert chain.head.header.hash == tip.hash
    assert root_of(chain.state_value_from_scratch()) == tip.header.state_root
    assert only_on_a.id in chain.mempool and on_both.id not in chain.mempool
    assert chain.store.tx_location(on_both.id) == TxLocation(side[0].hash, 0)
    assert chain.store.tx_location(only_on_a.id) is None
    assert chain.account(rh.address(20)).balance == 0  # a's rewards are undone
    # and back again: a grows heavier, a's transactions are confirmed once more
    for _ in range(2):
        blk = a.build_and_apply([], coinbase=rh.address(20))
        chain.import_block(blk, NOW)
    assert chain.head.header.hash == a.tip.hash
    assert only_on_a.id not in chain.mempool
    assert root_of(chain.state_value_from_scratch()) == a.tip.state_root


def test_reorg_onto_an_invalid_branch_keeps_the_head(tmp_path: Path) -> None:
    g = pow_genesis()
    a, b = rh.Chain(g), rh.Chain(g)
    chain = open_chain(tmp_path, g)
    chain.import_block(a.build_and_apply([], coinbase=rh.address(20)), NOW)
    b1 = b.build_and_apply([], coinbase=rh.address(21))
    assert chain.import_block(b1, NOW).status == "side"
    # b2 credits the coinbase too much: its header is fine, its state root is not
    b2 = b.build([], coinbase=rh.address(21), reward=g.reward * 2)
    head_before = chain.head.header.hash
    with pytest.raises(errors.BadStateRoot):
        chain.import_block(b2, NOW)
    assert chain.head.header.hash == head_before
    assert root_of(chain.state_value_from_scratch()) == chain.head.header.state_root
    with pytest.raises(errors.InvalidBlock, match="known to be invalid"):
        chain.import_block(b2, NOW)


def test_accepted_transactions_survive_a_restart(tmp_path: Path) -> None:
    g = rh.poa_genesis(n_miners=1)
    chain = open_chain(tmp_path, g)
    txs = [rh.transfer(1, rh.address(9), 1, nonce=n) for n in range(5)]
    results, accepted = chain.add_transactions(txs)
    assert results == [None] * 5 and accepted == txs
    block = chain.template(rh.address(100), rh.GENESIS_TIME + 1, b"")
    assert list(block.txs) == txs
    chain.store.close()  # a crash after the 202s: only what is on disk counts
    again = open_chain(tmp_path, g)
    assert [again.mempool.get(t.id) for t in txs] == txs
    assert again.mempool.ready_count() == 5
    resent, new = again.add_transactions(txs[:1])
    assert resent == [None] and new == []  # idempotent: recognised, not added twice


def test_a_confirmed_transaction_sent_again_is_recognised_a_stale_one_refused(
        tmp_path: Path) -> None:
    g = rh.poa_genesis(n_miners=1)
    ref = rh.Chain(g)
    chain = open_chain(tmp_path, g)
    confirmed = [rh.transfer(1, rh.address(9), 5, nonce=n) for n in range(2)]
    for tx in confirmed:
        assert chain.import_block(ref.build_and_apply([tx]), NOW).status == "head"
    again, added = chain.add_transactions(confirmed)
    assert again == [None, None] and added == []  # idempotent, and not pending again
    assert len(chain.mempool) == 0
    # the same sender and nonce, another transfer: the chain does not hold it
    (stale,), added = chain.add_transactions([rh.transfer(1, rh.address(9), 6, nonce=1)])
    assert isinstance(stale, errors.NonceTooLow) and added == []
    fresh = rh.transfer(1, rh.address(9), 7, nonce=2)
    assert chain.add_transactions([fresh]) == ([None], [fresh])


def test_after_a_block_the_journal_holds_what_the_pool_holds(tmp_path: Path) -> None:
    g = rh.poa_genesis(n_miners=1)
    ref = rh.Chain(g)
    chain = open_chain(tmp_path, g)
    pending = [rh.transfer(1, rh.address(9), 1, nonce=n) for n in range(3)]
    chain.add_transactions(pending)
    # two of them, and a transfer the pool never had (as every one is in a sync)
    other = rh.transfer(2, rh.address(9), 1, nonce=0)
    assert chain.import_block(ref.build_and_apply([*pending[:2], other]), NOW).status == "head"
    assert [key for key, _ in chain.store.journal()] == [schema.journal_key(pending[2].id)]
    assert [chain.mempool.get(t.id) for t in pending] == [None, None, pending[2]]


def test_unreadable_journal_entries_are_removed_misfiled_ones_refiled(tmp_path: Path) -> None:
    g = rh.poa_genesis(n_miners=1)
    chain = open_chain(tmp_path, g)
    good = rh.transfer(1, rh.address(9), 1, nonce=0)
    chain.add_transactions([good])
    other = rh.transfer(2, rh.address(9), 1, nonce=0)
    batch = Batch()
    batch.put(schema.journal_key(b"\x01" * 32), b"\xc1 not a transaction")
    batch.put(schema.journal_key(b"\x02" * 32), other.raw)  # under another id's key
    chain.store.commit(batch)
    chain.store.close()
    again = open_chain(tmp_path, g)
    # the garbage is gone; the misfiled transaction is kept (it was accepted), under its id
    assert len(again.mempool) == 2 and again.mempool.get(other.id) == other
    assert sorted(key for key, _ in again.store.journal()) == sorted(
        schema.journal_key(t.id) for t in (good, other))


def test_commit_is_all_or_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path)
    batch = Batch()
    batch.put(b"k1", b"v1")
    batch.puts[b"k2"] = None  # type: ignore[assignment]  # plyvel raises on this put
    with pytest.raises(TypeError):
        store.commit(batch)
    assert store.get(b"k1") is None


def test_init_chain_refuses_another_genesis(tmp_path: Path) -> None:
    init_chain(tmp_path, rh.poa_genesis(n_miners=1))
    init_chain(tmp_path, rh.poa_genesis(n_miners=1))  # idempotent
    with pytest.raises(StoreError, match="another chain"):
        init_chain(tmp_path, rh.poa_genesis(n_miners=2))


def test_second_process_cannot_open_the_database(tmp_path: Path) -> None:
    store = Store(tmp_path)
    try:
        with pytest.raises(errors.StoreLocked, match="in use: its LevelDB lock is held"):
            Store(tmp_path)
    finally:
        store.close()
    assert schema.height_key(1) == b"n" + (1).to_bytes(8, "big")


def test_equal_weight_poa_forks_converge_whatever_the_arrival_order(tmp_path: Path) -> None:
    """Two out-of-turn authorities seal the same height (weight 1 each). With first-seen
    ties each node would keep the block it saw first and a chain that seals no empty blocks
    would never agree (the Clique stall); the lower hash wins everywhere."""
    g = rh.poa_genesis(n_miners=3)
    in_turn = g.miners[1 % 3]
    outs = [i for i in range(3) if rh.address(100 + i) != in_turn]
    x = rh.Chain(g).build([], sealer=rh.signer(100 + outs[0]))
    y = rh.Chain(g).build([], sealer=rh.signer(100 + outs[1]))
    winner = min(x, y, key=lambda b: b.hash)
    for name, order in (("xy", (x, y)), ("yx", (y, x))):
        chain = open_chain(tmp_path / name, g)
        results = [chain.import_block(b, NOW).status for b in order]
        assert chain.head.header.hash == winner.hash, name
        assert results[0] == "head"
        assert results[1] == ("head" if order[1] is winner else "side")
        assert root_of(chain.state_value_from_scratch()) == winner.header.state_root
