"""The pool's journal (services/state/journal.py): records of both forms read back and
sorted, each pooled transaction attributed to one entry, and `Journal`'s bookkeeping (an
entry per batch, deleted only when the last of its transactions leaves the pool)."""

from __future__ import annotations

import pytest

from common.encoding import pack
from common.types import Transaction
from services.state import journal as journal_mod
from services.state import schema
from services.state.journal import Journal, attribute, encode_entry, read_journal
from services.state.store import Batch
from tests.framework import rules as rh


def txs(sender: int, n: int, first_nonce: int = 0) -> list[Transaction]:
    return [rh.transfer(sender, rh.address(9), 1, nonce=first_nonce + i) for i in range(n)]


def ids(items: list[Transaction]) -> list[bytes]:
    return [tx.id for tx in items]


def raws(items: list[Transaction]) -> list[bytes]:
    return [tx.raw for tx in items]


# --- reading: pure -------------------------------------------------------------------------


def test_records_of_both_forms_are_sorted() -> None:
    a, b, c, d = txs(1, 4)
    garbled = b"\x93\x01"  # a byte string, not a transaction
    read = read_journal([
        (schema.legacy_journal_key(a.id), a.raw),
        (schema.legacy_journal_key(b"\x01" * 32), d.raw),  # misfiled: moved all the same
        (schema.legacy_journal_key(b"\x02" * 32), b"\xc1"),
        (schema.journal_key(300), encode_entry([c])),  # out of order: sorted by number
        (schema.journal_key(2), pack([b.raw, garbled])),
        (schema.journal_key(7), b"\xc1 not msgpack"),
        (schema.journal_key(8), pack([1, 2])),  # not byte strings
        (schema.JOURNAL + b"\x00", encode_entry([c])),  # not under a sequence number
    ])
    assert [(e.seq, ids(e.txs)) for e in read.entries] == [(2, [b.id]), (300, [c.id])]
    assert read.unreadable == 1
    assert read.legacy == [a, d]
    assert read.legacy_keys == [schema.legacy_journal_key(a.id),
                                schema.legacy_journal_key(b"\x01" * 32)]
    assert read.stale_keys == [schema.legacy_journal_key(b"\x02" * 32),
                               schema.journal_key(7), schema.journal_key(8),
                               schema.JOURNAL + b"\x00"]
    assert read.top == 300  # the undecodable ones' numbers count: never used again
    empty = read_journal([])
    assert (empty.entries, empty.txs, empty.top) == ([], [], -1)


def test_the_pool_is_offered_each_transaction_once_old_form_first_then_oldest_entry() -> None:
    a, b, c = txs(1, 3)
    read = read_journal([(schema.legacy_journal_key(c.id), c.raw),
                         (schema.journal_key(5), encode_entry([b, a])),
                         (schema.journal_key(1), encode_entry([a]))])
    assert read.txs == [c, a, b]


# --- attribution: pure ---------------------------------------------------------------------


def test_a_transaction_in_two_entries_belongs_to_the_newest_and_empty_entries_die() -> None:
    a, b, c, stale = txs(1, 4)
    legacy_only, legacy_too = txs(2, 2)
    read = read_journal([
        (schema.legacy_journal_key(legacy_only.id), legacy_only.raw),
        (schema.legacy_journal_key(legacy_too.id), legacy_too.raw),
        (schema.legacy_journal_key(stale.id), stale.raw),
        (schema.journal_key(1), encode_entry([a, b])),  # accepted together
        (schema.journal_key(2), encode_entry([stale])),  # nothing of it pooled
        (schema.journal_key(3), encode_entry([a, c])),  # a displaced, then accepted again
        (schema.journal_key(4), encode_entry([legacy_too])),
    ])
    pooled = {a.id, b.id, c.id, legacy_only.id, legacy_too.id}
    att = attribute(read, pooled)
    assert att.entry_of == {a.id: 3, b.id: 1, c.id: 3, legacy_too.id: 4}
    assert att.live == {1: 1, 3: 2, 4: 1}
    assert att.dead == [2]
    assert att.migrate == [legacy_only]  # the old form's pooled ones no entry holds
    assert sum(att.live.values()) + len(att.migrate) == len(pooled)


