"""What the REST client returns: frozen dataclasses read from the node's JSON (DESIGN §6).

Each result keeps the whole JSON object in `doc` (for `--json` output and for fields newer
than this client); required fields are checked for their JSON type (a bool is never an int)
and a reply of the wrong shape is `Malformed`. Statuses are the `common.status` enums.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from client.transactions import as_hex
from common.errors import Malformed
from common.merkle import verify_proof
from common.status import (
    AuthorityState,
    ChainPace,
    Direction,
    PeerDirection,
    PeerOutcome,
    TipStatus,
    TxStatus,
)

T = TypeVar("T")
E = TypeVar("E", bound=StrEnum)


def required(doc: Mapping[str, Any], key: str, kind: type[T]) -> T:
    """A required field of the node's JSON, of the given type (bool is never an int)."""
    value = doc.get(key)
    if kind is int and type(value) is not int or not isinstance(value, kind):
        raise Malformed(f"the node's reply has no {kind.__name__} {key!r}")
    return value


def _opt(doc: Mapping[str, Any], key: str, kind: type[T], default: T) -> T:
    value = doc.get(key, default)
    return value if isinstance(value, kind) and not (kind is int and type(value) is bool) \
        else default


def named(kind: type[E], value: Any) -> E | str:
    """A status or reason as its `common.status` member; a value this client does not know
    (a newer node's) stays the plain string, so reading it never fails."""
    try:
        return kind(value)
    except ValueError:
        return str(value)


def json_object(value: Any, what: str) -> dict[str, Any]:
    """The node's reply as a JSON object, or `Malformed` naming what it should have been."""
    if not isinstance(value, dict):
        raise Malformed(f"the node's {what} reply is not a JSON object")
    return value


@dataclass(frozen=True, slots=True)
class NodeStatus:
    network_id: int
    genesis: str
    height: int
    head: str
    total_weight: int
    peers: int
    syncing: bool
    mining: bool
    version: str
    consensus: str = ""
    mempool_count: int = 0
    p2p_endpoint: str | None = None  # where other nodes reach it (None: nowhere)
    doc: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> NodeStatus:
        d = json_object(value, "status")
        pool = d.get("mempool")
        pool = pool if isinstance(pool, dict) else {}
        return cls(required(d, "network_id", int), required(d, "genesis", str),
                   required(d, "height", int), required(d, "head", str),
                   required(d, "total_weight", int), _opt(d, "peers", int, 0),
                   _opt(d, "syncing", bool, False), _opt(d, "mining", bool, False),
                   _opt(d, "version", str, ""), _opt(d, "consensus", str, ""),
                   _opt(pool, "count", int, 0), _opt(d, "p2p_endpoint", str, None), d)


@dataclass(frozen=True, slots=True)
class ReadyInfo:
    """`GET /api/v1/ready`: whether the node is doing its job; `reasons` are the failing
    checks' one-line reasons, `doc` has every check."""

    ready: bool
    reasons: tuple[str, ...]
    doc: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> ReadyInfo:
        d = json_object(value, "readiness")
        reasons = required(d, "reasons", list)
        return cls(required(d, "ready", bool), tuple(str(r) for r in reasons), d)

    def line(self) -> str:
        return "ready" if self.ready else "not ready: " + "; ".join(self.reasons)


@dataclass(frozen=True, slots=True)
class AccountInfo:
    address: str
    balance: int
    nonce: int
    pending_nonce: int
    doc: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> AccountInfo:
        d = json_object(value, "account")
        return cls(required(d, "address", str), required(d, "balance", int),
                   required(d, "nonce", int), required(d, "pending_nonce", int), d)


