"""Opening the chain database never makes a silent new chain (issue 10, item 3), on a real
LevelDB whose files are damaged by hand: a directory with chain files but no openable
database, a database without its genesis record, or a head that is not what the stored state
says is refused with one line naming the damage and the remedy, and nothing is changed; a
new database is made only in an absent or empty directory; what LevelDB can recover by
itself (a log cut short) opens at an earlier commit, never a mix and never a new chain."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from common import errors
from common.encoding import pack
from services.state import schema
from services.state.chain import Chain
from services.state.check import check_chain
from services.state.store import OLD_SUFFIX, REMEDY, Batch, BlockMeta, Store
from tests.framework import stored_chain as sc


def files(path: Path) -> dict[str, int]:
    """Every file of the database directory with its size (LOCK and LOG aside: opening
    writes LevelDB's own log of what it did)."""
    return {p.name: p.stat().st_size for p in path.iterdir()
            if p.name not in ("LOCK", "LOG", "LOG.old")}


def open_chain(chain_dir: Path, s: sc.StoredChain) -> Chain:
    """As the state service opens it (closed again if that fails)."""
    store = Store(chain_dir)
    try:
        return Chain(store, s.genesis)
    except BaseException:
        store.close()
        raise


def records(chain_dir: Path) -> dict[bytes, bytes] | None:
    """Every key and value of the database, or None if it does not open."""
    try:
        store = Store(chain_dir, inspect=True)
    except errors.StoreCorrupt:
        return None
    try:
        return dict(store.scan(b""))
    finally:
        store.close()


def refused(chain_dir: Path, s: sc.StoredChain, match: str) -> errors.StoreCorrupt:
    """Opening the chain as the state service does is refused, in one line naming the
    remedy, and changes nothing: every file stays as it was or, where LevelDB itself could
    open the database (and so moved its log into a table), every record does."""
    before = files(chain_dir)
    copy = chain_dir.with_name("copy")
    shutil.copytree(chain_dir, copy)
    with pytest.raises(errors.StoreCorrupt, match=match) as info:
        open_chain(chain_dir, s)
    message = str(info.value)
    assert "\n" not in message and REMEDY in message and str(chain_dir) in message
    assert info.value.http_status == 503 and info.value.code == "storage_unavailable"
    if files(chain_dir) != before:
        assert records(chain_dir) == records(copy) is not None
    return info.value


@pytest.fixture
def stored(tmp_path: Path) -> sc.StoredChain:
    return sc.build(tmp_path / "chain")


def test_a_new_database_only_in_an_absent_or_empty_directory(tmp_path: Path) -> None:
    g = sc.genesis()
    for path in (tmp_path / "absent" / "chain", tmp_path / "empty"):
        if path.name == "empty":
            path.mkdir()
        store = Store(path)
        assert store.created
        chain = Chain(store, g)
        assert chain.head.header.height == 0
        store.close()
        again = Store(path)
        assert not again.created
        again.close()


def test_deleted_current_is_refused_and_the_tables_stay(stored: sc.StoredChain) -> None:
    d = stored.chain_dir
    sc.delete_current(d)
    tables = sorted(p.name for p in d.glob("*.ldb"))
    refused(d, stored, "CURRENT file is missing")
    assert sorted(p.name for p in d.glob("*.ldb")) == tables


def test_damaged_manifest_is_refused(stored: sc.StoredChain) -> None:
    sc.damage_manifest(stored.chain_dir)
    refused(stored.chain_dir, stored, "LevelDB says 'Corruption")


def test_a_checksum_error_in_the_log_is_refused_not_dropped(stored: sc.StoredChain) -> None:
    """Without paranoid checks LevelDB drops the damaged records and opens an earlier,
    possibly mixed, state (the issue's disk-full restart)."""
    sc.flip_log_bytes(stored.chain_dir)
    refused(stored.chain_dir, stored, "Corruption")


def test_flipped_table_bytes_are_refused_or_the_head_is_unchanged(
        stored: sc.StoredChain) -> None:
    """LevelDB reads a table block only when it is needed: if the head's records are in
    the damaged one, opening is refused; otherwise the node opens on the very same head
    (and the damage is found when read, and by `ccoin node check`)."""
    sc.flip_table_bytes(stored.chain_dir)
    try:
        chain = open_chain(stored.chain_dir, stored)
    except errors.StoreCorrupt as exc:
        assert REMEDY in str(exc)
    else:
        assert chain.head.header.hash == stored.head.hash
        chain.store.close()
    assert not check_chain(stored.chain_dir, stored.genesis).ok


def test_a_log_cut_short_opens_at_an_earlier_commit(stored: sc.StoredChain) -> None:
    """A torn end of the log is what a crash mid-write leaves: LevelDB drops the torn
    commit and opens the one before, which is whole (check finds nothing wrong)."""
    sc.truncate_log(stored.chain_dir)
    chain = Chain(Store(stored.chain_dir), stored.genesis)
    head = chain.head.header
    assert stored.blocks[head.height].hash == head.hash
    assert head.height >= len(stored.blocks) - 1 - 2  # only the log's tail blocks can go
    chain.store.close()
    assert check_chain(stored.chain_dir, stored.genesis).ok


def test_a_database_without_genesis_record_is_refused(stored: sc.StoredChain) -> None:
    store = Store(stored.chain_dir)
    batch = Batch()
    batch.delete(schema.metadata_key("genesis"))
    store.commit(batch)
    store.close()
    refused(stored.chain_dir, stored, "holds data but no genesis record")


def test_an_empty_database_is_a_new_one(tmp_path: Path) -> None:
    """A database whose creation was cut short before the genesis commit holds nothing:
    it is started afresh."""
    store = Store(tmp_path)
    store.close()
    store = Store(tmp_path)
    assert store.created
    assert Chain(store, sc.genesis()).head.header.height == 0
    store.close()


@pytest.mark.parametrize("damage", ["state_value", "no_block", "no_head_record",
                                    "not_main", "other_block"])
def test_a_head_that_disagrees_with_the_stored_state_is_refused(
        stored: sc.StoredChain, damage: str) -> None:
    head = stored.head
    store = Store(stored.chain_dir)
    batch = Batch()
    if damage == "state_value":
        meta = store.meta(head.hash)
        assert meta is not None
        batch.put(schema.meta_key(head.hash),
                  BlockMeta(meta.total_weight, meta.state_value + 1).encode())
        match = "is not the state the head block"
    elif damage == "no_block":
        batch.delete(schema.block_key(head.hash))
        match = "is missing"
    elif damage == "no_head_record":
        batch.delete(schema.metadata_key("head"))
        match = "no head record"
    elif damage == "not_main":
        batch.put(schema.height_key(head.height), stored.blocks[1].hash)
        match = "is not the main chain's block at its height"
    else:
        batch.put(schema.block_key(head.hash), stored.blocks[1].raw)
        match = "is another block"
    store.commit(batch)
    store.close()
    refused(stored.chain_dir, stored, match)


def test_an_undecodable_head_block_is_refused(stored: sc.StoredChain) -> None:
    store = Store(stored.chain_dir)
    batch = Batch()
    batch.put(schema.block_key(stored.head.hash), pack(["not", "a block"]))
    store.commit(batch)
    store.close()
    refused(stored.chain_dir, stored, "does not decode")


def test_an_interrupted_reindex_is_refused_not_a_new_chain(stored: sc.StoredChain) -> None:
    """Between a reindex's two renames the chain dir is absent: creating a new chain there
    would hide the old one."""
    d = stored.chain_dir
    os.rename(d, d.with_name(d.name + OLD_SUFFIX))
    with pytest.raises(errors.StoreCorrupt, match="interrupted `ccoin node reindex`"):
        Store(d)
    assert not d.exists()


def test_a_directory_with_other_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a database")
    with pytest.raises(errors.StoreCorrupt, match="CURRENT file is missing"):
        Store(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_tools_never_create_a_database(tmp_path: Path) -> None:
    with pytest.raises(errors.StoreError, match="no chain database"):
        Store(tmp_path / "chain", inspect=True)
    assert not (tmp_path / "chain").exists()
