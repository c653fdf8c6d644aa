"""A crash at any write of a block import or a reorg leaves the previous or the next state,
never a mix (issue 10, item 7; DESIGN §4), on a real LevelDB.

The store's own database handle is wrapped so that its real write batches fail (raise) at
the n-th write: each put, each delete, and the commit of each batch. For every n, on a fresh
copy of the same database, the operation runs until that failure, the process is taken to
have died there, and the database is opened again as the node opens it: every record
(head, blocks, indexes, accounts, the mempool journal) must equal those of the untouched
copy or those of a copy where the operation ran to the end. A reorg's disconnected
transactions are journalled in the very batch that switches the head, so a crash right
after it loses none of them. The move of an old-form journal to the new form, at open, is
one write too: a crash in it leaves the old form whole, and the next open moves it."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from common.encoding import unpack
from common.genesis import Genesis
from common.types import Block, Transaction
from services.state import schema
from services.state.chain import Chain
from services.state.store import Store
from tests.framework import rules as rh
from tests.framework import stored_chain as sc

NOW = 2**62


class Crash(Exception):
    """The process died here."""


class Plan:
    """Counts write points; raises `Crash` at number `fail_at` (never, if None)."""

    def __init__(self, fail_at: int | None) -> None:
        self.fail_at = fail_at
        self.points = 0
        self.commits: list[dict[bytes, bytes | None]] = []  # what each commit wrote

    def tick(self) -> None:
        if self.points == self.fail_at:
            raise Crash(f"write point {self.points}")
        self.points += 1


class CrashingBatch:
    """A real plyvel write batch (transactional), failing where the plan says."""

    def __init__(self, real: Any, plan: Plan) -> None:
        self.real, self.plan = real, plan
        self.writes: dict[bytes, bytes | None] = {}

    def __enter__(self) -> CrashingBatch:
        self.real.__enter__()
        return self

    def put(self, key: bytes, value: bytes) -> None:
        self.plan.tick()
        self.real.put(key, value)
        self.writes[key] = value

    def delete(self, key: bytes) -> None:
        self.plan.tick()
        self.real.delete(key)
        self.writes[key] = None

    def __exit__(self, *exc: Any) -> Any:
        if exc[0] is None:
            try:
                self.plan.tick()  # the commit itself
            except Crash as crash:
                self.real.__exit__(Crash, crash, None)  # a transaction: nothing written
                raise
            self.plan.commits.append(self.writes)
        return self.real.__exit__(*exc)


class CrashingDB:
    """The store's LevelDB handle, with `write_batch` wrapped; everything else is real."""

    def __init__(self, db: Any, plan: Plan) -> None:
        self._db, self._plan = db, plan

    def write_batch(self, **kwargs: Any) -> CrashingBatch:
        return CrashingBatch(self._db.write_batch(**kwargs), self._plan)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


def journalled(records: dict[bytes, bytes | None]) -> dict[bytes, set[bytes]]:
    """The journal's entries among `records` (written or, None, deleted): key -> txids."""
    return {k: set() if v is None else {Transaction.decode(raw).id for raw in unpack(v)}
            for k, v in records.items() if k.startswith(schema.JOURNAL)}


def reopened(chain_dir: Path, g: Genesis) -> dict[bytes, bytes]:
    """Open as the node does after a crash (the journal replayed), then every record."""
    store = Store(chain_dir)
    try:
        Chain(store, g)
    finally:
        store.close()
    return sc.records(chain_dir)


def run(base: Path, work: Path, g: Genesis, op: Callable[[Chain], object],
        fail_at: int | None) -> Plan:
    """On a fresh copy of `base` at `work`, `op` with the plan's crash; the copy is left as
    the crash left it."""
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(base, work)
    store = Store(work)
    plan = Plan(fail_at)
    try:
        chain = Chain(store, g)
        store.db = CrashingDB(store.db, plan)
        try:
            op(chain)
        except Crash:
            assert fail_at is not None
    finally:
        store.close()
    return plan


def every_crash_point(base: Path, tmp: Path, g: Genesis,
                      op: Callable[[Chain], object]) -> tuple[Plan, list[str]]:
    """The untouched plan, and for each write point whether a crash there reopens as the
    'previous' or the 'next' state (anything else fails the test)."""
    before = reopened(base, g)
    whole = run(base, tmp / "whole", g, op, None)
    after = reopened(tmp / "whole", g)
    assert after != before
    outcomes = []
    for n in range(whole.points):
        run(base, tmp / "crashed", g, op, n)
        state = reopened(tmp / "crashed", g)
        assert state in (before, after), f"a crash at write point {n} left a mix"
        outcomes.append("previous" if state == before else "next")
    return whole, outcomes


