"""`ccoin node reindex`: rebuild the chain database from the blocks it holds.

Bitcoin Core's `-reindex`, for ccoin's one database: nothing but the stored blocks is
trusted. The old database is opened (with LevelDB's own repair, `store.salvage`, when it
cannot be opened or read as it is); every stored block is read, and kept if it decodes
under its own hash, its body matches its header and its header passes the rules against
its ancestors. The heaviest kept branch (fork choice as on import; the recorded head
keeps a tie) is replayed from the genesis alloc with `common.ledger` into a new database
built beside the old one, with the same `indexes.connect_block` an import uses; the first
block that does not apply ends the main chain there (the valid prefix: the node fetches
the rest from its peers). Side blocks, the known-invalid marks and the mempool journal
(in its current form, an old-form journal moved into it) are carried over. Then the new
database takes the old one's place (two renames; a crash between them is finished by the
next run, and refused by the node meanwhile); the old one is kept beside it if the new
chain lost anything.
"""

from __future__ import annotations

import os
import shutil
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import consensus, errors
from common.authorities import Snapshot, decode_proposals
from common.genesis import Genesis, genesis_block
from common.ledger import apply_block
from common.types import Account, Block, BlockHeader, Transaction
from services.state import indexes, schema
from services.state.journal import encode_entry, read_journal
from services.state.replay import Ancestry, Meter, Problems, Progress, no_progress
from services.state.store import (
    OLD_SUFFIX,
    REINDEX_SUFFIX,
    Batch,
    BlockMeta,
    Store,
    initial_genesis_commit,
    salvage,
)

BATCH_BLOCKS = 256  # blocks per commit into the new database (synced once, at the end)


@dataclass(slots=True)
class ReindexReport:
    """What a reindex did; `kept_old` names where the old database was kept (asked for, or
    because the new chain is shorter or left blocks out)."""

    chain_dir: str
    salvaged: list[str] = field(default_factory=list)  # files LevelDB's repair set aside
    old_height: int = -1  # the head record's height before (-1: unreadable)
    height: int = 0
    head: bytes = b""
    side_blocks: int = 0
    dropped: int = 0  # stored blocks not kept: damaged, invalid, or above a damaged one
    journal: int = 0
    journal_dropped: int = 0
    kept_old: str = ""
    problems: Problems = field(default_factory=Problems)
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {"ok": True, "chain_dir": self.chain_dir, "height": self.height,
                "head": self.head.hex(), "old_height": self.old_height,
                "side_blocks": self.side_blocks, "dropped_blocks": self.dropped,
                "journal": self.journal, "journal_dropped": self.journal_dropped,
                "salvaged_files": self.salvaged, "kept_old": self.kept_old,
                "problem_count": self.problems.count, "problems": self.problems.listed,
                "seconds": round(self.seconds, 3)}


def reindex_chain(chain_dir: Path, genesis: Genesis, progress: Progress = no_progress,
                  keep_old: bool = False) -> ReindexReport:
    """Rebuild the database in `chain_dir` (see the module docstring). Raises
    `StoreLocked` while a node uses it, `StoreError` when there is nothing to rebuild or it
    holds another chain."""
    started = time.monotonic()
    report = ReindexReport(str(chain_dir))
    old = chain_dir.with_name(chain_dir.name + OLD_SUFFIX)
    new_dir = chain_dir.with_name(chain_dir.name + REINDEX_SUFFIX)
    if old.exists():
        if chain_dir.exists():
            raise errors.StoreError(f"{old} holds the database an earlier reindex set aside; "
                                    "delete or move it first")
        old.rename(chain_dir)  # an earlier run stopped between its two renames: start over
    source = _open_source(chain_dir, report)
    try:
        try:
            found = _read_blocks(source, genesis, report, progress)
        except _Unreadable as exc:  # a damaged table stopped the scan: salvage, read again
            report.problems.add(f"reading the blocks: {exc}")
            source.close()
            source = _salvaged(chain_dir, report)
            try:
                found = _read_blocks(source, genesis, report, progress)
            except _Unreadable as again:
                raise errors.StoreCorrupt(f"the blocks in {chain_dir} cannot be read even "
                                          f"after LevelDB's repair: {again}") from None
        report.dropped = found.dropped
        while True:  # until a chosen branch replays; each failure drops at least one block
            if new_dir.exists():
                shutil.rmtree(new_dir)
            target = Store(new_dir)
            try:
                failed = _Builder(source, target, genesis, found, report, progress).build()
            finally:
                target.close()
            if failed is None:
                break
            report.dropped += found.drop(failed)
    finally:
        source.close()
    # a shorter chain than before, or blocks left out: keep what they were read from (a
    # wrong genesis file, say, leaves nothing above genesis), whatever was asked
    lost = report.height < report.old_height or report.dropped > 0
    _swap(chain_dir, new_dir, old, keep_old or lost, report)
    report.seconds = time.monotonic() - started
    return report


