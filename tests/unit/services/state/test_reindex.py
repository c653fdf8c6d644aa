"""`services/state/reindex.py` (`ccoin node reindex`) on a real LevelDB: a healthy
database is rebuilt record for record; each kind of damage by hand (CURRENT deleted, table
bytes flipped, MANIFEST damaged, the log cut short or garbled, a block gone) is repaired as
far as the blocks allow, after which `check` is clean and the node opens on the same head or
on a prefix of the main chain, never on another chain; a heavier branch that does not apply
is marked invalid and the main chain kept; a database in use or of another chain is left
alone; an interrupted reindex is finished by the next."""

from __future__ import annotations

from pathlib import Path

import pytest

from common import errors
from common.encoding import pack
from services.state import schema
from services.state.chain import Chain
from services.state.check import check_chain
from services.state.journal import encode_entry
from services.state.reindex import reindex_chain
from services.state.store import OLD_SUFFIX, REINDEX_SUFFIX, BlockMeta, Store
from tests.framework import rules as rh
from tests.framework import stored_chain as sc


def reopened_head(s: sc.StoredChain) -> int:
    """Open the chain as the node does; its head must be a block of the original main
    chain (the same head, or a prefix): never another chain. Returns its height."""
    store = Store(s.chain_dir)
    try:
        head = Chain(store, s.genesis).head.header
    finally:
        store.close()
    assert s.blocks[head.height].hash == head.hash
    return head.height


def test_a_healthy_database_is_rebuilt_record_for_record(stored: sc.StoredChain) -> None:
    before = sc.records(stored.chain_dir)
    phases: set[str] = set()
    report = reindex_chain(stored.chain_dir, stored.genesis,
                           lambda phase, done, total: phases.add(phase))
    assert sc.records(stored.chain_dir) == before
    assert (report.height, report.head, report.old_height) == (
        stored.head.height, stored.head.hash, stored.head.height)
    assert (report.side_blocks, report.dropped, report.journal) == (1, 0, len(stored.pending))
    assert report.problems.count == 0 and not report.salvaged
    assert phases == {"reading blocks", "replaying blocks"}
    assert not stored.chain_dir.with_name("chain" + OLD_SUFFIX).exists()
    assert not stored.chain_dir.with_name("chain" + REINDEX_SUFFIX).exists()


def test_a_pow_chain_across_retargets_is_checked_and_rebuilt(tmp_path: Path) -> None:
    """PoW: the difficulty rule looks back to the retarget anchor (every 10 blocks), and
    weights are 2^difficulty."""
    g = rh.make_genesis(difficulty=2, retarget_blocks=10)
    stored = sc.build(tmp_path / "chain", g, n_blocks=25)
    assert check_chain(stored.chain_dir, g).ok
    before = sc.records(stored.chain_dir)
    report = reindex_chain(stored.chain_dir, g)
    assert report.head == stored.head.hash and report.side_blocks == 1
    assert sc.records(stored.chain_dir) == before


