"""What the REST client returns about the network: peers, consensus health, authority votes
and the chain's tips (frozen dataclasses read from the node's JSON, as `results` does)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from client.results import json_object, named, optional, required
from common.status import AuthorityState, ChainPace, PeerDirection, PeerOutcome, TipStatus


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
                   optional(d, "may_seal", bool, False), d.get("last_sealed_ms"),
                   optional(d, "missed_since_head", int, 0))


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
                   named(ChainPace, d.get("state", "")), optional(d, "overdue", bool, False),
                   optional(d, "summary", str, ""), tuple(optional(d, "may_seal_next", list, [])),
                   optional(d, "since_head_ms", int, 0), optional(d, "overdue_ms", int, 0))


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
                   optional(d, "syncing", bool, False), d.get("sync_target"), d.get("node_id"),
                   optional(d, "banned", int, 0), optional(d, "endpoint", str, None), d)


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
