"""A devnet's files (tools/devnet.py): one genesis, distinct ports by the documented layout,
each authority key in its own validator's keystore and nowhere else, per-node hosts for
network namespaces, Curve key pairs written before the first start (and an allow-list with
`private`), a manifest that reads back, and refusals of bad shapes and of overwriting.
(`ccoin devnet` running: functional/feature_devnet.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common import wire
from common.genesis import genesis_block
from runtime.config import load_config, load_genesis
from runtime.keystore import Keystore
from services.p2p.identity import key_dir, load_allow_list, load_curve_keys
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
