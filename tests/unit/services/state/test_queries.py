"""State queries added for the explorer, the wallet and sync: history, proofs, tips, signer
health, explained statuses, locators and batch import."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import plyvel
import pytest

from common import errors
from common import messages as m
from common.genesis import Genesis
from common.merkle import verify_proof
from common.types import BlockOutline
from services.state import queries, schema
from services.state.blockids import RecentBlockIds
from services.state.chain import Chain
from services.state.mempool import Mempool
from services.state.service import StateService
from services.state.store import Store, StoreError
from tests.framework import rules as rh

NOW = 2**62
M = TypeVar("M", bound=m.Message)


def service(path: Path, genesis: Genesis | None = None, **pool: int) -> tuple[StateService, Chain]:
    g = genesis or rh.poa_genesis(n_miners=1)
    chain = Chain(Store(path), g, mempool=Mempool(g.network_id, **pool))
    return StateService(chain), chain


def off_the_bus(msg: M) -> M:
    """`msg` as a handler receives it: decoded, so checked against its declaration (the
    bounds are the message's, not the handler's)."""
    decoded = m.decode(m.encode(msg))
    assert type(decoded) is type(msg)
    return decoded  # type: ignore[return-value]


def test_history_proof_and_status_of_confirmed(tmp_path: Path) -> None:
    svc, chain = service(tmp_path)
    ref = rh.Chain(chain.genesis)
    a, b = rh.address(1), rh.address(2)
    t1 = rh.transfer(1, b, 5, nonce=0)
    t2 = rh.transfer(2, a, 3, nonce=0)
    t3 = rh.transfer(1, a, 1, nonce=1)  # to self
    chain.import_block(ref.build_and_apply([t1, t2]), NOW)
    chain.import_block(ref.build_and_apply([t3]), NOW)
    hist = svc.get_account_txs(m.GetAccountTxs(a, 0, 10))
    assert hist.total == 3
    assert [(i.id, i.direction, i.height) for i in hist.items] == [
        (t3.id, "self", 2), (t2.id, "in", 1), (t1.id, "out", 1)]
    page = svc.get_account_txs(m.GetAccountTxs(a, 1, 1))
    assert [i.id for i in page.items] == [t2.id] and page.total == 3
    proof = svc.get_tx_proof(m.GetTxProof(t2.id))
    assert (proof.height, proof.index) == (1, 1)
    steps = [(s.left, s.hash) for s in proof.steps]
    assert verify_proof(t2.id, steps, proof.tx_root)
    assert proof.tx_root == ref.blocks[1].header.tx_root
    assert not verify_proof(t1.id, steps, proof.tx_root)
    with pytest.raises(errors.NotFound):
        svc.get_tx_proof(m.GetTxProof(b"\x00" * 32))


def test_history_cursor_walks_every_entry_once_while_new_ones_arrive(tmp_path: Path) -> None:
    """Pages by `before` cover the history exactly, newest first, even when new blocks add
    entries at the top between pages (offset pages would repeat entries then)."""
    svc, chain = service(tmp_path)
    ref = rh.Chain(chain.genesis)
    a, b = rh.address(1), rh.address(2)
    nonce = {1: 0, 2: 0}

    def block_of(n: int) -> list[bytes]:
        txs = []
        for k in range(n):
            who = 1 if k % 2 == 0 else 2
            txs.append(rh.transfer(who, b if who == 1 else a, 1, nonce=nonce[who]))
            nonce[who] += 1
        chain.import_block(ref.build_and_apply(txs), NOW)
        return [t.id for t in txs]

    for n in (3, 1, 4, 2, 5):
        block_of(n)
    everything = [i.id for i in svc.get_account_txs(m.GetAccountTxs(a, 0, 1000)).items]
    assert len(everything) == 15
    walked: list[bytes] = []
    before: tuple[int, ...] = ()
    while True:
        page = svc.get_account_txs(m.GetAccountTxs(a, 0, 4, before))
        walked += [i.id for i in page.items]
        if not page.more:
            break
        last = page.items[-1]
        before = (last.height, last.index)
        block_of(2)  # new entries at the top do not disturb the walk
    assert walked == everything
    assert svc.get_account_txs(m.GetAccountTxs(a, 0, 4, (1, 0))).items == ()
    with pytest.raises(errors.Malformed):
        svc.get_account_txs(off_the_bus(m.GetAccountTxs(a, 0, 4, (1,))))
    with pytest.raises(errors.Malformed):
        svc.get_account_txs(off_the_bus(m.GetAccountTxs(a, 0, 4, (2**64, 0))))


def test_explained_statuses(tmp_path: Path) -> None:
    svc, chain = service(tmp_path, max_count=2)
    to = rh.address(9)
    low = rh.transfer(1, to, 1, nonce=0, fee=1)
    gapped = rh.transfer(2, to, 1, nonce=3, fee=5)
    svc.submit_txs(m.SubmitTxs((low.raw, gapped.raw)))
    queued = svc.get_tx(m.GetTx(gapped.id))
    assert (queued.status, queued.expected_nonce) == ("queued", 0)
    higher = rh.transfer(1, to, 1, nonce=0, fee=2)
    svc.submit_txs(m.SubmitTxs((higher.raw,)))
    replaced = svc.get_tx(m.GetTx(low.id))
    assert (replaced.status, replaced.replaced_by) == ("replaced", higher.id)
    rich = rh.transfer(3, to, 1, nonce=0, fee=50)  # pool of 2 is full: evicts a tail
    svc.submit_txs(m.SubmitTxs((rich.raw,)))
    evicted = svc.get_tx(m.GetTx(higher.id))
    assert (evicted.status, evicted.reason) == ("dropped", "evicted")
    broke = rh.transfer(30, to, 1, nonce=0)  # address(30) has no funds
    res = svc.submit_txs(m.SubmitTxs((broke.raw,)))
    assert res.codes() == ["insufficient_funds"]
    rejected = svc.get_tx(m.GetTx(broke.id))
    assert (rejected.status, rejected.reason) == ("rejected", "insufficient_funds")
    assert svc.get_tx(m.GetTx(rich.id)).status == "pending"
    removed = chain.drain_removals()
    assert removed == []  # the service published them already


def test_a_page_of_blocks_brings_the_ids_state_has_at_hand(tmp_path: Path) -> None:
    g = rh.make_genesis(difficulty=0)
    svc, chain = service(tmp_path, g)
    ref = rh.Chain(g)
    blocks = [ref.build_and_apply([rh.transfer(1, rh.address(9), 1, nonce=2 * h + i)
                                   for i in range(2)], coinbase=rh.address(20))
              for h in range(3)]
    # the first imported around the service (as before a restart), the others through it
    chain.import_block(blocks[0], NOW)
    svc.submit_blocks(m.SubmitBlocks(tuple(b.raw for b in blocks[1:])))
    page = svc.get_blocks(off_the_bus(m.GetBlockRange(0, 10, False)))
    assert [p.raw for p in page.blocks] == [ref.blocks[0].raw] + [b.raw for b in blocks]
    assert [p.ids for p in page.blocks] == [b"", b""] + [b"".join(b.tx_ids) for b in blocks[1:]]
    assert page.height == 3
    # a block of ids not kept is shown all the same: the reader hashes its transactions
    outlines = [BlockOutline.decode(p.raw, p.ids) for p in page.blocks]
    assert [o.tx_ids for o in outlines] == [()] + [b.tx_ids for b in blocks]


def test_recent_block_ids_are_bounded_by_how_many_ids(tmp_path: Path) -> None:
    g = rh.make_genesis(difficulty=0)
    ref = rh.Chain(g)
    blocks = [ref.build_and_apply([rh.transfer(1, rh.address(9), 1, nonce=3 * h + i)
                                   for i in range(3)], coinbase=rh.address(20))
              for h in range(4)]
    kept = RecentBlockIds(limit=7)  # two blocks of three fit, not three
    kept.remember(blocks[:3])
    assert [kept.get(b.hash) for b in blocks] == [b"", *(b"".join(b.tx_ids) for b in
                                                         blocks[1:3]), b""]
    kept.remember([blocks[1], blocks[3]])  # known already: kept once
    assert [bool(kept.get(b.hash)) for b in blocks] == [False, False, True, True]
    big = RecentBlockIds(limit=2)  # a block of more ids than the bound is not kept at all
    big.remember(blocks[:1])
    assert big.get(blocks[0].hash) == b""


def test_tips_show_forks(tmp_path: Path) -> None:
    g = rh.make_genesis(difficulty=0)
    svc, chain = service(tmp_path, g)
    a, b = rh.Chain(g), rh.Chain(g)
    for _ in range(3):
        chain.import_block(a.build_and_apply([], coinbase=rh.address(20)), NOW)
    chain.import_block(b.build_and_apply([], coinbase=rh.address(21)), NOW)
    tips = {t.hash: t for t in svc.get_tips(m.GetTips()).tips}
    assert tips[a.tip.hash].status == "active" and tips[a.tip.hash].height == 3
    assert (tips[b.tip.hash].status, tips[b.tip.hash].branch_length) == ("valid-fork", 1)
    assert len(tips) == 2


def test_signer_health_counts_missed_turns(tmp_path: Path) -> None:
    g = rh.poa_genesis(n_miners=3)
    svc, chain = service(tmp_path, g)
    ref = rh.Chain(g)
    by_addr = {rh.address(100 + i): rh.signer(100 + i) for i in range(3)}
    # heights 1..3, one interval apart; height 3's in-turn signer (miners[0]) is absent,
    # miners[1] (not among the last floor(3/2) = 1 signers) seals out of turn
    for height in range(1, 4):
        sealer = by_addr[g.miners[1] if height == 3 else g.miners[height % 3]]
        chain.import_block(ref.build_and_apply([], sealer=sealer), NOW)
    head_ts = ref.tip.timestamp
    reply = svc.get_signers(m.GetSigners(100, head_ts + 10))
    stats = {s.address: s for s in reply.signers}
    assert reply.next_height == 4 and reply.in_turn == g.miners[4 % 3]
    assert reply.pace == "sealing" and reply.overdue_ms == 0
    assert reply.due_ms == head_ts + g.interval_ms and reply.needed == 2
    assert (stats[g.miners[0]].missed, stats[g.miners[0]].sealed) == (1, 0)
    assert stats[g.miners[0]].state == "offline"
    assert (stats[g.miners[1]].sealed, stats[g.miners[1]].last_height) == (2, 3)
    assert stats[g.miners[1]].last_timestamp == head_ts
    assert not stats[g.miners[1]].may_seal  # it sealed the head
    assert (stats[g.miners[2]].sealed, stats[g.miners[2]].missed) == (1, 0)
    assert stats[g.miners[2]].state == "live"
    # three intervals later nobody sealed block 4: miners[1] (its turn) missed a slot
    late = svc.get_signers(m.GetSigners(100, head_ts + 3 * g.interval_ms))
    after = {s.address: s for s in late.signers}
    assert late.pace in ("late", "waiting") and late.overdue_ms == 2 * g.interval_ms
    assert after[g.miners[1]].missed_since_head == 0  # the recency rule held it back
    assert after[g.miners[2]].missed_since_head >= 1
    assert "overdue" in late.summary or "waiting" in late.summary
    with pytest.raises(errors.Malformed):
        svc.get_signers(off_the_bus(m.GetSigners(0, NOW)))


def test_locator_and_blocks_after_find_the_fork(tmp_path: Path) -> None:
    g = rh.make_genesis(difficulty=0)
    svc, chain = service(tmp_path / "a", g)
    ref = rh.Chain(g)
    for _ in range(30):
        chain.import_block(ref.build_and_apply([], coinbase=rh.address(20)), NOW)
    loc = svc.get_locator(m.GetLocator()).hashes
    assert loc[0] == ref.tip.hash and loc[-1] == ref.blocks[0].hash
    assert len(loc) < 20  # sparse past the first ten
    # a peer that has the first 12 blocks asks with its own locator
    peer_svc, peer = service(tmp_path / "b", g)
    reply = peer_svc.submit_blocks(m.SubmitBlocks(tuple(b.raw for b in ref.blocks[1:13])))
    assert [o.status for o in reply.outcomes] == ["head"] * 12
    after = svc.get_blocks_after(m.GetBlocksAfter(tuple(queries.locator(peer)), 10, 1 << 20))
    assert after.blocks[0] == ref.blocks[13].raw and len(after.blocks) == 10
    rest = peer_svc.submit_blocks(m.SubmitBlocks(after.blocks))
    assert all(o.status == "head" for o in rest.outcomes)
    assert svc.has_blocks(m.HasBlocks((ref.blocks[5].hash, b"\x01" * 32))).known == (True,
                                                                                       False)
    # an orphan and a garbage frame each get their own outcome; the others still import
    orphan = ref.blocks[29].raw
    mixed = peer_svc.submit_blocks(m.SubmitBlocks((b"\xc1", orphan, ref.blocks[23].raw)))
    assert [(o.status, o.code) for o in mixed.outcomes] == [
        ("error", "malformed"), ("error", "unknown_parent"), ("head", "")]


def test_get_txs_returns_pool_transactions_by_id(tmp_path: Path) -> None:
    svc, _ = service(tmp_path)
    a = rh.transfer(1, rh.address(9), 1, nonce=0)
    b = rh.transfer(2, rh.address(9), 1, nonce=0)
    svc.submit_txs(m.SubmitTxs((a.raw, b.raw)))
    reply = svc.get_txs(m.GetTxs((b.id, b"\x00" * 32, a.id)))
    assert reply.txs == (b.raw, b"", a.raw)
    with pytest.raises(errors.Malformed):
        svc.get_txs(off_the_bus(m.GetTxs((b"\x00" * 32,) * 10_001)))


def test_a_transaction_that_no_longer_applies_is_dropped_as_stale(tmp_path: Path) -> None:
    svc, chain = service(tmp_path)
    poor = rh.transfer(30, rh.address(9), 1, nonce=0)  # address(30) has no funds
    chain.mempool.add(poor, chain.account(rh.address(1)))  # admitted when it looked funded
    svc.get_template(m.GetTemplate(rh.address(100), rh.GENESIS_TIME + 1, b""))
    status = svc.get_tx(m.GetTx(poor.id))
    assert (status.status, status.reason, status.tx) == ("dropped", "stale", poor.raw)
    assert poor.id not in chain.mempool


def _scanned_history_totals(store: Store) -> dict[bytes, int]:
    """Each address's history entries counted the slow way, by scanning them."""
    counts: dict[bytes, int] = {}
    for key in store.db.iterator(prefix=schema.HISTORY, include_value=False):
        counts[key[1:21]] = counts.get(key[1:21], 0) + 1
    return counts


