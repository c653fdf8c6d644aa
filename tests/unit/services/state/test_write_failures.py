"""A write that fails (a full disk, an I/O error) never leaves memory ahead of the disk
(issue 10, item 1; DESIGN §11), on a real LevelDB whose commits are made to fail
(`stored_chain.FailingWrites`): for each write path (transactions into the pool, a block
import, a reorg, the journal tidying that follows them), the head and the pool stay what
the disk holds, the error is `storage_unavailable`, the store writes nothing more on that
handle, and after the database is reopened the node holds exactly what it held before, and
takes writes again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from common import errors
from common.genesis import Genesis
from common.types import Block, Transaction
from services.state import schema
from services.state.chain import Chain
from services.state.journal import encode_entry
from services.state.storage import reopen
from services.state.store import Store
from tests.framework import rules as rh
from tests.framework import stored_chain as sc
from tests.framework.stored_chain import EIO, ENOSPC, FailingWrites

NOW = 2**62


class Node:
    """A chain on a real store whose writes can be made to fail; `ref` builds its blocks."""

    def __init__(self, directory: Path, g: Genesis) -> None:
        self.g = g
        self.ref = rh.Chain(g)
        self.chain = Chain(Store(directory), g)
        self.db = FailingWrites(self.chain.store.db)
        self.chain.store.db = self.db

    def reopened(self) -> Chain:
        self.chain = reopen(self.chain)
        return self.chain

    def snapshot(self) -> tuple[bytes, set[bytes], dict[bytes, bytes], dict[int, int],
                                dict[bytes, int | None]]:
        """The head, the pool and the journal as they are, and the journal's bookkeeping:
        each entry's count of pooled transactions, each pooled transaction's entry."""
        chain = self.chain
        journal = dict(chain.store.journal())
        pool = set(chain.mempool.by_id)
        return (chain.head.header.hash, pool, journal, chain.journal.live(),
                {i: chain.journal.entry_of(i) for i in pool})


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    """PoW at difficulty 0 (the longer chain wins): three blocks of transfers, two
    transfers pending."""
    n = Node(tmp_path / "chain", rh.make_genesis(difficulty=0))
    for txs in ([rh.transfer(1, rh.address(9), 5, nonce=0)],
                [rh.transfer(1, rh.address(9), 6, nonce=1), rh.transfer(2, rh.address(9), 7,
                                                                        nonce=0)],
                [rh.transfer(3, rh.address(9), 8, nonce=0)]):
        assert n.chain.import_block(n.ref.build_and_apply(txs), NOW).status == "head"
    pending = [rh.transfer(2, rh.address(9), 9, nonce=1, fee=1),
               rh.transfer(1, rh.address(8), 1, nonce=2, fee=1)]
    assert n.chain.add_transactions(pending)[1] == pending
    yield n
    n.chain.store.close()


def refused_without_writing(n: Node, write: object) -> None:
    """Once a write failed, the store refuses every other without reaching LevelDB."""
    attempts = n.db.attempts
    with pytest.raises(errors.StoreWriteFailed):
        write()  # type: ignore[operator]
    assert n.db.attempts == attempts


def test_transactions_whose_journal_write_fails_leave_the_pool(node: Node) -> None:
    before = node.snapshot()
    replacement = rh.transfer(2, rh.address(9), 9, nonce=1, fee=5)  # displaces a pending one
    displaced = next(t.id for t in node.chain.mempool.by_id.values()
                     if (t.sender, t.nonce) == (replacement.sender, 1))
    new = [replacement, rh.transfer(3, rh.address(7), 2, nonce=1)]
    node.db.fail(ENOSPC)
    with pytest.raises(errors.StoreWriteFailed) as caught:
        node.chain.add_transactions(new)
    assert caught.value.code == "storage_unavailable" and caught.value.http_status == 503
    assert "No space left on device" in caught.value.message
    # the displaced transaction is back, the new ones gone, no removal is announced; the
    # bookkeeping counts the displaced one in its entry again, the new entry not at all
    assert node.snapshot() == before
    assert node.chain.journal.live() == {0: 2}
    assert node.chain.drain_removals() == []
    assert node.chain.store.write_failure and not node.chain.store.writable
    refused_without_writing(node, lambda: node.chain.add_transactions(new))

    chain = node.reopened()  # what the node does once the disk takes writes again
    assert node.snapshot() == before
    assert chain.add_transactions(new)[1] == new
    assert set(chain.mempool.by_id) == before[1] - {displaced} | {t.id for t in new}


def test_a_block_whose_write_fails_changes_neither_head_nor_pool(node: Node) -> None:
    before = node.snapshot()
    pending = [node.chain.mempool.by_id[i] for i in before[1]]
    block = node.ref.build_and_apply(pending)  # confirms the whole pool
    node.db.fail(EIO)
    with pytest.raises(errors.StoreWriteFailed, match="Input/output error"):
        node.chain.import_block(block, NOW)
    assert node.snapshot() == before
    assert node.chain.store.meta(block.hash) is None
    refused_without_writing(node, lambda: node.chain.import_block(block, NOW))

    chain = node.reopened()
    assert node.snapshot() == before
    assert chain.import_block(block, NOW).status == "head"
    assert len(chain.mempool) == 0 and chain.head.header.hash == block.hash


def branch_overtaking(node: Node, spend_all: bool = False,
                      ) -> tuple[list[Block], list[Transaction]]:
    """Blocks forking after block 1, one longer than the main chain (its block 2 spends
    sender 1's nonce 1 otherwise than the main chain did; with `spend_all`, every nonce
    the main chain's blocks 2 and 3 spent); all but the last imported as side blocks.
    Returns them and the transactions the reorg takes off the main chain."""
    main = node.ref
    branch = rh.Chain(node.g)
    branch.apply(main.blocks[1])
    others = [rh.transfer(s, rh.address(7), 1, nonce=0) for s in (2, 3)] if spend_all else []
    blocks = [branch.build_and_apply([rh.transfer(1, rh.address(7), 1, nonce=1), *others],
                                     coinbase=rh.address(5)),
              branch.build_and_apply([], coinbase=rh.address(5)),
              branch.build_and_apply([], coinbase=rh.address(5))]
    for b in blocks[:-1]:
        assert node.chain.import_block(b, NOW).status == "side"
    return blocks, [tx for b in main.blocks[2:] for tx in b.txs]


def test_a_reorg_whose_write_fails_changes_neither_head_nor_pool(node: Node) -> None:
    blocks, returned = branch_overtaking(node)
    before = node.snapshot()
    node.db.fail(ENOSPC)
    with pytest.raises(errors.StoreWriteFailed):
        node.chain.import_block(blocks[-1], NOW)
    assert node.snapshot() == before
    assert not {tx.id for tx in returned} & node.snapshot()[1]  # not taken back
    assert node.chain.is_main(node.ref.tip)

    chain = node.reopened()
    assert node.snapshot() == before
    assert chain.import_block(blocks[-1], NOW).status == "head"
    # back in the pool: what the new branch did not spend otherwise (sender 1's nonce 1)
    kept = {tx.id for tx in returned if (tx.sender, tx.nonce) != (rh.address(1), 1)}
    assert len(kept) == len(returned) - 1 and kept <= set(chain.mempool.by_id)


def test_journal_tidying_that_fails_does_not_fail_the_reorg_it_follows(node: Node) -> None:
    """After the head switch (written, with the reorged-out transactions' entry), the pool
    refuses every one of them (the new branch spent their nonces): deleting their entry
    fails. The reorg stands and is reported; the store then refuses writes; the reopened
    database replays the journal to the same pool, and deletes the entry."""
    blocks, returned = branch_overtaking(node, spend_all=True)
    attempts = node.db.attempts
    node.db.fail(ENOSPC, after=1)  # the head switch is written, the commit after it fails
    result = node.chain.import_block(blocks[-1], NOW)
    assert result.status == "head" and node.chain.head.header.hash == blocks[-1].hash
    assert node.db.attempts == attempts + 2
    assert node.chain.store.write_failure
    pool = set(node.chain.mempool.by_id)
    assert not pool & {tx.id for tx in returned}
    entries = [k for k, _ in node.chain.store.journal()]
    # still journalled: the tidying was not written
    assert entries == [schema.journal_key(0), schema.journal_key(1)]
    assert node.chain.journal.live() == {0: 2}

    chain = node.reopened()
    assert chain.head.header.hash == blocks[-1].hash
    assert set(chain.mempool.by_id) == pool
    assert [k for k, _ in chain.store.journal()] == [schema.journal_key(0)]
    assert chain.journal.live() == {0: 2}


def test_a_write_that_fails_at_open_leaves_the_node_serving_reads(tmp_path: Path) -> None:
    """The journal tidying at open (a journalled transaction the pool refuses) fails: the
    chain opens all the same, reads work, writes are refused until it is reopened."""
    stored = sc.build(tmp_path / "chain", n_blocks=3, tail=1)
    stale = rh.transfer(1, rh.address(9), 1, nonce=0)  # nonce 0 of sender 1 is confirmed
    sc.edit(stored.chain_dir, puts={schema.journal_key(5): encode_entry([stale])})
    store = Store(stored.chain_dir)
    store.db = FailingWrites(store.db).fail(ENOSPC)
    chain = Chain(store, stored.genesis)
    try:
        assert chain.head.header.hash == stored.head.hash
        assert set(chain.mempool.by_id) == {tx.id for tx in stored.pending}
        assert store.write_failure
        with pytest.raises(errors.StoreWriteFailed):
            chain.add_transactions([rh.transfer(3, rh.address(9), 1, nonce=9)])
        chain = reopen(chain)
        assert [k for k, _ in chain.store.journal()] == [schema.journal_key(sc.PENDING_ENTRY)]
    finally:
        chain.store.close()
