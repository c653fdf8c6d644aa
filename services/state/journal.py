"""The pool's journal read back at start: each saved transaction decoded and sorted.

Every accepted transaction is saved under `schema.journal_key(its id)` before its 202, and
its entry goes when the pool lets it go (`Chain`). What a start finds there is restored to
the pool; an entry the pool's removals would never delete (they are keyed by id) is stale:
one that does not decode, or one filed under another key, which is filed again under its
own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from common import errors
from common.types import Transaction
from services.state import schema


@dataclass(slots=True)
class JournalRead:
    txs: list[Transaction] = field(default_factory=list)  # every readable entry: restore
    stale_keys: list[bytes] = field(default_factory=list)  # delete
    refile: list[Transaction] = field(default_factory=list)  # file again under its own key


def read_journal(entries: Iterable[tuple[bytes, bytes]]) -> JournalRead:
    """Sort the journal's (key, raw transaction) entries."""
    read = JournalRead()
    for key, raw in entries:
        try:
            tx = Transaction.decode(raw)
        except errors.CcoinError:
            read.stale_keys.append(key)
            continue
        if schema.journal_key(tx.id) != key:
            read.stale_keys.append(key)
            read.refile.append(tx)
        read.txs.append(tx)
    return read
