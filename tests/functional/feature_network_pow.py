"""feature_network_pow: a Proof-of-Work devnet (`ccoin devnet --pow`): every node mines,
the difficulty retargets at the genesis's interval, and once the miners stop all nodes
converge on one chain with the same state roots."""

from __future__ import annotations

import httpx
import pytest

from runtime.config import load_genesis
from tests.framework.network import TestNetwork, free_base_port
from tests.framework.rest import assert_one_chain, same_head
from tests.framework.util import log_step, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

NET_ERRORS = (httpx.HTTPError,)  # a node that is busy or restarting answers nothing


def test_pow_devnet_mines_retargets_and_converges() -> None:
    # the target interval is far below what a block at this difficulty takes (tenths of a
    # second, with three miners), so a retarget window always took over double its target
    # and the difficulty must drop there, whatever the machine's speed (at 150 ms a window
    # could take between half and double its target, and then rightly not retarget)
    start_difficulty, interval_ms = 19, 30
    with TestNetwork.up("ccpow-", "--nodes", "3", "--pow", "--base-port",
                        str(free_base_port(3)), "--interval-ms", str(interval_ms),
                        "--difficulty", str(start_difficulty)) as net:
        devnet, apis = net.devnet, net.apis
        wait_until(lambda: min(a.height() for a in apis) >= 35, timeout=240,
                   what="35 PoW blocks on every node", interval=1.0, ignore=NET_ERRORS)
        # PoW keeps the first-seen tip on a tie, so stopping every miner at once can leave
        # equal-weight tips that nothing would ever settle; as in any PoW network the next
        # block does: node 1 mines on alone until its branch is strictly heavier
        log_step("stopping the miners of nodes 2..N (POST /api/v1/mining/stop)")
        for a in apis[1:]:
            a.http.post("/api/v1/mining/stop").raise_for_status()
        top = max(a.height() for a in apis)
        wait_until(lambda: min(a.height() for a in apis) >= top + 2, timeout=120,
                   what="two more blocks from node 1 on every node", interval=0.5,
                   ignore=NET_ERRORS)
        apis[0].http.post("/api/v1/mining/stop").raise_for_status()
        wait_until(lambda: same_head(apis), timeout=90, what="all PoW nodes converge on one head",
                   interval=0.5, ignore=NET_ERRORS)
        chain = assert_one_chain(apis, apis[0].height())
        coinbases = {b["header"]["coinbase"] for b in chain}
        assert coinbases <= {n.account.hex() for n in devnet.nodes}
        assert len(coinbases) >= 2, "open mining: blocks from more than one node"
        diffs = [b["header"]["difficulty"] for b in chain]
        retarget = load_genesis(devnet.genesis_path).retarget_blocks
        changes = [b["header"]["height"] for prev, b in zip(chain, chain[1:], strict=False)
                   if b["header"]["difficulty"] != prev["header"]["difficulty"]]
        assert diffs[0] == start_difficulty
        assert changes, f"no retarget in {len(chain)} blocks: {diffs}"
        assert all(h % retarget == 0 for h in changes), changes
        assert diffs[changes[0] - 1] == start_difficulty - 1, diffs  # slower than double
        log_step(f"PoW chain of {len(chain)} blocks from {len(coinbases)} miners; "
                 f"difficulty {diffs[0]} -> {diffs[-1]} at heights {changes}")
