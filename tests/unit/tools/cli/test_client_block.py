"""`ccoin block` (tools/cli/client.py) against the real gateway over a real state service
served on a loopback socket (test_consensus.serving_chain): the header, the transactions,
then the accounts the block changed, before -> after; a block off the main chain says it
has none stored; `--json` is the route's own document."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Run
from tests.framework import rules as rh
from tests.unit.tools.cli.test_consensus import serving_chain

A, B, MINER, OTHER = rh.address(1), rh.address(2), rh.address(20), rh.address(21)


def test_block_shows_the_accounts_it_changed(run: Run, tmp_path: Path) -> None:
    g = rh.make_genesis(difficulty=0, alloc={A: 1000})  # PoW: reward 100 to the coinbase
    chain = rh.Chain(g)
    block = chain.build_and_apply([rh.transfer(1, B, 250, nonce=0, fee=5)], coinbase=MINER)
    chain.build_and_apply([], coinbase=MINER)
    side = rh.Chain(g).build_and_apply([], coinbase=OTHER)  # a lighter branch at height 1
    served = rh.Chain(g)
    served.blocks = [*chain.blocks, side]  # what the served state imports, in this order
    with serving_chain(tmp_path, g, served) as url:
        code, out, err = run("block", "1", "--api", url)
        assert code == 0, err
        lines = out.splitlines()
        assert "difficulty     0 bits" in lines  # the header counts bits, whatever the file
        start = lines.index("accounts changed: 3")
        header, *rows = lines[start + 1:]
        assert header.split() == ["address", "balance", "before", "->", "after", "nonce",
                                  "before", "->", "after"]
        assert [r.split() for r in rows] == [
            [A.hex(), "1000", "->", "745", "0", "->", "1"],
            [B.hex(), "0", "->", "250", "0", "->", "0"],
            [MINER.hex(), "0", "->", "105", "0", "->", "0"]]

        code, out, err = run("block", side.hash.hex(), "--api", url)
        assert code == 0, err
        assert out.splitlines()[-1] == ("accounts changed: none stored (the block is off the "
                                        "main chain; its state is computed only if it joins "
                                        "it)")

        code, out, _ = run("block", block.hash.hex(), "--api", url, "--json")
        doc = json.loads(out)
        assert code == 0 and doc["changes"][2] == {
            "address": MINER.hex(), "before": {"balance": 0, "nonce": 0},
            "after": {"balance": 105, "nonce": 0}}
