"""The scale run's chain builder (tools/bench/scalechain.py) at a tiny size: the chain it
builds passes `ccoin node check` and the bench's replay from genesis, every planned
account exists, no coin is made or lost beyond the block rewards, the same plan gives the
same transfers, and a plan too small to build is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.config import load_genesis
from services.state.check import check_chain
from services.state.store import Store
from tools.bench.runs import replay_from_genesis
from tools.bench.scalechain import (
    ScalePlan,
    build_chain,
    faucet_key,
    receiver,
    scale_devnet,
    transfers,
)

PLAN = ScalePlan(n_accounts=50, n_transfers=200)
PER_BLOCK = 64  # several blocks, the last one short


def build(workdir: Path) -> tuple[Path, Path, int]:
    """A tiny scale chain: its chain dir, genesis file, and number of blocks built."""
    net, senders, authority = scale_devnet(workdir, PLAN, nodes=1, base_port=21500,
                                           interval_ms=1000, max_bound=4000, network_id=1337,
                                           extra_alloc={})
    genesis = load_genesis(net.genesis_path)
    chain_dir = net.nodes[0].base_path / "chain"
    built = build_chain(chain_dir, genesis, authority, PLAN, senders, per_block=PER_BLOCK)
    assert built.transfers == PLAN.total_transfers == PLAN.n_senders + PLAN.n_transfers
    assert built.blocks == built.height == -(-PLAN.total_transfers // PER_BLOCK)
    return chain_dir, net.genesis_path, built.blocks


def test_built_chain_passes_check_and_replay(short_tmp: Path) -> None:
    chain_dir, genesis_path, blocks = build(short_tmp / "net")
    genesis = load_genesis(genesis_path)
    report = check_chain(chain_dir, genesis)
    assert report.ok, report.problems
    assert report.height == blocks and report.transactions == PLAN.total_transfers
    assert replay_from_genesis(chain_dir, genesis_path)

    store = Store(chain_dir)
    try:
        accounts = dict(store.all_accounts())
    finally:
        store.close()
    # every receiver exists; every sender sent its share, after the faucet funded each
    assert all(receiver(i) in accounts for i in range(PLAN.n_receivers))
    nonces = {a: acc.nonce for a, acc in accounts.items() if acc.nonce}
    assert nonces.pop(faucet_key().address) == PLAN.n_senders
    assert len(nonces) == PLAN.n_senders and sum(nonces.values()) == PLAN.n_transfers
    # fees went to the coinbase: only the block rewards were added
    assert (sum(a.balance for a in accounts.values())
            == sum(a.balance for a in genesis.initial_accounts().values())
            + blocks * genesis.reward)


def test_same_plan_same_transfers() -> None:
    def ids() -> list[bytes]:
        return [tx.id for tx in transfers(PLAN, PLAN.senders(), PLAN.receivers(), 1337)]

    first = ids()
    assert len(first) == len(set(first)) == PLAN.total_transfers
    assert first == ids()


@pytest.mark.parametrize("accounts,transfers", [(2, 10), (50, -1)])
def test_plan_too_small_is_refused(accounts: int, transfers: int) -> None:
    with pytest.raises(ValueError, match="a scale chain needs"):
        ScalePlan(accounts, transfers)
