"""The bus message catalogue: every request, reply and event that crosses ZeroMQ.

Each message is a frozen, slotted dataclass registered under a short type name; on the wire
it is the canonical msgpack array `[type, [field, ...]]` in declaration order. Decoding
checks every field against its annotation (int is never bool, bytes is never str, tuples
have the declared element type), so a handler only ever sees a well-typed message.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, ClassVar, TypeVar

from common.encoding import pack, unpack
from common.errors import CcoinError, Malformed, error_from_code

CATALOGUE: dict[str, type[Message]] = {}
_CHECKERS: dict[type, list[tuple[str, Any]]] = {}
M = TypeVar("M", bound="Message")


class Message:
    """Base of all bus messages."""

    TYPE: ClassVar[str]
    __slots__ = ()


@typing.dataclass_transform(frozen_default=True)
def message(type_name: str) -> typing.Callable[[type[M]], type[M]]:
    """Class decorator: make a frozen slotted dataclass and register it under `type_name`."""

    def wrap(cls: type[M]) -> type[M]:
        if type_name in CATALOGUE:
            raise ValueError(f"message type {type_name} registered twice")
        dc = dataclasses.dataclass(frozen=True, slots=True)(cls)
        dc.TYPE = type_name
        CATALOGUE[type_name] = dc
        return dc

    return wrap


def _to_wire(value: Any) -> Any:
    if isinstance(value, Message):
        names = [f.name for f in dataclasses.fields(value)]  # type: ignore[arg-type]
        return [_to_wire(getattr(value, n)) for n in names]
    if isinstance(value, tuple):
        return [_to_wire(v) for v in value]
    return value


def encode(msg: Message) -> bytes:
    return pack([msg.TYPE, _to_wire(msg)])


def _check(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is int:
        if type(value) is not int:
            raise Malformed(f"{where}: expected int")
        return value
    if tp in (bool, bytes, str):
        if type(value) is not tp:
            raise Malformed(f"{where}: expected {tp.__name__}")
        return value
    if tp is type(None):
        if value is not None:
            raise Malformed(f"{where}: expected nil")
        return None
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(tp):
            try:
                return _check(value, option, where)
            except Malformed:
                continue
        raise Malformed(f"{where}: no alternative of {tp} matches")
    if origin is tuple:
        args = typing.get_args(tp)
        if type(value) is not tuple:
            raise Malformed(f"{where}: expected array")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_check(v, args[0], f"{where}[]") for v in value)
        if len(args) != len(value):
            raise Malformed(f"{where}: expected {len(args)} items")
        pairs = enumerate(zip(args, value, strict=True))
        return tuple(_check(v, a, f"{where}[{i}]") for i, (a, v) in pairs)
    if isinstance(tp, type) and issubclass(tp, Message):
        return _from_wire(tp, value, where)
    raise TypeError(f"unsupported field type {tp!r}")  # a bug in the catalogue, not input


def _from_wire(cls: type[M], value: Any, where: str) -> M:
    checkers = _CHECKERS.get(cls)
    if checkers is None:
        hints = typing.get_type_hints(cls)
        checkers = [(f.name, hints[f.name]) for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        _CHECKERS[cls] = checkers
    if type(value) is not tuple or len(value) != len(checkers):
        raise Malformed(f"{where}: expected {len(checkers)} fields")
    args = [_check(v, tp, f"{where}.{name}") for (name, tp), v in zip(checkers, value, strict=True)]
    return cls(*args)


def decode(data: bytes, max_size: int = 64 * 1024 * 1024) -> Message:
    value = unpack(data, max_size)
    if type(value) is not tuple or len(value) != 2 or type(value[0]) is not str:
        raise Malformed("message must be [type, fields]")
    cls = CATALOGUE.get(value[0])
    if cls is None:
        raise Malformed(f"unknown message type {value[0]!r}")
    return _from_wire(cls, value[1], value[0])


# --- generic replies -------------------------------------------------------------------------


@message("err")
class ErrorReply(Message):
    """A typed failure: `code` is one of DESIGN §6's error codes."""

    code: str
    message: str

    def to_exception(self) -> CcoinError:
        return error_from_code(self.code, self.message)

    @staticmethod
    def of(exc: CcoinError) -> ErrorReply:
        return ErrorReply(exc.code, exc.message)


