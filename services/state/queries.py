"""Read-only questions about the chain, the pool and their indexes, answered as the
dataclasses of `results`: a transaction's status, an account's history, what a block
changed, Merkle proofs, branch tips, signer health, and the block locator and ranges that
sync uses.

Each is a function of a `Chain` that changes nothing; the state service turns its answer
into a bus reply, field by field.
"""

from __future__ import annotations

from common import chainhealth, consensus, errors
from common import messages as m
from common.chainhealth import ChainHealth
from common.ledger import replay_block
from common.merkle import merkle_proof
from common.status import TipStatus, TxStatus
from common.types import Account, Block, BlockHeader
from services.state import schema
from services.state.chain import Chain
from services.state.results import (
    AccountChange,
    AccountHistory,
    BranchTip,
    TxInclusion,
    TxState,
)

INVALID_TIPS = 100  # known-invalid blocks listed among the tips, at most


def tx_status(chain: Chain, txid: bytes) -> TxState:
    """Pending or queued in the pool, confirmed on the main chain, or what became of it."""
    pool = chain.mempool
    tx = pool.get(txid)
    if tx is not None:
        if pool.is_ready(tx):
            return TxState(TxStatus.PENDING, tx.raw)
        expected = pool.pending_nonce(tx.sender, chain.account(tx.sender))
        return TxState(TxStatus.QUEUED, tx.raw, expected_nonce=expected)
    loc = chain.store.tx_location(txid)
    if loc is None:
        fate = chain.fates.get(txid)
        if fate is None:
            raise errors.NotFound("no such transaction")
        return TxState(fate.status, fate.raw, reason=fate.reason, replaced_by=fate.by)
    block = chain.store.block(loc.block_hash)
    assert block is not None
    return TxState(TxStatus.CONFIRMED, block.txs[loc.index].raw, block_hash=loc.block_hash,
                   height=block.height, index=loc.index,
                   confirmations=chain.head.header.height - block.height + 1)


def history(chain: Chain, address: bytes, offset: int, limit: int,
            before: tuple[int, int] | None = None) -> AccountHistory:
    """Up to `limit` entries newest first, skipping `offset`; with `before` = (height,
    index), only entries older than that position (a cursor that new blocks do not shift)."""
    # one more than asked tells whether older entries follow
    total, records = chain.store.history(address, offset, limit + 1, before)
    return AccountHistory(total, tuple(records[:limit]), len(records) > limit)


def block_changes(chain: Chain, block: Block) -> tuple[AccountChange, ...] | None:
    """The accounts `block` changed, before -> after, in the order it first touched them;
    None for a block off the main chain (its state was never computed, or was undone).

    "Before" is the block's undo record. "After" is not read from the accounts table,
    which holds the head's state (a later block may have changed the account again): the
    block's transactions are replayed over "before" with the ledger's own rules, and the
    result must give the header's state root from the parent's state, so a damaged undo
    record is caught here rather than shown. The genesis block created its accounts: each
    goes from empty to its allocation."""
    if not chain.is_main(block.header):
        return None
    if block.height == 0:
        created = chain.genesis.initial_accounts()
        return tuple(AccountChange(a, Account(), acc) for a, acc in created.items()
                     if not acc.is_empty())
    store = chain.store
    where = f"block {block.height} ({block.hash.hex()[:16]})"
    raw = store.get(schema.undo_key(block.hash))
    parent = store.meta(block.header.parent)
    if raw is None or parent is None:
        raise store.found_damage(f"the undo record or the parent of main-chain {where} is "
                                 "missing")
    try:
        before = schema.decode_undo(raw)
        after = replay_block(before, parent.state_value, block, chain.genesis.network_id,
                             chain.genesis.reward).after
    except (errors.CcoinError, ValueError, TypeError) as exc:  # a record of another shape
        raise store.found_damage(f"the undo record of main-chain {where} does not give "
                                 f"its state ({exc})") from None
    return tuple(AccountChange(a, before[a], acc) for a, acc in after.items()
                 if acc != before[a])


def tx_proof(chain: Chain, txid: bytes) -> TxInclusion:
    loc = chain.store.tx_location(txid)
    if loc is None:
        raise errors.NotFound("no confirmed transaction with this id")
    block = chain.store.block(loc.block_hash)
    assert block is not None
    steps = merkle_proof([tx.id for tx in block.txs], loc.index)
    return TxInclusion(txid, block.hash, block.height, loc.index, block.header.tx_root,
                       tuple(steps))


