"""Mempool rules: nonce order, future-nonce bound, replace-by-fee, eviction, pruning."""

from __future__ import annotations

import contextlib
import random

import pytest

from common import errors
from common.types import Account
from services.state.mempool import Mempool
from tests.framework.rules import CHAIN_ID, address, transfer

RICH = Account(10**12, 0)
TO = address(50)


def pool(**kw: int) -> Mempool:
    return Mempool(CHAIN_ID, **kw)


def test_ready_and_queued_by_nonce() -> None:
    p = pool()
    p.add(transfer(1, TO, 5, nonce=0), RICH)
    gapped = transfer(1, TO, 5, nonce=2)
    p.add(gapped, RICH)
    assert p.ready_count() == 1 and not p.is_ready(gapped)
    assert p.pending_nonce(address(1), RICH) == 1
    p.add(transfer(1, TO, 5, nonce=1), RICH)
    assert p.ready_count() == 3 and p.is_ready(gapped)
    assert p.pending_nonce(address(1), RICH) == 3


@pytest.mark.parametrize("nonce, error", [(3, errors.NonceTooLow), (4 + 8, errors.NonceGap)])
def test_nonce_bounds(nonce: int, error: type[errors.CcoinError]) -> None:
    p = pool(max_future=8)
    with pytest.raises(error):
        p.add(transfer(1, TO, 5, nonce=nonce), Account(10**9, 4))
    p.add(transfer(1, TO, 5, nonce=4 + 7), Account(10**9, 4))  # last nonce inside the bound


def test_long_ready_run_is_not_bounded_by_max_future() -> None:
    p = pool(max_future=4)
    for n in range(50):
        p.add(transfer(1, TO, 1, nonce=n), RICH)
    assert p.ready_count() == 50


def test_replacement_needs_a_higher_fee() -> None:
    p = pool()
    first = transfer(1, TO, 5, nonce=0, fee=10)
    p.add(first, RICH)
    with pytest.raises(errors.Underpriced):
        p.add(transfer(1, TO, 6, nonce=0, fee=10), RICH)
    better = transfer(1, TO, 6, nonce=0, fee=11)
    removed = p.add(better, RICH)
    assert [(r.tx, r.reason) for r in removed] == [(first, "replaced")]
    assert first.id not in p and better.id in p and len(p) == 1


def test_duplicate_and_wrong_chain() -> None:
    p = pool()
    tx = transfer(1, TO, 5, nonce=0)
    p.add(tx, RICH)
    with pytest.raises(errors.Duplicate):
        p.add(tx, RICH)
    with pytest.raises(errors.WrongChain):
        p.add(transfer(1, TO, 5, nonce=1, chain_id=CHAIN_ID + 1), RICH)


def test_cumulative_cost_is_checked() -> None:
    p = pool()
    acc = Account(100, 0)
    p.add(transfer(1, TO, 60, nonce=0, fee=1), acc)
    with pytest.raises(errors.InsufficientFunds):
        p.add(transfer(1, TO, 39, nonce=1, fee=1), acc)
    p.add(transfer(1, TO, 38, nonce=1, fee=1), acc)


def test_full_pool_evicts_the_cheapest_tail_or_refuses() -> None:
    p = pool(max_count=3)
    cheap = transfer(1, TO, 1, nonce=0, fee=1)
    p.add(cheap, RICH)
    p.add(transfer(2, TO, 1, nonce=0, fee=5), RICH)
    p.add(transfer(3, TO, 1, nonce=0, fee=5), RICH)
    with pytest.raises(errors.PoolFull):
        p.add(transfer(4, TO, 1, nonce=0, fee=1), RICH)
    removed = p.add(transfer(4, TO, 1, nonce=0, fee=2), RICH)
    assert [(r.tx, r.reason) for r in removed] == [(cheap, "evicted")]
    assert len(p) == 3


