"""feature_authority_votes: authorities that change by vote, on a devnet (issue 14).

Three validators and a basic node. The basic node is restarted as a validator with its own
key (not an authority: its miner waits, saying so); two of the three authorities propose it
(`ccoin authority propose ADDR --add`), and once their blocks carry the votes (2 of 3) it
is an authority on every node and seals blocks in its turn. Then three of the four vote the
third validator out while its node is offline; the set becomes the other three, the chain
moves on, and the removed node, started again, syncs across its own removal to the same
set and head, its miner saying it is no longer an authority."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.framework.network import TestNetwork, free_base_port
from tests.framework.rest import RestApi
from tests.framework.util import ccoin, log_step, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

INTERVAL_MS = 1_000
TIMEOUT = 90
NET_ERRORS = (httpx.HTTPError, OSError, KeyError, ValueError)


def votes(api: RestApi) -> dict[str, Any]:
    doc: dict[str, Any] = api.get("/api/v1/consensus")["votes"]
    return doc


def sealed_by(api: RestApi, address: str, since: int) -> int | None:
    """The height of a main-chain block above `since` whose coinbase is `address`."""
    for height in range(since + 1, api.height() + 1):
        if api.block(height)["header"]["coinbase"] == address:
            return height
    return None


def test_a_fourth_authority_is_voted_in_seals_in_turn_and_one_is_voted_out() -> None:
    with TestNetwork.up("ccvote-", "--nodes", "4", "--validators", "3", "--base-port",
                        str(free_base_port(4)), "--interval-ms", str(INTERVAL_MS)) as net:
        accounts = [n.account.hex() for n in net.devnet.nodes]
        urls = [n.api_url for n in net.devnet.nodes]
        apis = net.apis
        assert votes(apis[0])["authorities"] == accounts[:3]

        log_step("node4 restarts as a validator: not an authority yet, its miner waits")
        net.stop_node(4)
        net.node(4).start_supervised("validator", wait=True)
        wait_until(lambda: "is not an authority of the current set" in net.node(4).log("miner"),
                   timeout=TIMEOUT, what="node4's miner to say it waits for a vote")

        log_step("nodes 1 and 2 propose node4; their next blocks carry the votes")
        for url in urls[:2]:
            out = ccoin("authority", "propose", accounts[3], "--add", "--api", url).stdout
            assert f"this node: add {accounts[3]} (votes in its next sealed block)" in out
        wait_until(lambda: all(votes(a)["authorities"] == accounts for a in apis),
                   timeout=TIMEOUT, what="every node to count node4 an authority",
                   interval=0.3, ignore=NET_ERRORS)
        change = votes(apis[0])["changes"][-1]
        assert (change["address"], change["authorize"]) == (accounts[3], True)
        assert votes(apis[0])["needed"] == 3
        height = wait_until(lambda: sealed_by(apis[0], accounts[3], change["height"]),
                            timeout=TIMEOUT, what="node4 to seal a block", interval=0.3,
                            ignore=NET_ERRORS)
        log_step(f"node4 sealed block {height} (the set changed at {change['height']})")

        log_step("node3 goes offline; nodes 1, 2 and 4 (3 of 4, enough to seal) vote it out")
        removed = accounts[2]
        net.stop_node(3)
        up = [apis[0], apis[1], apis[3]]
        for url in (urls[0], urls[1], urls[3]):
            ccoin("authority", "propose", removed, "--remove", "--api", url)
        kept = [accounts[0], accounts[1], accounts[3]]
        wait_until(lambda: all(votes(a)["authorities"] == kept for a in up),
                   timeout=TIMEOUT, what="nodes 1, 2 and 4 to drop node3", interval=0.3,
                   ignore=NET_ERRORS)
        out_at = votes(apis[0])["changes"][-1]
        assert (out_at["address"], out_at["authorize"]) == (removed, False)

        log_step("node3 comes back: it syncs across its own removal and seals no more")
        net.start_node(3).wait_api()
        target = apis[0].height() + 3
        wait_until(lambda: min(a.height() for a in apis) >= target, timeout=TIMEOUT,
                   what=f"every node past height {target}", interval=0.3, ignore=NET_ERRORS)
        assert votes(apis[2])["authorities"] == kept
        wait_until(lambda: "is not an authority of the current set" in net.node(3).log("miner"),
                   timeout=TIMEOUT, what="node3's miner to say it is no authority any more")
        assert sealed_by(apis[0], removed, out_at["height"]) is None
        assert len({a.block(target)["hash"] for a in apis}) == 1