# --- the old database ---------------------------------------------------------------------


class _Unreadable(Exception):
    """A damaged table stopped a scan of the old database (before LevelDB's repair)."""


def _open_source(chain_dir: Path, report: ReindexReport) -> Store:
    """The old database as it is, or as LevelDB's repair leaves it if it cannot be opened
    (`StoreLocked`, a node running, is never repaired over)."""
    try:
        return Store(chain_dir, inspect=True)
    except errors.StoreLocked:
        raise
    except errors.StoreCorrupt as exc:
        report.problems.add(f"the database could not be opened: {exc.damage}")
        return _salvaged(chain_dir, report)


def _salvaged(chain_dir: Path, report: ReindexReport) -> Store:
    report.salvaged += salvage(chain_dir)
    try:
        return Store(chain_dir, inspect=True)
    except errors.StoreCorrupt as exc:
        raise errors.StoreCorrupt(f"the chain database {chain_dir} cannot be opened even "
                                  f"after LevelDB's repair: {exc.damage}") from None


@dataclass(slots=True)
class Found:
    """The stored blocks that passed every check that needs no state (their headers and
    the weight of their branch), what they are a parent of, and the branch to replay."""

    genesis: Genesis
    headers: dict[bytes, BlockHeader]
    children: dict[bytes, list[bytes]]
    weights: dict[bytes, int]
    head: bytes | None  # the recorded head, which keeps a tie (as the first seen would)
    invalid: dict[bytes, str]  # known-invalid marks: carried over, and new ones
    snapshots: dict[bytes, Snapshot]  # the authorities after each kept block
    dropped: int = 0
    tip: bytes = b""

    def choose(self) -> None:
        """The heaviest kept tip, by the fork choice an import uses."""
        tip = self.head if self.head is not None and self.head in self.weights else \
            genesis_block(self.genesis).hash
        for h, w in self.weights.items():
            if consensus.is_better_tip(self.genesis, w, h, self.weights[tip], tip):
                tip = h
        self.tip = tip

    def drop(self, h: bytes) -> int:
        """Forget `h` and every block above it, choose again; how many were dropped."""
        dropped, stack = 0, [h]
        while stack:
            cur = stack.pop()
            if self.headers.pop(cur, None) is not None:
                self.weights.pop(cur, None)
                dropped += 1
                stack.extend(self.children.get(cur, ()))
        self.choose()
        return dropped


def _read_blocks(source: Store, genesis: Genesis, report: ReindexReport,
                 progress: Progress) -> Found:
    """Read every stored block, check what needs no state, and choose the branch."""
    gblock = genesis_block(genesis)
    try:
        recorded = source.metadata("genesis")
    except errors.StoreCorrupt:
        recorded = None
    if recorded is not None and recorded != gblock.hash:
        raise errors.StoreError(f"{source.path} holds another chain (genesis "
                                f"{recorded.hex()[:16]}) than the genesis file "
                                f"({gblock.hash.hex()[:16]}); nothing was changed")
    head = _recorded_head(source, report)
    headers: dict[bytes, BlockHeader] = {}
    problems = Problems()
    meter = Meter(progress, "reading blocks", None)
    try:
        for key, raw in source.scan(schema.BLOCK):
            meter.step()
            block_hash = key[1:]
            try:
                block = Block.decode(raw)
                if block.hash != block_hash:
                    raise errors.Malformed(f"it is block {block.hash.hex()[:16]}")
                consensus.validate_body(genesis, block, verify_signatures=False)
            except errors.CcoinError as exc:
                problems.add(f"block {block_hash.hex()[:16]}: {exc}")
                continue
            if block.height > 0:
                headers[block_hash] = block.header
        invalid = {key[1:]: value.decode(errors="replace")
                   for key, value in source.scan(schema.INVALID)}
    except errors.StoreCorrupt as exc:
        raise _Unreadable(exc.damage) from None
    meter.finish()
    for text in problems.listed:
        report.problems.add(text)
    found = _check_headers(genesis, gblock.header, headers, head, invalid, report)
    found.dropped += problems.count
    return found


