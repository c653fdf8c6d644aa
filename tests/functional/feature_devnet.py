"""feature_devnet: `ccoin devnet` started and stopped the way a user does (Ctrl-C, SIGTERM,
a node stopped and restarted by hand, a resume), leaving no process behind; and a
`--curve --private` devnet that links its nodes over CurveZMQ from the first start and
refuses a key not on its allow-list. (The devnet's files and the command's refusals:
tests/unit/tools/test_devnet.py, tests/unit/tools/cli/test_devnet.py.)"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx
import pytest
import zmq
from zmq.utils import z85

from common.crypto import PrivateKey, Signer
from common.types import Transaction
from runtime.keystore import Keystore
from tests.framework.network import TestNetwork, free_base_port
from tests.framework.rest import RestApi
from tests.framework.scripted_peer import ScriptedPeer
from tests.framework.util import ccoin, processes_using, wait_until
from tools.devchain import DEV_FUNDS
from tools.devnet import DISCOVERY_OFFSET


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_ccoin_devnet_starts_and_stops_cleanly(short_tmp: Path) -> None:
    data = short_tmp / "net"
    base = free_base_port(3)
    net = TestNetwork.start(data, "--nodes", "3", "--validators", "2", "--base-port",
                            str(base), "--interval-ms", "500")
    try:
        net.wait_up()
        devnet = net.devnet
        out = net.output()
        for n in devnet.nodes:
            assert f"{n.api_url}/api/v1" in out
        assert devnet.developer.hex() in out
        discovery = RestApi("discovery", f"http://127.0.0.1:{base + DISCOVERY_OFFSET}")
        assert discovery.get("/health")["status"] == "ok"
        discovery.close()
        for n, node in zip(devnet.nodes, net.nodes, strict=True):
            status = node.api.get("/api/v1/status")
            assert status["genesis"] == devnet.genesis_hash.hex()
            services = json.loads(ccoin("node", "status", "--data", str(n.base_path),
                                        "--json").stdout)
            names = {s["name"] for s in services}
            assert ("miner" in names) == n.is_validator
            assert {s["state"] for s in services} == {"RUNNING"}
        assert net.node(1).api.balance(devnet.developer) == DEV_FUNDS
        # a node stopped by hand is reported, the devnet keeps running
        net.stop_node(3)
        wait_until(lambda: "node3 stopped" in net.output(), timeout=30,
                   what="node3's stop reported")
        assert net.proc.poll() is None
        # and restarted by hand, it is stopped with the rest on Ctrl-C
        restarted = net.start_node(3)
        restarted.wait_api(60)
        for node in net.nodes:
            node.close_clients()  # an open connection would hold up the gateways' exit
        assert net.stop(signal.SIGINT) == 0
        assert restarted.supervisor is not None and restarted.supervisor.wait(30) == 0
        assert "devnet stopped" in net.output()
        assert not processes_using(str(data)), processes_using(str(data))

        # resume: same devnet, same genesis; SIGTERM stops it the same way
        with TestNetwork.start(data) as net2:
            net2.wait_up()
            assert "resumed" in net2.output()
            status = net2.node(1).api.get("/api/v1/status")
            assert status["genesis"] == devnet.genesis_hash.hex()
            net2.node(1).close_clients()
            assert net2.stop(signal.SIGTERM) == 0
            assert not processes_using(str(data)), processes_using(str(data))
    finally:
        net.close()


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_private_curve_devnet_links_confirms_and_refuses_strangers(short_tmp: Path) -> None:
    """`ccoin devnet --private`: the two nodes link over CurveZMQ on their first start (the
    bootnode address carries node 1's key), a transfer sent to the basic node is sealed by
    the validator and confirmed on both, and a Curve client whose key is not on the
    allow-list (or a plain, unencrypted one) gets nothing from node 1."""
    data = short_tmp / "curve"
    net = TestNetwork.start(data, "--nodes", "2", "--validators", "1", "--private",
                            "--base-port", str(free_base_port(2)), "--interval-ms", "300")
    try:
        net.wait_up()
        devnet = net.devnet
        assert devnet.curve and devnet.private
        assert "CurveZMQ-encrypted, private" in net.output()
        validator, basic = devnet.nodes
        wait_until(lambda: all(node.api.status()["peers"] >= 1 for node in net.nodes),
                   timeout=30, what="the nodes to link over Curve")
        for n in devnet.nodes:
            assert "CurveZMQ" in (n.base_path / "logs" / "p2p.log").read_text()

        signer = Signer(Keystore(basic.base_path / "keystore").load(devnet.developer,
                                                                   devnet.password()))
        to = PrivateKey.generate().address
        tx = Transaction.create(signer, chain_id=devnet.network_id, nonce=0, to=to,
                                amount=777, fee=1)
        r = httpx.post(f"{basic.api_url}/api/v1/txs/batch",
                       json={"txs": [{"raw": tx.raw.hex()}]}, timeout=10)
        assert r.json()["results"][0]["status"] == "accepted", r.text
        wait_until(lambda: all(node.api.confirmed(tx.id.hex()) for node in net.nodes),
                   timeout=30, what="the transfer confirmed on both nodes", interval=0.3)
        for node in net.nodes:
            assert node.api.balance(to) == 777

        status = net.node(1).api.status()
        genesis = bytes.fromhex(status["genesis"])
        public, secret = zmq.curve_keypair()
        stranger = ScriptedPeer(validator.p2p_endpoint, network_id=devnet.network_id,
                                genesis=genesis, curve=(validator.curve_key, z85.decode(public),
                                                        z85.decode(secret)))
        plain = ScriptedPeer(validator.p2p_endpoint, network_id=devnet.network_id,
                             genesis=genesis)
        try:
            stranger.hello()
            plain.hello()
            assert stranger.recv(1.5) is None  # ZAP refused the key
            assert plain.recv(0.5) is None  # no Curve handshake, no link
        finally:
            stranger.close()
            plain.close()
        log = (validator.base_path / "logs" / "p2p.log").read_text()
        assert "not on the allow-list" in log
        assert net.node(1).api.status()["peers"] == 1

        for node in net.nodes:
            node.close_clients()  # an open connection would hold up the gateways' exit
        assert net.stop(signal.SIGINT) == 0
        assert not processes_using(str(data)), processes_using(str(data))
    except BaseException:
        print(net.tail())
        raise
    finally:
        net.close()
