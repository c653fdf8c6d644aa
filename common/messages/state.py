"""The state service's requests and replies: the chain, the pool, templates and sync support.

Every bound a request's handler relies on is declared here, on the field (`common.fields`),
and checked when the request is decoded; `services/state/service.py` re-checks none of
them. Replies are declared as precisely as their producer guarantees. Fields that carry a
status or a direction are `common.status` enums: the string on the wire, the member once
decoded, any other string refused.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from common.fields import (
    MAX_U32,
    MAX_U63,
    U8,
    U32,
    U63,
    U64,
    Address20,
    Check,
    Hash32,
    Len,
    OptAddress20,
    OptHash32,
    Range,
    Rule,
)
from common.messages.envelope import Message, message
from common.status import (
    AuthorityState,
    BlockStatus,
    ChainPace,
    Direction,
    TipStatus,
    TxStatus,
)
from common.types import MAX_BLOCK_BYTES, MAX_EXTRA

MAX_IDS = 10_000  # ids or hashes asked about in one request
MAX_WINDOW = 10_000
MAX_SUMMARY = 1_000  # characters of the chain-health sentence (it names at most 5)

Limit = Annotated[int, Range(0, MAX_U32)]  # a page size; the service caps it further
Offset = U63
Height = Annotated[int, Range(-1, MAX_U63)]  # -1: none (not confirmed, unknown, never)


def _is_position(value: tuple[int, ...]) -> bool:
    return value == () or (len(value) == 2 and value[1] <= MAX_U32)


# A history position (height, index), or () for "from the newest".
Position = Annotated[tuple[U64, ...], Check(
    _is_position, "() or (height, index < 2^32)",
    examples=((), (0, 0), (2**64 - 1, 2**32 - 1)),
    counterexamples=((1,), (1, 2, 3), (0, 2**32)))]


@message("get_status")
class GetStatus(Message):
    pass


@message("status")
class StatusReply(Message):
    network_id: U32
    genesis: Hash32
    height: U63
    head: Hash32
    head_timestamp: U63
    total_weight: U64
    state_root: Hash32
    mempool_count: U63
    mempool_bytes: U63
    ready_count: U63
    poa: bool
    miners: tuple[Address20, ...]  # the authorities at the head, in turn order (votes change it)
    recent_signers: tuple[Address20, ...]
    difficulty: U8
    # why state writes nothing now ("" while it does): damage, a failed write, low disk space
    storage: str = ""
    disk_free: U63 = 0  # bytes free for the chain database
    min_free: U63 = 0  # the free space state keeps (chain.min_free_mb, in bytes; 0: none)


@message("get_block")
class GetBlock(Message):
    """By height (`hash` empty) or by hash; a negative height is never found. `changes`:
    also the accounts the block changed (a main-chain block's; sync never asks)."""

    height: int
    hash: OptHash32
    changes: bool = False


@message("account_change")
class AccountChange(Message):
    """An account a block changed: its balance and nonce before the block and after it."""

    address: Address20
    balance_before: U63
    nonce_before: U63
    balance_after: U63
    nonce_after: U63


@message("block")
class BlockReply(Message):
    """`has_changes`: `changes` lists the accounts the block changed (they were asked for
    and the block is on the main chain: no other block's state is stored)."""

    block: bytes
    total_weight: U64
    confirmations: U63
    on_main_chain: bool
    has_changes: bool = False
    changes: tuple[AccountChange, ...] = ()


@message("get_blocks")
class GetBlockRange(Message):
    """Main-chain blocks: `start` (-1 = head) downwards when `newest_first`, else upwards."""

    start: Height
    limit: Limit
    newest_first: bool


@message("blocks")
class BlockRangeReply(Message):
    blocks: tuple[bytes, ...]
    height: U63


def _is_joined_ids(value: bytes) -> bool:
    return len(value) % 32 == 0


# A block's transaction ids, joined: 32 bytes each.
JoinedIds = Annotated[bytes, Check(
    _is_joined_ids, "a multiple of 32 bytes",
    examples=(b"", bytes(32), bytes(64)), counterexamples=(bytes(31), bytes(33)))]


@message("paged_block")
class PagedBlock(Message):
    """A block of a page and its transactions' ids, joined, when state has them at hand
    (the blocks it imported lately), so that a page of ids is not hashed anew; empty when
    it has not: the reader hashes the block's transactions."""

    raw: bytes
    ids: JoinedIds


@message("block_page")
class BlockPageReply(Message):
    """The main-chain blocks a `GetBlockRange` asked for, and the head's height."""

    blocks: tuple[PagedBlock, ...]
    height: U63


@message("get_tx")
class GetTx(Message):
    id: Hash32


@message("tx")
class TxReply(Message):
    """`status`: pending | queued (`expected_nonce` is the sender's next nonce) | confirmed
    (`block_hash`, `height`, `index`, `confirmations`) | rejected (`reason` is the error
    code) | replaced (`replaced_by`) | dropped (`reason`: evicted | stale)."""

    tx: bytes
    status: TxStatus
    block_hash: OptHash32
    height: Height
    index: Annotated[int, Range(-1, MAX_U32)]
    confirmations: U63
    reason: str = ""
    replaced_by: OptHash32 = b""
    expected_nonce: Annotated[int, Range(-1, MAX_U63)] = -1


@message("get_txs")
class GetTxs(Message):
    """Pool transactions by id (for relaying)."""

    ids: Annotated[tuple[Hash32, ...], Len(0, MAX_IDS)]


@message("txs")
class TxsReply(Message):
    """`txs[i]` is the raw transaction with `ids[i]`, or empty if it is not in the pool."""

    txs: tuple[bytes, ...]


@message("get_account")
class GetAccount(Message):
    address: Address20


@message("account")
class AccountReply(Message):
    address: Address20
    balance: U63
    nonce: U63
    pending_nonce: U63


@message("submit_txs")
class SubmitTxs(Message):
    """Signature-checked transactions (api and p2p verify before sending). Each is decoded
    on its own: a bad one gets its own error result, it does not spoil the batch."""

    txs: tuple[bytes, ...]


@message("tx_refusal")
class TxRefusal(Message):
    """A transaction of a `SubmitTxs` that state did not take: its place in the request,
    its id (empty when the bytes were not a transaction) and the error."""

    index: U32
    id: OptHash32
    code: str
    message: str


def _refusals_fit(result: SubmitResult) -> bool:
    last = -1
    for r in result.refused:
        if not last < r.index < result.count:
            return False
        last = r.index
    return True


@message("submit_result")
class SubmitResult(Message):
    """State's answer to a `SubmitTxs` of `count` transactions: a refusal for each one it
    did not take, in request order; every other one is in the pool (or was known already).
    Only refusals are sent: a batch of thousands, all accepted, answers in a few bytes. An
    answer whose refusals do not fit its count does not decode (its `RULE`)."""

    RULE: ClassVar[Rule] = Rule(_refusals_fit, "each refusal's index below count, rising")

    count: U32
    refused: tuple[TxRefusal, ...]

    def refusals(self) -> list[TxRefusal | None]:
        """One entry per submitted transaction, in order: its refusal, or None when it was
        accepted."""
        out: list[TxRefusal | None] = [None] * self.count
        for r in self.refused:
            out[r.index] = r
        return out

    def codes(self) -> list[str]:
        """Each submitted transaction's error code, "" when it was accepted."""
        return [r.code if r is not None else "" for r in self.refusals()]


@message("get_mempool")
class GetMempool(Message):
    """A page of the pool in arrival order; `sender` narrows it to one account, in nonce
    order."""

    offset: Offset
    limit: Limit
    sender: OptAddress20 = b""


@message("mempool")
class MempoolReply(Message):
    count: U63
    size: U63
    txs: tuple[bytes, ...]


@message("get_template")
class GetTemplate(Message):
    coinbase: Address20
    timestamp: U63
    extra: Annotated[bytes, Len(0, MAX_EXTRA)]


@message("template")
class TemplateReply(Message):
    """An unsealed header (state root computed), how many transactions it holds, and
    those as the block encodes them (`Block.body`): the miner seals the header and sends
    `block_raw(header, body)` back without reading a transaction, and state recognises
    the very bytes it handed out."""

    header: bytes
    count: U32
    body: Annotated[bytes, Len(0, MAX_BLOCK_BYTES)]


@message("submit_block")
class SubmitBlock(Message):
    block: bytes


@message("block_result")
class BlockResult(Message):
    """`status`: head | side | known."""

    status: BlockStatus
    hash: Hash32
    height: U63


@message("get_account_txs")
class GetAccountTxs(Message):
    """An account's confirmed transactions, newest first: those older than the position
    `before` = (height, index) when it is given, else from the newest; `offset` of them
    skipped."""

    address: Address20
    offset: Offset
    limit: Limit
    before: Position = ()


@message("account_tx")
class HistoryEntry(Message):
    id: Hash32
    height: U63
    index: U32
    direction: Direction


@message("account_txs")
class AccountTxsReply(Message):
    """`more`: older entries follow the last item."""

    total: U63
    items: tuple[HistoryEntry, ...]
    more: bool = False


@message("get_tx_proof")
class GetTxProof(Message):
    id: Hash32


@message("proof_step")
class ProofStep(Message):
    """A sibling on the path to the root; `left` when the sibling is on the left."""

    left: bool
    hash: Hash32


@message("tx_proof")
class TxProofReply(Message):
    id: Hash32
    block_hash: Hash32
    height: U63
    index: U32
    tx_root: Hash32
    steps: tuple[ProofStep, ...]


@message("get_tips")
class GetTips(Message):
    pass


@message("chain_tip")
class TipEntry(Message):
    """`height` is -1 for an invalid block whose header is gone."""

    hash: Hash32
    height: Height
    total_weight: U64
    branch_length: U63
    status: TipStatus


@message("tips")
class TipsReply(Message):
    tips: tuple[TipEntry, ...]


@message("get_signers")
class GetSigners(Message):
    """Chain health (common/chainhealth.py) at the caller's `now_ms`, over the last `window`
    blocks."""

    window: Annotated[int, Range(1, MAX_WINDOW)]
    now_ms: U63


@message("signer_info")
class SignerEntry(Message):
    """`last_height` -1 and `last_timestamp` 0: it sealed none of the window's blocks.
    `missed` counts the turns it missed in the window, `missed_since_head` those that passed
    since the head (from time); `may_seal`: the recency rule lets it seal the next block."""

    address: Address20
    last_height: Height
    last_timestamp: U63
    sealed: U63
    missed: U63
    missed_since_head: U63
    state: AuthorityState
    may_seal: bool


@message("signers")
class SignersReply(Message):
    """`in_turn` empty and `signers` none on a Proof-of-Work chain; `due_ms` 0: no block is
    due (idle); `overdue_ms` 0 unless overdue; `needed`: authorities that must be online;
    `summary`: the sentence saying what the chain does and why."""

    in_turn: OptAddress20
    next_height: U63
    signers: tuple[SignerEntry, ...]
    pace: ChainPace
    head_timestamp: U63
    since_head_ms: U63
    due_ms: U63
    overdue_ms: U63
    interval_ms: U32
    needed: U32
    summary: Annotated[str, Len(0, MAX_SUMMARY)]
