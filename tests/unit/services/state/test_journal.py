"""The pool's journal read back (services/state/journal.py): readable entries restored,
undecodable ones stale, misfiled ones stale and filed again."""

from __future__ import annotations

from services.state import schema
from services.state.journal import read_journal
from tests.framework import rules as rh


def test_entries_are_sorted_into_restore_stale_and_refile() -> None:
    good, misfiled = (rh.transfer(1, rh.address(9), 1, nonce=n) for n in range(2))
    wrong_key = schema.journal_key(b"\x01" * 32)
    read = read_journal([(schema.journal_key(good.id), good.raw),
                         (schema.journal_key(b"\x02" * 32), b"\xc1not a transaction"),
                         (wrong_key, misfiled.raw)])
    assert read.txs == [good, misfiled]
    assert read.stale_keys == [schema.journal_key(b"\x02" * 32), wrong_key]
    assert read.refile == [misfiled]
    assert read_journal([]).txs == []
