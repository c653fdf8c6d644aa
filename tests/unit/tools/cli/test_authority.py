"""`ccoin authority list | propose | discard` (tools/cli/authority.py) against the real gateway
over a real state service served on a loopback socket (test_consensus.serving_chain): the
set, an open proposal with its voter, this node's proposals added and discarded, and the
one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from common import authorities as au
from runtime.service import now_ms
from tests.conftest import Run
from tests.framework import rules as rh
from tests.unit.tools.cli.test_consensus import serving_chain


def test_list_propose_and_discard(run: Run, tmp_path: Path) -> None:
    g = rh.poa_genesis(3, interval_ms=60_000, genesis_timestamp=now_ms() - 3 * 60_000)
    a, b, c = g.miners
    d = rh.address(103)
    chain = rh.Chain(g)
    chain.build_and_apply(vote=au.encode_vote(d, True))  # B votes D in
    with serving_chain(tmp_path, g, chain) as url:
        code, out, err = run("authority", "list", "--api", url)
        assert code == 0, err
        lines = out.strip().splitlines()
        assert lines[0].startswith("3 authorities (in turn order); a proposal passes with 2 "
                                   "votes; next checkpoint at block 30000")
        assert lines[1:4] == [f"  {x.hex()}" for x in (a, b, c)]
        assert lines[5].split() == ["add", d.hex(), "1/2", b.hex()[:8]]

        code, out, err = run("authority", "propose", d.hex(), "--add", "--api", url)
        assert code == 0, err
        assert f"this node: add {d.hex()} (votes in its next sealed block)" in out
        code, out, err = run("authority", "propose", "0x" + a.hex(), "--remove", "--api", url,
                             "--json")
        doc = json.loads(out)
        assert code == 0 and [o["address"] for o in doc["own"]] == [d.hex(), a.hex()]
        code, out, err = run("authority", "discard", a.hex(), "--api", url)
        assert code == 0 and f"remove {a.hex()}" not in out
        code, out, err = run("authority", "discard", a.hex(), "--api", url)
        assert code == 1 and err.strip() == f"error: this node has no proposal about {a.hex()}"
        code, out, err = run("authority", "propose", "abc", "--add", "--api", url)
        assert code == 1 and "ADDR 'abc' is not a 40-hex-character address" in err
        code, out, err = run("authority", "propose", d.hex(), "--api", url)
        assert code == 2 and "one of the arguments --add --remove is required" in err