def test_history_totals_follow_reorgs_and_old_schemas_are_refused(tmp_path: Path) -> None:
    g = rh.make_genesis(difficulty=0)
    svc, chain = service(tmp_path, g)
    first, heavier = rh.Chain(g), rh.Chain(g)
    x, y, z = rh.address(1), rh.address(2), rh.address(9)

    def totals() -> dict[bytes, int]:
        return {who: svc.get_account_txs(m.GetAccountTxs(who, 0, 1)).total for who in (x, y, z)}

    chain.import_block(first.build_and_apply(
        [rh.transfer(1, z, 5, nonce=0), rh.transfer(2, z, 1, nonce=0)],
        coinbase=rh.address(20)), NOW)
    assert totals() == {x: 1, y: 1, z: 2}
    # a heavier branch replaces that block: x pays itself (one entry), then y pays x
    chain.import_block(heavier.build_and_apply([rh.transfer(1, x, 1, nonce=0)],
                                               coinbase=rh.address(21)), NOW)
    chain.import_block(heavier.build_and_apply([rh.transfer(2, x, 2, nonce=0)],
                                               coinbase=rh.address(21)), NOW)
    assert chain.head.header.hash == heavier.tip.hash
    assert totals() == {x: 2, y: 1, z: 0}
    assert _scanned_history_totals(chain.store) == {x: 2, y: 1}
    assert chain.store.get(schema.history_count_key(z)) is None  # no entry, no count
    path = tmp_path
    chain.store.close()

    # one written before authority voting (schema 1 or 2: 12-field headers) is refused
    # with what to do, not misread as damage
    for old in (b"1", b"2"):
        db = plyvel.DB(str(path))
        db.put(schema.metadata_key("version"), old)
        db.close()
        with pytest.raises(StoreError, match="before authority voting.*genesis init"):
            Store(path)

    # one written by a newer ccoin is refused, not misread
    db = plyvel.DB(str(path))
    db.put(schema.metadata_key("version"), b"99")
    db.close()
    with pytest.raises(StoreError, match="schema version '99'"):
        Store(path)
