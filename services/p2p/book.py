"""The address book: nodes we may dial, where they came from, and when to try them again.

Sources are the configured bootnodes and `AddPeer` (kept for good), discovery, PEX and the
listen addresses inbound peers announce (forgotten first when the book is full). A failed
dial, or a link that closes soon after it opened, backs off exponentially (1 s doubling to
5 min), a refusal (wrong network, banned) or
our own address is not dialed again for the ban time, so no source can make the node
spin on a bad address.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

CAPACITY = 1024
BACKOFF_MIN_S = 1.0
BACKOFF_MAX_S = 300.0
PERSISTENT = ("bootnode", "manual")


@dataclass(slots=True)
class Address:
    endpoint: str
    node_id: bytes = b""
    curve_key: bytes = b""
    source: str = "pex"
    failures: int = 0
    next_try: float = 0.0
    last_ok: float = 0.0  # monotonic time of the last successful handshake

    @property
    def persistent(self) -> bool:
        return self.source in PERSISTENT


class AddressBook:
    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self.entries: dict[str, Address] = {}

    def add(self, endpoint: str, node_id: bytes = b"", curve_key: bytes = b"",
            source: str = "pex") -> Address | None:
        """Learn or refresh an address; a persistent source wins over a transient one, and
        a known node id or curve key is kept unless the new source is persistent."""
        entry = self.entries.get(endpoint)
        if entry is None:
            if len(self.entries) >= self.capacity and not self._evict():
                return None
            entry = self.entries[endpoint] = Address(endpoint, node_id, curve_key, source)
            return entry
        if source in PERSISTENT and not entry.persistent:
            entry.source = source
        if node_id and (not entry.node_id or source in PERSISTENT):
            entry.node_id = node_id
        if curve_key and (not entry.curve_key or source in PERSISTENT):
            entry.curve_key = curve_key
        return entry

    def _evict(self) -> bool:
        """Drop the transient entry that has failed most (oldest first among equals)."""
        victims = [a for a in self.entries.values() if not a.persistent]
        if not victims:
            return False
        worst = max(victims, key=lambda a: (a.failures, -a.last_ok))
        del self.entries[worst.endpoint]
        return True

    def get(self, endpoint: str) -> Address | None:
        return self.entries.get(endpoint)

    def connected(self, endpoint: str, node_id: bytes) -> None:
        """A handshake with the node at `endpoint` completed."""
        entry = self.entries.get(endpoint)
        if entry is not None:
            entry.last_ok = time.monotonic()
            entry.node_id = node_id

    def reset(self, endpoint: str) -> None:
        """Forget past failures (a link that stayed up a while, or an operator's request)."""
        entry = self.entries.get(endpoint)
        if entry is not None:
            entry.failures = 0
            entry.next_try = 0.0

    def failed(self, endpoint: str, now: float | None = None) -> None:
        entry = self.entries.get(endpoint)
        if entry is None:
            return
        now = time.monotonic() if now is None else now
        entry.failures += 1
        backoff = min(BACKOFF_MAX_S, BACKOFF_MIN_S * 2 ** (entry.failures - 1))
        entry.next_try = max(entry.next_try, now + backoff)  # never shortens a hold

    def hold(self, endpoint: str, seconds: float) -> None:
        """Do not dial `endpoint` for `seconds` (refused us, or it is ourselves)."""
        entry = self.entries.get(endpoint)
        if entry is not None:
            entry.next_try = time.monotonic() + seconds

    def due(self, now: float | None = None) -> Iterator[Address]:
        """Addresses whose back-off has expired, persistent ones first."""
        now = time.monotonic() if now is None else now
        ready = [a for a in self.entries.values() if a.next_try <= now]
        ready.sort(key=lambda a: (not a.persistent, a.failures))
        return iter(ready)

    def __len__(self) -> int:
        return len(self.entries)