def _recorded_head(source: Store, report: ReindexReport) -> bytes | None:
    try:
        head = source.metadata("head")
        header = source.header(head) if head is not None else None
    except (errors.StoreCorrupt, errors.Malformed):
        return None
    report.old_height = header.height if header is not None else -1
    return head


def _check_headers(genesis: Genesis, gheader: BlockHeader, headers: dict[bytes, BlockHeader],
                   head: bytes | None, invalid: dict[bytes, str],
                   report: ReindexReport) -> Found:
    """Check every header against its ancestors, from genesis outwards (a block marked
    invalid, or above one, is not kept), and choose the branch."""
    children: dict[bytes, list[bytes]] = {}
    for h, header in headers.items():
        children.setdefault(header.parent, []).append(h)
    ancestry = Ancestry(genesis)
    ancestry.add_genesis(gheader)
    weights = {gheader.hash: 0}
    queue = deque([gheader.hash])
    while queue:
        parent = queue.popleft()
        for h in sorted(children.get(parent, ())):
            header = headers[h]
            if h in invalid:
                continue
            try:
                snapshot = ancestry.check(header)
            except errors.CcoinError as exc:
                report.problems.add(f"block {h.hex()[:16]} at height {header.height}: "
                                    f"{exc.code}: {exc}")
                continue
            ancestry.add(header, snapshot)
            weights[h] = weights[parent] + ancestry.weight(header)
            queue.append(h)
    kept = {h: headers[h] for h in weights if h != gheader.hash}
    kept[gheader.hash] = gheader
    found = Found(genesis, kept, {p: [c for c in cs if c in weights]
                                  for p, cs in children.items()},
                  weights, head, invalid, ancestry.snapshots,
                  dropped=len(headers) - (len(kept) - 1))
    found.choose()
    return found


# --- the new database ----------------------------------------------------------------------


