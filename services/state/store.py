"""The LevelDB store: the only module in ccoin that imports plyvel.

Reads go straight to LevelDB (with an account cache); writes are collected in a `Batch`
and committed with one transactional, synced WriteBatch, so a kill at any instant leaves
the previous or the next state, never half (DESIGN §10: plain `with db.write_batch()`
commits even when the block raises; `transaction=True` is what makes it all-or-nothing).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import plyvel

from common.encoding import pack, unpack
from common.errors import StoreError
from common.genesis import Genesis, genesis_block
from common.statehash import from_scratch
from common.status import Direction
from common.types import Account, Block, BlockHeader
from services.state import schema
from services.state.results import HistoryRecord, TxLocation

STATE_VALUE_BYTES = 384
ACCOUNT_CACHE_LIMIT = 2_000_000


@dataclass(frozen=True, slots=True)
class BlockMeta:
    total_weight: int
    state_value: int

    def encode(self) -> bytes:
        return pack([self.total_weight, self.state_value.to_bytes(STATE_VALUE_BYTES, "big")])

    @staticmethod
    def decode(raw: bytes) -> BlockMeta:
        weight, value = unpack(raw)
        return BlockMeta(weight, int.from_bytes(value, "big"))


class Batch:
    """Pending writes for one commit; account writes also go to the cache on commit."""

    __slots__ = ("puts", "deletes", "accounts")

    def __init__(self) -> None:
        self.puts: dict[bytes, bytes] = {}
        self.deletes: set[bytes] = set()
        self.accounts: dict[bytes, Account] = {}

    def put(self, key: bytes, value: bytes) -> None:
        self.deletes.discard(key)
        self.puts[key] = value

    def delete(self, key: bytes) -> None:
        self.puts.pop(key, None)
        self.deletes.add(key)

    def put_account(self, address: bytes, account: Account) -> None:
        self.accounts[address] = account
        if account.is_empty():
            self.delete(schema.account_key(address))
        else:
            self.put(schema.account_key(address), pack([account.balance, account.nonce]))


class Store:
    def __init__(self, path: str | Path) -> None:
        Path(path).mkdir(parents=True, exist_ok=True)
        try:
            self.db = plyvel.DB(str(path), create_if_missing=True)
        except plyvel.IOError as exc:
            raise StoreError(f"cannot open chain database {path}: {exc} "
                             "(is another node using this data dir?)") from None
        self.accounts: dict[bytes, Account] = {}
        self._upgrade()

    def _upgrade(self) -> None:
        """Bring a database written by an older ccoin to `schema.SCHEMA_VERSION`, in one
        atomic write; refuse one written by a newer ccoin."""
        version = self.db.get(schema.metadata_key("version"))
        if version is None or version == schema.SCHEMA_VERSION:
            return  # new (the genesis commit writes the version) or current
        if version != b"1":
            self.db.close()
            raise StoreError(f"the chain database has schema version {version.decode()!r}; "
                             f"this ccoin reads {schema.SCHEMA_VERSION.decode()!r} and older")
        counts: dict[bytes, int] = {}
        for key in self.db.iterator(prefix=schema.HISTORY, include_value=False):
            address = key[1:1 + 20]
            counts[address] = counts.get(address, 0) + 1
        with self.db.write_batch(transaction=True, sync=True) as wb:
            for address, n in counts.items():
                wb.put(schema.history_count_key(address), schema.encode_count(n))
            wb.put(schema.metadata_key("version"), schema.SCHEMA_VERSION)

    def close(self) -> None:
        self.db.close()

    # --- reads --------------------------------------------------------------------------

    def get(self, key: bytes) -> bytes | None:
        return self.db.get(key)

    def account(self, address: bytes) -> Account:
        acc = self.accounts.get(address)
        if acc is None:
            raw = self.db.get(schema.account_key(address))
            acc = Account(*unpack(raw)) if raw is not None else Account()
            if len(self.accounts) >= ACCOUNT_CACHE_LIMIT:
                self.accounts.clear()
            self.accounts[address] = acc
        return acc

    def header(self, block_hash: bytes) -> BlockHeader | None:
        raw = self.db.get(schema.header_key(block_hash))
        return BlockHeader.from_fields(unpack(raw)) if raw is not None else None

    def block(self, block_hash: bytes) -> Block | None:
        raw = self.db.get(schema.block_key(block_hash))
        return Block.decode(raw) if raw is not None else None

    def block_raw(self, block_hash: bytes) -> bytes | None:
        return self.db.get(schema.block_key(block_hash))

    def meta(self, block_hash: bytes) -> BlockMeta | None:
        raw = self.db.get(schema.meta_key(block_hash))
        return BlockMeta.decode(raw) if raw is not None else None

    def hash_at(self, height: int) -> bytes | None:
        return self.db.get(schema.height_key(height))

    def tx_location(self, txid: bytes) -> TxLocation | None:
        raw = self.db.get(schema.tx_key(txid))
        if raw is None:
            return None
        block_hash, index = unpack(raw)
        return TxLocation(block_hash, index)

    def undo(self, block_hash: bytes) -> dict[bytes, Account]:
        raw = self.db.get(schema.undo_key(block_hash))
        if raw is None:
            raise StoreError(f"missing undo record for {block_hash.hex()}")
        return schema.decode_undo(raw)

    def metadata(self, name: str) -> bytes | None:
        return self.db.get(schema.metadata_key(name))

    def journal(self) -> Iterator[tuple[bytes, bytes]]:
        """(key, raw transaction) of each pool transaction saved in the journal."""
        yield from self.db.iterator(prefix=schema.JOURNAL)

    def all_accounts(self) -> Iterator[tuple[bytes, Account]]:
        for key, value in self.db.iterator(prefix=schema.ACCOUNT):
            yield key[1:], Account(*unpack(value))

    def history(self, address: bytes, offset: int, limit: int,
                before: tuple[int, int] | None = None,
                ) -> tuple[int, list[HistoryRecord]]:
        """The address's count of entries, and up to `limit` entries newest first after
        skipping `offset`; with `before` = (height, index), only entries older than that
        position (a seek, not a skip)."""
        prefix = schema.history_prefix(address)
        total = schema.decode_count(self.db.get(schema.history_count_key(address)))
        items: list[HistoryRecord] = []
        if before is None:
            entries = self.db.iterator(prefix=prefix, reverse=True)
        else:
            entries = self.db.iterator(start=prefix, stop=schema.history_key(address, *before),
                                       reverse=True)
        for n, (key, value) in enumerate(entries):
            if n < offset:
                continue
            if len(items) >= limit:
                break
            txid, direction = unpack(value)
            height, index = schema.parse_history_key(key)
            items.append(HistoryRecord(txid, height, index, Direction(direction)))
        return total, items

    def tips(self) -> list[bytes]:
        return [key[1:] for key in self.db.iterator(prefix=schema.TIP, include_value=False)]

    def invalid_blocks(self, limit: int) -> list[tuple[bytes, str]]:
        out = []
        for key, value in self.db.iterator(prefix=schema.INVALID):
            out.append((key[1:], value.decode()))
            if len(out) >= limit:
                break
        return out

    def invalid(self, block_hash: bytes) -> str | None:
        raw = self.db.get(schema.invalid_key(block_hash))
        return raw.decode() if raw is not None else None

    # --- writes -------------------------------------------------------------------------

    def commit(self, batch: Batch, sync: bool = True) -> None:
        with self.db.write_batch(transaction=True, sync=sync) as wb:
            for key in batch.deletes:
                wb.delete(key)
            for key, value in batch.puts.items():
                wb.put(key, value)
        self.accounts.update(batch.accounts)

    def write_block(self, batch: Batch, block: Block, meta: BlockMeta) -> None:
        h = block.hash
        batch.put(schema.header_key(h), block.header.raw)
        batch.put(schema.block_key(h), block.raw)
        batch.put(schema.meta_key(h), meta.encode())


def init_chain(chain_dir: Path, genesis: Genesis) -> Block:
    """Build and store the genesis block if the database is empty (idempotent); refuse a
    database that holds another chain."""
    block = genesis_block(genesis)
    store = Store(chain_dir)
    try:
        existing = store.metadata("genesis")
        if existing is not None:
            if existing != block.hash:
                raise StoreError(f"{chain_dir} holds another chain (genesis {existing.hex()}, "
                                 f"this genesis file gives {block.hash.hex()})")
            return block
        initial_genesis_commit(store, genesis, block)
        return block
    finally:
        store.close()


def initial_genesis_commit(store: Store, genesis: Genesis, block: Block) -> None:
    accounts = genesis.initial_accounts()
    batch = Batch()
    store.write_block(batch, block, BlockMeta(0, from_scratch(accounts.items())))
    batch.put(schema.height_key(0), block.hash)
    batch.put(schema.tip_key(block.hash), b"")
    for address, account in accounts.items():
        batch.put_account(address, account)
    batch.put(schema.undo_key(block.hash), schema.encode_undo({}))
    batch.put(schema.metadata_key("genesis"), block.hash)
    batch.put(schema.metadata_key("head"), block.hash)
    batch.put(schema.metadata_key("version"), schema.SCHEMA_VERSION)
    store.commit(batch)
