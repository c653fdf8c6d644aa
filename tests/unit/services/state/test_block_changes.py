"""What a block changed (services/state/queries.py `block_changes`, served by `get_block`
with `changes`): each account before -> after the block, for main-chain blocks only, from a
real store; "after" is the block's own, not the head's, and a damaged undo record is
refused as damage, never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from common import errors
from common import messages as m
from common.genesis import Genesis
from common.types import Account
from services.state import schema
from services.state.chain import Chain
from services.state.service import StateService
from services.state.store import Batch, Store
from tests.framework import rules as rh

NOW = 2**62
A, B, C, MINER = rh.address(1), rh.address(2), rh.address(5), rh.address(20)


def service(path: Path, genesis: Genesis) -> tuple[StateService, Chain]:
    chain = Chain(Store(path), genesis)
    return StateService(chain), chain


def ask(svc: StateService, height: int = -1, block_hash: bytes = b"",
        changes: bool = True) -> m.BlockReply:
    """`get_block` as it crosses the bus both ways: request and reply decoded against their
    declarations."""
    req = m.decode(m.encode(m.GetBlock(height, block_hash, changes)))
    assert isinstance(req, m.GetBlock)
    reply = m.decode(m.encode(svc.get_block(req)))
    assert isinstance(reply, m.BlockReply)
    return reply


def table(reply: m.BlockReply) -> dict[bytes, tuple[Account, Account]]:
    return {c.address: (Account(c.balance_before, c.nonce_before),
                        Account(c.balance_after, c.nonce_after)) for c in reply.changes}


def test_each_block_shows_its_own_before_and_after(tmp_path: Path) -> None:
    g = rh.make_genesis(difficulty=0)  # PoW: reward 100 to the coinbase
    svc, chain = service(tmp_path, g)
    ref = rh.Chain(g)
    start = dict(ref.accounts)
    chain.import_block(ref.build_and_apply([rh.transfer(1, B, 5, nonce=0, fee=2),
                                            rh.transfer(2, A, 3, nonce=0)],
                                           coinbase=MINER), NOW)
    after_1 = dict(ref.accounts)
    # block 2 changes A again: block 1's "after" must stay block 1's, not the head's
    chain.import_block(ref.build_and_apply([rh.transfer(1, A, 7, nonce=1, fee=1)],
                                           coinbase=MINER), NOW)

    reply = ask(svc, 1)
    assert reply.has_changes and reply.on_main_chain
    # in the order the block first touched them
    assert [c.address for c in reply.changes] == [A, B, MINER]
    assert table(reply) == {
        A: (start[A], after_1[A]), B: (start[B], after_1[B]), MINER: (Account(), after_1[MINER])}
    assert after_1[A] == Account(start[A].balance - 5 - 2 + 3, 1)
    assert after_1[MINER] == Account(100 + 2, 0)

    head = ask(svc, block_hash=ref.tip.hash)
    assert table(head) == {A: (after_1[A], ref.accounts[A]),
                           MINER: (after_1[MINER], ref.accounts[MINER])}
    assert ref.accounts[A] == chain.account(A)  # the head's "after" is the stored account

    plain = ask(svc, 1, changes=False)  # sync's question: no changes computed
    assert not plain.has_changes and plain.changes == ()


def test_genesis_created_its_accounts(tmp_path: Path) -> None:
    g = rh.make_genesis(difficulty=0, alloc={A: 1000, B: 50, C: 0})  # C: nothing to show
    svc, _ = service(tmp_path, g)
    reply = ask(svc, 0)
    assert reply.has_changes
    assert table(reply) == {A: (Account(), Account(1000)), B: (Account(), Account(50))}


def test_side_blocks_have_none_until_they_join_the_main_chain(tmp_path: Path) -> None:
    g = rh.make_genesis(difficulty=0)
    svc, chain = service(tmp_path, g)
    main, side = rh.Chain(g), rh.Chain(g)
    chain.import_block(main.build_and_apply([rh.transfer(1, B, 9, nonce=0)], coinbase=MINER),
                       NOW)
    first = side.build_and_apply([rh.transfer(2, C, 4, nonce=0)], coinbase=rh.address(21))
    chain.import_block(first, NOW)
    reply = ask(svc, block_hash=first.hash)
    assert not reply.on_main_chain and not reply.has_changes and reply.changes == ()

    # the side branch grows heavier: a reorg puts it on the main chain...
    chain.import_block(side.build_and_apply([], coinbase=rh.address(21)), NOW)
    now_main = ask(svc, block_hash=first.hash)
    assert now_main.on_main_chain and now_main.has_changes
    assert table(now_main)[C] == (Account(), Account(4))
    # ...and takes the old block off it: its changes are gone with its undo record
    gone = ask(svc, block_hash=main.blocks[1].hash)
    assert not gone.on_main_chain and not gone.has_changes


def test_a_damaged_undo_record_is_refused_as_damage(tmp_path: Path) -> None:
    g = rh.make_genesis(difficulty=0)
    svc, chain = service(tmp_path, g)
    ref = rh.Chain(g)
    block = ref.build_and_apply([rh.transfer(1, B, 5, nonce=0)], coinbase=MINER)
    chain.import_block(block, NOW)
    undo = schema.decode_undo(chain.store.get(schema.undo_key(block.hash)) or b"")
    undo[A] = Account(undo[A].balance + 1, undo[A].nonce)  # one coin more than it had
    batch = Batch()
    batch.put(schema.undo_key(block.hash), schema.encode_undo(undo))
    chain.store.commit(batch)

    with pytest.raises(errors.StoreCorrupt) as info:
        ask(svc, 1)
    assert info.value.code == "storage_unavailable"
    assert "undo record of main-chain block 1" in info.value.message
    assert "ccoin node reindex" in info.value.message
    assert chain.store.damage  # state writes nothing more on top of it
    # the block itself is still served without its changes
    assert ask(svc, 1, changes=False).block == block.raw