def tips(chain: Chain) -> tuple[BranchTip, ...]:
    """The head, each lighter branch's tip (with its length off the main chain), and the
    blocks found invalid."""
    store = chain.store
    head = chain.head.header.hash
    out: list[BranchTip] = []
    for h in store.tips():
        header, meta = chain.header(h), store.meta(h)
        if header is None or meta is None:
            continue
        if h == head:
            out.append(BranchTip(h, header.height, meta.total_weight, 0, TipStatus.ACTIVE))
            continue
        length = 0
        cur: BlockHeader | None = header
        while cur is not None and not chain.is_main(cur) and length < chain.max_reorg:
            length += 1
            cur = chain.header(cur.parent)
        out.append(BranchTip(h, header.height, meta.total_weight, length,
                             TipStatus.VALID_FORK))
    for h, _code in store.invalid_blocks(INVALID_TIPS):
        bad = chain.header(h)
        out.append(BranchTip(h, bad.height if bad else -1, 0, 0, TipStatus.INVALID))
    return tuple(out)


def signers(chain: Chain, window: int, now_ms: int) -> ChainHealth:
    """Chain health at `now_ms` over the last `window` main-chain blocks
    (common/chainhealth.py): the headers of the window, and before them the recency
    window's, which say whether the rule let an authority seal the window's first blocks."""
    head = chain.head.header
    snapshot = chain.authorities(head.hash)
    current = snapshot.signers
    context = consensus.recency_window(current) if chain.genesis.is_poa else 0
    headers = [*chain.ancestors(head, window + context - 1), head]
    joined = {c.subject: c.height for c in snapshot.changes if c.authorize}
    return chainhealth.assess(chain.genesis, headers, window=window, now_ms=now_ms,
                              ready=chain.mempool.ready_count(), signers=current,
                              joined=joined)


def locator(chain: Chain) -> list[bytes]:
    """Main-chain hashes from the head back: ten dense, then doubling steps, then the
    genesis (Bitcoin's block locator), so a peer finds the fork point in one round."""
    hashes: list[bytes] = []
    height, step = chain.head.header.height, 1
    while height > 0:
        h = chain.store.hash_at(height)
        assert h is not None
        hashes.append(h)
        if len(hashes) >= 10:
            step *= 2
        height -= step
    hashes.append(chain.genesis_hash)
    return hashes


def _after_locator(chain: Chain, known: tuple[bytes, ...]) -> int:
    """The height after the first hash of `known` on our main chain (1 when none is)."""
    for h in known:
        header = chain.header(h)
        if header is not None and chain.is_main(header):
            return header.height + 1
    return 1


def blocks_after(chain: Chain, known: tuple[bytes, ...], limit: int, max_bytes: int,
                 ) -> list[bytes]:
    """Main-chain blocks (raw) after the first hash of the peer's locator `known` that is on
    our main chain; at most `limit` of them and, past the first, `max_bytes` in all."""
    start = _after_locator(chain, known)
    out: list[bytes] = []
    size = 0
    for height in range(start, min(start + limit, chain.head.header.height + 1)):
        raw = chain.block_at(height)
        assert raw is not None
        if out and size + len(raw) > max_bytes:
            break
        out.append(raw)
        size += len(raw)
    return out


def headers_after(chain: Chain, known: tuple[bytes, ...], limit: int) -> list[bytes]:
    """Main-chain header encodings after the first hash of the peer's locator `known` that
    is on our main chain, at most `limit` of them (read as stored: no decoding)."""
    start = _after_locator(chain, known)
    out: list[bytes] = []
    store = chain.store
    for height in range(start, min(start + limit, chain.head.header.height + 1)):
        block_hash = store.hash_at(height)
        raw = store.get(schema.header_key(block_hash)) if block_hash is not None else None
        if raw is None:
            raise store.found_damage(f"main-chain header {height} is missing")
        out.append(raw)
    return out


def authorities(chain: Chain, voter: bytes) -> m.AuthoritiesReply:
    """The authorities at the head (common/authorities.py): the set, the open proposals with
    their voters, the latest changes, and this node's own proposals with how they stand
    (`voter`: this node's account, which casts them)."""
    head = chain.head.header
    snap = chain.authorities(head.hash)
    poa, epoch = chain.genesis.is_poa, chain.genesis.epoch
    own = tuple(m.OwnProposal(subject, authorize, (subject in snap.signers) == authorize,
                              snap.has_voted(voter, subject, authorize))
                for subject, authorize in chain.proposals)
    return m.AuthoritiesReply(
        signers=snap.signers, needed=snap.needed() if poa else 0, epoch=epoch,
        next_checkpoint=(head.height // epoch + 1) * epoch if poa else 0,
        proposals=tuple(m.OpenProposal(p.subject, p.authorize, p.voters)
                        for p in snap.proposals()),
        changes=tuple(m.AuthorityChange(c.height, c.subject, c.authorize)
                      for c in snap.changes),
        own=own)