@dataclass(frozen=True, slots=True)
class TxInfo:
    """A transaction and what became of it. `status`: pending | queued (waits for
    `expected_nonce`) | confirmed (`block`, `height`, `index`, `confirmations`) | rejected
    (`reason` is the error code) | replaced (`replaced_by`) | dropped (`reason`: evicted,
    stale or reorg-conflict)."""

    id: str
    sender: str
    to: str
    amount: int
    fee: int
    nonce: int
    data: str
    status: TxStatus | str
    block: str | None = None
    height: int | None = None
    index: int | None = None
    confirmations: int = 0
    reason: str | None = None
    replaced_by: str | None = None
    expected_nonce: int | None = None
    explanation: str = ""
    doc: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> TxInfo:
        d = json_object(value, "transaction")
        return cls(
            required(d, "id", str), required(d, "from", str), required(d, "to", str),
            required(d, "amount", int), required(d, "fee", int), required(d, "nonce", int),
            _opt(d, "data", str, ""), named(TxStatus, _opt(d, "status", str, "pending")),
            d.get("block"), d.get("height"), d.get("index"),
            _opt(d, "confirmations", int, 0), d.get("reason"), d.get("replaced_by"),
            d.get("expected_nonce"), _opt(d, "explanation", str, ""), d)

    @property
    def final(self) -> bool:
        """True when the status can no longer become `confirmed` by waiting."""
        return self.status in (TxStatus.REJECTED, TxStatus.REPLACED, TxStatus.DROPPED)


@dataclass(frozen=True, slots=True)
class AccountChangeInfo:
    """An account a block changed: balance and nonce before the block and after it."""

    address: str
    balance_before: int
    nonce_before: int
    balance_after: int
    nonce_after: int

    @classmethod
    def from_json(cls, value: Any) -> AccountChangeInfo:
        d = json_object(value, "account change")
        before = json_object(d.get("before"), "account change's before")
        after = json_object(d.get("after"), "account change's after")
        return cls(required(d, "address", str), required(before, "balance", int),
                   required(before, "nonce", int), required(after, "balance", int),
                   required(after, "nonce", int))


def _changes(doc: Mapping[str, Any]) -> tuple[AccountChangeInfo, ...] | None:
    """A block's `changes`: None when the node keeps none (a side block) or sent none."""
    value = doc.get("changes")
    if value is None:
        return None
    if not isinstance(value, list):
        raise Malformed("the node's reply has no list 'changes'")
    return tuple(AccountChangeInfo.from_json(item) for item in value)


@dataclass(frozen=True, slots=True)
class BlockInfo:
    hash: str
    height: int
    parent: str
    timestamp: int
    coinbase: str
    signer: str
    tx_root: str
    state_root: str
    tx_count: int
    txs: tuple[dict[str, Any] | str, ...]
    confirmations: int = 0
    on_main_chain: bool = True
    doc: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    # the accounts it changed (`Client.block`); None off the main chain and in block pages
    changes: tuple[AccountChangeInfo, ...] | None = None

    @classmethod
    def from_json(cls, value: Any) -> BlockInfo:
        d = json_object(value, "block")
        h = json_object(d.get("header"), "block header")
        txs = tuple(d.get("txs") or ())
        return cls(required(d, "hash", str), required(h, "height", int), _opt(h, "parent", str, ""),
                   _opt(h, "timestamp", int, 0), _opt(h, "coinbase", str, ""),
                   _opt(h, "signer", str, ""), _opt(h, "tx_root", str, ""),
                   _opt(h, "state_root", str, ""), _opt(d, "tx_count", int, len(txs)), txs,
                   _opt(d, "confirmations", int, 0), _opt(d, "on_main_chain", bool, True), d,
                   _changes(d))


@dataclass(frozen=True, slots=True)
class BlockPage:
    height: int
    blocks: tuple[BlockInfo, ...]
    doc: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> BlockPage:
        d = json_object(value, "blocks")
        return cls(required(d, "height", int),
                   tuple(BlockInfo.from_json(b) for b in required(d, "blocks", list)), d)


