"""Replaying stored blocks from genesis, for the operator tools (`check`, `reindex`).

What `ccoin node check` and `ccoin node reindex` share: the header rules with the
ancestors they look back on (`Ancestry`), the world state kept in memory while blocks are
applied with `common.ledger` (`Replay`), and how long work reports its progress. Every
rule is a call into `common`, exactly as an import makes it; nothing here reads the
database (the callers hand it blocks).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from common import consensus, errors
from common.authorities import Snapshot, genesis_snapshot
from common.genesis import Genesis
from common.ledger import StateChanges, apply_block
from common.statehash import from_scratch
from common.types import Account, Block, BlockHeader

# (phase, done, total or None when unknown): how far a long run is, for the terminal. A
# phase opens with done = 0 and closes with done = total (the count, if it was unknown).
Progress = Callable[[str, int, int | None], None]

MAX_PROBLEMS = 50  # listed in a report; more are only counted


def no_progress(_phase: str, _done: int, _total: int | None) -> None:
    pass


@dataclass(slots=True)
class Problems:
    """What a run found wrong: the first `MAX_PROBLEMS` in words, and how many in all."""

    listed: list[str] = field(default_factory=list)
    count: int = 0

    def add(self, text: str) -> None:
        self.count += 1
        if len(self.listed) < MAX_PROBLEMS:
            self.listed.append(text)


class Ancestry:
    """Headers by hash, with the authorities after each (`common.authorities`), so that a
    header can be checked against the ancestors its rules look back on (the PoA recency
    window, the PoW retarget anchor, the set at its parent), as `Chain` does from the
    database. The genesis header goes in first."""

    def __init__(self, genesis: Genesis) -> None:
        self.genesis = genesis
        self.headers: dict[bytes, BlockHeader] = {}
        self.snapshots: dict[bytes, Snapshot] = {}

    def add(self, header: BlockHeader, snapshot: Snapshot) -> None:
        self.headers[header.hash] = header
        self.snapshots[header.hash] = snapshot

    def add_genesis(self, header: BlockHeader) -> Snapshot:
        snapshot = genesis_snapshot(self.genesis.miners)
        self.add(header, snapshot)
        return snapshot

    def signers_at(self, block_hash: bytes) -> tuple[bytes, ...]:
        return self.snapshots[block_hash].signers

    def weight(self, header: BlockHeader) -> int:
        """The block's own weight (its parent added already)."""
        return consensus.block_weight(self.genesis, header, self.signers_at(header.parent))

    def _back(self, header: BlockHeader, to_height: int) -> BlockHeader | None:
        cur: BlockHeader | None = header
        while cur is not None and cur.height > to_height:
            cur = self.headers.get(cur.parent)
        return cur

    def check(self, header: BlockHeader) -> Snapshot:
        """Link, height, timestamp order, difficulty, HashCash proof, seal, recency and vote
        (`consensus.validate_header`); the future-timestamp bound is not re-applied to a
        block that passed it when it was imported. Returns the authorities after it."""
        g = self.genesis
        parent = self.headers.get(header.parent)
        if parent is None:
            raise errors.UnknownParent(f"parent {header.parent.hex()[:16]} is not stored")
        snapshot = self.snapshots[parent.hash]
        window = consensus.recency_window(snapshot.signers)
        recent: list[bytes] = []
        cur: BlockHeader | None = parent
        while g.is_poa and cur is not None and cur.height > 0 and len(recent) < window:
            recent.append(cur.coinbase)
            cur = self.headers.get(cur.parent)
        recent.reverse()
        anchor_height = consensus.retarget_anchor_height(g, header.height)
        anchor = None if anchor_height is None else self._back(parent, anchor_height)
        return consensus.validate_header(
            g, parent, header, now_ms=header.timestamp, recent_signers=recent,
            anchor_timestamp=anchor.timestamp if anchor is not None else None,
            snapshot=snapshot)


class Replay:
    """The world state in memory, from the genesis alloc on, as blocks are applied."""

    def __init__(self, genesis: Genesis) -> None:
        self.genesis = genesis
        self.accounts: dict[bytes, Account] = {
            a: acc for a, acc in genesis.initial_accounts().items() if not acc.is_empty()}
        self.state_value = from_scratch(self.accounts.items())
        self.total_weight = 0

    def view(self, address: bytes) -> Account:
        return self.accounts.get(address) or Account()

    def apply(self, block: Block, signers: tuple[bytes, ...]) -> StateChanges:
        """Apply `block` (its body checked first, signatures aside: the tx root commits to
        every transaction's bytes); raises the `InvalidBlock` an import would. `signers`:
        the authorities at its parent (its weight)."""
        consensus.validate_body(self.genesis, block, verify_signatures=False)
        changes = apply_block(self.view, self.state_value, block, self.genesis.network_id,
                              self.genesis.reward)
        for address, account in changes.after.items():
            if account.is_empty():
                self.accounts.pop(address, None)
            else:
                self.accounts[address] = account
        self.state_value = changes.state_value
        self.total_weight += consensus.block_weight(self.genesis, block.header, signers)
        return changes


class Meter:
    """Calls `progress` when a phase opens, at most every `every` seconds, and when it
    closes."""

    def __init__(self, progress: Progress, phase: str, total: int | None,
                 every: float = 0.5) -> None:
        self.progress, self.phase, self.total, self.every = progress, phase, total, every
        self.done = 0
        self._next = time.monotonic() + every
        progress(phase, 0, total)

    def step(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self.every
            self.progress(self.phase, self.done, self.total)

    def finish(self) -> None:
        self.progress(self.phase, self.done, self.done)
