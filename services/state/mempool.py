"""The transaction pool: per-sender nonce queues, replace-by-fee, eviction by fee.

A sender's transactions are *ready* when their nonces run without a gap from the sender's
confirmed nonce, *queued* when a gap precedes them; at most `max_future` nonces ahead of
the confirmed nonce are held. A same-nonce transaction replaces another only for a strictly
higher fee. When the pool is full, a newcomer must pay more than the cheapest evictable
transaction (the last of some sender's queue, so no sender is left with a gap); otherwise
`pool_full`. Admission also checks that the sender can pay for all its earlier pending
transactions plus this one. This class is pure bookkeeping: the journal lives in the store.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field

from common import errors
from common.status import RemovalReason
from common.types import Account, Transaction

DEFAULT_MAX_COUNT = 200_000
DEFAULT_MAX_FUTURE = 64
INCLUDED = "included"  # left by confirmation: not a removal anyone is told about


@dataclass(slots=True)
class SenderQueue:
    """One sender's pending transactions by nonce. `total_cost`, the highest nonce held and
    the cached end of the ready run keep the common case (appending the next nonce) O(1),
    however many the sender has pending."""

    base_nonce: int
    txs: dict[int, Transaction] = field(default_factory=dict)
    total_cost: int = 0
    top: int = -1  # the highest nonce held (-1: none)
    _run_end: int | None = None

    def ready(self) -> Iterator[Transaction]:
        nonce = self.base_nonce
        while (tx := self.txs.get(nonce)) is not None:
            yield tx
            nonce += 1

    def next_nonce(self) -> int:
        nonce = self._run_end if self._run_end is not None else self.base_nonce
        nonce = max(nonce, self.base_nonce)
        while nonce in self.txs:
            nonce += 1
        self._run_end = nonce
        return nonce

    def rebase(self, base_nonce: int) -> None:
        if base_nonce != self.base_nonce:
            self.base_nonce = base_nonce
            self._run_end = None

    def cost_before(self, nonce: int) -> int:
        if nonce > self.top:
            return self.total_cost
        return sum(t.cost for n, t in self.txs.items() if n < nonce)

    def put(self, tx: Transaction) -> None:
        self.txs[tx.nonce] = tx
        self.total_cost += tx.cost
        self.top = max(self.top, tx.nonce)

    def pop(self, nonce: int) -> None:
        tx = self.txs.pop(nonce)
        self.total_cost -= tx.cost
        self._run_end = None
        if nonce == self.top:  # blocks take the lowest nonces: this is the rare case
            self.top = max(self.txs, default=-1)


@dataclass(frozen=True, slots=True)
class Removed:
    """A transaction the pool let go, and why (`INCLUDED` in a block, or a
    `RemovalReason`); `by` is the replacing transaction's id."""

    tx: Transaction
    reason: str
    by: bytes = b""


