"""feature_devnet: the multi-node setup (services/node/devnet.py) and `ccoin devnet`.

Creation is checked file by file (one genesis, distinct ports, each authority key in its
own validator's keystore and nowhere else); the command is started and stopped the way a
user does (Ctrl-C, SIGTERM) and must leave no process behind. A `--curve --private` devnet
links its nodes over CurveZMQ from the first start and refuses a key not on its
allow-list."""

from __future__ import annotations

import json
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import zmq
from zmq.utils import z85

from common import wire
from common.crypto import PrivateKey, Signer
from common.genesis import genesis_block, load_genesis
from common.types import Transaction
from runtime.config import load_config
from runtime.keystore import Keystore
from services.p2p.identity import key_dir, load_allow_list, load_curve_keys
from tests.framework.devnet import (
    api_get,
    ccoin,
    free_base_port,
    processes_using,
    start_devnet,
    teardown_devnet,
    wait_for,
)
from tests.framework.p2p import ScriptedPeer
from tools import supervisor as sv
from tools.devchain import DEV_FUNDS
from tools.devnet import (
    DISCOVERY_OFFSET,
    MANIFEST,
    P2P_OFFSET,
    DevnetError,
    create_devnet,
    load_devnet,
)


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short path: supervisord's unix socket path must stay under ~100 bytes."""
    base = Path(tempfile.mkdtemp(prefix="ccdn-", dir="/tmp"))
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_poa_devnet_files_are_consistent(short_tmp: Path) -> None:
    devnet = create_devnet(short_tmp / "net", nodes=4, validators=3, base_port=21000,
                           interval_ms=500, password="pw")
    genesis = load_genesis(devnet.genesis_path)
    assert genesis.miners == tuple(n.account for n in devnet.nodes[:3])
    assert genesis.interval_ms == 500 and genesis.is_poa
    assert dict(genesis.alloc) == {devnet.developer: DEV_FUNDS}
    assert devnet.genesis_hash == genesis_block(genesis).hash
    assert [n.node_type for n in devnet.nodes] == ["validator"] * 3 + ["basic"]

    configs = [load_config(n.config_path) for n in devnet.nodes]
    # one genesis file, shared; every node its own data dir
    assert {c.genesis_file() for c in configs} == {devnet.genesis_path}
    assert len({c.base_path for c in configs}) == 4
    assert [c.base_path for c in configs] == [n.base_path for n in devnet.nodes]
    # distinct ports, by the documented layout
    assert [c.api_port for c in configs] == [21000, 21001, 21002, 21003]
    assert [c.p2p_port for c in configs] == [21000 + P2P_OFFSET + i for i in range(4)]
    ports = [c.api_port for c in configs] + [c.p2p_port for c in configs]
    assert len(set(ports)) == 8 and 21000 + DISCOVERY_OFFSET not in ports
    assert {c.discovery for c in configs} == {f"http://127.0.0.1:{21000 + DISCOVERY_OFFSET}"}
    assert configs[0].bootnodes == ()
    assert all(c.bootnodes == (f"tcp://127.0.0.1:{21000 + P2P_OFFSET}",) for c in configs[1:])
    # keys: validator I holds authority I (and no other), everyone holds the developer key
    for i, (node, config) in enumerate(zip(devnet.nodes, configs, strict=True)):
        assert config.account_address == node.account
        assert config.password() == "pw"
        held = set(Keystore(config.keystore_dir).addresses())
        assert held == {node.account, devnet.developer}
        assert held & set(genesis.miners) == ({genesis.miners[i]} if i < 3 else set())
        Keystore(config.keystore_dir).load(node.account, "pw")
        sv.check_socket_path(sv.Paths.of(config))
    assert devnet.password() == "pw"
    assert (devnet.base_path / "developer.txt").read_text().strip() == devnet.developer.hex()
    # the manifest reads back to the same devnet
    assert load_devnet(devnet.base_path) == devnet


def test_pow_devnet_every_node_mines_with_its_own_key(short_tmp: Path) -> None:
    devnet = create_devnet(short_tmp / "pow", nodes=3, pow=True, base_port=22000,
                           difficulty=9, retarget_blocks=5)
    genesis = load_genesis(devnet.genesis_path)
    assert genesis.miners == () and not genesis.is_poa
    assert genesis.difficulty == 9 and genesis.retarget_blocks == 5
    assert all(n.node_type == "validator" for n in devnet.nodes)
    assert len({n.account for n in devnet.nodes}) == 3
    assert json.loads((devnet.base_path / "devnet.json").read_text())["consensus"] == "pow"