# --- the bookkeeping -----------------------------------------------------------------------


def test_an_entry_per_batch_deleted_only_when_its_last_transaction_leaves() -> None:
    journal = Journal()
    first, second = txs(1, 3), txs(2, 2)
    batch = Batch()
    journal.add(batch, first)
    assert list(batch.puts) == [schema.journal_key(0)]
    assert batch.puts[schema.journal_key(0)] == pack(raws(first))
    batch = Batch()
    journal.add(batch, second)
    assert list(batch.puts) == [schema.journal_key(1)]
    assert journal.live() == {0: 3, 1: 2} and len(journal) == 5
    assert journal.entry_of(first[1].id) == 0 and journal.entry_of(second[0].id) == 1

    batch = Batch()
    journal.release(batch, [first[0].id, first[1].id, b"\x07" * 32])  # one never journalled
    assert not batch.deletes and not batch.puts  # first[2] is still pooled
    assert journal.live() == {0: 1, 1: 2}
    journal.release(batch, [first[0].id])  # released already: nothing more
    assert journal.live() == {0: 1, 1: 2}
    journal.release(batch, [first[2].id, second[0].id])
    assert batch.deletes == {schema.journal_key(0)}
    assert journal.live() == {1: 1} and journal.entry_of(first[2].id) is None

    batch = Batch()
    journal.add(batch, [])  # nothing admitted: nothing written
    assert not batch.puts
    journal.add(batch, second[:1])  # accepted again after it left: a new entry
    assert list(batch.puts) == [schema.journal_key(2)]
    assert journal.live() == {1: 1, 2: 1}


def test_a_transaction_journalled_again_moves_to_the_new_entry() -> None:
    journal = Journal()
    a, b = txs(1, 2)
    journal.add(Batch(), [a])
    batch = Batch()
    journal.add(batch, [a, b])
    assert batch.deletes == {schema.journal_key(0)}  # it held only a, now entry 1's
    assert journal.live() == {1: 2}


def test_a_big_group_is_split(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(journal_mod, "ENTRY_MAX_TXS", 2)
    journal = Journal()
    batch = Batch()
    journal.add(batch, txs(1, 5))
    assert list(batch.puts) == [schema.journal_key(n) for n in range(3)]
    assert journal.live() == {0: 2, 1: 2, 2: 1}


def test_rebuild_replaces_the_bookkeeping_and_moves_the_old_form() -> None:
    """After a failed write the bookkeeping is rebuilt from the store: what memory had
    counted (an entry never written, a release never written) is gone; numbers go on
    after both the store's and this process's."""
    journal = Journal()
    a, b, c, stale = txs(1, 4)
    old = txs(3, 2)
    journal.add(Batch(), [a, b])  # written: entry 0
    journal.release(Batch(), [a.id])  # the write of this release failed
    journal.add(Batch(), [c])  # entry 1, never written
    on_disk = [*((schema.legacy_journal_key(tx.id), tx.raw) for tx in [*old, stale]),
               (schema.journal_key(0), encode_entry([a, b]))]
    batch = Batch()
    emptied = journal.rebuild(batch, read_journal(on_disk), {a.id, b.id, *ids(old)})
    assert emptied == 0
    assert journal.live() == {0: 2, 2: 2}  # 2: the old form's pooled ones, moved
    assert journal.entry_of(c.id) is None and journal.entry_of(old[0].id) == 2
    assert batch.puts == {schema.journal_key(2): encode_entry(old)}
    assert batch.deletes == {schema.legacy_journal_key(tx.id) for tx in [*old, stale]}

    batch = Batch()
    journal.rebuild(batch, read_journal([(schema.journal_key(0), encode_entry([a, b]))]),
                    set())  # the pool took none of them: the entry goes
    assert batch.deletes == {schema.journal_key(0)} and journal.live() == {}
    batch = Batch()
    journal.add(batch, [a])
    assert list(batch.puts) == [schema.journal_key(3)]