@dataclass(frozen=True, slots=True)
class TxProof:
    """A Merkle inclusion proof: `steps` lead from the transaction's leaf to `tx_root`,
    the root in the header of block `block`."""

    id: str
    block: str
    height: int
    index: int
    tx_root: str
    steps: tuple[tuple[bool, str], ...]
    doc: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> TxProof:
        d = json_object(value, "proof")
        steps = tuple((bool(required(s, "left", bool)), required(s, "hash", str))
                      for s in required(d, "steps", list))
        return cls(required(d, "id", str), required(d, "block", str), required(d, "height", int),
                   required(d, "index", int), required(d, "tx_root", str), steps, d)

    def verify(self, tx_root: str | bytes | None = None) -> bool:
        """Check the proof against `tx_root` (the header's, fetched separately to trust
        it) or, by default, against the root the proof names."""
        root = as_hex(tx_root) if tx_root is not None else self.tx_root
        try:
            path = [(left, bytes.fromhex(h)) for left, h in self.steps]
            return verify_proof(bytes.fromhex(self.id), path, bytes.fromhex(root))
        except ValueError:
            return False


@dataclass(frozen=True, slots=True)
class HistoryItem:
    """One confirmed transaction of an account; `direction`: in | out | self."""

    id: str
    height: int
    index: int
    direction: Direction | str
    sender: str
    to: str
    amount: int
    fee: int
    nonce: int

    @classmethod
    def from_json(cls, value: Any) -> HistoryItem:
        d = json_object(value, "history item")
        return cls(required(d, "id", str), required(d, "height", int), required(d, "index", int),
                   named(Direction, required(d, "direction", str)), _opt(d, "from", str, ""),
                   _opt(d, "to", str, ""),
                   _opt(d, "amount", int, 0), _opt(d, "fee", int, 0), _opt(d, "nonce", int, 0))


@dataclass(frozen=True, slots=True)
class HistoryPage:
    address: str
    total: int
    offset: int
    items: tuple[HistoryItem, ...]
    doc: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    next: str | None = None  # `before=` of the next (older) page; None on the last one

    @classmethod
    def from_json(cls, value: Any) -> HistoryPage:
        d = json_object(value, "history")
        more = d.get("next")
        return cls(required(d, "address", str), required(d, "total", int),
                   _opt(d, "offset", int, 0),
                   tuple(HistoryItem.from_json(i) for i in required(d, "items", list)), d,
                   more if isinstance(more, str) else None)


@dataclass(frozen=True, slots=True)
class MempoolPage:
    count: int
    bytes: int
    offset: int
    txs: tuple[TxInfo, ...]
    doc: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> MempoolPage:
        d = json_object(value, "mempool")
        return cls(required(d, "count", int), required(d, "bytes", int), _opt(d, "offset", int, 0),
                   tuple(TxInfo.from_json(t) for t in required(d, "txs", list)), d)


@dataclass(frozen=True, slots=True)
class TipInfo:
    """`status`: active (the head) | valid-fork | invalid."""

    hash: str
    height: int
    total_weight: int
    branch_length: int
    status: TipStatus | str

    @classmethod
    def from_json(cls, value: Any) -> TipInfo:
        d = json_object(value, "tip")
        return cls(required(d, "hash", str), required(d, "height", int),
                   required(d, "total_weight", int), required(d, "branch_length", int),
                   named(TipStatus, required(d, "status", str)))


@dataclass(frozen=True, slots=True)
class SignerHealth:
    """One authority (`GET /consensus`): `state` live | offline | unknown; `may_seal`: the
    recency rule lets it seal the next block; `missed_since_head`: slots it missed since
    the head (counted from time)."""

    address: str
    last_height: int | None
    sealed: int
    missed: int
    state: AuthorityState | str = ""
    may_seal: bool = False
    last_sealed_ms: int | None = None
    missed_since_head: int = 0

    @classmethod
    def from_json(cls, value: Any) -> SignerHealth:
        d = json_object(value, "signer")
        return cls(required(d, "address", str), d.get("last_height"), required(d, "sealed", int),
                   required(d, "missed", int), named(AuthorityState, d.get("state", "")),
                   _opt(d, "may_seal", bool, False), d.get("last_sealed_ms"),
                   _opt(d, "missed_since_head", int, 0))