def test_per_node_hosts_for_namespaces(short_tmp: Path) -> None:
    devnet = create_devnet(short_tmp / "ns", nodes=2, p2p_hosts=["10.9.0.1", "10.9.0.2"],
                           discovery_host="10.9.0.254", base_port=23000)
    second = load_config(devnet.node(2).config_path)
    assert second.p2p_host == "10.9.0.2"
    assert second.bootnodes == (f"tcp://10.9.0.1:{23000 + P2P_OFFSET}",)
    assert second.discovery == f"http://10.9.0.254:{23000 + DISCOVERY_OFFSET}"


def test_curve_devnet_keys_exist_before_the_first_start(short_tmp: Path) -> None:
    """Every node's Curve pair is written where the p2p service loads it, node 1's bootnode
    address names its key, and `private` allow-lists exactly the devnet's keys."""
    devnet = create_devnet(short_tmp / "c", nodes=3, private=True, base_port=24000)
    assert devnet.curve and devnet.private
    configs = [load_config(n.config_path) for n in devnet.nodes]
    keys = [load_curve_keys(key_dir(c.base_path))[0] for c in configs]  # as p2p loads them
    assert [n.curve_key for n in devnet.nodes] == keys and len(set(keys)) == 3
    assert all(c.p2p_curve for c in configs)
    first = devnet.nodes[0]
    assert configs[0].bootnodes == ()
    for c in configs[1:]:
        assert c.bootnodes == (f"{first.p2p_endpoint}#{keys[0].hex()}",)
        assert wire.parse_peer_uri(c.bootnodes[0]) == (first.p2p_endpoint, keys[0])
    assert {c.p2p_allow_list for c in configs} == {devnet.allow_list_path}
    assert load_allow_list(devnet.allow_list_path) == frozenset(keys)
    for c in configs:
        assert (key_dir(c.base_path) / "curve.key_secret").stat().st_mode & 0o077 == 0
    assert load_devnet(devnet.base_path) == devnet

    curve_only = create_devnet(short_tmp / "o", nodes=2, curve=True, base_port=24500)
    second = load_config(curve_only.node(2).config_path)
    assert second.p2p_curve and second.p2p_allow_list is None
    assert second.bootnodes == (curve_only.node(1).p2p_address,)
    assert not curve_only.private and not curve_only.allow_list_path.exists()
    # a manifest from before --curve reads as a plain devnet
    plain = create_devnet(short_tmp / "p", nodes=2, base_port=25000)
    doc = json.loads((plain.base_path / MANIFEST).read_text())
    for key in ("curve", "private"):
        assert doc.pop(key) is False
    for entry in doc["nodes"]:
        assert entry.pop("curve_key") == ""
    (plain.base_path / MANIFEST).write_text(json.dumps(doc))
    assert load_devnet(plain.base_path) == plain
    assert not load_config(plain.node(1).config_path).p2p_curve
    assert not (key_dir(plain.node(1).base_path) / "curve.key").exists()


@pytest.mark.parametrize("kwargs, message", [
    ({"nodes": 0}, "--nodes"),
    ({"nodes": 65}, "--nodes"),
    ({"nodes": 2, "validators": 3}, "--validators"),
    ({"nodes": 2, "validators": 0}, "--validators"),
    ({"nodes": 2, "validators": 1, "pow": True}, "PoA only"),
    ({"nodes": 2, "base_port": 65400}, "--base-port"),
    ({"nodes": 2, "p2p_hosts": ["127.0.0.1"]}, "one address per node"),
])
def test_bad_shapes_are_refused(short_tmp: Path, kwargs: dict[str, object],
                                message: str) -> None:
    with pytest.raises(DevnetError, match=message):
        create_devnet(short_tmp / "bad", **kwargs)  # type: ignore[arg-type]
    assert not (short_tmp / "bad" / "devnet.json").exists()


def test_an_existing_devnet_is_not_overwritten(short_tmp: Path) -> None:
    create_devnet(short_tmp / "x", nodes=1)
    with pytest.raises(DevnetError, match="already holds a devnet"):
        create_devnet(short_tmp / "x", nodes=1)
    with pytest.raises(DevnetError, match="holds no devnet"):
        load_devnet(short_tmp)


