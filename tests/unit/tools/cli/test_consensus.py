"""`ccoin consensus` (tools/cli/network.py) against the real gateway over a real state service,
both in this process (tests/unit/services/api/support.state_node) and served by uvicorn on a
loopback socket in a thread: the sentence first, then the authorities' table; `--json` the
route's own document."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from common import authorities
from common.chainhealth import short
from common.genesis import Genesis
from runtime.service import now_ms
from tests.conftest import Run
from tests.framework import rules as rh
from tests.framework.util import wait_until_async
from tests.unit.services.api.support import state_node

INTERVAL = 1_000


@contextmanager
def serving_chain(tmp_path: Path, genesis: Genesis, chain: rh.Chain) -> Iterator[str]:
    """The gateway of a state holding `chain`, at the URL this yields until the block ends."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    ready, failed = threading.Event(), []
    holder: list[uvicorn.Server] = []

    async def main() -> None:
        async with state_node(tmp_path, genesis=genesis) as node:
            for block in chain.blocks[1:]:
                node.service.chain.import_block(block, 2**62)
            # the app's lifespan is already running (state_node): uvicorn only serves it
            server = uvicorn.Server(uvicorn.Config(node.app, lifespan="off",
                                                   log_level="warning"))
            holder.append(server)
            serve = asyncio.create_task(server.serve(sockets=[sock]))
            await wait_until_async(lambda: server.started or serve.done(), timeout=30,
                                   what="uvicorn serving the gateway")
            ready.set()
            await serve

    def thread() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # reported by the test thread
            failed.append(exc)
            ready.set()

    worker = threading.Thread(target=thread, daemon=True)
    worker.start()
    ready.wait(30)
    try:
        assert not failed, failed
        yield url
    finally:
        if holder:
            holder[0].should_exit = True
        worker.join(30)
        sock.close()


def stalled_pair() -> tuple[Genesis, rh.Chain]:
    """Two authorities, four in-turn blocks, the last ten intervals ago: block 5's
    authority is gone and the other may not seal (the recency rule)."""
    start = now_ms() - 14 * INTERVAL
    g = rh.poa_genesis(2, interval_ms=INTERVAL, genesis_timestamp=start)
    chain = rh.Chain(g)
    for _ in range(4):
        chain.build_and_apply([])
    return g, chain


def test_consensus_says_why_the_chain_waits(run: Run, tmp_path: Path) -> None:
    g, chain = stalled_pair()
    gone, held = g.miners[5 % 2], g.miners[4 % 2]
    with serving_chain(tmp_path, g, chain) as url:
        code, out, err = run("consensus", "--api", url)
        assert code == 0, err
        summary, about, header, *rows = out.strip().splitlines()
        assert summary.startswith(f"waiting: authority {short(gone)} is offline; with 2 "
                                  f"authorities both must be online (no block for ")
        assert about.startswith("proof of authority: 2 authorities, both must be online: "
                                "neither may fail; block 4 was sealed ")
        assert header.split() == ["authority", "state", "may", "seal", "sealed", "last",
                                  "block", "missed", "since", "head"]
        cells = {r.split()[-7]: r.split() for r in rows}
        star, _, state, may, sealed, last, missed, since = cells[gone.hex()]
        assert (star, state, may, sealed, last) == ("*", "offline", "yes", "2", "3")
        assert int(missed) == int(since) >= 4  # every other slot of ten intervals
        assert cells[held.hex()][1:6] == ["live", "no", "2", "4", "0"]
        assert "missed turns include the slots since the head" in err

        code, out, _ = run("consensus", "--api", url, "--window", "2", "--json")
        doc = json.loads(out)
        assert code == 0 and doc["state"] == "waiting" and doc["window"] == 2
        assert short(gone) in doc["summary"]


def test_consensus_of_a_chain_on_time(run: Run, tmp_path: Path) -> None:
    g = rh.poa_genesis(3, interval_ms=60_000, genesis_timestamp=now_ms() - 3 * 60_000)
    chain = rh.Chain(g)
    for _ in range(2):
        chain.build_and_apply([])
    with serving_chain(tmp_path, g, chain) as url:
        code, out, err = run("consensus", "--api", url)
        assert code == 0, err
        summary, about, *_ = out.strip().splitlines()
        assert summary == f"sealing normally: block 3 is {short(g.miners[0])}'s turn"
        assert about.startswith("proof of authority: 3 authorities, at least 2 must be online "
                                "(1 may fail); block 2 was sealed ")


def test_consensus_names_open_proposals_and_the_last_change(run: Run, tmp_path: Path) -> None:
    """Three authorities: two vote a newcomer in (it passes at the second vote), then one
    votes to remove another (open: 1 of the 3 a 4-authority set needs)."""
    g = rh.poa_genesis(3, interval_ms=60_000, genesis_timestamp=now_ms() - 3 * 60_000)
    chain = rh.Chain(g)
    newcomer, leaving = rh.address(103), g.miners[2]  # authorities are keys 100, 101...
    chain.build_and_apply([], vote=authorities.encode_vote(newcomer, True))
    chain.build_and_apply([], vote=authorities.encode_vote(newcomer, True))
    chain.build_and_apply([], vote=authorities.encode_vote(leaving, False))
    with serving_chain(tmp_path, g, chain) as url:
        code, out, err = run("consensus", "--api", url)
        assert code == 0, err
        lines = out.strip().splitlines()
        assert f"proposal: remove {leaving.hex()}: 1 of the 3 vote(s) it needs" in lines
        assert f"last change: added {newcomer.hex()} at block 2" in lines
