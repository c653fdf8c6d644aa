"""`ccoin node check`: the chain database, checked against its own blocks.

Walks the main chain from genesis: each block is stored and decodes under its own hash,
its header links to the one below and passes the header rules (seal, proof, difficulty,
recency: `common.consensus`), its transactions match its tx root, and replaying it with
`common.ledger` on the state the blocks before it built (from the genesis alloc) gives the
state root its header commits to. Along the way every record an import writes for it is
compared with what the block implies: its meta (total weight, state value), undo record,
height entry, transaction locations and history entries. Then every record of the
database is read once with checksums verified (damage anywhere, side blocks included, is
found), and the stored accounts, history counts and index sizes are compared with the
replay's. ccoin writes nothing (LevelDB's open does its own housekeeping, and a database
of an older schema is upgraded as the node would); the database must not be in use (the
LevelDB lock).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import consensus, errors
from common.authorities import Snapshot, genesis_snapshot
from common.encoding import pack, unpack
from common.genesis import Genesis, genesis_block
from common.statehash import root_of
from common.status import Direction
from common.types import Account, Block, BlockHeader, Transaction
from services.state import schema
from services.state.journal import decode_entry
from services.state.replay import Ancestry, Meter, Problems, Progress, Replay, no_progress
from services.state.store import BlockMeta, Store

# every kind of record, by prefix, as the report names it
KINDS = {
    schema.HEADER: "header", schema.BLOCK: "block", schema.META: "block meta",
    schema.HEIGHT: "height index", schema.TX_INDEX: "transaction index",
    schema.ACCOUNT: "account", schema.UNDO: "undo", schema.JOURNAL: "mempool journal",
    schema.LEGACY_JOURNAL: "old-form mempool journal",
    schema.INVALID: "invalid-block", schema.HISTORY: "history",
    schema.HISTORY_COUNT: "history count", schema.TIP: "tip", schema.METADATA: "metadata",
    schema.AUTHORITIES: "authority snapshot",
}
LISTED_PER_KIND = 5  # accounts or entries named one by one before "and N more"


@dataclass(frozen=True, slots=True)
class CheckReport:
    chain_dir: str
    height: int  # the main chain's top as walked (-1: not even genesis)
    head: bytes  # the head record's hash (b"" if none could be read)
    blocks: int  # main-chain blocks checked
    transactions: int
    accounts: int
    problems: tuple[str, ...]  # the first ones, in words
    problem_count: int
    seconds: float

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "chain_dir": self.chain_dir, "height": self.height,
                "head": self.head.hex(), "blocks": self.blocks,
                "transactions": self.transactions, "accounts": self.accounts,
                "problem_count": self.problem_count, "problems": list(self.problems),
                "seconds": round(self.seconds, 3)}


def check_chain(chain_dir: Path, genesis: Genesis,
                progress: Progress = no_progress) -> CheckReport:
    """Check the database in `chain_dir` (see the module docstring). A database that cannot
    even be opened is a finding; one in use (`StoreLocked`) or absent is an error."""
    started = time.monotonic()
    try:
        store = Store(chain_dir, inspect=True)
    except errors.StoreCorrupt as exc:
        problems = Problems()
        problems.add(f"the database cannot be opened: {exc.damage}")
        return CheckReport(str(chain_dir), -1, b"", 0, 0, 0, tuple(problems.listed),
                           problems.count, time.monotonic() - started)
    try:
        checker = _Checker(store, genesis, progress)
        checker.run()
    finally:
        store.close()
    p = checker.problems
    return CheckReport(str(chain_dir), checker.height, checker.head_hash, checker.blocks,
                       checker.txs, len(checker.replay.accounts), tuple(p.listed), p.count,
                       time.monotonic() - started)


@dataclass(slots=True)
class _Records:
    """What reading every record gave: per kind, how many (None: not readable to the end),
    and the values the comparisons need."""

    counts: dict[bytes, int | None] = field(default_factory=dict)
    accounts: dict[bytes, bytes] = field(default_factory=dict)  # address -> raw value
    history_counts: dict[bytes, int] = field(default_factory=dict)


class _Checker:
    def __init__(self, store: Store, genesis: Genesis, progress: Progress) -> None:
        self.store = store
        self.genesis = genesis
        self.progress = progress
        self.problems = Problems()
        self.ancestry = Ancestry(genesis)
        self.replay = Replay(genesis)
        self.head_hash = b""
        self.height = -1
        self.blocks = 0
        self.txs = 0
        self.main: set[bytes] = set()
        self.history: dict[bytes, int] = {}  # expected entries per address

    def run(self) -> None:
        top = self._metadata()
        if top is None:
            return
        walked = self._walk(top)
        records = self._read_all()
        if walked:
            self._compare(records)

    # --- the records that name the chain ----------------------------------------------------

    def _metadata(self) -> int | None:
        """The head's height (or -1: walk the height index to its end); None: stop here."""
        add = self.problems.add
        try:
            genesis = self.store.metadata("genesis")
            version = self.store.metadata("version")
            head = self.store.metadata("head")
            header = self.store.header(head) if head is not None else None
        except errors.StoreCorrupt as exc:
            add(f"the metadata cannot be read: {exc.damage}")
            return -1
        except errors.Malformed as exc:
            add(f"the head's header record does not decode ({exc})")
            header = None
        expected = genesis_block(self.genesis).hash
        if genesis is None:
            add("there is no genesis record")
        elif genesis != expected:
            add(f"the database holds another chain (genesis {genesis.hex()[:16]}) than the "
                f"genesis file ({expected.hex()[:16]})")
            return None
        if version not in schema.READABLE_VERSIONS:
            add(f"schema version {version!r}, expected {schema.SCHEMA_VERSION!r}")
        if head is None:
            add("there is no head record")
            return -1
        self.head_hash = head
        if header is None:
            add(f"the head block {head.hex()[:16]} has no header record")
            return -1
        return header.height

    def _walk(self, top: int) -> bool:
        """Check the main chain from genesis to `top` (-1: as far as the height index
        goes); True if it was whole up to the head record."""
        meter = Meter(self.progress, "blocks", top + 1 if top >= 0 else None)
        prev: BlockHeader | None = None
        h = 0
        while top < 0 or h <= top:
            try:
                block_hash = self.store.hash_at(h)
                if block_hash is None:
                    if top < 0 and h > 0:
                        break
                    self.problems.add(f"height {h}: no entry in the height index")
                    return False
                block = self._block(h, block_hash, prev)
            except errors.StoreCorrupt as exc:
                self.problems.add(f"height {h}: unreadable: {exc.damage}")
                return False
            if block is None:
                return False
            prev = block.header
            self.height = h
            meter.step()
            h += 1
        meter.finish()
        if top < 0:
            return False
        try:
            beyond = self.store.hash_at(top + 1)
        except errors.StoreCorrupt as exc:
            self.problems.add(f"height {top + 1}: unreadable: {exc.damage}")
            return False
        if prev is not None and prev.hash != self.head_hash:
            self.problems.add(f"the head record names {self.head_hash.hex()[:16]} but the "
                              f"main chain's block at height {top} is {prev.hash.hex()[:16]}")
        if beyond is not None:
            self.problems.add(f"the height index goes on past the head (height {top + 1})")
        return True

    def _block(self, h: int, block_hash: bytes, prev: BlockHeader | None) -> Block | None:
        """Check the main chain's block at height `h`; None (the walk stops) if it cannot
        be replayed."""
        add = self.problems.add
        where = f"height {h} ({block_hash.hex()[:16]})"
        raw = self.store.block_raw(block_hash)
        if raw is None:
            add(f"{where}: the block is missing")
            return None
        try:
            block = Block.decode(raw)
        except errors.CcoinError as exc:
            add(f"{where}: the block does not decode ({exc})")
            return None
        header = block.header
        if block.hash != block_hash:
            add(f"{where}: the block stored there is {block.hash.hex()[:16]}")
            return None
        if header.height != h:
            add(f"{where}: the block says height {header.height}")
            return None
        try:
            if h == 0:
                if block_hash != genesis_block(self.genesis).hash:
                    add(f"{where}: not the genesis file's genesis block")
                    return None
                if header.state_root != root_of(self.replay.state_value):
                    raise errors.BadStateRoot("the genesis alloc gives another state root")
                changes_before: dict[bytes, Account] = {}
                snapshot = genesis_snapshot(self.genesis.miners)
            else:
                assert prev is not None
                if header.parent != prev.hash:
                    add(f"{where}: its parent is {header.parent.hex()[:16]}, not the block "
                        f"at height {h - 1}")
                    return None
                snapshot = self.ancestry.check(header)
                changes_before = self.replay.apply(
                    block, self.ancestry.signers_at(header.parent)).before
        except errors.CcoinError as exc:
            add(f"{where}: {exc.code}: {exc}")
            return None
        self.ancestry.add(header, snapshot)
        self._authorities(where, block_hash, snapshot)
        self.main.add(block_hash)
        self.blocks += 1
        self.txs += len(block.txs)
        self._records(where, block, changes_before)
        return block

    def _authorities(self, where: str, block_hash: bytes, snapshot: Snapshot) -> None:
        """The stored authority snapshot against the one the headers give."""
        try:
            stored = self.store.authorities(block_hash)
        except errors.Malformed:
            self.problems.add(f"{where}: the authority snapshot does not decode")
            return
        if stored is None:
            self.problems.add(f"{where}: the authority snapshot is missing")
        elif stored != snapshot:
            self.problems.add(f"{where}: the authority snapshot differs from the one its "
                              f"headers give ({len(stored.signers)} authorities stored, "
                              f"{len(snapshot.signers)} computed)")

    def _records(self, where: str, block: Block, before: dict[bytes, Account]) -> None:
        """The records an import wrote for this main-chain block, against the block."""
        add, store, h = self.problems.add, self.store, block.hash
        raw = store.get(schema.header_key(h))
        if raw != block.header.raw:
            add(f"{where}: the header record is {'missing' if raw is None else 'wrong'}")
        try:
            meta = store.meta(h)
        except errors.Malformed:
            add(f"{where}: the block meta does not decode")
        else:
            if meta is None:
                add(f"{where}: the block meta is missing")
            elif meta != BlockMeta(self.replay.total_weight, self.replay.state_value):
                add(f"{where}: the block meta (total weight, state value) differs from the "
                    "replay")
        if store.get(schema.undo_key(h)) != schema.encode_undo(before):
            add(f"{where}: the undo record differs from the accounts the block changed")
        for index, tx in enumerate(block.txs):
            self._tx(where, block, index, tx)

    def _tx(self, where: str, block: Block, index: int, tx: Transaction) -> None:
        add, store = self.problems.add, self.store
        if store.get(schema.tx_key(tx.id)) != pack([block.hash, index]):
            add(f"{where}: transaction {tx.id.hex()[:16]}: the transaction index is "
                "missing or wrong")
        entries = [(tx.sender, Direction.SELF)] if tx.sender == tx.to else \
            [(tx.sender, Direction.OUT), (tx.to, Direction.IN)]
        for address, direction in entries:
            self.history[address] = self.history.get(address, 0) + 1
            key = schema.history_key(address, block.height, index)
            if store.get(key) != pack([tx.id, direction.value]):
                add(f"{where}: transaction {tx.id.hex()[:16]}: the history entry of "
                    f"{address.hex()} is missing or wrong")

    # --- every record, read once --------------------------------------------------------

    def _read_all(self) -> _Records:
        """Read every record with checksums verified."""
        meter = Meter(self.progress, "records", None)
        found = _Records()
        for prefix, kind in KINDS.items():
            n = 0
            try:
                for key, value in self.store.scan(prefix):
                    n += 1
                    meter.step()
                    self._record(prefix, kind, key, value, found)
            except errors.StoreCorrupt as exc:
                self.problems.add(f"{kind} records: unreadable after {n}: {exc.damage}")
                n = -1
            found.counts[prefix] = n if n >= 0 else None
        meter.finish()
        return found

    def _record(self, prefix: bytes, kind: str, key: bytes, value: bytes,
                found: _Records) -> None:
        add, ident = self.problems.add, key[1:]
        try:
            if prefix == schema.ACCOUNT:
                found.accounts[ident] = value
            elif prefix == schema.HISTORY_COUNT:
                found.history_counts[ident] = schema.decode_count(value)
            elif prefix == schema.JOURNAL:
                if len(key) != schema.JOURNAL_KEY_LEN:
                    add(f"{kind} entry {ident.hex()[:16]} is not under a sequence number")
                txs, unreadable = decode_entry(value)  # as a start reads it
                if unreadable:
                    raise errors.Malformed(f"{unreadable} of its transactions do not decode")
                for tx in txs:
                    consensus.verify_transaction_signature(tx)  # the pool trusts the journal
            elif prefix == schema.LEGACY_JOURNAL:
                tx = Transaction.decode(value)  # moved to the new form at the next start
                if schema.legacy_journal_key(tx.id) != key:
                    add(f"{kind} entry {ident.hex()[:16]} is filed under another id")
                consensus.verify_transaction_signature(tx)
            elif ident in self.main:
                return  # checked on the walk
            elif prefix == schema.BLOCK:
                if Block.decode(value).hash != ident:
                    add(f"stored block {ident.hex()[:16]} is another block")
            elif prefix == schema.HEADER:
                if BlockHeader.from_fields(unpack(value)).hash != ident:
                    add(f"header record {ident.hex()[:16]} is another block's")
            elif prefix == schema.META:
                BlockMeta.decode(value)
        except (errors.CcoinError, ValueError, TypeError) as exc:
            add(f"{kind} record {ident.hex()[:16]} does not decode ({exc})")

    def _compare(self, found: _Records) -> None:
        """Stored accounts, history counts and index sizes against the replay."""
        add = self.problems.add
        if found.counts[schema.ACCOUNT] is not None:
            stored = found.accounts
            expected = {a: pack([acc.balance, acc.nonce])
                        for a, acc in self.replay.accounts.items()}
            wrong = sorted(a for a in stored.keys() | expected.keys()
                           if stored.get(a) != expected.get(a))
            for a in wrong[:LISTED_PER_KIND]:
                add(f"account {a.hex()}: stored {_account(stored.get(a))}, the blocks give "
                    f"{_account(expected.get(a))}")
            if len(wrong) > LISTED_PER_KIND:
                add(f"... and {len(wrong) - LISTED_PER_KIND} more accounts differ")
        if found.counts[schema.HISTORY_COUNT] is not None:
            counts = found.history_counts
            wrong = sorted(a for a in counts.keys() | self.history.keys()
                           if counts.get(a) != self.history.get(a))
            for a in wrong[:LISTED_PER_KIND]:
                add(f"history count of {a.hex()}: stored {counts.get(a, 0)}, the blocks "
                    f"give {self.history.get(a, 0)}")
        entries = sum(self.history.values())
        for prefix, expected_count in ((schema.HEIGHT, self.blocks),
                                       (schema.UNDO, self.blocks),
                                       (schema.TX_INDEX, self.txs),
                                       (schema.HISTORY, entries)):
            n = found.counts[prefix]
            if n is not None and n != expected_count:
                add(f"{KINDS[prefix]}: {n} records, the main chain gives {expected_count}")


def _account(raw: bytes | None) -> str:
    if raw is None:
        return "nothing"
    try:
        balance, nonce = unpack(raw)
        return f"balance {balance} nonce {nonce}"
    except (errors.CcoinError, ValueError, TypeError):
        return "an undecodable value"
