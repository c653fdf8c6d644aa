"""The state service's chain on a real LevelDB: import, state roots, reorgs, journal,
atomic commits."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from common import errors
from common.encoding import unpack
from common.genesis import Genesis
from common.statehash import root_of
from common.status import RemovalReason
from common.types import Block, Transaction
from services.state import schema
from services.state.chain import Chain
from services.state.journal import encode_entry
from services.state.mempool import Mempool
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


def journal(chain: Chain) -> dict[int, list[Transaction]]:
    """The journal's entries as stored: sequence number -> transactions."""
    return {schema.journal_seq(key): list(map(Transaction.decode, unpack(value)))
            for key, value in chain.store.scan(schema.JOURNAL)}


def test_an_entry_goes_only_with_the_last_of_its_transactions(tmp_path: Path) -> None:
    g = rh.poa_genesis(n_miners=1)
    ref = rh.Chain(g)
    chain = open_chain(tmp_path, g)
    pending = [rh.transfer(1, rh.address(9), 1, nonce=n) for n in range(3)]
    chain.add_transactions(pending)
    assert journal(chain) == {0: pending}  # one entry for the batch
    # two of them, and a transfer the pool never had (as every one is in a sync)
    other = rh.transfer(2, rh.address(9), 1, nonce=0)
    assert chain.import_block(ref.build_and_apply([*pending[:2], other]), NOW).status == "head"
    assert journal(chain) == {0: pending}  # pending[2] is still pooled: the entry stays
    assert chain.journal.live() == {0: 1} and chain.journal.entry_of(pending[2].id) == 0
    assert [chain.mempool.get(t.id) for t in pending] == [None, None, pending[2]]
    assert chain.import_block(ref.build_and_apply(pending[2:]), NOW).status == "head"
    assert journal(chain) == {} and chain.journal.live() == {} and len(chain.mempool) == 0


def test_a_transaction_displaced_within_its_own_batch_is_not_journalled(
        tmp_path: Path) -> None:
    chain = open_chain(tmp_path, rh.poa_genesis(n_miners=1))
    cheap = rh.transfer(1, rh.address(9), 1, nonce=0, fee=1)
    dear = rh.transfer(1, rh.address(9), 1, nonce=0, fee=2)  # replaces it
    results, accepted = chain.add_transactions([cheap, dear])
    assert results == [None, None] and accepted == [cheap, dear]
    assert journal(chain) == {0: [dear]} and chain.journal.live() == {0: 1}


def test_what_a_reorg_returns_and_what_it_pushes_out_of_the_pool_is_counted(
        tmp_path: Path) -> None:
    """A full pool (two transactions, admitted together) takes back a reorged-out one of a
    higher fee: the cheapest pending one is evicted, leaves its entry (the entry stays: the
    other is pooled) and is reported dropped."""
    g = pow_genesis()
    a, b = rh.Chain(g), rh.Chain(g)
    chain = Chain(Store(tmp_path), g, mempool=Mempool(g.network_id, max_count=2))
    returned = rh.transfer(1, rh.address(9), 7, nonce=0, fee=5)
    assert chain.import_block(a.build_and_apply([returned], coinbase=rh.address(20)),
                              NOW).status == "head"
    cheap, dear = (rh.transfer(2, rh.address(9), 1, nonce=0, fee=1),
                   rh.transfer(3, rh.address(9), 1, nonce=0, fee=3))
    assert chain.add_transactions([cheap, dear])[1] == [cheap, dear]
    for _ in range(2):
        chain.import_block(b.build_and_apply([], coinbase=rh.address(21)), NOW)
    assert chain.head.header.hash == b.tip.hash
    assert set(chain.mempool.by_id) == {returned.id, dear.id}
    assert chain.journal.live() == {0: 1, 1: 1}
    assert chain.journal.entry_of(cheap.id) is None
    assert [(r.tx, r.reason) for r in chain.drain_removals()] == [
        (cheap, RemovalReason.EVICTED)]


def _sigkill_after(work: Callable[[], object]) -> None:
    """Run `work` in a forked process that is then killed with SIGKILL (no close, no
    flush of anything: what kill -9 leaves is what the synced writes put on disk)."""

    def child() -> None:
        work()
        os.kill(os.getpid(), signal.SIGKILL)

    proc = multiprocessing.get_context("fork").Process(target=child)
    proc.start()
    proc.join()
    assert proc.exitcode == -signal.SIGKILL


def test_a_transaction_whose_batch_mates_were_included_survives_kill_9(
        tmp_path: Path) -> None:
    g = rh.poa_genesis(n_miners=1)
    ref = rh.Chain(g)
    pending = [rh.transfer(1, rh.address(9), 1, nonce=0), rh.transfer(2, rh.address(9), 1,
                                                                       nonce=0),
               rh.transfer(3, rh.address(9), 1, nonce=0)]
    block = ref.build_and_apply(pending[:2])

    def work() -> None:
        chain = open_chain(tmp_path, g)
        assert chain.add_transactions(pending)[1] == pending  # acknowledged: one entry
        assert chain.import_block(block, NOW).status == "head"  # two of three included

    _sigkill_after(work)
    again = open_chain(tmp_path, g)
    assert again.head.header.hash == block.hash
    assert set(again.mempool.by_id) == {pending[2].id}
    assert journal(again) == {0: pending} and again.journal.live() == {0: 1}
    # and the next batch goes on after it
    later = rh.transfer(3, rh.address(9), 1, nonce=1)
    again.add_transactions([later])
    assert journal(again) == {0: pending, 1: [later]}


