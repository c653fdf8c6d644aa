"""mining_miner: real state and miner processes sealing a dev chain: PoA at the interval,
start and stop, no empty blocks when the genesis forbids them, the min-bound wait, a full pool
sealed before the slot, PoW, a miner that outlives state and waits for it, a node that is not
an authority staying idle, and a wrong key password failing clearly. (The timing policy and
the miner against a scripted state in process: tests/unit/services/miner/test_miner.py.)"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from common import consensus, messages
from common.crypto import Signer
from common.genesis import Genesis
from common.types import Block, Transaction
from runtime.bus import SyncBusClient
from runtime.config import load_genesis
from tests.framework.node import TestNode
from tests.framework.util import wait_until
from tools.devchain import DevChain

INTERVAL = 300


@contextmanager
def node(tmp_path: Path, **chain: Any) -> Iterator[tuple[TestNode, SyncBusClient, SyncBusClient]]:
    """A dev chain (`chain`: create_dev_chain's arguments) with state and miner running;
    yield the node and bus clients for both. Both must still run at the end."""
    with TestNode.create(tmp_path, **{"interval_ms": INTERVAL, **chain}) as n:
        n.start("state", "miner")
        yield n, n.bus("state"), n.bus("miner")
        assert n.alive(), n.tail()


def height(state: SyncBusClient) -> int:
    return state.request(messages.GetStatus(), messages.StatusReply).height


def wait_height(state: SyncBusClient, target: int, timeout: float) -> int:
    return wait_until(lambda: (h := height(state)) >= target and h, timeout=timeout,
                      what=f"height {target}", interval=0.05)


def settled(state: SyncBusClient, control: SyncBusClient) -> int:
    """The height once the miner's last block is in the chain: the miner counts a block
    when state took it, and every block is its own (one authority, mining since genesis),
    so equal counts mean none is on its way."""
    def same() -> int | None:
        h = height(state)
        sealed = control.request(messages.GetMining(), messages.MiningReply).blocks_sealed
        return h if sealed == h else None

    return wait_until(same, timeout=5, what="the miner's last block to be in the chain")


def blocks(state: SyncBusClient, start: int = 0) -> list[Block]:
    reply = state.request(messages.GetBlockRange(start, 1000, False), messages.BlockPageReply)
    return [Block.decode(paged.raw) for paged in reply.blocks]


def check_chain(genesis: Genesis, chain: list[Block], sealer: bytes) -> None:
    for parent, block in zip(chain, chain[1:]):
        h = block.header
        assert h.height == parent.height + 1 and h.parent == parent.hash
        assert h.timestamp > parent.header.timestamp
        assert h.coinbase == sealer
        consensus.check_proof(h)
        consensus.check_seal(genesis, h, genesis.miners)
        if not block.txs:
            assert len(h.extra) == 2  # ["rnd", 15] placeholder


def send(state: SyncBusClient, dev: DevChain, nonce: int, amount: int = 7) -> Transaction:
    tx = Transaction.create(Signer(dev.developer), chain_id=1337, nonce=nonce,
                            to=dev.validator.address, amount=amount, fee=1)
    result = state.request(messages.SubmitTxs((tx.raw,)), messages.SubmitResult)
    assert (result.count, result.refused) == (1, ()), result
    return tx


def test_poa_seals_at_the_interval_and_obeys_start_stop(tmp_path: Path) -> None:
    with node(tmp_path) as (n, state, control):
        dev = n.chain
        genesis = load_genesis(dev.genesis_path)
        wait_height(state, 6, timeout=6.0)
        chain = blocks(state)
        check_chain(genesis, chain, dev.validator.address)
        assert all(b.header.signer == dev.validator.address for b in chain[1:])
        gaps = [b.header.timestamp - a.header.timestamp for a, b in zip(chain[1:], chain[2:])]
        assert min(gaps) >= INTERVAL and sum(gaps) / len(gaps) < 2 * INTERVAL, gaps
        mining = control.request(messages.GetMining(), messages.MiningReply)
        assert mining.enabled and mining.address == dev.validator.address
        assert mining.blocks_sealed >= 5 and mining.last_sealed_ms > 0

        stopped = control.request(messages.SetMining(False), messages.MiningReply)
        assert not stopped.enabled
        frozen = settled(state, control)  # a block already being submitted may still land
        # the behaviour under test is that nothing happens: four intervals without a block
        time.sleep(4 * INTERVAL / 1000)
        assert height(state) == frozen
        assert control.request(messages.SetMining(True), messages.MiningReply).enabled
        wait_height(state, frozen + 2, timeout=3.0)


def test_no_empty_blocks_and_min_bound_wait(tmp_path: Path) -> None:
    with node(tmp_path, allow_empty=False, min_bound=2) as (n, state, _):
        dev = n.chain
        genesis = load_genesis(dev.genesis_path)
        # the behaviour under test is that nothing happens: no block without transactions
        time.sleep(4 * INTERVAL / 1000)
        assert height(state) == 0
        tx0 = send(state, dev, 0)
        wait_height(state, 1, timeout=3.0)  # genesis is old: slot + interval long past
        tx1 = send(state, dev, 1)
        wait_height(state, 2, timeout=3.0)
        # nothing happens: the pool is empty again, so no third block
        time.sleep(3 * INTERVAL / 1000)
        assert height(state) == 2
        chain = blocks(state)
        check_chain(genesis, chain, dev.validator.address)
        assert [tx.id for tx in chain[1].txs] == [tx0.id]
        assert [tx.id for tx in chain[2].txs] == [tx1.id]
        # one transaction < min_bound: sealed only at slot + interval
        assert chain[2].header.timestamp - chain[1].header.timestamp >= 2 * INTERVAL


def test_full_pool_seals_before_the_slot(tmp_path: Path) -> None:
    interval = 30_000
    with node(tmp_path, interval_ms=interval, max_bound=3) as (n, state, _):
        dev = n.chain
        wait_height(state, 1, timeout=3.0)  # genesis is old: the first slot is now
        first = blocks(state)[1]
        txs = [send(state, dev, i) for i in range(3)]
        wait_height(state, 2, timeout=3.0)
        second = blocks(state)[2]
        assert {tx.id for tx in second.txs} == {tx.id for tx in txs}
        assert second.header.timestamp - first.header.timestamp < interval // 4


def test_pow_mining(tmp_path: Path) -> None:
    with node(tmp_path, poa=False) as (n, state, control):
        dev = n.chain
        genesis = load_genesis(dev.genesis_path)
        wait_height(state, 4, timeout=5.0)
        chain = blocks(state)
        check_chain(genesis, chain, dev.validator.address)
        assert all(not b.header.signature and not b.header.signer_public_key for b in chain)
        assert control.request(messages.GetMining(), messages.MiningReply).enabled


def test_miner_outlives_state_and_waits_for_it(tmp_path: Path) -> None:
    with TestNode.create(tmp_path, interval_ms=INTERVAL) as n:
        n.start("miner")
        # state is not running: the miner backs off, it does not exit
        wait_until(lambda: "state unavailable" in n.log("miner"), timeout=10,
                   what="the miner to find state unavailable")
        assert n.request("miner", messages.GetMining(), messages.MiningReply).enabled
        n.start("state")
        wait_height(n.bus("state"), 2, timeout=8.0)
        assert n.process("miner").alive()


def test_non_authority_waits_for_a_vote(tmp_path: Path) -> None:
    """A keyed address outside the authorities may mine (a vote may add it) but seals
    nothing, and says why."""
    with TestNode.create(tmp_path, interval_ms=INTERVAL) as n:
        n.edit_config(client={"account_address": n.chain.developer.address.hex()})
        n.start("state", "miner")
        state, control = n.bus("state"), n.bus("miner")
        assert control.request(messages.SetMining(True), messages.MiningReply).enabled
        wait_until(lambda: "is not an authority of the current set" in n.log("miner"),
                   timeout=5, what="the miner to say why it waits")
        # the behaviour under test is that nothing happens: no block in three intervals
        time.sleep(3 * INTERVAL / 1000)
        assert height(state) == 0


def test_unknown_key_password_is_a_clear_failure(tmp_path: Path) -> None:
    with TestNode.create(tmp_path, interval_ms=INTERVAL) as n:
        (n.base_path / "password.txt").write_text("wrong\n")
        miner = n.start("miner", wait=False).process("miner")
        assert miner.proc is not None and miner.proc.wait(20) == 1
        assert "wrong password" in n.log("miner")
