"""The state service: serves the chain over the bus and publishes what it commits.

A thin shell around `Chain`: a dispatch table from request type to handler, each handler
converting between wire messages and chain calls. Requests arrive checked against their
declarations (`common.messages`: lengths, ranges, page bounds), so handlers re-check
nothing. Events go out only after the commit.

The requests that write (transactions, blocks, templates) first ask the storage guard
(services/state/storage.py) whether state may write: damage, a failed write or low disk
space refuse them with `storage_unavailable`, and the status says why. Every second the
guard looks again, and after a failed write it hands over the chain on the reopened
database once the disk takes writes again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import zmq.asyncio

from common import __version__
from common import messages as m
from common.authorities import MAX_PROPOSALS
from common.errors import CcoinError, NotFound, Refused, StoreError
from common.genesis import Genesis
from common.status import BlockStatus, RemovalReason
from common.types import Block, Transaction
from runtime import buscurve
from runtime.bus import Publisher, Server
from runtime.config import NodeConfig, load_genesis
from runtime.service import now_ms
from services.state import queries
from services.state.blockids import RecentBlockIds
from services.state.chain import Chain
from services.state.mempool import Mempool
from services.state.results import ImportResult
from services.state.storage import CHECK_INTERVAL_S, DAMAGE, MB, StorageGuard
from services.state.store import Store

log = logging.getLogger("ccoin.state")

MAX_PAGE = 1000
MAX_HEADERS = 2000  # headers per GetHeadersAfter: p2p's `HDS` holds no more
MAX_PAGE_BYTES = 16 * 1024 * 1024  # well under the bus's MAXMSGSIZE, past which ZMQ disconnects


class StateService:
    def __init__(self, chain: Chain, publisher: Publisher | None = None,
                 guard: StorageGuard | None = None, voter: bytes = b"") -> None:
        self.chain = chain
        self.voter = voter  # this node's account: whose votes its proposals become
        self.pub = publisher
        # without one: no free-space rule, failed writes and damage handled all the same
        self.guard = guard or StorageGuard(chain.store.path, 0)
        self.recent_ids = RecentBlockIds()  # for pages of blocks

    def handlers(self) -> dict[type[m.Message], object]:
        writes: dict[type[m.Message], Callable[[Any], m.Message]] = {
            m.SubmitTxs: self.submit_txs,
            m.GetTemplate: self.get_template,
            m.SubmitBlock: self.submit_block,
            m.SubmitBlocks: self.submit_blocks,
            m.SetProposal: self.set_proposal,
        }
        return {
            **{kind: self._writing(handler) for kind, handler in writes.items()},
            m.ServicePing: self.ping,
            m.GetStatus: self.status,
            m.GetBlock: self.get_block,
            m.GetBlockRange: self.get_blocks,
            m.GetTx: self.get_tx,
            m.GetTxs: self.get_txs,
            m.GetAccount: self.get_account,
            m.GetMempool: self.get_mempool,
            m.GetAccountTxs: self.get_account_txs,
            m.GetTxProof: self.get_tx_proof,
            m.GetTips: self.get_tips,
            m.GetSigners: self.get_signers,
            m.GetAuthorities: self.get_authorities,
            m.GetLocator: self.get_locator,
            m.GetBlocksAfter: self.get_blocks_after,
            m.GetHeadersAfter: self.get_headers_after,
            m.HasBlocks: self.has_blocks,
        }

    def _writing(self, handler: Callable[[Any], m.Message]) -> Callable[[Any], m.Message]:
        """`handler`, refused with the storage problem while there is one; a write that
        fails in it is noticed (and logged) at once."""
        def guarded(req: Any) -> m.Message:
            self.guard.check_writable(self.chain.store)
            try:
                return handler(req)
            except StoreError:
                self.guard.problem(self.chain.store)
                raise
        return guarded

    # --- storage ------------------------------------------------------------------------

    def watch_storage(self) -> None:
        """The guard's look every second: a problem that starts or ends is logged, and
        after a failed write the database is reopened once the disk takes writes again.
        A head the reopened database holds beyond the one announced (a write reported
        failed that reached the disk all the same) is announced."""
        self.guard.problem(self.chain.store)
        fresh = self.guard.recover(self.chain)
        if fresh is None:
            return
        before = self.chain.head.header.hash
        self.chain = fresh
        if fresh.head.header.hash != before:
            block = fresh.store.block(fresh.head.header.hash)
            if block is not None:
                self._new_head(ImportResult(BlockStatus.HEAD, block, (block,)))

    # --- reads --------------------------------------------------------------------------

    def ping(self, _: m.ServicePing) -> m.ServicePong:
        """Liveness, with the storage problem if there is one (`/health` says it): damage
        is `fatal` (only the operator can clear it), low space or a failed write clear by
        themselves."""
        problem = self.guard.problem(self.chain.store)
        return m.ServicePong("state", __version__, problem,
                             fatal=bool(problem) and self.guard.kind == DAMAGE)

    def status(self, _: m.GetStatus) -> m.StatusReply:
        c = self.chain
        head = c.head.header
        free = self.guard.free_bytes()
        return m.StatusReply(
            network_id=c.genesis.network_id, genesis=c.genesis_hash, height=head.height,
            head=head.hash, head_timestamp=head.timestamp,
            total_weight=c.head.meta.total_weight, state_root=head.state_root,
            mempool_count=len(c.mempool), mempool_bytes=c.mempool.size,
            ready_count=c.mempool.ready_count(), poa=c.genesis.is_poa,
            miners=c.authorities(head.hash).signers, recent_signers=tuple(c.recent_signers(head)),
            difficulty=c.next_difficulty(head), storage=self.guard.problem(c.store, free),
            disk_free=max(free or 0, 0), min_free=self.guard.min_free)

    def get_block(self, req: m.GetBlock) -> m.BlockReply:
        c = self.chain
        if req.hash:
            raw = c.store.block_raw(req.hash)
        else:
            raw = c.block_at(req.height) if req.height >= 0 else None
        if raw is None:
            raise NotFound("no such block")
        block = Block.decode(raw)
        meta = c.store.meta(block.hash)
        main = c.is_main(block.header)
        conf = c.head.header.height - block.height + 1 if main else 0
        changes = queries.block_changes(c, block) if req.changes else None
        return m.BlockReply(raw, meta.total_weight if meta else 0, conf, main,
                            has_changes=changes is not None,
                            changes=tuple(m.AccountChange(ch.address, ch.before.balance,
                                                          ch.before.nonce, ch.after.balance,
                                                          ch.after.nonce)
                                          for ch in changes or ()))

    def get_blocks(self, req: m.GetBlockRange) -> m.BlockPageReply:
        c = self.chain
        limit = min(req.limit, MAX_PAGE)
        top = c.head.header.height
        start = top if req.start < 0 else min(req.start, top)
        if req.newest_first:
            heights = range(start, max(start - limit, -1), -1)
        else:
            heights = range(max(req.start, 0), min(max(req.start, 0) + limit, top + 1))
        blocks: list[m.PagedBlock] = []
        size = 0
        for h in heights:
            block_hash = c.store.hash_at(h)
            raw = c.store.block_raw(block_hash) if block_hash is not None else None
            if block_hash is None or raw is None:
                continue
            if blocks and size + len(raw) > MAX_PAGE_BYTES:
                break  # a shorter page: the caller asks again from where it stopped
            blocks.append(m.PagedBlock(raw, self.recent_ids.get(block_hash)))
            size += len(raw)
        return m.BlockPageReply(tuple(blocks), top)

    def get_tx(self, req: m.GetTx) -> m.TxReply:
        s = queries.tx_status(self.chain, req.id)
        return m.TxReply(tx=s.raw, status=s.status, block_hash=s.block_hash, height=s.height,
                         index=s.index, confirmations=s.confirmations, reason=s.reason,
                         replaced_by=s.replaced_by, expected_nonce=s.expected_nonce)

    def get_txs(self, req: m.GetTxs) -> m.TxsReply:
        pool = self.chain.mempool
        return m.TxsReply(tuple(tx.raw if (tx := pool.get(i)) is not None else b""
                                for i in req.ids))

    def get_account(self, req: m.GetAccount) -> m.AccountReply:
        acc = self.chain.account(req.address)
        return m.AccountReply(req.address, acc.balance, acc.nonce,
                              self.chain.mempool.pending_nonce(req.address, acc))

    def get_mempool(self, req: m.GetMempool) -> m.MempoolReply:
        pool = self.chain.mempool
        txs = pool.page(req.offset, min(req.limit, MAX_PAGE), req.sender)
        return m.MempoolReply(len(pool), pool.size, tuple(tx.raw for tx in txs))

    # --- writes -------------------------------------------------------------------------

    def submit_txs(self, req: m.SubmitTxs) -> m.SubmitResult:
        refused: list[m.TxRefusal] = []
        txs: list[Transaction] = []
        places: list[int] = []  # each decoded transaction's index in the request
        for index, raw in enumerate(req.txs):
            try:
                txs.append(Transaction.decode(raw))
            except CcoinError as exc:
                refused.append(m.TxRefusal(index, b"", exc.code, exc.message))
                continue
            places.append(index)
        outcomes, accepted = self.chain.add_transactions(txs)
        for index, tx, err in zip(places, txs, outcomes, strict=True):
            if err is not None:
                refused.append(m.TxRefusal(index, tx.id, err.code, err.message))
        if accepted and self.pub is not None:
            self.pub.publish(b"txs", m.TxsEvent(tuple(tx.id for tx in accepted)))
        self._publish_removals()
        refused.sort(key=lambda r: r.index)
        return m.SubmitResult(len(req.txs), tuple(refused))

    def _publish_removals(self) -> None:
        removed = self.chain.drain_removals()
        if removed and self.pub is not None:
            self.pub.publish(b"txs_removed", m.TxsRemovedEvent(
                tuple(r.tx.id for r in removed), tuple(RemovalReason(r.reason) for r in removed)))

    def get_template(self, req: m.GetTemplate) -> m.TemplateReply:
        block = self.chain.template(req.coinbase, req.timestamp, req.extra)
        self._publish_removals()
        return m.TemplateReply(block.header.raw, len(block.txs), block.body)

    def submit_block(self, req: m.SubmitBlock) -> m.BlockResult:
        block = Block.decode(req.block, self.chain.mempool.get, body=self.chain.templates.body)
        try:
            result = self.chain.import_block(block, now_ms())
        finally:
            self._publish_removals()
        if result.status == BlockStatus.HEAD:
            self._new_head(result)
        return m.BlockResult(result.status, block.hash, block.height)

    def submit_blocks(self, req: m.SubmitBlocks) -> m.SubmitBlocksResult:
        """Import in order; a failure does not stop the rest (each gets its outcome)."""
        outcomes = []
        for raw in req.blocks:
            # an empty pool (a node syncing) has nothing to offer: skip a hash per transaction
            known = self.chain.mempool.get if len(self.chain.mempool) else None
            try:
                block = Block.decode(raw, known)
            except CcoinError as exc:
                outcomes.append(m.BlockOutcome(b"", -1, BlockStatus.ERROR, exc.code, exc.message))
                continue
            try:
                result = self.chain.import_block(block, now_ms())
            except CcoinError as exc:
                outcomes.append(m.BlockOutcome(block.hash, block.height, BlockStatus.ERROR,
                                               exc.code, exc.message))
                continue
            finally:
                self._publish_removals()
            if result.status == BlockStatus.HEAD:
                self._new_head(result)
            outcomes.append(m.BlockOutcome(block.hash, block.height, result.status,
                                           "", ""))
        return m.SubmitBlocksResult(tuple(outcomes))

    def get_account_txs(self, req: m.GetAccountTxs) -> m.AccountTxsReply:
        before = (req.before[0], req.before[1]) if req.before else None
        page = queries.history(self.chain, req.address, req.offset, min(req.limit, MAX_PAGE),
                               before)
        return m.AccountTxsReply(
            total=page.total, more=page.more,
            items=tuple(m.HistoryEntry(id=r.txid, height=r.height, index=r.index,
                                       direction=r.direction) for r in page.records))

    def get_tx_proof(self, req: m.GetTxProof) -> m.TxProofReply:
        p = queries.tx_proof(self.chain, req.id)
        return m.TxProofReply(id=p.txid, block_hash=p.block_hash, height=p.height,
                              index=p.index, tx_root=p.tx_root,
                              steps=tuple(m.ProofStep(left, h) for left, h in p.steps))

    def get_tips(self, _: m.GetTips) -> m.TipsReply:
        return m.TipsReply(tuple(
            m.TipEntry(hash=t.hash, height=t.height, total_weight=t.total_weight,
                       branch_length=t.branch_length, status=t.status)
            for t in queries.tips(self.chain)))

    def get_signers(self, req: m.GetSigners) -> m.SignersReply:
        h = queries.signers(self.chain, req.window, req.now_ms)
        return m.SignersReply(
            in_turn=h.in_turn, next_height=h.next_height,
            signers=tuple(m.SignerEntry(
                address=a.address, last_height=a.last_height, last_timestamp=a.last_timestamp,
                sealed=a.sealed, missed=a.missed, missed_since_head=a.missed_since_head,
                state=a.state, may_seal=a.may_seal) for a in h.authorities),
            pace=h.pace, head_timestamp=h.head_timestamp, since_head_ms=h.since_head_ms,
            due_ms=h.due_ms, overdue_ms=h.overdue_ms, interval_ms=h.interval_ms,
            needed=h.needed, summary=h.summary)

    def get_authorities(self, _: m.GetAuthorities) -> m.AuthoritiesReply:
        return queries.authorities(self.chain, self.voter)

    def set_proposal(self, req: m.SetProposal) -> m.AuthoritiesReply:
        c = self.chain
        if not c.genesis.is_poa:
            raise Refused("a proof-of-work chain has no authorities to vote on")
        if req.discard:
            if all(subject != req.address for subject, _ in c.proposals):
                raise NotFound(f"this node proposes nothing about {req.address.hex()}")
            c.propose(req.address, None)
        else:
            known = any(subject == req.address for subject, _ in c.proposals)
            if not known and len(c.proposals) >= MAX_PROPOSALS:
                raise Refused(f"this node already has {MAX_PROPOSALS} proposals; discard one")
            c.propose(req.address, req.authorize)
        return queries.authorities(c, self.voter)

    def get_locator(self, _: m.GetLocator) -> m.LocatorReply:
        return m.LocatorReply(tuple(queries.locator(self.chain)))

    def get_blocks_after(self, req: m.GetBlocksAfter) -> m.BlockRangeReply:
        blocks = queries.blocks_after(self.chain, req.locator, min(req.limit, MAX_PAGE),
                                      min(req.max_bytes, MAX_PAGE_BYTES))
        return m.BlockRangeReply(tuple(blocks), self.chain.head.header.height)

    def get_headers_after(self, req: m.GetHeadersAfter) -> m.HeaderRangeReply:
        headers = queries.headers_after(self.chain, req.locator, min(req.limit, MAX_HEADERS))
        return m.HeaderRangeReply(tuple(headers), self.chain.head.header.height)

    def has_blocks(self, req: m.HasBlocks) -> m.HasBlocksReply:
        return m.HasBlocksReply(tuple(self.chain.store.meta(h) is not None
                                      for h in req.hashes))

    def _new_head(self, result: ImportResult) -> None:
        """A new head: logged, the ids of the blocks that joined the main chain kept for
        pages of blocks, and announced (after the commit, as every event)."""
        self.recent_ids.remember(result.connected)
        head = result.block.header
        log.info("head %d %s txs=%d", head.height, head.hash.hex()[:16], len(result.block.txs))
        if self.pub is None:
            return
        if result.disconnected:
            self.pub.publish(b"reorg", m.ReorgEvent(
                tuple(b.hash for b in result.disconnected),
                tuple(b.hash for b in result.connected)))
        self.pub.publish(b"head", m.HeadEvent(
            head.height, head.hash, self.chain.head.meta.total_weight, len(result.block.txs),
            head.timestamp, len(self.chain.mempool)))


def open_chain(config: NodeConfig, genesis: Genesis | None = None) -> Chain:
    genesis = genesis or load_genesis(config.genesis_file())
    pool = Mempool(genesis.network_id, config.mempool_max_count, config.mempool_max_future)
    store = Store(config.chain_dir)
    try:
        return Chain(store, genesis, max_reorg=config.max_reorg, mempool=pool)
    except BaseException:
        store.close()  # refused (a damaged head, another chain): leave the files as they are
        raise


async def watch_storage(service: StateService) -> None:
    while True:
        await asyncio.sleep(CHECK_INTERVAL_S)
        service.watch_storage()


async def main(config: NodeConfig) -> None:
    chain = open_chain(config)
    ctx = zmq.asyncio.Context()
    guard = buscurve.Guard(ctx, buscurve.for_config(config))  # tcp:// endpoints: CurveZMQ
    pub = Publisher(ctx, config.endpoint("events"), guard)
    service = StateService(chain, pub, StorageGuard(config.chain_dir, config.min_free_mb * MB),
                           voter=config.account_address or b"")
    server = Server(ctx, config.endpoint("state"), "state", service.handlers(),  # type: ignore[arg-type]
                    guard=guard)
    log.info("state ready: height %d head %s genesis %s", chain.head.header.height,
             chain.head.header.hash.hex()[:16], chain.genesis_hash.hex()[:16])
    service.guard.problem(chain.store)  # a problem at start is said at start
    tasks = [asyncio.create_task(server.serve_forever(), name="state-server"),
             asyncio.create_task(watch_storage(service), name="state-storage")]
    try:
        # a reopen that fails ends the service (supervisord restarts it): see storage.py
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        server.close()
        pub.close()
        guard.close()
        service.chain.store.close()
        ctx.term()