def test_command_line_errors_are_one_line(short_tmp: Path) -> None:
    empty = ccoin("devnet", "--data", str(short_tmp / "new"), check=False)
    assert empty.returncode == 1 and "--nodes N is required" in empty.stderr
    (short_tmp / "junk").mkdir()
    (short_tmp / "junk" / "file").write_text("x")
    junk = ccoin("devnet", "--nodes", "2", "--data", str(short_tmp / "junk"), check=False)
    assert junk.returncode == 1 and "not a devnet dir" in junk.stderr
    create_devnet(short_tmp / "d", nodes=2, base_port=free_base_port(2))
    other = ccoin("devnet", "--nodes", "3", "--data", str(short_tmp / "d"), check=False)
    assert other.returncode == 1 and "--nodes differs" in other.stderr
    bad = ccoin("devnet", "--nodes", "2", "--validators", "1", "--pow", "--data",
                str(short_tmp / "p"), check=False)
    assert bad.returncode == 1 and "PoA only" in bad.stderr
    plain = ccoin("devnet", "--curve", "--data", str(short_tmp / "d"), check=False)
    assert plain.returncode == 1 and "--curve differs" in plain.stderr
    for proc in (empty, junk, other, bad, plain):
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_ccoin_devnet_starts_and_stops_cleanly(short_tmp: Path) -> None:
    data = short_tmp / "net"
    base = free_base_port(3)
    net = start_devnet(data, "--nodes", "3", "--validators", "2", "--base-port", str(base),
                       "--interval-ms", "500")
    try:
        net.wait_up()
        devnet = net.manifest()
        out = net.output()
        for n in devnet.nodes:
            assert f"{n.api_url}/api/v1" in out
        assert devnet.developer.hex() in out
        assert api_get(f"http://127.0.0.1:{base + DISCOVERY_OFFSET}", "/health")["status"] == "ok"
        for n in devnet.nodes:
            status = api_get(n.api_url, "/api/v1/status")
            assert status["genesis"] == devnet.genesis_hash.hex()
            services = json.loads(ccoin("node", "status", "--data", str(n.base_path),
                                        "--json").stdout)
            names = {s["name"] for s in services}
            assert ("miner" in names) == n.is_validator
            assert {s["state"] for s in services} == {"RUNNING"}
        assert api_get(devnet.nodes[0].api_url,
                       f"/api/v1/accounts/{devnet.developer.hex()}")["balance"] == DEV_FUNDS
        # a node stopped by hand is reported, the devnet keeps running
        net.stop_node(3)
        wait_for(lambda: "node3 stopped" in net.output(), 30, "node3 stop reported")
        assert net.proc.poll() is None
        # and restarted by hand, it is stopped with the rest on Ctrl-C
        restarted = net.start_node(3)
        wait_for(lambda: api_get(devnet.nodes[2].api_url, "/health"), 60, "node3 back")
        assert net.stop(signal.SIGINT) == 0
        assert restarted.wait(30) == 0
        assert "devnet stopped" in net.output()
        assert not processes_using(str(data)), processes_using(str(data))

        # resume: same devnet, same genesis; SIGTERM stops it the same way
        net2 = start_devnet(data)
        try:
            net2.wait_up()
            assert "resumed" in net2.output()
            status = api_get(devnet.nodes[0].api_url, "/api/v1/status")
            assert status["genesis"] == devnet.genesis_hash.hex()
            assert net2.stop(signal.SIGTERM) == 0
            assert not processes_using(str(data)), processes_using(str(data))
        finally:
            teardown_devnet(net2)
    finally:
        teardown_devnet(net)


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_private_curve_devnet_links_confirms_and_refuses_strangers(short_tmp: Path) -> None:
    """`ccoin devnet --private`: the two nodes link over CurveZMQ on their first start (the
    bootnode address carries node 1's key), a transfer sent to the basic node is sealed by
    the validator and confirmed on both, and a Curve client whose key is not on the
    allow-list (or a plain, unencrypted one) gets nothing from node 1."""
    data = short_tmp / "curve"
    net = start_devnet(data, "--nodes", "2", "--validators", "1", "--private",
                       "--base-port", str(free_base_port(2)), "--interval-ms", "300")
    try:
        net.wait_up()
        devnet = net.manifest()
        assert devnet.curve and devnet.private
        assert "CurveZMQ-encrypted, private" in net.output()
        validator, basic = devnet.nodes
        wait_for(lambda: all(api_get(n.api_url, "/api/v1/status")["peers"] >= 1
                             for n in devnet.nodes), 30, "the nodes link over Curve")
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
        wait_for(lambda: all(api_get(n.api_url, f"/api/v1/txs/{tx.id.hex()}")["status"]
                             == "confirmed" for n in devnet.nodes), 30,
                 "the transfer confirmed on both nodes", interval=0.3)
        for n in devnet.nodes:
            assert api_get(n.api_url, f"/api/v1/accounts/{to.hex()}")["balance"] == 777

        status = api_get(validator.api_url, "/api/v1/status")
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
        assert api_get(validator.api_url, "/api/v1/status")["peers"] == 1

        assert net.stop(signal.SIGINT) == 0
        assert not processes_using(str(data)), processes_using(str(data))
    except BaseException:
        print(net.tail(("p2p", "state")))
        raise
    finally:
        teardown_devnet(net)
