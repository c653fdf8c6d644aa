"""The pool's journal: what the pool holds, on disk before anyone is told it was accepted.

One entry per group of transactions journalled together (a batch `Chain.add_transactions`
admitted, the transactions a reorg returned), under `schema.journal_key(seq)` with a
sequence number that only grows, holding the canonical msgpack array of their raw
transactions. One put per batch instead of one per transaction, and one delete per entry
instead of one per transaction, is the point: those writes were a measurable part of a
transfer's cost.

An entry is deleted only when none of its transactions is in the pool any more, so nothing
acknowledged is lost; until then it still holds the ones that left (included, displaced,
stale). A start offers every entry's transactions to the pool again, oldest entry first:
the pool refuses the included and stale ones, a replaced one loses again to its
replacement (a higher fee, in a later entry), and an evicted one is taken back if there is
room now (it is valid, and pays). Which entry each pooled transaction belongs
to, and how many pooled transactions each entry still has, is `Journal`'s bookkeeping in
memory, rebuilt from the store at every start and after every failed write.

Entries of the old form (`schema.LEGACY_JOURNAL`: one per transaction, keyed by its id)
are still read at start; the pooled ones are moved into one new entry, and the old keys
deleted, in one write.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass, field

from common import errors
from common.encoding import pack, unpack
from common.types import Transaction
from services.state import schema
from services.state.store import Batch

# An entry holds at most this many transactions (a bigger group, a deep reorg's, is split):
# at `MAX_TX_BYTES` (2 KiB) each, 8 MiB, half of what `unpack` takes by default.
ENTRY_MAX_TXS = 4096


def encode_entry(txs: Sequence[Transaction]) -> bytes:
    return pack([tx.raw for tx in txs])


def decode_entry(value: bytes) -> tuple[list[Transaction], int]:
    """The transactions of an entry that decode, and how many do not. `Malformed` when the
    value is not an array of byte strings."""
    raws = unpack(value, max_size=max(len(value), 1))  # ours, whatever its size
    if not isinstance(raws, tuple) or not all(isinstance(r, bytes) for r in raws):
        raise errors.Malformed("a journal entry is not an array of transactions")
    txs: list[Transaction] = []
    for raw in raws:
        try:
            txs.append(Transaction.decode(raw))
        except errors.CcoinError:
            continue
    return txs, len(raws) - len(txs)


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    txs: list[Transaction]


@dataclass(slots=True)
class JournalRead:
    entries: list[Entry] = field(default_factory=list)  # by sequence, oldest first
    legacy: list[Transaction] = field(default_factory=list)  # old-form entries that decode
    legacy_keys: list[bytes] = field(default_factory=list)  # their keys: moved, deleted
    stale_keys: list[bytes] = field(default_factory=list)  # records that do not decode
    unreadable: int = 0  # transactions that do not decode, in entries that do
    top: int = -1  # the highest sequence number found (-1: none)

    @property
    def txs(self) -> list[Transaction]:
        """Every readable transaction once, as the pool is to be offered them: the old
        form first (it is older), then the entries oldest first."""
        seen: set[bytes] = set()
        out: list[Transaction] = []
        for tx in [*self.legacy, *(tx for e in self.entries for tx in e.txs)]:
            if tx.id not in seen:
                seen.add(tx.id)
                out.append(tx)
        return out


def read_journal(entries: Iterable[tuple[bytes, bytes]]) -> JournalRead:
    """Sort the journal's (key, value) records, of either form, in any order."""
    read = JournalRead()
    for key, value in entries:
        if key[:1] == schema.LEGACY_JOURNAL:
            # filed under its own id or not (a misfiled one was refiled once): moved alike
            try:
                read.legacy.append(Transaction.decode(value))
            except errors.CcoinError:
                read.stale_keys.append(key)
                continue
            read.legacy_keys.append(key)
            continue
        if key[:1] != schema.JOURNAL or len(key) != schema.JOURNAL_KEY_LEN:
            read.stale_keys.append(key)  # no entry of ours: nothing would ever delete it
            continue
        seq = schema.journal_seq(key)
        read.top = max(read.top, seq)
        try:
            txs, unreadable = decode_entry(value)
        except errors.CcoinError:
            read.stale_keys.append(key)
            continue
        read.unreadable += unreadable
        read.entries.append(Entry(seq, txs))
    read.entries.sort(key=lambda e: e.seq)
    return read