@pytest.fixture
def pow_chain(tmp_path: Path) -> tuple[Path, Genesis, rh.Chain, list[Transaction]]:
    """PoW at difficulty 0 (one weight per block: the longer chain wins): three blocks of
    transfers, and two more transfers pending in the pool (journalled)."""
    g = rh.make_genesis(difficulty=0)
    ref = rh.Chain(g)
    base = tmp_path / "base"
    chain = Chain(Store(base), g)
    for txs in ([rh.transfer(1, rh.address(9), 5, nonce=0)],
                [rh.transfer(1, rh.address(9), 6, nonce=1), rh.transfer(2, rh.address(9), 7,
                                                                        nonce=0)],
                [rh.transfer(3, rh.address(9), 8, nonce=0)]):
        assert chain.import_block(ref.build_and_apply(txs, coinbase=rh.address(0)),
                                  NOW).status == "head"
    pending = [rh.transfer(2, rh.address(9), 9, nonce=1), rh.transfer(1, rh.address(8), 1,
                                                                      nonce=2)]
    assert chain.add_transactions(pending)[1] == pending
    chain.store.close()
    return base, g, ref, pending


def test_a_crash_at_any_write_of_a_block_import(
        pow_chain: tuple[Path, Genesis, rh.Chain, list[Transaction]], tmp_path: Path) -> None:
    base, g, ref, pending = pow_chain
    block = ref.build_and_apply(pending, coinbase=rh.address(0))  # confirms the pool's txs

    def op(chain: Chain) -> object:
        return chain.import_block(block, NOW)

    whole, outcomes = every_crash_point(base, tmp_path, g, op)
    assert len(whole.commits) == 1  # one block, one WriteBatch
    assert outcomes == ["previous"] * whole.points
    writes = whole.commits[0]
    assert writes[schema.metadata_key("head")] == block.hash
    # the pool's one entry (both were admitted together) goes with the block
    assert journalled(writes) == {schema.journal_key(0): set()}


def test_a_crash_at_any_write_of_a_block_that_includes_part_of_an_entry(
        pow_chain: tuple[Path, Genesis, rh.Chain, list[Transaction]], tmp_path: Path) -> None:
    """The block confirms one of the two transactions admitted together: the entry stays
    (the other is still pooled), whether the crash comes before the commit or after."""
    base, g, ref, pending = pow_chain
    block = ref.build_and_apply(pending[:1], coinbase=rh.address(0))

    def op(chain: Chain) -> object:
        return chain.import_block(block, NOW)

    whole, outcomes = every_crash_point(base, tmp_path, g, op)
    assert len(whole.commits) == 1 and outcomes == ["previous"] * whole.points
    assert journalled(whole.commits[0]) == {}  # nothing written to the journal
    store = Store(tmp_path / "whole")
    try:
        chain = Chain(store, g)
        assert set(chain.mempool.by_id) == {pending[1].id}
        assert chain.journal.live() == {0: 1}
    finally:
        store.close()


def reorg_setup(base: Path, g: Genesis, main: rh.Chain,
                spend_all: bool = False) -> tuple[Block, list[Transaction]]:
    """A branch from block 1, one longer than the main chain, all stored but its tip: its
    block 2 spends sender 1's nonce 1 otherwise than main's block 2 did (with `spend_all`,
    every nonce main's blocks 2 and 3 spent). Returns the tip (whose import is the reorg)
    and the transactions the reorg takes off the main chain."""
    branch = rh.Chain(g)
    branch.apply(main.blocks[1])
    others = [rh.transfer(s, rh.address(7), 1, nonce=0) for s in (2, 3)] if spend_all else []
    blocks = [branch.build_and_apply([rh.transfer(1, rh.address(7), 1, nonce=1), *others],
                                     coinbase=rh.address(5)),
              branch.build_and_apply([], coinbase=rh.address(5)),
              branch.build_and_apply([], coinbase=rh.address(5))]
    chain = Chain(Store(base), g)
    for b in blocks[:-1]:
        assert chain.import_block(b, NOW).status == "side"
    chain.store.close()
    return blocks[-1], [tx for b in main.blocks[2:] for tx in b.txs]


