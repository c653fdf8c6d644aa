"""The chain: block import, fork choice and reorgs, and the pool's way in and out.

`Chain` owns the store and the mempool and is driven by the state service; it does I/O
only through the store, and every consensus decision is a call into `common`. One block
import (or one whole reorg) is one WriteBatch. The main chain's indexes are written and
undone by the one pair of functions in `indexes`, so a reorg is "disconnect the old branch,
connect the new" with the very code an import uses. Block templates are built in
`templates`; read-only questions are answered in `queries`.

Nothing in memory is ever ahead of the disk (DESIGN §11). The head moves only after its
batch is committed; the pool changes as its batch is built (each admission depends on the
ones before it), so when a commit fails (`StoreError`) the memory is put back to what the
store holds (`_forget_unwritten`: the head it has, the pool its journal holds, and the
journal's bookkeeping rebuilt from it) before the error goes on to the caller. The commits
that only tidy the journal (entries whose transactions a new head or a template found
stale) may fail without failing what they follow: the journal replay at the next open drops
those entries again.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass

from common import authorities, consensus, errors
from common.authorities import Snapshot
from common.genesis import Genesis, genesis_block
from common.ledger import apply_block
from common.status import BlockStatus, RemovalReason, TxStatus
from common.types import Account, Block, BlockHeader, Transaction
from services.state import indexes, schema
from services.state.journal import Journal, read_journal
from services.state.mempool import INCLUDED, Mempool, Removed
from services.state.results import ImportResult, TxFate
from services.state.store import (
    Batch,
    BlockMeta,
    Store,
    StoreError,
    corrupt,
    initial_genesis_commit,
)
from services.state.templates import TemplateCache, build_template

log = logging.getLogger("ccoin.state.chain")

HEADER_CACHE = 4096
FATE_MEMORY = 100_000  # explained statuses are kept in memory, for this many transactions
DEFAULT_MAX_REORG = 1000


@dataclass(frozen=True, slots=True)
class Head:
    header: BlockHeader
    meta: BlockMeta


class Chain:
    def __init__(self, store: Store, genesis: Genesis, max_reorg: int = DEFAULT_MAX_REORG,
                 mempool: Mempool | None = None) -> None:
        self.store = store
        self.genesis = genesis
        self.max_reorg = max_reorg
        self.mempool = mempool if mempool is not None else Mempool(genesis.network_id)
        gblock = genesis_block(genesis)
        existing = store.metadata("genesis")
        if existing is None:
            initial_genesis_commit(store, genesis, gblock)
        elif existing != gblock.hash:
            raise StoreError(f"the chain database {store.path} holds another chain (genesis "
                             f"{existing.hex()[:16]}) than the genesis file "
                             f"({gblock.hash.hex()[:16]})")
        self.genesis_hash = gblock.hash
        self._headers: dict[bytes, BlockHeader] = {}
        self._snapshots: dict[bytes, Snapshot] = {}
        self.templates = TemplateCache()
        self.fates: OrderedDict[bytes, TxFate] = OrderedDict()
        self.removals: list[Removed] = []  # drained by the service into events
        self.journal = Journal()  # every write of the pool's journal goes through it
        self.head = self._load_head()
        self.proposals = authorities.decode_proposals(self.store.metadata(schema.PROPOSALS))
        self._restore_journal()

    # --- reading ------------------------------------------------------------------------

    def _load_head(self) -> Head:
        """The head, checked before anything is served (`Store.checked_head`)."""
        return Head(*self.store.checked_head())

    def header(self, block_hash: bytes) -> BlockHeader | None:
        header = self._headers.get(block_hash)
        if header is None:
            header = self.store.header(block_hash)
            if header is not None:
                if len(self._headers) >= HEADER_CACHE:
                    self._headers.clear()
                self._headers[block_hash] = header
        return header

    def account(self, address: bytes) -> Account:
        return self.store.account(address)

    def is_main(self, header: BlockHeader) -> bool:
        return self.store.hash_at(header.height) == header.hash

    def block_at(self, height: int) -> bytes | None:
        """The raw main-chain block at `height`."""
        h = self.store.hash_at(height)
        return self.store.block_raw(h) if h is not None else None

    def ancestors(self, header: BlockHeader, count: int) -> list[BlockHeader]:
        """Up to `count` headers before `header`, nearest last."""
        out: list[BlockHeader] = []
        cur = header
        while len(out) < count and cur.height > 0:
            parent = self.header(cur.parent)
            if parent is None:
                break
            out.append(parent)
            cur = parent
        out.reverse()
        return out

    def authorities(self, block_hash: bytes) -> Snapshot:
        """The authorities after a stored block (`common.authorities`), stored with it."""
        snap = self._snapshots.get(block_hash) or self.store.authorities(block_hash)
        if snap is None:
            raise corrupt(self.store.path, f"block {block_hash.hex()[:16]} has no snapshot")
        if len(self._snapshots) >= HEADER_CACHE:
            self._snapshots.clear()
        self._snapshots[block_hash] = snap
        return snap

    def recent_signers(self, parent: BlockHeader) -> list[bytes]:
        """Coinbases of the recency window ending at `parent` (for the child's check)."""
        window = consensus.recency_window(self.authorities(parent.hash).signers)
        if not self.genesis.is_poa or window == 0:
            return []
        chain = [*self.ancestors(parent, window - 1), parent]
        return [h.coinbase for h in chain if h.height > 0][-window:]

    def anchor_timestamp(self, parent: BlockHeader) -> int | None:
        height = consensus.retarget_anchor_height(self.genesis, parent.height + 1)
        if height is None:
            return None
        cur: BlockHeader | None = parent
        while cur is not None and cur.height > height:
            cur = self.header(cur.parent)
        return cur.timestamp if cur is not None else None

    def next_difficulty(self, parent: BlockHeader) -> int:
        return consensus.next_difficulty(self.genesis, parent, self.anchor_timestamp(parent))

    def state_value_from_scratch(self) -> int:
        from common.statehash import from_scratch

        return from_scratch(self.store.all_accounts())

    # --- importing ----------------------------------------------------------------------

    def validate_header(self, header: BlockHeader, now_ms: int) -> tuple[BlockHeader, Snapshot]:
        """The parent of a valid `header`, and the authorities after it."""
        parent = self.header(header.parent)
        if parent is None:
            raise errors.UnknownParent(f"unknown parent {header.parent.hex()}")
        snapshot = consensus.validate_header(
            self.genesis, parent, header, now_ms=now_ms,
            recent_signers=self.recent_signers(parent),
            anchor_timestamp=self.anchor_timestamp(parent),
            snapshot=self.authorities(parent.hash))
        return parent, snapshot

    def weight(self, header: BlockHeader) -> int:
        """The block's own weight: in PoA, in turn or not for the set at its parent."""
        signers = self.authorities(header.parent).signers if self.genesis.is_poa else ()
        return consensus.block_weight(self.genesis, header, signers)

    def import_block(self, block: Block, now_ms: int) -> ImportResult:
        """Validate and store `block`; make it head (possibly through a reorg) when its
        branch is strictly heavier. Transaction signatures are not checked here: api and
        p2p verify them before anything reaches state."""
        h = block.hash
        if self.store.get(schema.meta_key(h)) is not None:
            return ImportResult(BlockStatus.KNOWN, block)
        reason = self.store.invalid(h)
        if reason is not None:
            raise errors.InvalidBlock(f"block {h.hex()[:16]} is known to be invalid: {reason}")
        parent, snapshot = self.validate_header(block.header, now_ms)
        own = self.templates.take(block)  # our miner's: the body was checked as it was built
        if own is None:
            # A body that does not match its header's tx_root may be a mutated copy of a
            # valid block (CVE-2012-2459): reject this copy without condemning its hash.
            consensus.validate_body(self.genesis, block, verify_signatures=False)
        parent_meta = self.store.meta(parent.hash)
        assert parent_meta is not None
        weight = parent_meta.total_weight + self.weight(block.header)
        if parent.hash == self.head.header.hash:
            try:
                changes = own if own is not None else apply_block(
                    self.account, parent_meta.state_value, block, self.genesis.network_id,
                    self.genesis.reward)
            except errors.InvalidBlock as exc:
                self._mark_invalid(h, exc)
                raise
            meta = BlockMeta(weight, changes.state_value)
            batch = Batch()
            self._store_new(batch, block, meta, snapshot)
            indexes.connect_block(batch, self.store.get, block, changes.before, changes.after)
            removed = self._commit_head(batch, block.header, meta, [block], [])
            return ImportResult(BlockStatus.HEAD, block, (block,), (), tuple(removed))
        if not consensus.is_better_tip(self.genesis, weight, h, self.head.meta.total_weight,
                                       self.head.header.hash):
            batch = Batch()
            # side branch: state is computed only if it ever becomes the main chain
            self._store_new(batch, block, BlockMeta(weight, 0), snapshot)
            self.store.commit(batch)
            return ImportResult(BlockStatus.SIDE, block)
        return self._reorg(block, weight, snapshot)

    def _store_new(self, batch: Batch, block: Block, meta: BlockMeta,
                   snapshot: Snapshot) -> None:
        """A block seen for the first time: stored with the authorities after it, and the
        tip of its branch."""
        self.store.write_block(batch, block, meta)
        batch.put(schema.authorities_key(block.hash), snapshot.encode())
        batch.delete(schema.tip_key(block.header.parent))
        batch.put(schema.tip_key(block.hash), b"")

    def _mark_invalid(self, block_hash: bytes, exc: errors.CcoinError) -> None:
        batch = Batch()
        batch.put(schema.invalid_key(block_hash), exc.code.encode())
        self.store.commit(batch, sync=False)

    def _commit_head(self, batch: Batch, header: BlockHeader, meta: BlockMeta,
                     connected: list[Block], disconnected: list[Block]) -> list[Removed]:
        """Commit `batch` (the blocks connected and disconnected, in it already) with the
        new head; the pool drops what the new main chain included or made stale, and takes
        back what the disconnected blocks held that the new branch does not.

        Those go into the journal (one entry) in this very batch, so no crash can lose them
        between the head switch and a later write; the ones the pool then refuses are
        released afterwards, the entry deleted if it is left with none (a crash before that
        only leaves them for the journal replay at the next start to refuse again)."""
        batch.put(schema.metadata_key("head"), header.hash)
        included = {tx.id for b in connected for tx in b.txs}
        # The journal holds what the pool holds: the pool's removals (the included ones
        # among them) are released, and an entry left with none is deleted. A transaction
        # the pool never had (all of them, in a sync) is in no entry: nothing to write.
        removed = self.mempool.on_accounts_changed(batch.accounts, included)
        self.journal.release(batch, [r.tx.id for r in removed])
        returned = [tx for b in disconnected for tx in b.txs if tx.id not in included]
        self.journal.add(batch, returned)
        self._commit_or_forget(batch)
        self.head = Head(header, meta)
        self.templates.clear()
        self._note(removed)
        if returned:
            self._readmit(returned, RemovalReason.REORG_CONFLICT)
        return removed

    def _branch_from_main(self, tip: Block) -> tuple[BlockHeader, list[Block]]:
        """The main-chain block `tip`'s branch forks from, and the branch after it, oldest
        first."""
        branch = [tip]
        cur = tip.header
        while True:
            parent = self.header(cur.parent)
            if parent is None:
                raise errors.UnknownParent("branch does not reach the main chain")
            if self.is_main(parent):
                branch.reverse()
                return parent, branch
            blk = self.store.block(parent.hash)
            if blk is None:
                raise errors.UnknownParent("branch block body missing")
            branch.append(blk)
            cur = parent

    def _reorg(self, tip: Block, weight: int, snapshot: Snapshot) -> ImportResult:
        """Switch to the heavier branch ending at `tip`, atomically: disconnect the main
        chain down to the fork, connect the branch, all in one batch."""
        fork, branch = self._branch_from_main(tip)
        depth = self.head.header.height - fork.height
        if depth > self.max_reorg:
            raise errors.InvalidBlock(f"reorg of depth {depth} exceeds the limit "
                                      f"{self.max_reorg}")
        batch = Batch()
        read = self.store.get
        disconnected: list[Block] = []
        for height in range(self.head.header.height, fork.height, -1):
            bhash = self.store.hash_at(height)
            assert bhash is not None
            blk = self.store.block(bhash)
            assert blk is not None
            indexes.disconnect_block(batch, read, blk)
            disconnected.append(blk)
        pending = batch.accounts

        def view(address: bytes) -> Account:
            """Accounts as the batch leaves them: the branch applies on the fork's state."""
            acc = pending.get(address)
            return acc if acc is not None else self.store.account(address)

        fork_meta = self.store.meta(fork.hash)
        assert fork_meta is not None
        state_value = fork_meta.state_value
        total = fork_meta.total_weight
        meta = fork_meta
        for blk in branch:
            try:
                changes = apply_block(view, state_value, blk, self.genesis.network_id,
                                      self.genesis.reward)
            except errors.InvalidBlock as exc:
                self._mark_invalid(blk.hash, exc)
                log.warning("reorg aborted: block %s invalid: %s", blk.hash.hex()[:16], exc)
                raise
            state_value = changes.state_value
            total += self.weight(blk.header)
            meta = BlockMeta(total, state_value)
            if blk is tip:
                self._store_new(batch, blk, meta, snapshot)
            else:
                self.store.write_block(batch, blk, meta)
            indexes.connect_block(batch, read, blk, changes.before, changes.after)
        assert total == weight
        removed = self._commit_head(batch, tip.header, meta, branch, disconnected)
        log.info("reorg: %d block(s) out, %d in, new head %d", len(disconnected), len(branch),
                 tip.height)
        return ImportResult(BlockStatus.HEAD, tip, tuple(branch), tuple(disconnected),
                            tuple(removed))

    # --- the pool's way in and out ------------------------------------------------------

    def add_transactions(self, txs: list[Transaction]) -> tuple[list[errors.CcoinError | None],
                                                               list[Transaction]]:
        """Admit verified transactions; journal the accepted ones in one synced batch
        before anyone is told they were accepted. Already-known ones count as accepted."""
        results: list[errors.CcoinError | None] = []
        accepted: list[Transaction] = []
        batch = Batch()
        for tx in txs:
            account = self.account(tx.sender)
            # A transaction the main chain holds has a nonce below its sender's, so only
            # those are looked up in the index: a fresh one costs no read.
            if tx.id in self.mempool or (tx.nonce < account.nonce
                                         and self.store.tx_location(tx.id) is not None):
                results.append(None)  # idempotent: a resent transaction is recognised
                continue
            try:
                displaced = self.mempool.add(tx, account)
            except errors.CcoinError as exc:
                results.append(exc)
                self._remember(tx.id, TxFate(TxStatus.REJECTED, exc.code, b"", tx.raw))
                continue
            if displaced:
                # (one admitted earlier in this batch is in no entry yet: not released)
                self.journal.release(batch, [r.tx.id for r in displaced])
                self._note(displaced)
            self.fates.pop(tx.id, None)
            accepted.append(tx)
            results.append(None)
        # One entry for the batch: what it admitted and still holds (a later transaction
        # of the same batch may have displaced an earlier one).
        self.journal.add(batch, [tx for tx in accepted if tx.id in self.mempool])
        if batch.puts or batch.deletes:
            self._commit_or_forget(batch)
        return results, accepted

    def _readmit(self, txs: list[Transaction], reason: RemovalReason) -> None:
        """Put transactions of disconnected blocks (journalled with the head switch) back
        into the pool; the ones that no longer fit leave the journal, dropped for
        `reason`."""
        displaced: list[Removed] = []
        failed = self.mempool.restore(txs, self.account, displaced)
        # what the pool refused, and what the returned ones pushed out of it (a lower fee
        # at a nonce, the cheapest of a full pool), leave the journal
        drop = Batch()
        self.journal.release(drop, [tx.id for tx, _ in failed]
                             + [r.tx.id for r in displaced])
        if drop.deletes:
            self._tidy(drop)
        self._note([*displaced, *(Removed(tx, reason) for tx, _ in failed)])

    def _restore_journal(self) -> None:
        """The pool as the journal holds it, and the journal's bookkeeping to match: the
        entries with nothing pooled, or unreadable, deleted, the old form moved to the new
        (one synced write)."""
        read = read_journal(self.store.journal())
        txs = read.txs
        failed = self.mempool.restore(txs, self.account)
        batch = Batch()
        emptied = self.journal.rebuild(batch, read, self.mempool.by_id)
        if batch.puts or batch.deletes:
            # Failing, it leaves the bookkeeping ahead of the disk (entries it counts
            # deleted, an old form it counts moved); harmless, as the store refuses every
            # write after a failed one, and a reopen reads the journal again.
            self._tidy(batch, sync=True)
        if txs or batch.deletes:
            log.info("mempool journal: %d restored, %d dropped, %d unreadable entries "
                     "removed, %d emptied ones deleted, %d old-form ones moved",
                     len(txs) - len(failed), len(failed), len(read.stale_keys), emptied,
                     len(read.legacy_keys))

    # --- memory never ahead of the disk -------------------------------------------------

    def _commit_or_forget(self, batch: Batch) -> None:
        """Commit a batch the pool (or the head) already reflects; when the write fails,
        put the memory back to what the store holds, then raise."""
        try:
            self.store.commit(batch)
        except StoreError:
            self._forget_unwritten()
            raise

    def _forget_unwritten(self) -> None:
        """Memory as the store has it: its head, and the pool its journal holds (what a
        restart would load, read through the same handle). The removals noted for events
        belong to the write that failed: they did not happen."""
        self.templates.clear()
        self.removals.clear()
        self.mempool.clear()
        self.head = self._load_head()
        self._restore_journal()
        log.warning("a write failed: the pool is back to its journal (%d transactions), the "
                    "head at %d", len(self.mempool), self.head.header.height)

    def _tidy(self, batch: Batch, sync: bool = False) -> None:
        """Drop journal entries the pool no longer holds. Lost to a crash or a failed
        write, they are dropped again by the journal replay at the next open; a failed
        write is remembered by the store, which then refuses every other."""
        try:
            self.store.commit(batch, sync=sync)
        except StoreError as exc:
            log.warning("journal tidying not written: %s", exc.message)

    def _note(self, removed: list[Removed]) -> None:
        """Remember why transactions left the pool (not by inclusion), for status queries
        and `txs_removed` events."""
        for r in removed:
            if r.reason == INCLUDED:
                continue
            status = TxStatus.REPLACED if r.reason == RemovalReason.REPLACED else TxStatus.DROPPED
            self._remember(r.tx.id, TxFate(status, r.reason, r.by, r.tx.raw))
            self.removals.append(r)

    def _remember(self, txid: bytes, fate: TxFate) -> None:
        self.fates[txid] = fate
        self.fates.move_to_end(txid)
        if len(self.fates) > FATE_MEMORY:
            self.fates.popitem(last=False)

    def drain_removals(self) -> list[Removed]:
        out, self.removals = self.removals, []
        return out

    # --- this node's proposals ----------------------------------------------------------

    def propose(self, subject: bytes, authorize: bool | None) -> None:
        """What this node's miner votes for: `subject` authorized (True) or deauthorized
        (False), replacing any proposal about it; None discards it. Kept in order, stored."""
        kept = [(s, a) for s, a in self.proposals if s != subject]
        if authorize is not None:
            kept.append((subject, authorize))
        batch = Batch()
        batch.put(schema.metadata_key(schema.PROPOSALS), authorities.encode_proposals(kept))
        self.store.commit(batch)
        self.proposals = kept
        self.templates.clear()

    # --- templates ----------------------------------------------------------------------

    def template(self, coinbase: bytes, timestamp: int, extra: bytes) -> Block:
        """An unsealed block on the head: the best ready transactions that apply, the state
        root after them. Transactions that no longer apply are dropped from the pool."""
        head = self.head
        vote = b""
        if self.genesis.is_poa:
            vote = authorities.next_vote(self.genesis.epoch, self.authorities(head.header.hash),
                                         head.header.height + 1, coinbase, self.proposals)
        built = build_template(
            self.genesis, head.header, head.meta.state_value, self.account,
            self.mempool.select(self.genesis.max_bound), coinbase=coinbase,
            timestamp=timestamp, extra=extra, difficulty=self.next_difficulty(head.header),
            vote=vote)
        if built.stale:
            batch = Batch()
            for tx in built.stale:
                self.mempool.remove(tx)
            self.journal.release(batch, [tx.id for tx in built.stale])
            self._note([Removed(tx, RemovalReason.STALE) for tx in built.stale])
            if batch.deletes:
                self._tidy(batch)
        self.templates.put(built.block, built.changes)
        return built.block