@message("ok")
class Ok(Message):
    pass


@message("ping")
class ServicePing(Message):
    pass


@message("pong")
class ServicePong(Message):
    service: str
    version: str


# --- state service ---------------------------------------------------------------------------


@message("get_status")
class GetStatus(Message):
    pass


@message("status")
class StatusReply(Message):
    network_id: int
    genesis: bytes
    height: int
    head: bytes
    head_timestamp: int
    total_weight: int
    state_root: bytes
    mempool_count: int
    mempool_bytes: int
    ready_count: int
    poa: bool
    miners: tuple[bytes, ...]
    recent_signers: tuple[bytes, ...]
    difficulty: int


@message("get_block")
class GetBlock(Message):
    """By height (`hash` empty) or by hash."""

    height: int
    hash: bytes


@message("block")
class BlockReply(Message):
    block: bytes
    total_weight: int
    confirmations: int
    on_main_chain: bool


@message("get_blocks")
class GetBlockRange(Message):
    """Main-chain blocks: `start` (-1 = head) downwards when `newest_first`, else upwards."""

    start: int
    limit: int
    newest_first: bool


@message("blocks")
class BlockRangeReply(Message):
    blocks: tuple[bytes, ...]
    height: int


@message("get_tx")
class GetTx(Message):
    id: bytes


@message("tx")
class TxReply(Message):
    """`status`: pending | queued (`expected_nonce` is the sender's next nonce) | confirmed
    (`block_hash`, `height`, `index`, `confirmations`) | rejected (`reason` is the error
    code) | replaced (`replaced_by`) | dropped (`reason`: evicted | stale)."""

    tx: bytes
    status: str
    block_hash: bytes
    height: int
    index: int
    confirmations: int
    reason: str = ""
    replaced_by: bytes = b""
    expected_nonce: int = -1


@message("get_txs")
class GetTxs(Message):
    """Pool transactions by id (for relaying); at most 10,000 ids."""

    ids: tuple[bytes, ...]


@message("txs")
class TxsReply(Message):
    """`txs[i]` is the raw transaction with `ids[i]`, or empty if it is not in the pool."""

    txs: tuple[bytes, ...]


@message("get_account")
class GetAccount(Message):
    address: bytes


@message("account")
class AccountReply(Message):
    address: bytes
    balance: int
    nonce: int
    pending_nonce: int


@message("submit_txs")
class SubmitTxs(Message):
    """Signature-checked transactions (api and p2p verify before sending)."""

    txs: tuple[bytes, ...]


@message("tx_result")
class TxResult(Message):
    """`code` empty when accepted (or already known), else the error code."""

    id: bytes
    code: str
    message: str


@message("submit_result")
class SubmitResult(Message):
    results: tuple[TxResult, ...]


@message("get_mempool")
class GetMempool(Message):
    """A page of the pool in arrival order; `sender` (20 bytes) narrows it to one account,
    in nonce order."""

    offset: int
    limit: int
    sender: bytes = b""


@message("mempool")
class MempoolReply(Message):
    count: int
    size: int
    txs: tuple[bytes, ...]


@message("get_template")
class GetTemplate(Message):
    coinbase: bytes
    timestamp: int
    extra: bytes


@message("template")
class TemplateReply(Message):
    """An unsealed header (state root computed) and its transactions."""

    header: bytes
    txs: tuple[bytes, ...]


@message("submit_block")
class SubmitBlock(Message):
    block: bytes


@message("block_result")
class BlockResult(Message):
    """`status`: head | side | known."""

    status: str
    hash: bytes
    height: int


@message("get_account_txs")
class GetAccountTxs(Message):
    """An account's confirmed transactions, newest first: those older than the position
    `before` = (height, index) when it is given, else from the newest; `offset` of them
    skipped."""

    address: bytes
    offset: int
    limit: int
    before: tuple[int, ...] = ()


@message("account_tx")
class HistoryEntry(Message):
    """`direction`: in | out | self."""

    id: bytes
    height: int
    index: int
    direction: str


@message("account_txs")
class AccountTxsReply(Message):
    """`more`: older entries follow the last item."""

    total: int
    items: tuple[HistoryEntry, ...]
    more: bool = False


@message("get_tx_proof")
class GetTxProof(Message):
    id: bytes


