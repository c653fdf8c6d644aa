"""The main-chain indexes' connect/disconnect pair on a real LevelDB: on random chains of
blocks with transfers, connecting then disconnecting leaves every key and value exactly as
before, disconnecting then connecting again restores the connected state, and a chain that
went through reorgs holds the very indexes of one that imported its main chain directly."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.genesis import Genesis, genesis_block
from common.ledger import apply_block
from common.types import Account, Block
from services.state import schema
from services.state.chain import Chain
from services.state.indexes import connect_block, disconnect_block
from services.state.results import TxLocation
from services.state.store import Batch, BlockMeta, Store, initial_genesis_commit
from tests.framework import rules as rh

NOW = 2**62
SENDERS = (1, 2, 3)  # funded in the genesis
PARTIES = (rh.address(1), rh.address(2), rh.address(3), rh.address(9), rh.address(10))
INDEX_PREFIXES = (schema.HEIGHT, schema.TX_INDEX, schema.HISTORY, schema.HISTORY_COUNT,
                  schema.UNDO, schema.ACCOUNT)

# a block's transfers: (sender, recipient, amount, fee); a recipient may be the sender itself
Plan = list[tuple[int, bytes, int, int]]
transfer_plans = st.tuples(st.sampled_from(SENDERS), st.sampled_from(PARTIES),
                           st.integers(1, 50), st.integers(0, 3))
block_plans = st.lists(st.lists(transfer_plans, max_size=4), min_size=1, max_size=5)
SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def genesis() -> Genesis:
    return rh.make_genesis(difficulty=0)  # PoW, weight 1 per block: the longer chain wins


def build(ref: rh.Chain, plans: list[Plan],
          coinbase: bytes) -> list[Block]:
    """Blocks on `ref`'s tip, one per plan, each sender's nonces following on."""
    blocks = []
    for plan in plans:
        used = dict.fromkeys(SENDERS, 0)
        txs = []
        for sender, to, amount, fee in plan:
            nonce = ref.view(rh.address(sender)).nonce + used[sender]
            used[sender] += 1
            txs.append(rh.transfer(sender, to, amount, nonce=nonce, fee=fee))
        blocks.append(ref.build_and_apply(txs, coinbase=coinbase))
    return blocks


@contextmanager
def genesis_store(g: Genesis) -> Iterator[Store]:
    with tempfile.TemporaryDirectory() as path:
        store = Store(path)
        try:
            initial_genesis_commit(store, g, genesis_block(g))
            yield store
        finally:
            store.close()


def everything(store: Store) -> dict[bytes, bytes]:
    return dict(store.db.iterator())


def indexes_of(store: Store) -> dict[bytes, bytes]:
    return {k: v for k, v in store.db.iterator() if k[:1] in INDEX_PREFIXES}


def connect(store: Store, g: Genesis, blocks: list[Block], parent_value: int,
            one_batch: bool) -> None:
    """Connect `blocks` in order, each applied on the state the batch leaves (a reorg puts
    several in one batch, an import one per batch)."""
    batch = Batch()

    def view(address: bytes) -> Account:
        acc = batch.accounts.get(address)
        return acc if acc is not None else store.account(address)

    value = parent_value
    for block in blocks:
        changes = apply_block(view, value, block, g.network_id, g.reward)
        connect_block(batch, store.get, block, changes.before, changes.after)
        value = changes.state_value
        if not one_batch:
            store.commit(batch)
            batch = Batch()
    store.commit(batch)


def disconnect(store: Store, blocks: list[Block], one_batch: bool) -> None:
    """Disconnect `blocks`, newest first."""
    batch = Batch()
    for block in reversed(blocks):
        disconnect_block(batch, store.get, block)
        if not one_batch:
            store.commit(batch)
            batch = Batch()
    store.commit(batch)


@SETTINGS
@given(plans=block_plans, one_batch=st.booleans(), data=st.data())
def test_connect_and_disconnect_cancel(plans: list[Plan], one_batch: bool,
                                       data: st.DataObject) -> None:
    g = genesis()
    ref = rh.Chain(g)
    blocks = build(ref, plans, rh.address(20))
    with genesis_store(g) as store:
        # block bodies are not indexes: they stay stored when a block leaves the main chain
        bodies = Batch()
        for height, block in enumerate(blocks, 1):
            store.write_block(bodies, block, BlockMeta(height, ref.values[height]))
        store.commit(bodies)
        before = everything(store)

        connect(store, g, blocks, ref.values[0], one_batch)
        connected = everything(store)
        assert connected != before
        assert store.hash_at(len(blocks)) == blocks[-1].hash
        assert {a: store.account(a) for a in PARTIES} == {a: ref.view(a) for a in PARTIES}
        for block in blocks:
            assert schema.undo_key(block.hash) in connected
            for index, tx in enumerate(block.txs):
                assert store.tx_location(tx.id) == TxLocation(block.hash, index)
        for address in PARTIES:
            entries = [k for k in connected if k.startswith(schema.history_prefix(address))]
            assert store.history(address, 0, 1)[0] == len(entries)

        # disconnect the top k, connect them again: the connected state comes back
        k = data.draw(st.integers(1, len(blocks)), label="k")
        disconnect(store, blocks[-k:], one_batch)
        assert store.hash_at(len(blocks) - k + 1) is None
        connect(store, g, blocks[-k:], ref.values[len(blocks) - k], one_batch)
        assert everything(store) == connected

        # disconnect them all: every key and value is as before the first connect
        disconnect(store, blocks, data.draw(st.booleans(), label="one_batch_out"))
        assert everything(store) == before


@SETTINGS
@given(prefix=st.lists(st.lists(transfer_plans, max_size=3), max_size=2),
       first=block_plans, second=block_plans, extra=st.integers(1, 2))
def test_reorgs_leave_the_indexes_of_the_chain_imported_directly(
        prefix: list[Plan], first: list[Plan], second: list[Plan], extra: int) -> None:
    """Branch `a` is imported, a longer branch `b` takes over, then `a` grows longer and
    takes back: the indexes are those of a chain that only ever saw `a`."""
    g = genesis()
    a, b = rh.Chain(g), rh.Chain(g)
    common = build(a, prefix, rh.address(20))
    for block in common:
        b.apply(block)
    a_blocks = common + build(a, first, rh.address(20))
    # `b` outgrows `a` by at least one block, then `a` outgrows `b`
    b_blocks = build(b, second + [[]] * max(0, len(first) + 1 - len(second)), rh.address(21))
    assert len(common) + len(b_blocks) > len(a_blocks)
    a_more = build(a, [[]] * (len(common) + len(b_blocks) - len(a_blocks) + extra),
                   rh.address(20))
    with tempfile.TemporaryDirectory() as p1, tempfile.TemporaryDirectory() as p2:
        reorged = Chain(Store(p1), g)
        direct = Chain(Store(p2), g)
        try:
            for block in a_blocks + b_blocks:
                reorged.import_block(block, NOW)
            assert reorged.head.header.hash == b_blocks[-1].hash
            for block in a_more:
                reorged.import_block(block, NOW)
            for block in a_blocks + a_more:
                direct.import_block(block, NOW)
            assert reorged.head.header.hash == direct.head.header.hash == a.tip.hash
            assert indexes_of(reorged.store) == indexes_of(direct.store)
        finally:
            reorged.store.close()
            direct.store.close()
