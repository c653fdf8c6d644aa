"""`GET /api/v1/blocks/{ref}` (services/api/routes/chain.py) over the real state service
in-process: a block shows the accounts it changed, before -> after (the seed's "a single
block and all its transaction data and state"), null for a side block, left out with
`changes=false`; every reply is an instance of the documented model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common import messages
from services.api import replies
from tests.framework import rules
from tests.unit.services.api.support import ED, TO, run, signed, state_node


async def get_block(http: Any, ref: str) -> dict[str, Any]:
    r = await http.get(f"/api/v1/blocks/{ref}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    replies.BLOCK_OUT.model.model_validate(body)
    return body


def test_a_block_shows_the_accounts_it_changed(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with state_node(tmp_path, funded=(ED.address,)) as node:
            http = node.http
            genesis = node.service.chain.genesis
            funds = dict(genesis.alloc)[ED.address]
            txs = [signed(0, amount=10, fee=1), signed(1, amount=20, fee=2)]
            main, side = rules.Chain(genesis), rules.Chain(genesis)
            miner, other = rules.address(20), rules.address(21)
            block = main.build_and_apply(txs, coinbase=miner)
            assert node.service.submit_block(messages.SubmitBlock(block.raw)).status == "head"

            body = await get_block(http, "1")
            assert body["changes"] == [
                {"address": ED.address.hex(), "before": {"balance": funds, "nonce": 0},
                 "after": {"balance": funds - 33, "nonce": 2}},
                {"address": TO.hex(), "before": {"balance": 0, "nonce": 0},
                 "after": {"balance": 30, "nonce": 0}},
                {"address": miner.hex(), "before": {"balance": 0, "nonce": 0},
                 "after": {"balance": genesis.reward + 3, "nonce": 0}}]
            # the genesis block created the allocation
            first = await get_block(http, "0")
            assert first["changes"] == [{"address": ED.address.hex(),
                                         "before": {"balance": 0, "nonce": 0},
                                         "after": {"balance": funds, "nonce": 0}}]
            # left out when not wanted
            lean = await get_block(http, f"{block.hash.hex()}?changes=false")
            assert "changes" not in lean and lean["hash"] == block.hash.hex()
            bad = await http.get("/api/v1/blocks/1?changes=maybe")
            assert bad.status_code == 400 and bad.json()["error"]["code"] == "malformed"

            # a block of a lighter branch: stored, its state never computed
            fork = side.build_and_apply([], coinbase=other)
            assert node.service.submit_block(messages.SubmitBlock(fork.raw)).status == "side"
            off = await get_block(http, fork.hash.hex())
            assert off["on_main_chain"] is False and off["changes"] is None

    run(scenario)
