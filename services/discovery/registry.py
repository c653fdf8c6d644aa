"""The discovery registry: which nodes of which network were alive lately.

A network is the pair (`network_id`, `genesis` hash): two chains that share an id but not a
genesis are different networks and never see each other's nodes. A node is known by its
`node_id` within a network; registering again renews it (the heartbeat) and may change its
endpoint or CurveZMQ key. An entry not renewed within `ttl_ms` is gone.

Everything lives in memory, on purpose: the registry is soft state that every node
re-asserts once per heartbeat, so a restarted discovery service is full again within one
heartbeat interval, and nodes also learn peers from bootnodes and from each other (DESIGN
§5), so a dead discovery service stops no one.

Pure of I/O: the HTTP layer (`services.discovery.app`) parses and validates requests, and
the clocks are injected so the expiry rules are tested without sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from common.errors import Full

DEFAULT_TTL_MS = 30_000
DEFAULT_MAX_NODES = 1000  # per network
DEFAULT_MAX_NETWORKS = 100



@dataclass(frozen=True, slots=True)
class Registration:
    """What a node says about itself; every field already validated (hex is lowercase)."""

    network_id: int
    genesis: str
    node_id: str
    endpoint: str
    curve_key: str = ""

    @property
    def network(self) -> tuple[int, str]:
        return (self.network_id, self.genesis)


@dataclass(frozen=True, slots=True)
class Entry:
    registration: Registration
    last_seen_ms: int  # wall clock: what clients are shown
    seen_at: float  # monotonic seconds: what expiry is measured with

    def as_json(self) -> dict[str, Any]:
        r = self.registration
        return {"network_id": r.network_id, "genesis": r.genesis, "node_id": r.node_id,
                "endpoint": r.endpoint, "curve_key": r.curve_key,
                "last_seen": self.last_seen_ms}


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(slots=True)
class Registry:
    ttl_ms: int = DEFAULT_TTL_MS
    max_nodes: int = DEFAULT_MAX_NODES
    max_networks: int = DEFAULT_MAX_NETWORKS
    monotonic: Callable[[], float] = time.monotonic
    wall_ms: Callable[[], int] = _wall_ms
    # network -> node_id -> entry; dicts keep insertion order, renewals move to the end
    _networks: dict[tuple[int, str], dict[str, Entry]] = field(default_factory=dict)

    def register(self, reg: Registration) -> tuple[Entry, bool]:
        """Add or renew `reg`; returns the entry and whether it was a renewal.

        Another node_id that advertised the same endpoint is dropped: the endpoint belongs
        to whoever registered it last (a node restarted with a new identity)."""
        now = self.monotonic()
        nodes = self._networks.get(reg.network)
        if nodes is not None:
            self._expire_network(reg.network, nodes, now)  # may drop the whole network
        nodes = self._networks.get(reg.network)
        if nodes is None:
            if len(self._networks) >= self.max_networks:
                self.expire()
                if len(self._networks) >= self.max_networks:
                    raise Full(f"discovery serves at most {self.max_networks} networks")
            nodes = self._networks[reg.network] = {}
        renewed = nodes.pop(reg.node_id, None) is not None
        for other, entry in list(nodes.items()):
            if entry.registration.endpoint == reg.endpoint:
                del nodes[other]
        if len(nodes) >= self.max_nodes:
            if not nodes:
                del self._networks[reg.network]
            raise Full(f"network {reg.network_id} already has {self.max_nodes} live nodes")
        entry = Entry(reg, self.wall_ms(), now)
        nodes[reg.node_id] = entry
        return entry, renewed

    def nodes(self, network_id: int, genesis: str | None = None) -> list[Entry]:
        """Live nodes of a network (every genesis of `network_id` when `genesis` is None),
        most recently seen first."""
        now = self.monotonic()
        found: list[Entry] = []
        for key, nodes in list(self._networks.items()):
            if key[0] != network_id or (genesis is not None and key[1] != genesis):
                continue
            self._expire_network(key, nodes, now)
            found.extend(nodes.values())
        found.sort(key=lambda e: e.seen_at, reverse=True)
        return found

    def expire(self) -> int:
        """Drop every expired entry (and empty network); returns how many entries went."""
        now = self.monotonic()
        dropped = 0
        for key, nodes in list(self._networks.items()):
            dropped += self._expire_network(key, nodes, now)
        return dropped

    def _expire_network(self, key: tuple[int, str], nodes: dict[str, Entry], now: float) -> int:
        limit = now - self.ttl_ms / 1000
        # renewals re-insert at the end, so the oldest entries come first
        stale = []
        for node_id, entry in nodes.items():
            if entry.seen_at > limit:
                break
            stale.append(node_id)
        for node_id in stale:
            del nodes[node_id]
        if not nodes:
            self._networks.pop(key, None)
        return len(stale)

    @property
    def network_count(self) -> int:
        return len(self._networks)

    @property
    def node_count(self) -> int:
        return sum(len(nodes) for nodes in self._networks.values())
