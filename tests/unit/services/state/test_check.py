"""`services/state/check.py` (`ccoin node check`) on a real LevelDB: a whole chain is
clean; each record an import writes, changed or removed behind the node's back, is found
and named; a block that breaks a header rule is found by the rule; damaged files are found
(the database cannot be opened, or a table cannot be read); a database in use is refused."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from common import consensus, errors
from common.encoding import pack
from common.types import Block
from services.state import schema
from services.state.check import check_chain
from services.state.store import BlockMeta, Store
from tests.framework import rules as rh
from tests.framework import stored_chain as sc


def test_a_whole_chain_is_clean(stored: sc.StoredChain) -> None:
    seen: list[tuple[str, int, int | None]] = []
    report = check_chain(stored.chain_dir, stored.genesis,
                         lambda phase, done, total: seen.append((phase, done, total)))
    assert report.ok, report.problems
    assert (report.height, report.head, report.blocks) == (
        stored.head.height, stored.head.hash, len(stored.blocks))
    assert report.transactions == sum(len(b.txs) for b in stored.blocks)
    assert report.accounts > 3
    assert ("blocks", len(stored.blocks), len(stored.blocks)) in seen  # done / total
    assert report.as_json()["ok"] is True


def _middle(s: sc.StoredChain) -> Block:
    return s.blocks[len(s.blocks) // 2]


def _tx(s: sc.StoredChain) -> tuple[Block, int]:
    return _middle(s), 1


Damage = Callable[[sc.StoredChain], tuple[dict[bytes, bytes], tuple[bytes, ...], str]]

# each: (puts, deletes, a part of the problem the check must report)
DAMAGES: dict[str, Damage] = {
    "account balance": lambda s: (
        {schema.account_key(rh.address(10)): pack([1, 0])}, (), "stored balance 1 nonce 0"),
    "extra account": lambda s: (
        {schema.account_key(rh.address(77)): pack([5, 0])}, (),
        f"account {rh.address(77).hex()}: stored balance 5 nonce 0, the blocks give nothing"),
    "tx index entry": lambda s: (
        {}, (schema.tx_key(_middle(s).txs[1].id),), "the transaction index is missing"),
    "history entry": lambda s: (
        {}, (schema.history_key(_middle(s).txs[1].sender, _middle(s).height, 1),),
        "history entry of"),
    "history count": lambda s: (
        {schema.history_count_key(rh.address(1)): schema.encode_count(1)}, (),
        f"history count of {rh.address(1).hex()}: stored 1"),
    "block meta": lambda s: (
        {schema.meta_key(_middle(s).hash): BlockMeta(1, 1).encode()}, (),
        "the block meta (total weight, state value) differs"),
    "undo record": lambda s: (
        {schema.undo_key(_middle(s).hash): schema.encode_undo({})}, (),
        "the undo record differs"),
    "height entry": lambda s: (
        {}, (schema.height_key(_middle(s).height),),
        f"height {_middle(s).height}: no entry in the height index"),
    "height past the head": lambda s: (
        {schema.height_key(s.head.height + 1): s.side.hash}, (),
        "the height index goes on past the head"),
    "another block at a height": lambda s: (
        {schema.block_key(_middle(s).hash): s.blocks[1].raw}, (), "the block stored there is"),
    "header record": lambda s: (
        {}, (schema.header_key(_middle(s).hash),), "the header record is missing"),
    "side block": lambda s: (
        {schema.block_key(s.side.hash): b"\x92\x01"}, (), "block record"),
    "journal entry": lambda s: (
        {schema.journal_key(sc.PENDING_ENTRY): b"\xc1"}, (), "mempool journal record"),
    "journal signature": lambda s: (
        {schema.journal_key(sc.PENDING_ENTRY):
         pack([s.pending[0].raw[:-8] + bytes(8), s.pending[1].raw])}, (),
        "signature does not verify"),
    "journal transaction": lambda s: (
        {schema.journal_key(7): pack([s.pending[0].raw, b"\xc1"])}, (),
        "mempool journal record 0000000000000007 does not decode"),
    "old-form journal signature": lambda s: (
        {schema.legacy_journal_key(s.pending[0].id): s.pending[0].raw[:-8] + bytes(8)}, (),
        "signature does not verify"),
    "old-form journal misfiled": lambda s: (
        {schema.legacy_journal_key(bytes(32)): s.pending[0].raw}, (),
        "old-form mempool journal entry 0000000000000000 is filed under another id"),
    "head record": lambda s: ({}, (schema.metadata_key("head"),), "there is no head record"),
}


@pytest.mark.parametrize("name", sorted(DAMAGES))
def test_each_record_changed_behind_the_nodes_back_is_found(stored: sc.StoredChain,
                                                            name: str) -> None:
    puts, deletes, expected = DAMAGES[name](stored)
    sc.edit(stored.chain_dir, puts, deletes)
    report = check_chain(stored.chain_dir, stored.genesis)
    assert not report.ok
    assert any(expected in p for p in report.problems), report.problems
    assert report.as_json()["problem_count"] == report.problem_count >= 1


def test_a_block_that_breaks_a_header_rule_is_found_by_the_rule(
        stored: sc.StoredChain) -> None:
    """Another block at a height, linked right, with a HashCash proof, but whose seal does
    not cover its header: the walk names the rule (`bad_seal`), and stops there (nothing
    above it can be replayed)."""
    good = _middle(stored)
    header = consensus.solve_proof(good.header.replace(extra=b"forged"), 1 << 22)
    assert header is not None
    forged = Block(header, good.txs)
    with pytest.raises(errors.BadSeal):
        consensus.check_seal(stored.genesis, forged.header, stored.genesis.miners)
    sc.edit(stored.chain_dir, {schema.height_key(good.height): forged.hash,
                               schema.block_key(forged.hash): forged.raw})
    report = check_chain(stored.chain_dir, stored.genesis)
    assert report.problems[0].startswith(f"height {good.height} ({forged.hash.hex()[:16]}): "
                                         "bad_seal")
    assert report.height == good.height - 1


def test_another_chain_is_named_and_not_walked(stored: sc.StoredChain) -> None:
    other = rh.poa_genesis(n_miners=2)
    report = check_chain(stored.chain_dir, other)
    assert report.problems == (report.problems[0],)
    assert "holds another chain" in report.problems[0] and report.blocks == 0


@pytest.mark.parametrize("damage", ["delete_current", "damage_manifest", "flip_log_bytes"])
def test_a_database_that_cannot_be_opened_is_a_finding(stored: sc.StoredChain,
                                                       damage: str) -> None:
    getattr(sc, damage)(stored.chain_dir)
    report = check_chain(stored.chain_dir, stored.genesis)
    assert not report.ok and report.problems[0].startswith("the database cannot be opened: ")


def test_an_unreadable_table_is_found(stored: sc.StoredChain) -> None:
    sc.flip_table_bytes(stored.chain_dir)
    report = check_chain(stored.chain_dir, stored.genesis)
    assert any("Corruption: block checksum mismatch" in p for p in report.problems), \
        report.problems


def test_a_database_in_use_is_refused(stored: sc.StoredChain) -> None:
    store = Store(stored.chain_dir)
    try:
        with pytest.raises(errors.StoreLocked, match="stop the node first"):
            check_chain(stored.chain_dir, stored.genesis)
    finally:
        store.close()
