"""POST /api/v1/sync and the p2p part of GET /api/v1/status (routes/network.py,
routes/chain.py) over the real state service, in-process: a sync with no peer is refused as
`no_peers` instead of being "requested" for nothing, and the status says whether p2p (and a
miner) answers at all, so that "0 peers" and "p2p is down" are told apart. The p2p node is
the real one (tests/framework/localnet.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from runtime.config import parse_config
from services.api.app import create_app
from tests.framework.localnet import LocalNet
from tests.unit.services.api.support import run, serving, state_node


async def _status(http: httpx.AsyncClient) -> dict[str, Any]:
    r = await http.get("/api/v1/status")
    assert r.status_code == 200, r.text
    doc: dict[str, Any] = r.json()
    return doc


def test_sync_needs_a_peer(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with LocalNet(tmp_path) as net:
            node = await net.node("a")
            state = net.state("a")
            config = parse_config({
                "app": {"base_path": str(tmp_path)},
                "endpoints": {"state": state.endpoint, "events": state.events,
                              "p2p": node.settings.control,
                              "miner": f"ipc://{tmp_path}/no-miner.sock"}})
            app = create_app(config, net.genesis.network_id, ctx=net.ctx)
            async with serving(app) as http:
                st = await _status(http)
                assert (st["p2p"], st["peers"], st["syncing"]) == (True, 0, False)
                assert (st["validator"], st["mining"]) == (False, False)  # no miner here

                r = await http.post("/api/v1/sync")
                assert r.status_code == 409, r.text
                assert r.json()["error"]["code"] == "no_peers"
                assert "no one to sync from" in r.json()["error"]["message"]

                peer = net.peer().connect(node.settings.listen)
                await peer.handshake()
                r = await http.post("/api/v1/sync")
                assert r.status_code == 200 and r.json() == {"ok": True}, r.text
                assert (await _status(http))["peers"] == 1

    run(scenario)


def test_the_status_says_when_no_p2p_or_miner_answers(tmp_path: Path) -> None:
    """A node whose p2p and miner do not answer: its peers are unknown (`p2p: false`, not
    just 0), it has no miner (`validator: false`), and a sync has no one to ask."""
    async def scenario() -> None:
        async with state_node(tmp_path) as node:
            st = await _status(node.http)
            assert (st["p2p"], st["peers"], st["syncing"]) == (False, 0, False)
            assert (st["validator"], st["mining"]) == (False, False)
            r = await node.http.post("/api/v1/sync")
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "p2p_unavailable"

    run(scenario)
