"""Which inbound peer gives up its slot when a newcomer arrives and the inbound slots are
full (docs/protocol.md §13.10): a pure function of the candidates, in the shape of Bitcoin
Core's `SelectNodeToEvict`.

An attacker can open many connections cheaply; what it cannot fake cheaply is what this
protects: a netgroup the attacker cannot predict (ranked by a hash keyed with this node's
secret salt), a short round trip (it would have to move closer), useful work (the latest
blocks new to us and transactions our state took), and age (it would have had to connect
long ago). Outbound links are never candidates: the node chose them, and inbound peers must
never be able to push them out. Among the peers left unprotected, one that misbehaved (a
negative score) goes first; otherwise the youngest of the most represented netgroup, so that
a crowd from one subnet displaces itself before anyone else. When nobody is left
unprotected, nobody is evicted and the newcomer is refused instead: it is no better than
any peer we have.

Everything is decided by the input (the candidates and the salt): the same input always
names the same victim, whatever order the candidates come in.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Candidate:
    """One linked peer as eviction sees it. Times are on one clock (larger is later);
    `key` (its node id) identifies it and breaks every tie."""

    key: bytes
    outbound: bool
    connected: float  # when its link became ready
    latency_ms: int  # its last ping round trip; -1 before the first
    last_block: float  # when it last sent a block new to us; 0: never
    last_tx: float  # when it last sent a transaction our state took; 0: never
    score: int  # 0 at best, negative after offences
    netgroup: str  # its subnet (`netgroup`); "" when it has no IP address


def host_ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address of a link's remote end, an IPv4-mapped IPv6 one folded to its IPv4
    form (one host, one key: for slots, bans and subnets alike); None when it is not an IP
    address (an inproc:// or ipc:// link)."""
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def netgroup(address: str) -> str:
    """The subnet an address belongs to, for the per-subnet limit and for eviction: the
    /24 of an IPv4 address (an IPv4-mapped IPv6 one counts as IPv4), the /64 of an IPv6
    one; the address itself when it is not an IP address ("" for none)."""
    ip = host_ip(address)
    if ip is None:
        return address
    prefix = 24 if ip.version == 4 else 64
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def _take(pool: list[Candidate], count: int, order: Callable[[Candidate], Any],
          eligible: Callable[[Candidate], bool] = lambda c: True) -> list[Candidate]:
    """Remove from `pool` and return the first `count` eligible candidates by `order`."""
    chosen = sorted((c for c in pool if eligible(c)), key=order)[:count]
    for c in chosen:
        pool.remove(c)
    return chosen


def _keyed(salt: bytes, group: str) -> bytes:
    return hashlib.sha256(salt + group.encode()).digest()


def protect(candidates: Iterable[Candidate],
            salt: bytes) -> tuple[list[Candidate], list[Candidate]]:
    """(protected, evictable) among the inbound candidates; outbound ones are in neither.

    Protected, in this order, each from those not protected yet (n inbound candidates):
    max(1, n/8) by keyed netgroup, max(1, n/4) with the shortest round trip (of those with
    one), max(1, n/8) that most recently sent a block new to us, max(1, n/8) that most
    recently sent a transaction state took (of those that ever did), then the older half of
    the rest."""
    pool = sorted((c for c in candidates if not c.outbound), key=lambda c: c.key)
    n = len(pool)
    eighth, quarter = max(1, n // 8), max(1, n // 4)
    kept = _take(pool, eighth, lambda c: (_keyed(salt, c.netgroup), c.connected, c.key))
    kept += _take(pool, quarter, lambda c: (c.latency_ms, c.connected, c.key),
                  lambda c: c.latency_ms >= 0)
    kept += _take(pool, eighth, lambda c: (-c.last_block, c.connected, c.key),
                  lambda c: c.last_block > 0)
    kept += _take(pool, eighth, lambda c: (-c.last_tx, c.connected, c.key),
                  lambda c: c.last_tx > 0)
    kept += _take(pool, len(pool) // 2, lambda c: (c.connected, c.key))
    return kept, pool


def select_victim(candidates: Sequence[Candidate], salt: bytes) -> bytes | None:
    """The key of the inbound peer to evict for a newcomer, or None: refuse the newcomer."""
    _, pool = protect(candidates, salt)
    if not pool:
        return None
    worst = min(c.score for c in pool)
    if worst < 0:  # misbehaved: it goes before any well-behaved peer
        pool = [c for c in pool if c.score == worst]
    groups: dict[str, list[Candidate]] = {}
    for c in pool:
        groups.setdefault(c.netgroup, []).append(c)

    def youngest(members: list[Candidate]) -> Candidate:
        return max(members, key=lambda c: (c.connected, c.key))

    # the biggest group; among equals, the one whose youngest member came last
    crowd = max(groups.values(), key=lambda members: (len(members), youngest(members).connected,
                                                      youngest(members).key))
    return youngest(crowd).key
