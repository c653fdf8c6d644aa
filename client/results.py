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
from common.status import AssumeValidState, Direction, TxStatus

T = TypeVar("T")
E = TypeVar("E", bound=StrEnum)


def required(doc: Mapping[str, Any], key: str, kind: type[T]) -> T:
    """A required field of the node's JSON, of the given type (bool is never an int)."""
    value = doc.get(key)
    if kind is int and type(value) is not int or not isinstance(value, kind):
        raise Malformed(f"the node's reply has no {kind.__name__} {key!r}")
    return value


def optional(doc: Mapping[str, Any], key: str, kind: type[T], default: T) -> T:
    """An optional field of the node's JSON; `default` when absent or of another type."""
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
    assume_valid: AssumeValidStatus | None = None  # None: no p2p answered, or an older node

    @classmethod
    def from_json(cls, value: Any) -> NodeStatus:
        d = json_object(value, "status")
        pool = d.get("mempool")
        pool = pool if isinstance(pool, dict) else {}
        av = d.get("assume_valid")
        return cls(required(d, "network_id", int), required(d, "genesis", str),
                   required(d, "height", int), required(d, "head", str),
                   required(d, "total_weight", int), optional(d, "peers", int, 0),
                   optional(d, "syncing", bool, False), optional(d, "mining", bool, False),
                   optional(d, "version", str, ""), optional(d, "consensus", str, ""),
                   optional(pool, "count", int, 0), optional(d, "p2p_endpoint", str, None), d,
                   AssumeValidStatus.from_json(av) if av is not None else None)


@dataclass(frozen=True, slots=True)
class AssumeValidStatus:
    """`GET /status`'s `assume_valid`: the block vouched for (None when off), what sync is
    doing about it (`state`), its height once found, and what was skipped since p2p
    started."""

    block: str | None
    state: AssumeValidState | str
    height: int | None
    signatures_skipped: int
    blocks_skipped: int

    @classmethod
    def from_json(cls, value: Any) -> AssumeValidStatus:
        d = json_object(value, "assume_valid")
        height = d.get("height")
        return cls(optional(d, "block", str, None),
                   named(AssumeValidState, required(d, "state", str)),
                   height if type(height) is int else None,
                   optional(d, "signatures_skipped", int, 0), optional(d, "blocks_skipped", int, 0))

    def line(self) -> str | None:
        """In one line, as `ccoin status` shows it; None when assume-valid is off."""
        if self.state == AssumeValidState.OFF:
            return None
        match self.state:
            case AssumeValidState.SEARCHING:
                where = "not found yet in the peers' headers"
            case AssumeValidState.FOUND:
                where = f"found at height {self.height} on a peer's chain"
            case AssumeValidState.MISSING:
                where = "not on the last peer's chain: its blocks are verified in full"
            case AssumeValidState.REACHED:
                where = f"reached at height {self.height}: later blocks are verified in full"
            case other:
                where = str(other)  # a state a newer node knows and this client does not
        return (f"block {self.block} {where}; {self.signatures_skipped:,} signatures skipped "
                f"in {self.blocks_skipped:,} blocks")


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
            optional(d, "data", str, ""), named(TxStatus, optional(d, "status", str, "pending")),
            d.get("block"), d.get("height"), d.get("index"),
            optional(d, "confirmations", int, 0), d.get("reason"), d.get("replaced_by"),
            d.get("expected_nonce"), optional(d, "explanation", str, ""), d)

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
        return cls(required(d, "hash", str), required(h, "height", int),
                   optional(h, "parent", str, ""), optional(h, "timestamp", int, 0),
                   optional(h, "coinbase", str, ""), optional(h, "signer", str, ""),
                   optional(h, "tx_root", str, ""), optional(h, "state_root", str, ""),
                   optional(d, "tx_count", int, len(txs)), txs,
                   optional(d, "confirmations", int, 0),
                   optional(d, "on_main_chain", bool, True), d, _changes(d))


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
                   named(Direction, required(d, "direction", str)), optional(d, "from", str, ""),
                   optional(d, "to", str, ""), optional(d, "amount", int, 0),
                   optional(d, "fee", int, 0), optional(d, "nonce", int, 0))


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
                   optional(d, "offset", int, 0),
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
        return cls(required(d, "count", int), required(d, "bytes", int),
                   optional(d, "offset", int, 0),
                   tuple(TxInfo.from_json(t) for t in required(d, "txs", list)), d)