@dataclass(frozen=True, slots=True)
class ConsensusInfo:
    """Chain health (`GET /consensus`): `state` sealing | idle | late | waiting, `summary`
    the sentence saying why; the rest in `doc`."""

    consensus: str
    authorities: tuple[str, ...]
    in_turn: str | None
    next_height: int
    window: int
    signers: tuple[SignerHealth, ...]
    doc: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    state: ChainPace | str = ""
    overdue: bool = False
    summary: str = ""
    may_seal_next: tuple[str, ...] = ()
    since_head_ms: int = 0
    overdue_ms: int = 0

    @classmethod
    def from_json(cls, value: Any) -> ConsensusInfo:
        d = json_object(value, "consensus")
        return cls(required(d, "consensus", str), tuple(required(d, "authorities", list)),
                   d.get("in_turn"), required(d, "next_height", int), required(d, "window", int),
                   tuple(SignerHealth.from_json(s) for s in required(d, "signers", list)), d,
                   named(ChainPace, d.get("state", "")), _opt(d, "overdue", bool, False),
                   _opt(d, "summary", str, ""), tuple(_opt(d, "may_seal_next", list, [])),
                   _opt(d, "since_head_ms", int, 0), _opt(d, "overdue_ms", int, 0))


@dataclass(frozen=True, slots=True)
class VotesInfo:
    """Authority votes (`GET /consensus`'s `votes`, and what POST and DELETE
    /consensus/proposals answer): the set in turn order, the votes a proposal `needed`,
    the open `proposals` (address, authorize, votes, voters), the latest `changes`
    (height, address, authorize), this node's `own` proposals (address, authorize, done,
    voted) and `warnings`, as the JSON has them."""

    authorities: tuple[str, ...]
    needed: int
    next_checkpoint: int
    proposals: tuple[dict[str, Any], ...]
    changes: tuple[dict[str, Any], ...]
    own: tuple[dict[str, Any], ...]
    warnings: tuple[str, ...]
    doc: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> VotesInfo:
        d = json_object(value, "votes")
        return cls(tuple(required(d, "authorities", list)), required(d, "needed", int),
                   required(d, "next_checkpoint", int), tuple(required(d, "proposals", list)),
                   tuple(required(d, "changes", list)), tuple(required(d, "own", list)),
                   tuple(required(d, "warnings", list)), d)


@dataclass(frozen=True, slots=True)
class PeerInfo:
    node_id: str
    endpoint: str
    direction: PeerDirection | str
    height: int
    head: str
    total_weight: int
    score: int
    latency_ms: int
    connected_ms: int

    @classmethod
    def from_json(cls, value: Any) -> PeerInfo:
        d = json_object(value, "peer")
        return cls(required(d, "node_id", str), required(d, "endpoint", str),
                   named(PeerDirection, required(d, "direction", str)),
                   required(d, "height", int),
                   required(d, "head", str), required(d, "total_weight", int),
                   required(d, "score", int), required(d, "latency_ms", int),
                   required(d, "connected_ms", int))


@dataclass(frozen=True, slots=True)
class PeersInfo:
    """`p2p` is false when no p2p service answers on this node (then `peers` is empty)."""

    p2p: bool
    peers: tuple[PeerInfo, ...]
    syncing: bool
    sync_target: int | None
    node_id: str | None
    banned: int
    endpoint: str | None = None  # this node's, where other nodes reach it
    doc: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> PeersInfo:
        d = json_object(value, "peers")
        peers = tuple(PeerInfo.from_json(p) for p in required(d, "peers", list))
        return cls(required(d, "p2p", bool), peers,
                   _opt(d, "syncing", bool, False), d.get("sync_target"), d.get("node_id"),
                   _opt(d, "banned", int, 0), _opt(d, "endpoint", str, None), d)


@dataclass(frozen=True, slots=True)
class PeerAdded:
    """What `POST /peers` achieved (a refusal is raised: `PeerRefused` and its kinds,
    `PeerUnreachable`)."""

    outcome: PeerOutcome | str
    node_id: str
    endpoint: str
    direction: PeerDirection | str
    doc: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> PeerAdded:
        d = json_object(value, "add peer")
        return cls(named(PeerOutcome, required(d, "outcome", str)), required(d, "node_id", str),
                   required(d, "endpoint", str),
                   named(PeerDirection, required(d, "direction", str)), d)
