"""The network routes against the real state and p2p services in-process (routes/network.py
and the status route's `p2p_endpoint`): POST /peers says what happened, each outcome with
its status and code, and every reply is an instance of its documented model."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import httpx

from common import wire
from common.wire import ByeCode
from tests.framework.wire_peer import WirePeer
from tests.unit.services.api.support import CHAIN, StateNode, run, state_node
from tests.unit.services.api.test_routes import check


def listener(node: StateNode, **kwargs: Any) -> WirePeer:
    """A test peer listening on loopback tcp for the node to dial."""
    assert node.p2p is not None
    fields = {"network_id": CHAIN, "genesis": node.genesis_hash, **kwargs}
    return WirePeer(node.p2p.ctx, **fields).bind("tcp://127.0.0.1:0")


def error_of(response: httpx.Response, status: int) -> tuple[str, str]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    return error["code"], error["message"]


def test_add_peer_answers_each_outcome(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with state_node(tmp_path, p2p=True) as node:
            http, p2p = node.http, node.p2p
            assert p2p is not None
            status = check(node, "GET", "/api/v1/status", await http.get("/api/v1/status"))
            assert status["p2p_endpoint"] == p2p.me.listen
            assert status["p2p_endpoint"].startswith("tcp://127.0.0.1:")
            peers = check(node, "GET", "/api/v1/peers", await http.get("/api/v1/peers"))
            assert peers["endpoint"] == p2p.me.listen and peers["p2p"] is True

            good = listener(node)
            added, _ = await asyncio.gather(
                http.post("/api/v1/peers", json={"endpoint": good.endpoint}), good.handshake())
            body = check(node, "POST", "/api/v1/peers", added)
            assert body == {"outcome": "connected", "node_id": good.node_id.hex(),
                            "endpoint": good.endpoint, "direction": "outbound"}
            again = check(node, "POST", "/api/v1/peers",
                          await http.post("/api/v1/peers", json={"endpoint": good.endpoint}))
            assert again["outcome"] == "already_connected"
            assert again["node_id"] == good.node_id.hex()

            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                silent = f"tcp://127.0.0.1:{s.getsockname()[1]}"
            code, message = error_of(await http.post("/api/v1/peers", json={
                "endpoint": silent, "wait_ms": 300}), 504)
            assert code == "peer_unreachable" and "within 0.3 s" in message

            stranger = listener(node, network_id=CHAIN + 1)
            pending = asyncio.create_task(http.post("/api/v1/peers",
                                                    json={"endpoint": stranger.endpoint}))
            await stranger.expect(wire.Hello)
            await stranger.hello()
            code, message = error_of(await pending, 409)
            assert code == "peer_wrong_network" and "wrong_network" in message

            full = listener(node)
            pending = asyncio.create_task(http.post("/api/v1/peers",
                                                    json={"endpoint": full.endpoint}))
            await full.expect(wire.Hello)
            await full.send(wire.Bye(ByeCode.TOO_MANY_PEERS.value, "at 17 inbound peers"))
            code, message = error_of(await pending, 409)
            assert code == "peer_full"
            assert message == (f"{full.endpoint} refused the link: too_many_peers: "
                               "at 17 inbound peers")

            code, _ = error_of(await http.post("/api/v1/peers",
                                               json={"endpoint": p2p.me.listen}), 409)
            assert code == "peer_is_self"
            code, _ = error_of(await http.post("/api/v1/peers", json={
                "endpoint": good.endpoint, "wait_ms": 0}), 400)
            assert code == "malformed"
            for peer in (good, stranger, full):
                peer.close()

    run(scenario)


def test_without_p2p_the_status_has_no_endpoint(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with state_node(tmp_path) as node:
            status = check(node, "GET", "/api/v1/status", await node.http.get("/api/v1/status"))
            assert status["p2p_endpoint"] is None and status["peers"] == 0
            peers = check(node, "GET", "/api/v1/peers", await node.http.get("/api/v1/peers"))
            assert peers["endpoint"] is None

    run(scenario)