def test_select_orders_by_fee_and_keeps_each_sender_in_nonce_order() -> None:
    p = pool()
    a0, a1 = transfer(1, TO, 1, nonce=0, fee=1), transfer(1, TO, 1, nonce=1, fee=100)
    b0 = transfer(2, TO, 1, nonce=0, fee=50)
    for tx in (a0, a1, b0):
        p.add(tx, RICH)
    assert list(p.select(10)) == [b0, a0, a1]
    assert list(p.select(2)) == [b0, a0]


def test_select_skips_the_rest_of_a_rejected_sender() -> None:
    p = pool()
    a0, a1 = transfer(1, TO, 1, nonce=0, fee=9), transfer(1, TO, 1, nonce=1, fee=9)
    b0 = transfer(2, TO, 1, nonce=0, fee=1)
    for tx in (a0, a1, b0):
        p.add(tx, RICH)
    gen = p.select(10)
    assert next(gen) == a0
    assert gen.send(False) == b0  # a0 rejected: a1 is not offered


def test_block_inclusion_prunes_included_and_stale() -> None:
    p = pool()
    txs = [transfer(1, TO, 1, nonce=n) for n in range(3)]
    for tx in txs:
        p.add(tx, RICH)
    conflicting = transfer(2, TO, 1, nonce=0)
    p.add(conflicting, RICH)
    removed = p.on_accounts_changed({address(1): Account(RICH.balance - 2, 2),
                                     address(2): Account(RICH.balance, 1)},
                                    included={txs[0].id, txs[1].id})
    reasons = {r.tx.id: r.reason for r in removed}
    assert reasons == {txs[0].id: "included", txs[1].id: "included", conflicting.id: "stale"}
    assert list(p.select(10)) == [txs[2]]
    assert p.size == len(txs[2].raw)


@pytest.mark.parametrize("offset, limit, want", [
    (0, 10, [0, 1, 2]), (1, 1, [1]), (2, 10, [2]), (3, 10, []),
    (2**63 - 1, 2**32 - 1, []),  # the largest page a request may ask for: empty, not a crash
    (1, 2**63 - 1, [1, 2]),
])
def test_pages_in_arrival_order_at_any_offset(offset: int, limit: int, want: list[int]) -> None:
    p = pool()
    txs = [transfer(1, TO, 5, nonce=n) for n in range(3)]
    for tx in txs:
        p.add(tx, RICH)
    assert p.page(offset, limit) == [txs[i] for i in want]
    assert p.page(offset, limit, address(1)) == [txs[i] for i in want]


def test_each_sender_queue_keeps_its_top_nonce_and_total_cost_under_any_sequence() -> None:
    """Random adds (gaps, replacements, a full pool evicting), removals and inclusions: after
    each, every sender's cached highest nonce and total cost, and the pool's ready count,
    equal what its transactions say (they keep adding to a long queue O(1))."""
    rng = random.Random(16)
    p = pool(max_count=40)
    nonces = {s: 0 for s in (1, 2, 3)}  # each sender's confirmed nonce
    for step in range(600):
        sender = rng.choice((1, 2, 3))
        op = rng.random()
        if op < 0.7:
            nonce = nonces[sender] + rng.randrange(0, 12)
            with contextlib.suppress(errors.CcoinError):
                p.add(transfer(sender, TO, 1 + rng.randrange(3), nonce=nonce,
                               fee=rng.randrange(5)), RICH)
        elif op < 0.85:
            queue = p.senders.get(address(sender))
            if queue is not None and queue.txs:
                p.remove(queue.txs[rng.choice(list(queue.txs))])
        else:
            queue = p.senders.get(address(sender))
            ready = list(queue.ready())[:rng.randrange(1, 4)] if queue else []
            nonces[sender] += len(ready)
            p.on_accounts_changed({address(sender): Account(RICH.balance, nonces[sender])},
                                  included={tx.id for tx in ready})
        for queue in p.senders.values():
            assert queue.top == max(queue.txs, default=-1), step
            assert queue.total_cost == sum(tx.cost for tx in queue.txs.values()), step
        # the ready count, read from each queue's cached run end, is the ready transactions'
        assert p.ready_count() == sum(1 for q in p.senders.values() for _ in q.ready()), step