def test_a_reorg_journals_the_transactions_it_disconnects_in_its_one_batch(
        pow_chain: tuple[Path, Genesis, rh.Chain, list[Transaction]], tmp_path: Path) -> None:
    """A crash right after the head switch (at the first write after that commit): the
    database as it is then, before any journal replay, holds the new head and every
    transaction the old branch had that the new one lacks."""
    base, g, main, pending = pow_chain
    tip, returned = reorg_setup(base, g, main)
    clean = run(base, tmp_path / "clean", g, lambda c: c.import_block(tip, NOW), None)
    switch = clean.commits[0]
    assert switch[schema.metadata_key("head")] == tip.hash
    # one new entry (after the pool's, 0) with every transaction the reorg returned
    assert journalled(switch) == {schema.journal_key(1): {tx.id for tx in returned}}
    run(base, tmp_path / "crashed", g, lambda c: c.import_block(tip, NOW),
        len(switch) + 1)  # its writes and its commit went through; the next write dies
    records = sc.records(tmp_path / "crashed")
    assert records[schema.metadata_key("head")] == tip.hash
    journal = set().union(*journalled(dict(records)).values())
    assert {tx.id for tx in returned + pending} <= journal
    store = Store(tmp_path / "crashed")
    try:
        chain = Chain(store, g)
        # sender 1's nonce 1 went another way on the new branch: only that one is dropped
        conflicting = returned[0]
        assert conflicting.sender == rh.address(1) and conflicting.nonce == 1
        assert {tx.id for tx in returned[1:] + pending[:1]} <= set(chain.mempool.by_id)
        assert conflicting.id not in chain.mempool.by_id
    finally:
        store.close()


@pytest.mark.parametrize("spend_all", [False, True], ids=["one refused", "all refused"])
def test_a_crash_at_any_write_of_a_reorg(
        pow_chain: tuple[Path, Genesis, rh.Chain, list[Transaction]], tmp_path: Path,
        spend_all: bool) -> None:
    base, g, main, _ = pow_chain
    tip, returned = reorg_setup(base, g, main, spend_all)

    def op(chain: Chain) -> object:
        return chain.import_block(tip, NOW)

    whole, outcomes = every_crash_point(base, tmp_path, g, op)
    first = len(whole.commits[0]) + 1  # its puts and deletes, then its commit
    if not spend_all:
        # the head switch alone: the returned ones' entry keeps the two the pool took back
        assert len(whole.commits) == 1 and outcomes == ["previous"] * whole.points
        return
    # the head switch, then the entry of the returned ones, all refused, deleted (unsynced)
    assert len(whole.commits) == 2
    assert journalled(whole.commits[1]) == {schema.journal_key(1): set()}
    assert outcomes == ["previous"] * first + ["next"] * (whole.points - first)
    assert not {tx.id for tx in returned} & set().union(
        *journalled(dict(sc.records(tmp_path / "whole"))).values())


@pytest.fixture
def old_form(pow_chain: tuple[Path, Genesis, rh.Chain, list[Transaction]],
             ) -> tuple[Path, Genesis, list[Transaction]]:
    """The pow chain's journal as a ccoin before the batched journal wrote it: one
    `p` + txid record per pending transaction, and one for a confirmed one."""
    base, g, main, pending = pow_chain
    records = sc.records(base)
    entry = [k for k in records if k.startswith(schema.JOURNAL)]
    confirmed = main.blocks[1].txs[0]
    sc.edit(base, {schema.legacy_journal_key(tx.id): tx.raw for tx in [*pending, confirmed]},
            tuple(entry))
    return base, g, pending


def test_a_crash_at_any_write_of_the_old_forms_move(
        old_form: tuple[Path, Genesis, list[Transaction]], tmp_path: Path) -> None:
    """The open moves the old form in one write: a crash anywhere in it leaves the old form
    whole (nothing of the new), and the next open keeps the pool and moves it."""
    base, g, pending = old_form
    before = sc.records(base)

    def move(fail_at: int | None, work: Path) -> Plan:
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(base, work)
        store = Store(work)
        plan = Plan(fail_at)
        store.db = CrashingDB(store.db, plan)
        try:
            Chain(store, g)  # the crash is a failed write at open: logged, not raised
        except Crash:
            pass
        finally:
            store.close()
        return plan

    whole = move(None, tmp_path / "whole")
    assert len(whole.commits) == 1
    write = whole.commits[0]
    assert journalled(write) == {schema.journal_key(0): {tx.id for tx in pending}}
    old_keys = {k for k in before if k.startswith(schema.LEGACY_JOURNAL)}
    assert len(old_keys) == 3 and {k: write[k] for k in old_keys} == dict.fromkeys(old_keys)
    after = sc.records(tmp_path / "whole")
    for n in range(whole.points):
        move(n, tmp_path / "crashed")
        state = sc.records(tmp_path / "crashed")
        assert state == before, f"a crash at write point {n} left a mix"
        assert reopened(tmp_path / "crashed", g) == after  # the next open moves it