@message("proof_step")
class ProofStep(Message):
    """A sibling on the path to the root; `left` when the sibling is on the left."""

    left: bool
    hash: bytes


@message("tx_proof")
class TxProofReply(Message):
    id: bytes
    block_hash: bytes
    height: int
    index: int
    tx_root: bytes
    steps: tuple[ProofStep, ...]


@message("get_tips")
class GetTips(Message):
    pass


@message("chain_tip")
class TipEntry(Message):
    """`status`: active (the head) | valid-fork (stored, lighter) | invalid."""

    hash: bytes
    height: int
    total_weight: int
    branch_length: int
    status: str


@message("tips")
class TipsReply(Message):
    tips: tuple[TipEntry, ...]


@message("get_signers")
class GetSigners(Message):
    """PoA health over the last `window` blocks."""

    window: int


@message("signer_info")
class SignerEntry(Message):
    address: bytes
    last_height: int
    sealed: int
    missed: int


@message("signers")
class SignersReply(Message):
    in_turn: bytes
    next_height: int
    signers: tuple[SignerEntry, ...]


# --- state service: sync support for p2p ------------------------------------------------------


@message("get_locator")
class GetLocator(Message):
    """Block locator of the main chain: head, then exponentially sparser, then genesis."""

    pass


@message("locator")
class LocatorReply(Message):
    hashes: tuple[bytes, ...]


@message("get_blocks_after")
class GetBlocksAfter(Message):
    """Main-chain blocks after the first `locator` hash found on the main chain, oldest
    first, at most `limit` of them and about `max_bytes`."""

    locator: tuple[bytes, ...]
    limit: int
    max_bytes: int


@message("has_blocks")
class HasBlocks(Message):
    hashes: tuple[bytes, ...]


@message("has_blocks_reply")
class HasBlocksReply(Message):
    known: tuple[bool, ...]


@message("submit_blocks")
class SubmitBlocks(Message):
    """Blocks whose seals and transaction signatures p2p has verified, parents first."""

    blocks: tuple[bytes, ...]


@message("block_outcome")
class BlockOutcome(Message):
    """`status`: head | side | known | error (`code`, `message`)."""

    hash: bytes
    height: int
    status: str
    code: str
    message: str


@message("submit_blocks_result")
class SubmitBlocksResult(Message):
    outcomes: tuple[BlockOutcome, ...]


# --- p2p control (served by p2p on endpoint "p2p") --------------------------------------------


@message("get_peers")
class GetPeers(Message):
    pass


@message("peer_info")
class PeerEntry(Message):
    """`direction`: inbound | outbound."""

    node_id: bytes
    endpoint: str
    direction: str
    height: int
    head: bytes
    total_weight: int
    score: int
    latency_ms: int
    connected_ms: int


@message("peers")
class PeersReply(Message):
    peers: tuple[PeerEntry, ...]
    syncing: bool
    sync_target: int
    node_id: bytes
    banned: int


@message("add_peer")
class AddPeer(Message):
    endpoint: str


@message("sync_now")
class SyncNow(Message):
    pass


# --- miner control ---------------------------------------------------------------------------


@message("get_mining")
class GetMining(Message):
    pass


@message("set_mining")
class SetMining(Message):
    enabled: bool


@message("mining")
class MiningReply(Message):
    enabled: bool
    address: bytes
    blocks_sealed: int
    last_block: bytes
    last_sealed_ms: int


# --- events (PUB) ----------------------------------------------------------------------------


@message("ev_head")
class HeadEvent(Message):
    """A block became the head; `pool_count` is the pool's size right after (so a chart of
    pool size per block needs no extra request)."""

    height: int
    hash: bytes
    total_weight: int
    tx_count: int
    timestamp: int
    pool_count: int


@message("ev_txs")
class TxsEvent(Message):
    ids: tuple[bytes, ...]


@message("ev_reorg")
class ReorgEvent(Message):
    disconnected: tuple[bytes, ...]
    connected: tuple[bytes, ...]


@message("ev_txs_removed")
class TxsRemovedEvent(Message):
    """Transactions that left the pool other than by inclusion; `reasons[i]` is one of
    replaced | evicted | stale | reorg-conflict."""

    ids: tuple[bytes, ...]
    reasons: tuple[str, ...]