def test_at_start_each_pooled_transaction_counts_in_one_entry_and_empty_ones_go(
        tmp_path: Path) -> None:
    """Entries as a crash may leave them: a transaction accepted, displaced and accepted
    again is in two; an entry holds only transactions a block has since confirmed."""
    g = rh.poa_genesis(n_miners=1)
    ref = rh.Chain(g)
    chain = open_chain(tmp_path, g)
    confirmed = rh.transfer(1, rh.address(9), 1, nonce=0)
    assert chain.import_block(ref.build_and_apply([confirmed]), NOW).status == "head"
    again, mate, alone = (rh.transfer(2, rh.address(9), 1, nonce=0),
                          rh.transfer(3, rh.address(9), 1, nonce=0),
                          rh.transfer(1, rh.address(9), 1, nonce=1))
    batch = Batch()
    batch.put(schema.journal_key(4), encode_entry([again, mate, confirmed]))
    batch.put(schema.journal_key(6), encode_entry([confirmed]))  # nothing restorable
    batch.put(schema.journal_key(9), encode_entry([alone, again]))
    chain.store.commit(batch)
    chain.store.close()
    reopened = open_chain(tmp_path, g)
    assert set(reopened.mempool.by_id) == {again.id, mate.id, alone.id}
    assert reopened.journal.entry_of(again.id) == 9  # the newest holding it
    assert reopened.journal.live() == {4: 1, 9: 2}  # what the pool holds, counted once
    assert sum(reopened.journal.live().values()) == len(reopened.mempool)
    assert set(journal(reopened)) == {4, 9}  # 6 deleted
    # release follows the counts: 4 goes with mate alone, 9 with alone and again
    assert reopened.import_block(ref.build_and_apply([mate]), NOW).status == "head"
    assert set(journal(reopened)) == {9}
    assert reopened.import_block(ref.build_and_apply([alone, again]), NOW).status == "head"
    assert journal(reopened) == {}


def test_unreadable_journal_entries_are_removed(tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    g = rh.poa_genesis(n_miners=1)
    chain = open_chain(tmp_path, g)
    good = rh.transfer(1, rh.address(9), 1, nonce=0)
    chain.add_transactions([good])
    batch = Batch()
    batch.put(schema.journal_key(5), b"\xc1 not an entry")
    batch.put(schema.JOURNAL + b"\x02" * 32, encode_entry([good]))  # no sequence number
    chain.store.commit(batch)
    chain.store.close()
    with caplog.at_level(logging.INFO, "ccoin.state.chain"):
        again = open_chain(tmp_path, g)
    assert "1 restored, 0 dropped, 2 unreadable entries removed" in caplog.text
    assert list(again.mempool.by_id) == [good.id]
    assert journal(again) == {0: [good]} and again.journal.live() == {0: 1}
    batch = Batch()
    again.journal.add(batch, [rh.transfer(2, rh.address(9), 1, nonce=0)])
    assert list(batch.puts) == [schema.journal_key(6)]  # after the highest found, 5


def test_an_old_form_journal_is_kept_and_moved_to_the_new(tmp_path: Path) -> None:
    """A data dir of a ccoin before the batched journal (`p` + txid, one transaction
    each; one misfiled, one unreadable, one the chain has confirmed since): the node keeps
    its pool, and the journal is moved to one new entry in one write."""
    g = rh.poa_genesis(n_miners=1)
    ref = rh.Chain(g)
    chain = open_chain(tmp_path, g)
    confirmed = rh.transfer(1, rh.address(9), 1, nonce=0)
    assert chain.import_block(ref.build_and_apply([confirmed]), NOW).status == "head"
    pending = [rh.transfer(1, rh.address(9), 1, nonce=1), rh.transfer(2, rh.address(9), 1,
                                                                       nonce=0)]
    batch = Batch()
    for tx in [pending[0], confirmed]:
        batch.put(schema.legacy_journal_key(tx.id), tx.raw)
    batch.put(schema.legacy_journal_key(b"\x01" * 32), pending[1].raw)  # misfiled
    batch.put(schema.legacy_journal_key(b"\x02" * 32), b"\xc1")
    batch.put(schema.metadata_key("version"), b"3")  # as that ccoin wrote it
    chain.store.commit(batch)
    chain.store.close()
    inspected = Store(tmp_path, inspect=True)  # the operator tools change nothing
    assert inspected.metadata("version") == b"3"
    inspected.close()
    store = Store(tmp_path)
    # marked current at once: an older ccoin would not see the moved journal
    assert store.metadata("version") == schema.SCHEMA_VERSION == b"4"
    store.db = counting = CountingWrites(store.db)
    again = Chain(store, g)
    assert set(again.mempool.by_id) == {tx.id for tx in pending}
    assert counting.commits == 1  # the move and the deletes: one write
    assert list(again.store.scan(schema.LEGACY_JOURNAL)) == []
    assert sorted(t.id for t in journal(again)[0]) == sorted(tx.id for tx in pending)
    assert again.journal.live() == {0: 2}
    again.store.close()
    third = open_chain(tmp_path, g)  # nothing left to move
    assert set(third.mempool.by_id) == {tx.id for tx in pending}
    assert set(journal(third)) == {0}


class CountingWrites:
    """A LevelDB handle whose write batches are counted."""

    def __init__(self, db: Any) -> None:
        self._db, self.commits = db, 0

    def write_batch(self, **kwargs: Any) -> Any:
        self.commits += 1
        return self._db.write_batch(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


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
