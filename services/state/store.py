"""The LevelDB store: the only module in ccoin that imports plyvel.

Reads go straight to LevelDB (with an account cache); writes are collected in a `Batch`
and committed with one transactional, synced WriteBatch, so a kill at any instant leaves
the previous or the next state, never half (DESIGN §10: plain `with db.write_batch()`
commits even when the block raises; `transaction=True` is what makes it all-or-nothing).

The database is opened with LevelDB's paranoid checks and read with checksums verified, so
damage is an error (`StoreCorrupt`, naming `ccoin node check` and `ccoin node reindex`),
never a silently dropped log record, a wrong value or a new empty chain (DESIGN §11).

A write that fails (a full disk, an I/O error) is never followed by another on the same
handle (`Store.write_failure`, `StoreWriteFailed`). LevelDB appends each batch to its log
with plain write(2) calls: one that fails half way leaves a torn record, and LevelDB's log
writer carries on as if it had been written whole, so every later record lands at the
wrong offset. Those later writes report success (synced even), are served from memory,
and are unreadable at the next open: paranoid checks refuse the database ("checksum
mismatch"), and without them LevelDB drops them, which is how confirmed blocks vanished
in issue 10. Left as the last thing in the log, the torn record is what a crash leaves,
and the next open drops it as such; so after a failed write the state service serves
reads from this handle, then reopens the database (`Chain.reopened`) once the disk takes
writes again. Damage seen at run time (a read or write LevelDB calls corrupt, or a read
that fails) is remembered in `Store.damage`: state writes nothing more and says so.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import plyvel

from common.authorities import Snapshot, genesis_snapshot
from common.encoding import pack, unpack
from common.errors import Malformed, StoreCorrupt, StoreError, StoreLocked, StoreWriteFailed
from common.genesis import Genesis, genesis_block
from common.statehash import from_scratch, root_of
from common.status import Direction
from common.types import Account, Block, BlockHeader
from services.state import schema
from services.state.results import HistoryRecord, TxLocation

STATE_VALUE_BYTES = 384
# about 220 bytes an account in memory: 22 MiB at most (it was 2M, 420 MiB: a node that had
# synced a million-account chain held every account in it; LevelDB's own cache backs this)
ACCOUNT_CACHE_LIMIT = 100_000
# LevelDB keeps this many table files open, each read through mmap: every page a read
# touched counts in the node's RSS while its table stays open. LevelDB's default (1,000)
# maps all of a chain of a few GB; 128 bounds the mapped part to ~250 MiB (2 MiB tables).
# Measured on a million-account chain (docs/scale.md): 1,000 files, state's peak RSS 384
# MiB; 128, 247 MiB at the same end-to-end rate; 64, 139 MiB but a third slower (tables
# reopened on reads)
MAX_OPEN_FILES = 128
# and no snappy: what the chain stores (hashes, keys, signatures, amounts) hardly
# compresses, and on a million-account chain compressing it again at every compaction was
# a third of state's CPU (perf, docs/scale.md)
# `ccoin node reindex` builds the new database beside the old one, then swaps them
REINDEX_SUFFIX = ".reindex"
OLD_SUFFIX = ".before-reindex"
REMEDY = ("run `ccoin node check` to see the damage, then `ccoin node reindex` to rebuild the "
          "database from its blocks (both with the node stopped)")


def corrupt(path: Path, what: str) -> StoreCorrupt:
    """The one line an operator reads when the database is damaged: what, and what to run."""
    return StoreCorrupt(f"the chain database {path} is damaged: {what}; refusing to use it "
                        f"(nothing was changed): {REMEDY}", damage=what)


def damaged(path: Path, what: str) -> StoreCorrupt:
    """The one line for damage found while the node runs: what, and what to do."""
    return StoreCorrupt(f"the chain database {path} is damaged: {what}; state writes nothing "
                        f"more (it serves what it can still read): stop the node, then "
                        f"{REMEDY}", damage=what)


def _reason(exc: Exception) -> str:
    """LevelDB's own words (plyvel hands them over as bytes), or the OS's."""
    arg = exc.args[0] if exc.args else exc
    if isinstance(arg, bytes):
        return arg.decode(errors="replace")
    return str(exc) if isinstance(exc, OSError) and exc.strerror else str(arg)


def _open(path: Path, inspect: bool) -> plyvel.DB:
    if path.exists() and not path.is_dir():
        raise StoreError(f"the chain database {path} is not a directory")
    create = not (path.is_dir() and any(path.iterdir()))
    if create:
        if inspect:
            raise StoreError(f"there is no chain database in {path} "
                             "(`ccoin genesis init` creates one)")
        old = path.with_name(path.name + OLD_SUFFIX)
        if old.exists():
            raise StoreCorrupt(f"the chain database {path} is missing and {old} holds the "
                               "one an interrupted `ccoin node reindex` set aside: run "
                               "`ccoin node reindex` again to finish it")
        path.mkdir(parents=True, exist_ok=True)
    elif not (path / "CURRENT").is_file():
        # LevelDB would create a new database here and delete the old tables as obsolete
        raise corrupt(path, "its CURRENT file is missing although the directory holds "
                      "database files")
    try:
        return plyvel.DB(str(path), create_if_missing=create, paranoid_checks=True,
                         max_open_files=MAX_OPEN_FILES, compression=None)
    except plyvel.IOError as exc:
        reason = _reason(exc)
        if "IO error: lock " in reason:
            raise StoreLocked(f"the chain database {path} is in use: its LevelDB lock is held "
                              "(a node running on this data dir?); stop the node first "
                              "(`ccoin node stop`)") from None
        raise StoreError(f"cannot open the chain database {path}: {reason}") from None
    except plyvel.Error as exc:  # Corruption (a damaged MANIFEST or log), and the like
        raise corrupt(path, f"LevelDB says {_reason(exc)!r}") from None


def salvage(path: Path) -> list[str]:
    """LevelDB's own repair (RepairDB), in place: rebuild the MANIFEST from the table and
    log files, keeping every record that still reads; the files it could not use go to
    `lost/`, whose new entries are returned. Only for `ccoin node reindex`, which then
    trusts nothing but the blocks it finds (a lost newer value may bring back an older
    one; a block, stored under its own hash, cannot be wrong that way)."""
    lost = path / "lost"
    before = set(lost.iterdir()) if lost.is_dir() else set()
    try:
        plyvel.repair_db(str(path), paranoid_checks=True)  # checksums: drop bad blocks
    except plyvel.Error as exc:
        raise StoreCorrupt(f"LevelDB could not repair the chain database {path}: "
                           f"{_reason(exc)}") from None
    return sorted(p.name for p in (set(lost.iterdir()) if lost.is_dir() else set()) - before)


@dataclass(frozen=True, slots=True)
class BlockMeta:
    total_weight: int
    state_value: int

    def encode(self) -> bytes:
        return pack([self.total_weight, self.state_value.to_bytes(STATE_VALUE_BYTES, "big")])

    @staticmethod
    def decode(raw: bytes) -> BlockMeta:
        value = unpack(raw)
        if (type(value) is not tuple or len(value) != 2 or type(value[0]) is not int
                or type(value[1]) is not bytes or len(value[1]) != STATE_VALUE_BYTES):
            raise Malformed("block meta must be [total_weight, state_value]")
        return BlockMeta(value[0], int.from_bytes(value[1], "big"))


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
    """The chain database, opened with LevelDB's paranoid checks.

    A new database is created only in an absent or empty directory: a directory that holds
    files but no openable database (CURRENT deleted, a damaged MANIFEST or log) is refused
    with `StoreCorrupt`, never replaced by a new chain (LevelDB would create one and delete
    the old tables as obsolete). So is a database that holds data but no genesis record.
    `inspect=True` is for the operator tools (`check`, `reindex`): the database must exist,
    and one without a genesis record is opened for them to report on."""

    def __init__(self, path: str | Path, *, inspect: bool = False) -> None:
        self.path = Path(path)
        self.created = False
        self.db = _open(self.path, inspect)
        self.accounts: dict[bytes, Account] = {}
        # why this handle writes nothing more ("" while it may): the first failed write...
        self.write_failure = ""
        # ...or the first damage a read or write ran into, as `damaged` words it
        self.damage = ""
        try:
            if self.metadata("genesis") is None:
                if self._empty():
                    self.created = True  # new, or its creation was cut short: start afresh
                elif not inspect:
                    raise corrupt(self.path, "it holds data but no genesis record")
            self._upgrade(inspect)
        except BaseException:
            self.db.close()
            raise

    def _empty(self) -> bool:
        return next(self.scan(b""), None) is None

    def _upgrade(self, inspect: bool) -> None:
        """Refuse a database this ccoin cannot read: one written before authority voting
        (schema 1 or 2: its headers have 12 fields, so every hash differs: another chain)
        or by a newer ccoin. One of schema 3 is read as it is (`schema` says why) and
        marked current when a node opens it; the operator tools leave it as they found it."""
        version = self.metadata("version")
        if version is None or version == schema.SCHEMA_VERSION:
            return  # new (the genesis commit writes the version) or current
        if version in schema.READABLE_VERSIONS:
            if not inspect:
                batch = Batch()
                batch.put(schema.metadata_key("version"), schema.SCHEMA_VERSION)
                self.commit(batch)
            return
        if version in (b"1", b"2"):
            raise StoreError(f"the chain database was written by a ccoin before authority "
                             f"voting (schema version {version.decode()}): its block headers "
                             f"have no vote field; start the chain anew in an empty data "
                             f"directory (ccoin genesis init)")
        raise StoreError(f"the chain database has schema version {version.decode()!r}; "
                         f"this ccoin reads {schema.SCHEMA_VERSION.decode()!r}")

    def close(self) -> None:
        self.db.close()

    # --- reads --------------------------------------------------------------------------

    def _read_failed(self, exc: Exception) -> StoreCorrupt:
        """A read LevelDB calls corrupt, or one that failed (an I/O error on a table): the
        database cannot be trusted any more; the first such failure is remembered."""
        what = _reason(exc)
        if not isinstance(exc, plyvel.CorruptionError):
            what = f"a read failed: {what}"
        return self.found_damage(what)

    def found_damage(self, what: str) -> StoreCorrupt:
        """Damage a reader found in what it read (`what`): remembered like a read LevelDB
        calls corrupt, so state writes nothing more on top of it."""
        err = damaged(self.path, what)
        if not self.damage:
            self.damage = err.message
        return err

    def get(self, key: bytes) -> bytes | None:
        """The committed value of `key`; a damaged table is `StoreCorrupt`, never a guess
        (checksums are verified on every read that reaches the disk)."""
        try:
            return self.db.get(key, verify_checksums=True)
        except plyvel.Error as exc:
            raise self._read_failed(exc) from None

    def scan(self, prefix: bytes, **kwargs: Any) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) of every key starting with `prefix` (with b"", plyvel's `start` and
        `stop` may bound it instead), checksums verified; damage is `StoreCorrupt`."""
        if prefix:
            kwargs["prefix"] = prefix
        it = self.db.iterator(verify_checksums=True, **kwargs)
        try:
            yield from it
        except plyvel.Error as exc:
            raise self._read_failed(exc) from None
        finally:
            it.close()

    def account(self, address: bytes) -> Account:
        acc = self.accounts.get(address)
        if acc is None:
            raw = self.get(schema.account_key(address))
            acc = Account(*unpack(raw)) if raw is not None else Account()
            if len(self.accounts) >= ACCOUNT_CACHE_LIMIT:
                self.accounts.clear()
            self.accounts[address] = acc
        return acc

    def header(self, block_hash: bytes) -> BlockHeader | None:
        raw = self.get(schema.header_key(block_hash))
        return BlockHeader.from_fields(unpack(raw)) if raw is not None else None

    def block(self, block_hash: bytes) -> Block | None:
        raw = self.get(schema.block_key(block_hash))
        return Block.decode(raw) if raw is not None else None

    def block_raw(self, block_hash: bytes) -> bytes | None:
        return self.get(schema.block_key(block_hash))

    def meta(self, block_hash: bytes) -> BlockMeta | None:
        raw = self.get(schema.meta_key(block_hash))
        return BlockMeta.decode(raw) if raw is not None else None

    def hash_at(self, height: int) -> bytes | None:
        return self.get(schema.height_key(height))

    def tx_location(self, txid: bytes) -> TxLocation | None:
        raw = self.get(schema.tx_key(txid))
        if raw is None:
            return None
        block_hash, index = unpack(raw)
        return TxLocation(block_hash, index)

    def undo(self, block_hash: bytes) -> dict[bytes, Account]:
        raw = self.get(schema.undo_key(block_hash))
        if raw is None:
            raise StoreError(f"missing undo record for {block_hash.hex()}")
        return schema.decode_undo(raw)

    def metadata(self, name: str) -> bytes | None:
        return self.get(schema.metadata_key(name))

    def journal(self) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) of every record of the pool's journal (`journal.read_journal`
        sorts them): the old form's, then the entries, oldest first."""
        yield from self.scan(schema.LEGACY_JOURNAL)
        yield from self.scan(schema.JOURNAL)

    def all_accounts(self) -> Iterator[tuple[bytes, Account]]:
        for key, value in self.scan(schema.ACCOUNT):
            yield key[1:], Account(*unpack(value))

    def history(self, address: bytes, offset: int, limit: int,
                before: tuple[int, int] | None = None,
                ) -> tuple[int, list[HistoryRecord]]:
        """The address's count of entries, and up to `limit` entries newest first after
        skipping `offset`; with `before` = (height, index), only entries older than that
        position (a seek, not a skip)."""
        prefix = schema.history_prefix(address)
        total = schema.decode_count(self.get(schema.history_count_key(address)))
        items: list[HistoryRecord] = []
        if before is None:
            entries = self.scan(prefix, reverse=True)
        else:
            entries = self.scan(b"", start=prefix, stop=schema.history_key(address, *before),
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
        return [key[1:] for key, _ in self.scan(schema.TIP)]

    def invalid_blocks(self, limit: int) -> list[tuple[bytes, str]]:
        out = []
        for key, value in self.scan(schema.INVALID):
            out.append((key[1:], value.decode()))
            if len(out) >= limit:
                break
        return out

    def invalid(self, block_hash: bytes) -> str | None:
        raw = self.get(schema.invalid_key(block_hash))
        return raw.decode() if raw is not None else None

    # --- writes -------------------------------------------------------------------------

    @property
    def writable(self) -> bool:
        return not (self.write_failure or self.damage)

    def commit(self, batch: Batch, sync: bool = True) -> None:
        """Write `batch` atomically (synced unless `sync` is false). A failed write is
        `StoreWriteFailed` (damage reported by LevelDB, `StoreCorrupt`), and this handle
        refuses every later one (see the module docstring); the account cache takes the
        batch's accounts only once it is written."""
        if self.damage:
            raise StoreCorrupt(self.damage)
        if self.write_failure:
            raise StoreWriteFailed(self.write_failure)
        try:
            with self.db.write_batch(transaction=True, sync=sync) as wb:
                for key in batch.deletes:
                    wb.delete(key)
                for key, value in batch.puts.items():
                    wb.put(key, value)
        except plyvel.CorruptionError as exc:
            err = damaged(self.path, _reason(exc))
            self.damage = err.message
            raise err from None
        except (plyvel.Error, OSError) as exc:  # ENOSPC, EIO, a background error LevelDB keeps
            self.write_failure = (f"writing the chain database {self.path} failed: "
                                  f"{_reason(exc)}")
            raise StoreWriteFailed(self.write_failure) from None
        self.accounts.update(batch.accounts)

    def checked_head(self) -> tuple[BlockHeader, BlockMeta]:
        """The head's header and meta, checked before anything is served: its block is
        stored and decodes, it is the main chain's block at its height, and the stored state
        is the state its header commits to. Anything else is a damaged database, refused
        (`StoreCorrupt`)."""
        path = self.path
        head_hash = self.metadata("head")
        if head_hash is None:
            raise corrupt(path, "it has no head record")
        try:
            header, meta = self.header(head_hash), self.meta(head_hash)
            raw = self.block_raw(head_hash)
            block = Block.decode(raw) if raw is not None else None
        except Malformed as exc:
            raise corrupt(path, f"the head block {head_hash.hex()[:16]} does not decode "
                          f"({exc})") from None
        if header is None or meta is None or block is None:
            raise corrupt(path, f"the head block {head_hash.hex()[:16]} is missing")
        if block.hash != head_hash or header.raw != block.header.raw:
            raise corrupt(path, f"the head block stored under {head_hash.hex()[:16]} is "
                          "another block")
        if self.hash_at(header.height) != head_hash:
            raise corrupt(path, f"the head block {head_hash.hex()[:16]} is not the main "
                          f"chain's block at its height {header.height}")
        if root_of(meta.state_value) != header.state_root:
            raise corrupt(path, f"the stored state (root {root_of(meta.state_value).hex()[:16]})"
                          f" is not the state the head block {header.height} commits to "
                          f"({header.state_root.hex()[:16]})")
        return header, meta

    def authorities(self, block_hash: bytes) -> Snapshot | None:
        raw = self.get(schema.authorities_key(block_hash))
        return Snapshot.decode(raw) if raw is not None else None

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
    batch.put(schema.authorities_key(block.hash), genesis_snapshot(genesis.miners).encode())
    batch.put(schema.metadata_key("genesis"), block.hash)
    batch.put(schema.metadata_key("head"), block.hash)
    batch.put(schema.metadata_key("version"), schema.SCHEMA_VERSION)
    store.commit(batch)
