"""The main chain's indexes, written and undone by one pair of functions.

`connect_block` writes everything that makes a stored block part of the main chain: its
height entry, the location of each of its transactions, each party's history entry and
history count, its undo record (the accounts it touched, as they were before it) and the
accounts after it. `disconnect_block` takes exactly that away again and puts the accounts
back from the undo record. Import and reorg both go through this pair, so a reorg is
"disconnect the old branch, connect the new" with the same code, and connecting a block then
disconnecting it leaves the database as it was (test_indexes.py checks that on random chains).

Block bodies, headers, metadata, tips and the pool's journal are not indexes: they stay
whether a block is on the main chain or not, and the chain writes them itself.

Both functions only add to a `Batch`; the caller commits it (one WriteBatch per block, or per
reorg). A key the batch already changed is read from the batch, so several blocks can be
connected or disconnected in one batch. Every key comes from `schema`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from common.encoding import pack
from common.status import Direction
from common.types import Account, Block
from services.state import schema
from services.state.store import Batch, StoreError

Reader = Callable[[bytes], bytes | None]  # `Store.get`: a committed value, or None

# each direction's encoding, the end of a history value (schema.PAIR_OF_HASH says how the
# values are joined: this loop runs for every transaction of every block imported)
_SELF, _OUT, _IN = (pack(d.value) for d in (Direction.SELF, Direction.OUT, Direction.IN))


def connect_block(batch: Batch, read: Reader, block: Block, before: Mapping[bytes, Account],
                  after: Mapping[bytes, Account]) -> None:
    """Make `block` the main chain's block at its height. `before` and `after` are the
    accounts it touched, before and after it (`common.ledger.StateChanges`)."""
    h = block.hash
    height = block.height
    batch.put(schema.height_key(height), h)
    entries: dict[bytes, int] = {}
    put, position, pair = batch.put, schema.history_position, schema.PAIR_OF_HASH
    location, tx_index, history = pair + h, schema.TX_INDEX, schema.HISTORY
    for index, tx in enumerate(block.txs):
        txid = tx.id
        put(tx_index + txid, location + pack(index))  # tx_key(txid): [h, index]
        sender, to = tx.sender, tx.to
        at = position(height, index)  # history_key(address, height, index) ends with it
        entries[sender] = entries.get(sender, 0) + 1
        if sender == to:
            put(history + sender + at, pair + txid + _SELF)
        else:
            put(history + sender + at, pair + txid + _OUT)
            put(history + to + at, pair + txid + _IN)
            entries[to] = entries.get(to, 0) + 1
    _count_history(batch, read, entries)
    batch.put(schema.undo_key(h), schema.encode_undo(before))
    for address, account in after.items():
        batch.put_account(address, account)


def disconnect_block(batch: Batch, read: Reader, block: Block) -> dict[bytes, Account]:
    """Take `block`, the main chain's top block as far as `batch` goes, off the main chain;
    return the accounts as they were before it (its undo record), now in `batch`."""
    h = block.hash
    height = block.height
    raw = _pending(batch, read, schema.undo_key(h))
    if raw is None:
        raise StoreError(f"missing undo record for {h.hex()}")
    before = schema.decode_undo(raw)
    removed: dict[bytes, int] = {}
    for index, tx in enumerate(block.txs):
        batch.delete(schema.tx_key(tx.id))
        sender, to = tx.sender, tx.to
        batch.delete(schema.history_key(sender, height, index))
        removed[sender] = removed.get(sender, 0) - 1
        if to != sender:
            batch.delete(schema.history_key(to, height, index))
            removed[to] = removed.get(to, 0) - 1
    _count_history(batch, read, removed)
    batch.delete(schema.height_key(height))
    batch.delete(schema.undo_key(h))  # a block off the main chain gets a new one if it returns
    for address, account in before.items():
        batch.put_account(address, account)
    return before


def _pending(batch: Batch, read: Reader, key: bytes) -> bytes | None:
    """The value `key` will have once `batch` is committed."""
    value = batch.puts.get(key)
    if value is not None:
        return value
    if key in batch.deletes:
        return None
    return read(key)


def _count_history(batch: Batch, read: Reader, deltas: dict[bytes, int]) -> None:
    """Keep each address's count of history entries (the total `Store.history` reports
    without scanning them) in step with the entries this batch adds or removes."""
    for address, delta in deltas.items():
        key = schema.history_count_key(address)
        n = schema.decode_count(_pending(batch, read, key)) + delta
        if n < 0:
            raise StoreError(f"history count of {address.hex()} would go below zero")
        if n:
            batch.put(key, schema.encode_count(n))
        else:
            batch.delete(key)