class _Builder:
    """One attempt at the new database: the chosen branch replayed into `target`, then the
    side blocks, tips, marks and journal."""

    def __init__(self, source: Store, target: Store, genesis: Genesis, found: Found,
                 report: ReindexReport, progress: Progress) -> None:
        self.source, self.target, self.genesis = source, target, genesis
        self.found, self.report, self.progress = found, report, progress
        self.batch = Batch()

    def build(self) -> bytes | None:
        """Build it; None when done, else the block whose replay failed (nothing above it
        can be the main chain: choose again and start over)."""
        gblock = genesis_block(self.genesis)
        initial_genesis_commit(self.target, self.genesis, gblock)
        self.report.head, self.report.height, self.report.side_blocks = gblock.hash, 0, 0
        failed = self._main_chain(gblock)
        if failed is not None:
            return failed
        self._side_blocks()
        self._carry_over()
        self.batch.put(schema.metadata_key("head"), self.report.head)
        self.target.commit(self.batch, sync=True)
        return None

    def _path(self) -> list[bytes]:
        """The chosen tip's branch, from above genesis up to it."""
        path = []
        h = self.found.tip
        while self.found.headers[h].height > 0:
            path.append(h)
            h = self.found.headers[h].parent
        path.reverse()
        return path

    def _main_chain(self, gblock: Block) -> bytes | None:
        path = self._path()
        meter = Meter(self.progress, "replaying blocks", len(path))
        meta = self.target.meta(gblock.hash)
        assert meta is not None
        value = meta.state_value

        def view(address: bytes) -> Account:
            """Accounts as the batch leaves them (several blocks go in one batch)."""
            acc = self.batch.accounts.get(address)
            return acc if acc is not None else self.target.account(address)

        for n, h in enumerate(path):
            block = self._body(h)
            try:
                if block is None:
                    raise errors.StoreCorrupt(f"block {h.hex()[:16]} cannot be read again")
                changes = apply_block(view, value, block, self.genesis.network_id,
                                      self.genesis.reward)
            except errors.CcoinError as exc:
                self.report.problems.add(f"block {h.hex()[:16]} at height {n + 1}: "
                                         f"{exc.code}: {exc}; not kept, nor any above it")
                if isinstance(exc, errors.InvalidBlock):
                    self.found.invalid[h] = exc.code
                return h
            total = self.found.weights[h]
            value = changes.state_value
            self.target.write_block(self.batch, block, BlockMeta(total, value))
            self.batch.put(schema.authorities_key(h), self.found.snapshots[h].encode())
            indexes.connect_block(self.batch, self.target.get, block, changes.before,
                                  changes.after)
            self.report.head, self.report.height = h, block.height
            meter.step()
            if (n + 1) % BATCH_BLOCKS == 0:
                # unsynced: the new database counts only once it is swapped in, synced
                self.target.commit(self.batch, sync=False)
                self.batch = Batch()
        meter.finish()
        self._main = {gblock.hash, *path}
        return None

    def _body(self, h: bytes) -> Block | None:
        try:
            raw = self.source.block_raw(h)
            return Block.decode(raw) if raw is not None else None
        except (errors.StoreCorrupt, errors.Malformed):
            return None

    def _side_blocks(self) -> None:
        """Every kept block off the main chain, stored as an import stores a side block
        (its state is computed only if it ever joins the main chain), and the tips: the
        kept blocks no kept block builds on."""
        found = self.found
        for h in found.headers:
            if h in self._main:
                continue
            block = self._body(h)
            assert block is not None, "read once already"
            self.target.write_block(self.batch, block, BlockMeta(found.weights[h], 0))
            self.batch.put(schema.authorities_key(h), found.snapshots[h].encode())
            self.report.side_blocks += 1
        self.batch.delete(schema.tip_key(genesis_block(self.genesis).hash))
        for h in found.headers:
            if not any(c in found.headers for c in found.children.get(h, ())):
                self.batch.put(schema.tip_key(h), b"")

    def _carry_over(self) -> None:
        """The known-invalid marks, this node's authority-vote proposals, and the mempool
        journal's readable entries (the node's journal replay at start keeps those that
        still apply)."""
        for h, code in self.found.invalid.items():
            self.batch.put(schema.invalid_key(h), code.encode())
        try:
            proposals = self.source.metadata(schema.PROPOSALS)
            if proposals is not None:
                decode_proposals(proposals)  # only a readable list is kept
                self.batch.put(schema.metadata_key(schema.PROPOSALS), proposals)
        except (errors.StoreCorrupt, errors.Malformed) as exc:
            self.report.problems.add(f"this node's proposals are not kept: {exc}")
        records: list[tuple[bytes, bytes]] = []
        try:
            records.extend(self.source.journal())
        except errors.StoreCorrupt as exc:
            self.report.problems.add(f"mempool journal: the rest is unreadable: "
                                     f"{exc.damage}")
        read = read_journal(records)
        # in the new form: each entry under its own number (a healthy journal comes
        # through record for record), the old form's in one entry after them
        groups = [(e.seq, e.txs) for e in read.entries]
        if read.legacy:
            groups.append((read.top + 1, read.legacy))
        self.report.journal = 0
        self.report.journal_dropped = read.unreadable + len(read.stale_keys)
        for seq, txs in groups:
            kept: list[Transaction] = []
            for tx in txs:
                try:
                    # LevelDB's repair replays log records unchecked: a garbled entry may
                    # still decode, and the pool takes the journal's word for signatures
                    consensus.verify_transaction_signature(tx)
                    kept.append(tx)
                except errors.CcoinError:
                    self.report.journal_dropped += 1
            if kept:
                self.batch.put(schema.journal_key(seq), encode_entry(kept))
                self.report.journal += len(kept)


def _swap(chain_dir: Path, new_dir: Path, old: Path, keep_old: bool,
          report: ReindexReport) -> None:
    """The new database takes the old one's place. Between the two renames the chain dir
    is absent: the node refuses to start (it would create a new chain), and the next
    reindex puts the old one back and starts over."""
    chain_dir.rename(old)
    new_dir.rename(chain_dir)
    fd = os.open(chain_dir.parent, os.O_RDONLY)
    try:
        os.fsync(fd)  # both renames on disk before the old database goes
    finally:
        os.close(fd)
    if keep_old:
        report.kept_old = str(old)
    else:
        shutil.rmtree(old)