@dataclass(slots=True)
class Attribution:
    """Which entry each pooled transaction belongs to, after the pool took a read."""

    entry_of: dict[bytes, int] = field(default_factory=dict)
    live: dict[int, int] = field(default_factory=dict)  # entry -> pooled transactions
    dead: list[int] = field(default_factory=list)  # entries none of whose is pooled
    migrate: list[Transaction] = field(default_factory=list)  # pooled, old form only


def attribute(read: JournalRead, pooled: Container[bytes]) -> Attribution:
    """Each pooled transaction to one entry: the newest that holds it (a transaction
    accepted, displaced and accepted again is in two), as the running node had it."""
    out = Attribution()
    for entry in read.entries:
        for tx in entry.txs:
            if tx.id in pooled:
                out.entry_of[tx.id] = entry.seq
    for seq in out.entry_of.values():
        out.live[seq] = out.live.get(seq, 0) + 1
    out.dead = [e.seq for e in read.entries if e.seq not in out.live]
    seen: set[bytes] = set()
    for tx in read.legacy:
        if tx.id in pooled and tx.id not in out.entry_of and tx.id not in seen:
            seen.add(tx.id)
            out.migrate.append(tx)
    return out


class Journal:
    """The entries the pool's transactions are in, kept in step with the pool by `Chain`:
    `add` when transactions are journalled, `release` when they leave the pool. Both
    write into the caller's batch, which commits them with what changed the pool."""

    def __init__(self) -> None:
        self._entry_of: dict[bytes, int] = {}  # pooled transaction -> its entry
        self._live: dict[int, int] = {}  # entry -> how many pooled transactions it has
        self._next = 0

    def __len__(self) -> int:
        """The journalled transactions (the pool's, once it took them)."""
        return len(self._entry_of)

    def entry_of(self, txid: bytes) -> int | None:
        return self._entry_of.get(txid)

    def live(self) -> dict[int, int]:
        """Each entry's count of pooled transactions (a copy)."""
        return dict(self._live)

    def add(self, batch: Batch, txs: Sequence[Transaction]) -> None:
        """Journal `txs` as new entries (one, unless there are more than ENTRY_MAX_TXS)."""
        for start in range(0, len(txs), ENTRY_MAX_TXS):
            chunk = txs[start:start + ENTRY_MAX_TXS]
            seq = self._next
            self._next += 1
            batch.put(schema.journal_key(seq), encode_entry(chunk))
            ids = {tx.id for tx in chunk}
            # one journalled already is this entry's now (the pool cannot hold a
            # transaction twice: not expected, but the counts stay right)
            self.release(batch, [i for i in ids if i in self._entry_of])
            for txid in ids:
                self._entry_of[txid] = seq
            self._live[seq] = len(ids)

    def release(self, batch: Batch, txids: Iterable[bytes]) -> None:
        """These transactions left the pool: an entry left with none is deleted. Ids never
        journalled (a block's transactions the pool did not have) are ignored."""
        for txid in txids:
            seq = self._entry_of.pop(txid, None)
            if seq is None:
                continue
            left = self._live[seq] - 1
            if left:
                self._live[seq] = left
            else:
                del self._live[seq]
                batch.delete(schema.journal_key(seq))

    def rebuild(self, batch: Batch, read: JournalRead, pooled: Container[bytes]) -> int:
        """The bookkeeping anew from what the store holds (`read`), once the pool has
        taken it. Into `batch`: the deletes of the entries with nothing pooled, of the
        records that do not decode and of the old form's, whose pooled transactions go
        into a new entry. Returns how many entries are deleted for having nothing pooled."""
        att = attribute(read, pooled)
        self._entry_of, self._live = att.entry_of, att.live
        # never a number used before, in this process (a failed write's) or on disk
        self._next = max(self._next, read.top + 1)
        for key in [*read.stale_keys, *read.legacy_keys,
                    *(schema.journal_key(seq) for seq in att.dead)]:
            batch.delete(key)
        self.add(batch, att.migrate)
        return len(att.dead)
