"""Peer discipline: what misbehaviour costs, per-peer rate limits, bans, bounded caches.

A peer starts at score 0 and regains one point every `RECOVERY_S` seconds up to 0; every
offence subtracts its penalty, and a peer at or below `BAN_FLOOR` is sent `BYE banned`,
disconnected and banned (node id, endpoint, curve key, and an inbound peer's IP address unless
it is loopback) for the configured time. Penalties are sized so that an honest peer's
accidents (a late block, a transaction that lost a race) cost nothing, a buggy peer is
dropped after a handful of bad frames, and a provably invalid block (a bad seal, a wrong
state root) bans at once: no honest node relays one.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from typing import Generic, TypeVar

from common import wire
from common.errors import (
    BadTimestamp,
    CcoinError,
    Duplicate,
    Internal,
    TooLarge,
    Unavailable,
    UnknownParent,
)
from services.p2p.eviction import host_ip

BAN_FLOOR = -100
RECOVERY_S = 10.0

# --- penalties ---------------------------------------------------------------------------------
MALFORMED = 20  # undecodable, non-canonical, wrong field types
TOO_LARGE = 25  # over a message's own size bound
UNKNOWN_MESSAGE = 10  # a header we do not know (could be a newer peer: mild)
BEFORE_HANDSHAKE = 20  # anything but HEL/ACK/BYE before the handshake completed
BAD_ACK = 100  # a hello signature that does not verify: impersonation
FLOOD = 5  # one message over the rate limit (dropped)
QUEUE_FULL = 0  # its work queue is full: dropped, not held against it (our state may be
# slow or restarting; floods are what the rate limits catch)
BAD_TX = 25  # a transaction with a bad signature, for another chain, or undecodable
UNSOLICITED = 10  # a BLS we did not ask for, or a PON without a PNG
SYNC_TIMEOUT = 10  # asked for blocks, got nothing in time
EMPTY_SYNC = 5  # claimed more weight than us but had nothing after our locator
INVALID_BLOCK = 100  # seal, proof, Merkle root, state root, transactions...
MINOR_BLOCK = 10  # a block that can be an honest accident (clock skew)

# Block errors an honest peer can produce: a clock a little ahead, a reorg racing ours.
_BLOCK_ACCIDENTS: tuple[tuple[type[CcoinError], int], ...] = (
    (BadTimestamp, MINOR_BLOCK), (UnknownParent, 0), (Duplicate, 0))


def block_penalty(err: CcoinError) -> int:
    """Penalty for a block that state (or our own checks) rejected with `err`, typed as
    `common.errors.error_from_code` rebuilds what state answered."""
    for kind, points in _BLOCK_ACCIDENTS:
        if isinstance(err, kind):
            return points
    # our own state failed (timed out, a bug, an untyped failure): not the peer's fault
    if isinstance(err, Unavailable | Internal) or type(err) is CcoinError:
        return 0
    return INVALID_BLOCK


def decode_penalty(exc: Exception) -> int:
    if isinstance(exc, wire.UnknownMessage):
        return UNKNOWN_MESSAGE
    if isinstance(exc, TooLarge):
        return TOO_LARGE
    return MALFORMED


def bannable_ip(remote: str) -> str | None:
    """The key to ban for an inbound peer's source address `remote` (ZeroMQ's "Peer-Address"),
    or None when that address must not be banned.

    Loopback is never banned (127.0.0.0/8, ::1, ::ffff:127.x.y.z): every node of one machine,
    a devnet's for instance, connects from it, so an IP ban there would cut honest local
    nodes (Bitcoin Core likewise disconnects but never discourages local peers). Anything
    that is not an IP address (an ipc:// peer, no property) is not banned either. An
    IPv4-mapped IPv6 address folds to its IPv4 form, so one host has one key."""
    ip = host_ip(remote)
    if ip is None or ip.is_loopback:
        return None
    return str(ip)


def endpoint_ip(endpoint: str) -> str | None:
    """The bannable IP address an endpoint `tcp://host:port` dials (None for a host name,
    loopback, or anything else `bannable_ip` would not ban)."""
    host = endpoint.removeprefix("tcp://").rpartition(":")[0]
    return bannable_ip(host.removeprefix("[").removesuffix("]"))


# --- rate limits -------------------------------------------------------------------------------
# messages per second and burst, per peer and message type; over it a message is dropped
RATE_LIMITS: dict[bytes, tuple[float, float]] = {
    b"HEL": (0.2, 2),
    b"ACK": (0.2, 2),
    b"PNG": (2, 10),
    b"PON": (2, 10),
    b"TXS": (100, 400),
    b"BLK": (20, 60),
    b"GBL": (5, 20),
    b"BLS": (5, 20),
    b"GHD": (5, 20),
    b"HDS": (5, 20),
    b"GPX": (0.2, 3),
    b"PEX": (0.2, 3),
    b"BYE": (1, 3),
}
DEFAULT_LIMIT = (5.0, 20.0)  # unknown headers


class TokenBucket:
    """`rate` tokens a second up to `burst`; a message takes one."""

    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: float, now: float | None = None) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = time.monotonic() if now is None else now

    def take(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        elapsed = max(0.0, now - self.stamp)
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.stamp = max(self.stamp, now)
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class RateLimiter:
    """One bucket per message type, created on first use."""

    __slots__ = ("buckets",)

    def __init__(self) -> None:
        self.buckets: dict[bytes, TokenBucket] = {}

    def allow(self, header: bytes, now: float | None = None) -> bool:
        key = header if header in RATE_LIMITS else b"?"  # unknown headers share one bucket
        bucket = self.buckets.get(key)
        if bucket is None:
            rate, burst = RATE_LIMITS.get(key, DEFAULT_LIMIT)
            bucket = self.buckets[key] = TokenBucket(rate, burst, now)
        return bucket.take(now)


# --- bounded caches ----------------------------------------------------------------------------
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LruSet(Generic[K]):
    """A set that forgets its oldest members beyond `capacity`."""

    __slots__ = ("capacity", "items")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.items: OrderedDict[K, None] = OrderedDict()

    def add(self, key: K) -> None:
        self.items[key] = None
        self.items.move_to_end(key)
        if len(self.items) > self.capacity:
            self.items.popitem(last=False)

    def update(self, keys: Iterable[K]) -> None:
        for key in keys:
            self.add(key)

    def __contains__(self, key: object) -> bool:
        return key in self.items

    def __len__(self) -> int:
        return len(self.items)

    def discard(self, key: K) -> None:
        self.items.pop(key, None)


class LruDict(Generic[K, V]):
    """A dict that forgets its oldest entries beyond `capacity`."""

    __slots__ = ("capacity", "items")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.items: OrderedDict[K, V] = OrderedDict()

    def put(self, key: K, value: V) -> None:
        self.items[key] = value
        self.items.move_to_end(key)
        if len(self.items) > self.capacity:
            self.items.popitem(last=False)

    def get(self, key: K) -> V | None:
        return self.items.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self.items

    def __len__(self) -> int:
        return len(self.items)


class BanList:
    """Banned keys (("node", id), ("endpoint", uri), ("curve", key), ("ip", address)) until
    a time."""

    MAX = 10_000

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.until: dict[tuple[str, object], float] = {}

    def ban(self, keys: Iterable[tuple[str, object]], now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self.prune(now)
        for key in keys:
            if len(self.until) >= self.MAX:
                self.until.pop(next(iter(self.until)))
            self.until[key] = now + self.seconds

    def banned(self, key: tuple[str, object], now: float | None = None) -> bool:
        until = self.until.get(key)
        if until is None:
            return False
        if (time.monotonic() if now is None else now) >= until:
            del self.until[key]
            return False
        return True

    def prune(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        for key in [k for k, t in self.until.items() if t <= now]:
            del self.until[key]

    def count(self, kind: str = "node") -> int:
        self.prune()
        return sum(1 for k in self.until if k[0] == kind)