class Mempool:
    def __init__(self, chain_id: int, max_count: int = DEFAULT_MAX_COUNT,
                 max_future: int = DEFAULT_MAX_FUTURE) -> None:
        self.chain_id = chain_id
        self.max_count = max_count
        self.max_future = max_future
        self.by_id: dict[bytes, Transaction] = {}
        self.senders: dict[bytes, SenderQueue] = {}
        self.arrival: dict[bytes, int] = {}
        self.size = 0
        self._seq = itertools.count()
        self._ready_count: int | None = 0

    def clear(self) -> None:
        """Forget every transaction (the chain reloads the pool from its journal)."""
        self.by_id.clear()
        self.senders.clear()
        self.arrival.clear()
        self.size = 0
        self._ready_count = 0

    def __len__(self) -> int:
        return len(self.by_id)

    def __contains__(self, txid: bytes) -> bool:
        return txid in self.by_id

    def get(self, txid: bytes) -> Transaction | None:
        return self.by_id.get(txid)

    def is_ready(self, tx: Transaction) -> bool:
        queue = self.senders.get(tx.sender)
        if queue is None:
            return False
        return all(n in queue.txs for n in range(queue.base_nonce, tx.nonce))

    def pending_nonce(self, sender: bytes, account: Account) -> int:
        queue = self.senders.get(sender)
        return queue.next_nonce() if queue is not None else account.nonce

    def ready_count(self) -> int:
        if self._ready_count is None:  # a sender's ready run ends at its next nonce (cached)
            self._ready_count = sum(q.next_nonce() - q.base_nonce for q in self.senders.values())
        return self._ready_count

    def add(self, tx: Transaction, account: Account) -> list[Removed]:
        """Admit `tx` given its sender's confirmed account; returns what it displaced."""
        if tx.id in self.by_id:
            raise errors.Duplicate("transaction already pending")
        if tx.chain_id != self.chain_id:
            raise errors.WrongChain(f"transaction is for chain {tx.chain_id}")
        if tx.nonce < account.nonce:
            raise errors.NonceTooLow(f"nonce {tx.nonce} is below the account nonce "
                                     f"{account.nonce}")
        queue = self.senders.get(tx.sender)
        if queue is None:
            queue = SenderQueue(account.nonce)
        queue.rebase(account.nonce)
        self._ready_count = None  # the rebase may have moved it, even if this add fails
        ready_end = queue.next_nonce()
        if tx.nonce >= ready_end + self.max_future:
            raise errors.NonceGap(f"nonce {tx.nonce} is more than {self.max_future} ahead of "
                                  f"the next nonce {ready_end}")
        earlier = queue.cost_before(tx.nonce)
        if earlier + tx.cost > account.balance:
            raise errors.InsufficientFunds(
                f"balance {account.balance} < {tx.cost} + {earlier} owed by earlier pending "
                "transactions")
        removed: list[Removed] = []
        old = queue.txs.get(tx.nonce)
        if old is not None:
            if tx.fee <= old.fee:
                raise errors.Underpriced(f"replacing nonce {tx.nonce} needs a fee above {old.fee}")
            self._drop(old)
            removed.append(Removed(old, RemovalReason.REPLACED, tx.id))
        elif len(self.by_id) >= self.max_count:
            victim = self._cheapest_tail(exclude=tx.sender)
            if victim is None or victim.fee >= tx.fee:
                raise errors.PoolFull("mempool is full; a higher fee is needed")
            self._drop(victim)
            removed.append(Removed(victim, RemovalReason.EVICTED))
        self.senders[tx.sender] = queue
        queue.put(tx)
        self.by_id[tx.id] = tx
        self.arrival[tx.id] = next(self._seq)
        self.size += len(tx.raw)
        self._ready_count = None
        return removed

    def _cheapest_tail(self, exclude: bytes) -> Transaction | None:
        best: Transaction | None = None
        for sender, queue in self.senders.items():
            if sender == exclude or not queue.txs:
                continue
            tail = queue.txs[queue.top]
            if best is None or tail.fee < best.fee:
                best = tail
        return best

    def _drop(self, tx: Transaction) -> None:
        queue = self.senders.get(tx.sender)
        if queue is not None and queue.txs.get(tx.nonce) is tx:
            queue.pop(tx.nonce)
            if not queue.txs:
                del self.senders[tx.sender]
        if self.by_id.pop(tx.id, None) is not None:
            self.size -= len(tx.raw)
            self.arrival.pop(tx.id, None)
        self._ready_count = None

    def remove(self, tx: Transaction) -> None:
        self._drop(tx)

    def on_accounts_changed(self, accounts: dict[bytes, Account],
                            included: set[bytes]) -> list[Removed]:
        """After blocks are connected (or disconnected): rebase each touched sender on its
        new confirmed nonce, drop what was included and what became stale."""
        removed: list[Removed] = []
        for address, account in accounts.items():
            queue = self.senders.get(address)
            if queue is None:
                continue
            queue.rebase(account.nonce)
            for nonce in [n for n in queue.txs if n < account.nonce]:
                tx = queue.txs[nonce]
                removed.append(Removed(tx, INCLUDED if tx.id in included else RemovalReason.STALE))
                self._drop(tx)
        for txid in included:
            pending = self.by_id.get(txid)
            if pending is not None:
                removed.append(Removed(pending, INCLUDED))
                self._drop(pending)
        self._ready_count = None
        return removed

    def select(self, limit: int) -> Generator[Transaction, bool | None, None]:
        """Ready transactions by fee, each sender's in nonce order (the block template).
        The caller applies each and may stop early; a rejected one ends its sender's run."""
        heap: list[tuple[int, int, bytes, int]] = []
        for sender, queue in self.senders.items():
            tx = queue.txs.get(queue.base_nonce)
            if tx is not None:
                heap.append((-tx.fee, self.arrival[tx.id], sender, tx.nonce))
        heapq.heapify(heap)
        taken = 0
        while heap and taken < limit:
            _, _, sender, nonce = heapq.heappop(heap)
            queue = self.senders[sender]
            tx = queue.txs[nonce]
            ok = yield tx
            taken += 1
            if ok is False:
                continue
            nxt = queue.txs.get(nonce + 1)
            if nxt is not None:
                heapq.heappush(heap, (-nxt.fee, self.arrival[nxt.id], sender, nxt.nonce))

    def page(self, offset: int, limit: int, sender: bytes = b"") -> list[Transaction]:
        """Arrival order, or one sender's transactions in nonce order."""
        if sender:
            queue = self.senders.get(sender)
            txs = [queue.txs[n] for n in sorted(queue.txs)] if queue else []
            return txs[offset:offset + limit]
        if offset >= len(self.by_id):
            return []  # (islice refuses a stop past sys.maxsize: offset 2^63-1 was a 500)
        return list(itertools.islice(self.by_id.values(), offset,
                                     min(offset + limit, len(self.by_id))))

    def restore(self, txs: list[Transaction], account_of: Callable[[bytes], Account],
                displaced: list[Removed] | None = None,
                ) -> list[tuple[Transaction, errors.CcoinError]]:
        """Re-admit transactions (journal replay, reorged-out blocks) in nonce order (the
        order given among equal nonces); what they displace goes to `displaced`."""
        failed: list[tuple[Transaction, errors.CcoinError]] = []
        for tx in sorted(txs, key=lambda t: (t.sender, t.nonce)):
            if tx.id in self.by_id:
                continue
            try:
                removed = self.add(tx, account_of(tx.sender))
            except errors.CcoinError as exc:
                failed.append((tx, exc))
                continue
            if displaced is not None:
                displaced.extend(removed)
        return failed