# damage -> the lowest head the repaired chain may have (None: any prefix)
DAMAGES = {
    "delete_current": "same",
    "damage_manifest": "same",
    "truncate_log": "tail",  # the newest commits were in the log: the chain may lose them
    "flip_log_bytes": "tail",
    "flip_table_bytes": "prefix",  # whatever the damaged table block held is gone
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_damaged_files_are_repaired_as_far_as_the_blocks_allow(stored: sc.StoredChain,
                                                               damage: str) -> None:
    getattr(sc, damage)(stored.chain_dir)
    found = check_chain(stored.chain_dir, stored.genesis)
    assert found.ok == (damage == "truncate_log"), found.problems  # a torn end is a crash
    report = reindex_chain(stored.chain_dir, stored.genesis)
    after = check_chain(stored.chain_dir, stored.genesis)
    assert after.ok, after.problems
    height = reopened_head(stored)
    assert height == report.height
    top = stored.head.height
    if DAMAGES[damage] == "same":
        assert height == top and report.salvaged  # LevelDB's repair found every table
    elif DAMAGES[damage] == "tail":
        assert top - 2 <= height <= top  # `sc.build` left its last 2 blocks in the log


def test_a_missing_block_keeps_the_prefix_below_it(stored: sc.StoredChain) -> None:
    gone = stored.blocks[5]
    sc.edit(stored.chain_dir, deletes=(schema.block_key(gone.hash),))
    report = reindex_chain(stored.chain_dir, stored.genesis)
    assert (report.height, report.old_height) == (4, stored.head.height)
    assert reopened_head(stored) == 4
    assert check_chain(stored.chain_dir, stored.genesis).ok
    # the blocks above the gap, and the side block among them, wait for sync to fill it
    assert report.dropped == (stored.head.height - gone.height) + 1
    # what the new chain lacks is not thrown away
    old = stored.chain_dir.with_name("chain" + OLD_SUFFIX)
    assert report.kept_old == str(old) and schema.block_key(stored.head.hash) in \
        sc.records(old)


def test_a_heavier_branch_that_does_not_apply_is_marked_and_the_main_chain_kept(
        stored: sc.StoredChain) -> None:
    """A stored side branch outweighs the main chain but its first block's state root is
    wrong (never replayed: side blocks are stored unapplied): the replay fails there, the
    block is marked invalid, and the next heaviest branch, the main chain, is rebuilt."""
    g = stored.genesis
    ref = rh.Chain(g)
    for block in stored.blocks[1:-1]:
        ref.apply(block, validate=False)
    bad = ref.build([], reward=g.reward + 1)  # its state root counts a reward too many
    ref.blocks.append(bad)
    child = ref.build([])
    weight = 2 * stored.head.height
    puts = {}
    for block, w in ((bad, weight), (child, weight + 2)):
        puts.update({schema.block_key(block.hash): block.raw,
                     schema.header_key(block.hash): block.header.raw,
                     schema.meta_key(block.hash): BlockMeta(w, 0).encode()})
    sc.edit(stored.chain_dir, puts)
    report = reindex_chain(stored.chain_dir, stored.genesis)
    assert report.head == stored.head.hash
    assert any("bad_state_root" in p for p in report.problems.listed)
    assert report.dropped == 2
    records = sc.records(stored.chain_dir)
    assert records[schema.invalid_key(bad.hash)] == b"bad_state_root"
    assert schema.block_key(child.hash) not in records
    assert check_chain(stored.chain_dir, stored.genesis).ok


def test_a_garbled_journal_entry_is_dropped(stored: sc.StoredChain) -> None:
    tx, *rest = stored.pending
    sc.edit(stored.chain_dir, {schema.journal_key(sc.PENDING_ENTRY): pack(
        [tx.raw[:-8] + bytes(8), *(t.raw for t in rest)])})
    report = reindex_chain(stored.chain_dir, stored.genesis)
    assert (report.journal, report.journal_dropped) == (len(stored.pending) - 1, 1)
    assert check_chain(stored.chain_dir, stored.genesis).ok
    # the rest of the entry is kept, as it was
    assert sc.records(stored.chain_dir)[schema.journal_key(sc.PENDING_ENTRY)] == \
        encode_entry(rest)


def test_an_old_form_journal_is_carried_over_in_the_new(stored: sc.StoredChain) -> None:
    """A database of a ccoin before the batched journal: its `p` + txid entries (one
    unreadable) go into one new entry, numbered after the entries there are."""
    old = [rh.transfer(s, rh.address(9), 1, nonce=len(stored.blocks) + 9) for s in (1, 2)]
    sc.edit(stored.chain_dir, {**{schema.legacy_journal_key(tx.id): tx.raw for tx in old},
                               schema.legacy_journal_key(bytes(32)): b"\xc1"})
    report = reindex_chain(stored.chain_dir, stored.genesis)
    assert (report.journal, report.journal_dropped) == (len(stored.pending) + 2, 1)
    records = sc.records(stored.chain_dir)
    assert not [k for k in records if k.startswith(schema.LEGACY_JOURNAL)]
    assert records[schema.journal_key(sc.PENDING_ENTRY + 1)] == encode_entry(
        sorted(old, key=lambda tx: schema.legacy_journal_key(tx.id)))
    assert check_chain(stored.chain_dir, stored.genesis).ok


def test_a_database_in_use_is_left_alone(stored: sc.StoredChain) -> None:
    before = sc.records(stored.chain_dir)
    store = Store(stored.chain_dir)
    try:
        with pytest.raises(errors.StoreLocked, match="stop the node first"):
            reindex_chain(stored.chain_dir, stored.genesis)
    finally:
        store.close()
    assert sc.records(stored.chain_dir) == before


def test_another_chain_is_left_alone(stored: sc.StoredChain) -> None:
    before = sc.records(stored.chain_dir)
    with pytest.raises(errors.StoreError, match="holds another chain"):
        reindex_chain(stored.chain_dir, rh.poa_genesis(n_miners=2))
    assert sc.records(stored.chain_dir) == before


def test_keep_old_sets_the_old_database_aside(stored: sc.StoredChain) -> None:
    before = sc.records(stored.chain_dir)
    report = reindex_chain(stored.chain_dir, stored.genesis, keep_old=True)
    old = stored.chain_dir.with_name("chain" + OLD_SUFFIX)
    assert report.kept_old == str(old)
    assert sc.records(old) == before == sc.records(stored.chain_dir)
    with pytest.raises(errors.StoreError, match="set aside; delete or move it first"):
        reindex_chain(stored.chain_dir, stored.genesis)  # it never overwrites that one
    assert sc.records(old) == before


def test_an_interrupted_reindex_is_finished_by_the_next(stored: sc.StoredChain) -> None:
    """Killed between its two renames (the chain dir absent, the old one set aside, a
    half-built new one beside it): the node refuses to start, the next reindex puts the
    old database back and rebuilds."""
    d = stored.chain_dir
    d.rename(d.with_name("chain" + OLD_SUFFIX))
    half = d.with_name("chain" + REINDEX_SUFFIX)
    half.mkdir()
    (half / "junk").write_text("a build cut short")
    with pytest.raises(errors.StoreCorrupt, match="interrupted"):
        Store(d)
    report = reindex_chain(d, stored.genesis)
    assert report.head == stored.head.hash
    assert reopened_head(stored) == stored.head.height
    assert not half.exists() and not d.with_name("chain" + OLD_SUFFIX).exists()
