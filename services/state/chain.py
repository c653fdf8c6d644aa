"""The chain: block import, fork choice and reorgs, block templates, and queries.

`Chain` owns the store and the mempool and is driven by the state service; it does I/O
only through the store, and every consensus decision is a call into `common`. One block
import (or one whole reorg) is one WriteBatch.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass

from common import consensus, errors
from common.encoding import pack
from common.genesis import Genesis, genesis_block
from common.ledger import (
    Overlay,
    StateChanges,
    apply_block,
    apply_transaction,
    credit_coinbase,
    finish,
)
from common.merkle import merkle_proof, merkle_root
from common.types import MAX_BLOCK_BYTES, Account, Block, BlockHeader, Transaction
from services.state import schema
from services.state.mempool import Mempool, Removed
from services.state.store import Batch, BlockMeta, Store, StoreError, initial_genesis_commit

log = logging.getLogger("ccoin.state.chain")

HEADER_CACHE = 4096
FATE_MEMORY = 100_000  # explained statuses are kept in memory, for this many transactions
TEMPLATE_CACHE = 8
DEFAULT_MAX_REORG = 1000


@dataclass(frozen=True, slots=True)
class ImportResult:
    status: str  # head | side | known
    block: Block
    connected: tuple[Block, ...] = ()
    disconnected: tuple[Block, ...] = ()
    removed: tuple[Removed, ...] = ()


@dataclass(frozen=True, slots=True)
class TxFate:
    """What became of a transaction that is neither pending nor confirmed."""

    status: str  # rejected | replaced | dropped
    reason: str  # the error code, or evicted | stale | reorg-conflict
    by: bytes  # the replacing transaction
    raw: bytes


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
            raise StoreError("the chain database holds another chain than this genesis file")
        self.genesis_hash = gblock.hash
        self._headers: dict[bytes, BlockHeader] = {}
        self._templates: dict[tuple[bytes, bytes, bytes], tuple[tuple[Transaction, ...],
                                                                StateChanges]] = {}
        self.fates: OrderedDict[bytes, TxFate] = OrderedDict()
        self.removals: list[Removed] = []  # drained by the service into events
        self.head = self._load_head()
        self._restore_journal()

    # --- reading ------------------------------------------------------------------------

    def _load_head(self) -> Head:
        head_hash = self.store.metadata("head")
        assert head_hash is not None
        header, meta = self.header(head_hash), self.store.meta(head_hash)
        if header is None or meta is None:
            raise StoreError("head block missing from the database")
        return Head(header, meta)

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

    def recent_signers(self, parent: BlockHeader) -> list[bytes]:
        """Coinbases of the recency window ending at `parent` (for the child's check)."""
        window = consensus.recency_window(self.genesis)
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

    # --- importing ----------------------------------------------------------------------

    def validate_header(self, header: BlockHeader, now_ms: int) -> BlockHeader:
        parent = self.header(header.parent)
        if parent is None:
            raise errors.UnknownParent(f"unknown parent {header.parent.hex()}")
        consensus.validate_header(
            self.genesis, parent, header, now_ms=now_ms,
            recent_signers=self.recent_signers(parent),
            anchor_timestamp=self.anchor_timestamp(parent))
        return parent

    def import_block(self, block: Block, now_ms: int) -> ImportResult:
        """Validate and store `block`; make it head (possibly through a reorg) when its
        branch is strictly heavier. Transaction signatures are not checked here: api and
        p2p verify them before anything reaches state."""
        h = block.hash
        if self.store.get(schema.meta_key(h)) is not None:
            return ImportResult("known", block)
        reason = self.store.invalid(h)
        if reason is not None:
            raise errors.InvalidBlock(f"block {h.hex()[:16]} is known to be invalid: {reason}")
        parent = self.validate_header(block.header, now_ms)
        # A body that does not match its header's tx_root may be a mutated copy of a valid
        # block (CVE-2012-2459): reject this copy without condemning the header's hash.
        consensus.validate_body(self.genesis, block, verify_signatures=False)
        parent_meta = self.store.meta(parent.hash)
        assert parent_meta is not None
        weight = parent_meta.total_weight + consensus.block_weight(self.genesis, block.header)
        if parent.hash == self.head.header.hash:
            try:
                changes = self._changes_for(block, parent_meta)
            except errors.InvalidBlock as exc:
                self._mark_invalid(h, exc)
                raise
            meta = BlockMeta(weight, changes.state_value)
            batch = Batch()
            self._store_new(batch, block, meta)
            self._connect(batch, block, changes)
            removed = self._commit_head(batch, block.header, meta, [block], [], changes.after)
            return ImportResult("head", block, (block,), (), tuple(removed))
        if not consensus.is_better_tip(self.genesis, weight, h, self.head.meta.total_weight,
                                       self.head.header.hash):
            batch = Batch()
            # side branch: state is computed only if it ever becomes the main chain
            self._store_new(batch, block, BlockMeta(weight, 0))
            self.store.commit(batch)
            return ImportResult("side", block)
        return self._reorg(block, weight)

    def _changes_for(self, block: Block, parent_meta: BlockMeta) -> StateChanges:
        key = (block.header.parent, block.header.coinbase, block.header.tx_root)
        cached = self._templates.pop(key, None)
        if cached is not None and cached[1].state_root == block.header.state_root:
            return cached[1]  # our own template: already applied once
        return apply_block(self.account, parent_meta.state_value, block,
                           self.genesis.network_id, self.genesis.reward)

    def _store_new(self, batch: Batch, block: Block, meta: BlockMeta) -> None:
        """A block seen for the first time: stored, and the tip of its branch."""
        self.store.write_block(batch, block, meta)
        batch.delete(schema.tip_key(block.header.parent))
        batch.put(schema.tip_key(block.hash), b"")

    def _mark_invalid(self, block_hash: bytes, exc: errors.CcoinError) -> None:
        batch = Batch()
        batch.put(schema.invalid_key(block_hash), exc.code.encode())
        self.store.commit(batch, sync=False)

    def _connect(self, batch: Batch, block: Block, changes: StateChanges) -> None:
        h = block.hash
        batch.put(schema.height_key(block.height), h)
        height = block.height
        entries: dict[bytes, int] = {}
        for index, tx in enumerate(block.txs):
            batch.put(schema.tx_key(tx.id), pack([h, index]))
            batch.delete(schema.journal_key(tx.id))
            sender, to = tx.sender, tx.to
            entries[sender] = entries.get(sender, 0) + 1
            if sender == to:
                batch.put(schema.history_key(sender, height, index), pack([tx.id, "self"]))
            else:
                batch.put(schema.history_key(sender, height, index), pack([tx.id, "out"]))
                batch.put(schema.history_key(to, height, index), pack([tx.id, "in"]))
                entries[to] = entries.get(to, 0) + 1
        self._count_history(batch, entries)
        batch.put(schema.undo_key(h), pack([[a, acc.balance, acc.nonce]
                                            for a, acc in changes.before.items()]))
        for address, account in changes.after.items():
            batch.put_account(address, account)

    def _count_history(self, batch: Batch, deltas: dict[bytes, int]) -> None:
        """Keep each address's count of history entries (the total `Store.history` reports
        without scanning them) in step with the entries this batch adds or removes."""
        for address, delta in deltas.items():
            key = schema.history_count_key(address)
            if key in batch.puts:
                current = schema.decode_count(batch.puts[key])
            elif key in batch.deletes:
                current = 0
            else:
                current = schema.decode_count(self.store.get(key))
            n = current + delta
            if n < 0:
                raise StoreError(f"history count of {address.hex()} would go below zero")
            if n:
                batch.put(key, schema.encode_count(n))
            else:
                batch.delete(key)

    def _commit_head(self, batch: Batch, header: BlockHeader, meta: BlockMeta,
                     connected: list[Block], disconnected: list[Block],
                     accounts: dict[bytes, Account]) -> list[Removed]:
        batch.put(schema.metadata_key("head"), header.hash)
        included = {tx.id for b in connected for tx in b.txs}
        removed = self.mempool.on_accounts_changed(accounts, included)
        for r in removed:
            batch.delete(schema.journal_key(r.tx.id))
        returned = [tx for b in disconnected for tx in b.txs if tx.id not in included]
        self.store.commit(batch)
        self.head = Head(header, meta)
        self._templates.clear()
        self._note(removed)
        if returned:
            failed = self.mempool.restore(returned, self.account)
            keep = Batch()
            failed_ids = {tx.id for tx, _ in failed}
            for tx in returned:
                if tx.id not in failed_ids:
                    keep.put(schema.journal_key(tx.id), tx.raw)
            self.store.commit(keep)
            self._note([Removed(tx, "reorg-conflict") for tx, _ in failed])
        return removed

    def _note(self, removed: list[Removed]) -> None:
        """Remember why transactions left the pool (not by inclusion), for status queries
        and `txs_removed` events."""
        for r in removed:
            if r.reason == "included":
                continue
            status = "replaced" if r.reason == "replaced" else "dropped"
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

    def _reorg(self, tip: Block, weight: int) -> ImportResult:
        """Switch to the heavier branch ending at `tip`, atomically."""
        branch = [tip]
        cur = tip.header
        while True:
            parent = self.header(cur.parent)
            if parent is None:
                raise errors.UnknownParent("branch does not reach the main chain")
            if self.is_main(parent):
                fork = parent
                break
            blk = self.store.block(parent.hash)
            if blk is None:
                raise errors.UnknownParent("branch block body missing")
            branch.append(blk)
            cur = parent
        branch.reverse()
        depth = self.head.header.height - fork.height
        if depth > self.max_reorg:
            raise errors.InvalidBlock(f"reorg of depth {depth} exceeds the limit "
                                      f"{self.max_reorg}")
        working: dict[bytes, Account] = {}

        def view(address: bytes) -> Account:
            acc = working.get(address)
            return acc if acc is not None else self.store.account(address)

        batch = Batch()
        disconnected: list[Block] = []
        for height in range(self.head.header.height, fork.height, -1):
            bhash = self.store.hash_at(height)
            assert bhash is not None
            blk = self.store.block(bhash)
            assert blk is not None
            working.update(self.store.undo(bhash))
            unlisted: dict[bytes, int] = {}
            for index, tx in enumerate(blk.txs):
                batch.delete(schema.tx_key(tx.id))
                batch.delete(schema.history_key(tx.sender, height, index))
                batch.delete(schema.history_key(tx.to, height, index))
                unlisted[tx.sender] = unlisted.get(tx.sender, 0) - 1
                if tx.to != tx.sender:
                    unlisted[tx.to] = unlisted.get(tx.to, 0) - 1
            self._count_history(batch, unlisted)
            batch.delete(schema.height_key(height))
            disconnected.append(blk)
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
            working.update(changes.after)
            state_value = changes.state_value
            total += consensus.block_weight(self.genesis, blk.header)
            meta = BlockMeta(total, state_value)
            if blk is tip:
                self._store_new(batch, blk, meta)
            else:
                self.store.write_block(batch, blk, meta)
            self._connect(batch, blk, changes)
        for address, account in working.items():
            batch.put_account(address, account)
        assert total == weight
        removed = self._commit_head(batch, tip.header, meta, branch, disconnected, working)
        log.info("reorg: %d block(s) out, %d in, new head %d", len(disconnected), len(branch),
                 tip.height)
        return ImportResult("head", tip, tuple(branch), tuple(disconnected), tuple(removed))

    # --- mempool ------------------------------------------------------------------------

    def add_transactions(self, txs: list[Transaction]) -> tuple[list[errors.CcoinError | None],
                                                               list[Transaction]]:
        """Admit verified transactions; journal the accepted ones in one synced batch
        before anyone is told they were accepted. Already-known ones count as accepted."""
        results: list[errors.CcoinError | None] = []
        accepted: list[Transaction] = []
        batch = Batch()
        for tx in txs:
            if tx.id in self.mempool or self.store.tx_location(tx.id) is not None:
                results.append(None)  # idempotent: a resent transaction is recognised
                continue
            try:
                displaced = self.mempool.add(tx, self.account(tx.sender))
            except errors.CcoinError as exc:
                results.append(exc)
                self._remember(tx.id, TxFate("rejected", exc.code, b"", tx.raw))
                continue
            for r in displaced:
                batch.delete(schema.journal_key(r.tx.id))
            self._note(displaced)
            self.fates.pop(tx.id, None)
            batch.put(schema.journal_key(tx.id), tx.raw)
            accepted.append(tx)
            results.append(None)
        if accepted or batch.deletes:
            self.store.commit(batch)
        return results, accepted

    def _restore_journal(self) -> None:
        txs = []
        # entries the pool's removals would never delete (they are keyed by id): unreadable
        # ones, and readable ones filed under another key, which are kept under their own
        stale_keys: list[bytes] = []
        refile: list[Transaction] = []
        for key, raw in self.store.journal():
            try:
                tx = Transaction.decode(raw)
            except errors.CcoinError:
                stale_keys.append(key)
                continue
            if schema.journal_key(tx.id) != key:
                stale_keys.append(key)
                refile.append(tx)
            txs.append(tx)
        failed = self.mempool.restore(txs, self.account)
        if failed or stale_keys:
            batch = Batch()
            for key in stale_keys:
                batch.delete(key)
            failed_ids = {tx.id for tx, _ in failed}
            for tx in refile:
                if tx.id not in failed_ids:
                    batch.put(schema.journal_key(tx.id), tx.raw)
            for tx_id in failed_ids:
                batch.delete(schema.journal_key(tx_id))
            self.store.commit(batch)
        if txs or stale_keys:
            log.info("mempool journal: %d restored, %d dropped, %d misfiled entries removed",
                     len(txs) - len(failed), len(failed), len(stale_keys))

    # --- templates ----------------------------------------------------------------------

    def template(self, coinbase: bytes, timestamp: int, extra: bytes) -> Block:
        """An unsealed block on the head: the best ready transactions that apply, the state
        root after them. Transactions that no longer apply are dropped from the pool."""
        parent = self.head.header
        state = Overlay(self.account)
        chosen: list[Transaction] = []
        stale: list[Transaction] = []
        fees = 0
        room = MAX_BLOCK_BYTES - 64 * 1024  # header and framing; a block peers can decode
        gen = self.mempool.select(self.genesis.max_bound)
        ok: bool | None = None
        while True:
            try:
                tx = gen.send(ok) if ok is not None else next(gen)
            except StopIteration:
                break
            if len(tx.raw) > room:
                break
            try:
                apply_transaction(state, tx, self.genesis.network_id)
            except errors.InvalidTransaction:
                stale.append(tx)
                ok = False
                continue
            chosen.append(tx)
            fees += tx.fee
            room -= len(tx.raw) + 3
            ok = True
        for tx in stale:
            self.mempool.remove(tx)
        self._note([Removed(tx, "stale") for tx in stale])
        if stale:
            batch = Batch()
            for tx in stale:
                batch.delete(schema.journal_key(tx.id))
            self.store.commit(batch, sync=False)
        credit_coinbase(state, coinbase, self.genesis.reward + fees)
        changes = finish(state, fees, self.head.meta.state_value)
        tx_root = merkle_root([tx.id for tx in chosen])
        header = BlockHeader(
            height=parent.height + 1, parent=parent.hash,
            timestamp=max(timestamp, parent.timestamp + 1), coinbase=coinbase,
            tx_root=tx_root, state_root=changes.state_root,
            difficulty=self.next_difficulty(parent), nonce=0, extra=extra)
        if len(self._templates) >= TEMPLATE_CACHE:
            self._templates.clear()
        self._templates[(parent.hash, coinbase, tx_root)] = (tuple(chosen), changes)
        return Block(header, tuple(chosen))

    # --- queries ------------------------------------------------------------------------

    def locator(self) -> list[bytes]:
        """Main-chain hashes from the head back: ten dense, then doubling steps, then the
        genesis (Bitcoin's block locator), so a peer finds the fork point in one round."""
        hashes: list[bytes] = []
        height, step = self.head.header.height, 1
        while height > 0:
            h = self.store.hash_at(height)
            assert h is not None
            hashes.append(h)
            if len(hashes) >= 10:
                step *= 2
            height -= step
        hashes.append(self.genesis_hash)
        return hashes

    def blocks_after(self, locator: tuple[bytes, ...], limit: int, max_bytes: int,
                     ) -> list[bytes]:
        """Main-chain blocks after the newest locator hash we have on the main chain."""
        start = 1
        for h in locator:
            header = self.header(h)
            if header is not None and self.is_main(header):
                start = header.height + 1
                break
        out: list[bytes] = []
        size = 0
        for height in range(start, min(start + limit, self.head.header.height + 1)):
            raw = self.block_at(height)
            assert raw is not None
            if out and size + len(raw) > max_bytes:
                break
            out.append(raw)
            size += len(raw)
        return out

    def signers(self, window: int) -> tuple[bytes, int, list[tuple[bytes, int, int, int]]]:
        """PoA health over the last `window` main-chain blocks: the next in-turn signer,
        the next height, and per authority (address, last sealed height or -1, blocks
        sealed, in-turn slots missed)."""
        g = self.genesis
        next_height = self.head.header.height + 1
        if not g.is_poa:
            return b"", next_height, []
        stats = {a: [-1, 0, 0] for a in g.miners}
        header: BlockHeader | None = self.head.header
        seen = 0
        while header is not None and header.height > 0 and seen < window:
            in_turn = consensus.in_turn_signer(g, header.height)
            if header.coinbase in stats:
                s = stats[header.coinbase]
                s[0] = max(s[0], header.height)
                s[1] += 1
            if header.coinbase != in_turn:
                stats[in_turn][2] += 1
            header = self.header(header.parent)
            seen += 1
        return (consensus.in_turn_signer(g, next_height), next_height,
                [(a, v[0], v[1], v[2]) for a, v in stats.items()])

    def tips(self) -> list[tuple[bytes, int, int, int, str]]:
        """Known branch tips: (hash, height, total weight, branch length, status)."""
        out = []
        for h in self.store.tips():
            header, meta = self.header(h), self.store.meta(h)
            if header is None or meta is None:
                continue
            if h == self.head.header.hash:
                out.append((h, header.height, meta.total_weight, 0, "active"))
                continue
            length = 0
            cur: BlockHeader | None = header
            while cur is not None and not self.is_main(cur) and length < self.max_reorg:
                length += 1
                cur = self.header(cur.parent)
            out.append((h, header.height, meta.total_weight, length, "valid-fork"))
        for h, _code in self.store.invalid_blocks(100):
            header = self.header(h)
            out.append((h, header.height if header else -1, 0, 0, "invalid"))
        return out

    def tx_proof(self, txid: bytes) -> tuple[Block, int, list[tuple[bool, bytes]]]:
        loc = self.store.tx_location(txid)
        if loc is None:
            raise errors.NotFound("no confirmed transaction with this id")
        block = self.store.block(loc[0])
        assert block is not None
        return block, loc[1], merkle_proof([tx.id for tx in block.txs], loc[1])

    def block_at(self, height: int) -> bytes | None:
        h = self.store.hash_at(height)
        return self.store.block_raw(h) if h is not None else None

    def state_value_from_scratch(self) -> int:
        from common.statehash import from_scratch

        return from_scratch(self.store.all_accounts())

