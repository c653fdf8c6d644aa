"""Node configuration: the seed's ccoin.json shape, defaults, and unknown-field errors."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from common.genesis import GenesisError
from runtime.config import ConfigError, NodeConfig, load_config, load_genesis, parse_config


def write(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "node.json"
    path.write_text(json.dumps(doc))
    return path


def test_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, {"app": {"base_path": "data"}}))
    assert cfg.base_path == (tmp_path / "data").resolve()
    assert cfg.account_address == b"" and cfg.genesis_path is None and cfg.discovery == ""
    assert (cfg.api_host, cfg.api_port, cfg.api_workers, cfg.admin_token) == (
        "127.0.0.1", 8000, 1, "")
    assert (cfg.p2p_host, cfg.p2p_port, cfg.bootnodes) == ("127.0.0.1", 30333, ())
    assert (cfg.p2p_max_inbound_per_ip, cfg.p2p_max_inbound_per_subnet,
            cfg.p2p_limit_loopback) == (4, 8, False)
    assert cfg.mining_autostart is True and cfg.password_file is None
    assert cfg.assume_valid == b""  # off: every signature verified
    assert cfg.chain_dir == cfg.base_path / "chain"
    assert cfg.keystore_dir == cfg.base_path / "keystore"
    assert cfg.genesis_file() == cfg.base_path / "genesis.json"
    assert cfg.endpoint("state") == f"ipc://{cfg.base_path / 'run' / 'state'}.sock"


def test_full_config(tmp_path: Path) -> None:
    doc = {
        "app": {"base_path": "/var/ccoin"},
        "client": {"account_address": "0x" + "ab" * 20},
        "discovery_service": {"host": "10.0.0.1", "port": 4444, "proto": "http"},
        "genesis": "genesis.json",
        "api": {"host": "0.0.0.0", "port": 8080, "workers": 4, "admin_token": "t",
                "cors_origins": ["http://x"]},
        "p2p": {"host": "0.0.0.0", "port": 30400, "bootnodes": ["tcp://1.2.3.4:30333"],
                "max_inbound_per_ip": 0, "max_inbound_per_subnet": 2, "limit_loopback": True},
        "keystore": {"password_file": "pw.txt"},
        "mining": {"autostart": False},
        "endpoints": {"state": "tcp://127.0.0.1:5555"},
        "sync": {"assume_valid": "0f" * 32},
    }
    cfg = load_config(write(tmp_path, doc))
    assert cfg.assume_valid == bytes.fromhex("0f" * 32)
    assert cfg.base_path == Path("/var/ccoin")
    assert cfg.account_address == bytes.fromhex("ab" * 20)
    assert cfg.discovery == "http://10.0.0.1:4444"
    assert cfg.genesis_file() == (tmp_path / "genesis.json").resolve()
    assert (cfg.api_host, cfg.api_port, cfg.api_workers, cfg.admin_token) == (
        "0.0.0.0", 8080, 4, "t")
    assert cfg.cors_origins == ("http://x",)
    assert cfg.bootnodes == ("tcp://1.2.3.4:30333",) and cfg.p2p_port == 30400
    assert (cfg.p2p_max_inbound_per_ip, cfg.p2p_max_inbound_per_subnet,
            cfg.p2p_limit_loopback) == (0, 2, True)
    assert cfg.password_file == (tmp_path / "pw.txt").resolve()
    assert cfg.mining_autostart is False
    assert cfg.endpoint("state") == "tcp://127.0.0.1:5555"
    assert cfg.endpoint("events").startswith("ipc://")


def test_seed_shape_discovery_defaults() -> None:
    cfg = parse_config({"app": {"base_path": "/d"}, "discovery_service": {"host": "h"}})
    assert cfg.discovery == "http://h:4444"


@pytest.mark.parametrize("doc, needle", [
    ({"app": {"base_path": "/d"}, "wallet": {}}, "wallet"),
    ({"app": {"base_path": "/d", "colour": "red"}}, "colour"),
    ({"app": {"base_path": "/d"}, "api": {"prot": 1}}, "prot"),
    ({"app": {"base_path": "/d"}, "p2p": {"bootnode": []}}, "bootnode"),
])
def test_unknown_sections_and_fields(doc: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle) as info:
        parse_config(doc)
    assert "unknown" in str(info.value) and info.value.code == "malformed"


@pytest.mark.parametrize("doc, needle", [
    ({}, "base_path"),
    ({"app": {}}, "base_path"),
    ({"app": {"base_path": ""}}, "base_path"),
    ({"app": {"base_path": "/d"}, "api": {"port": 70000}}, "api.port"),
    ({"app": {"base_path": "/d"}, "api": {"port": "8000"}}, "api.port"),
    ({"app": {"base_path": "/d"}, "api": {"workers": 0}}, "api.workers"),
    ({"app": {"base_path": "/d"}, "p2p": {"port": True}}, "p2p.port"),
    ({"app": {"base_path": "/d"}, "p2p": {"bootnodes": "tcp://x"}}, "bootnodes"),
    ({"app": {"base_path": "/d"}, "p2p": {"max_inbound_per_ip": -1}}, "max_inbound_per_ip"),
    ({"app": {"base_path": "/d"}, "p2p": {"max_inbound_per_subnet": "8"}},
     "max_inbound_per_subnet"),
    ({"app": {"base_path": "/d"}, "p2p": {"limit_loopback": 1}}, "limit_loopback"),
    ({"app": {"base_path": "/d"}, "client": {"account_address": "abc"}}, "account_address"),
    ({"app": {"base_path": "/d"}, "mining": {"autostart": "yes"}}, "autostart"),
    ({"app": {"base_path": "/d"}, "endpoints": {"state": 5}}, "endpoints"),
    ({"app": {"base_path": "/d"}, "api": []}, "api"),
    ({"app": {"base_path": "/d"}, "discovery_service": {"port": 0}}, "discovery_service.port"),
    ({"app": {"base_path": "/d"}, "chain": {"min_free_mb": -1}}, "chain.min_free_mb"),
    ({"app": {"base_path": "/d"}, "chain": {"min_free_mb": "1G"}}, "chain.min_free_mb"),
    ({"app": {"base_path": "/d"}, "sync": {"assume_valid": "ab" * 31}}, "sync.assume_valid"),
    ({"app": {"base_path": "/d"}, "sync": {"assume_valid": "zz" * 32}}, "sync.assume_valid"),
    ({"app": {"base_path": "/d"}, "sync": {"assume_valid": 7}}, "sync.assume_valid"),
])
def test_bad_values(doc: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        parse_config(doc)


def test_not_an_object() -> None:
    with pytest.raises(ConfigError):
        parse_config([])


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(bad)


def test_password_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pw.txt").write_text("secret\n")
    cfg = load_config(write(tmp_path, {"app": {"base_path": "d"},
                                       "keystore": {"password_file": "pw.txt"}}))
    monkeypatch.delenv("CCOIN_PASSWORD", raising=False)
    assert cfg.password() == "secret"
    monkeypatch.setenv("CCOIN_PASSWORD", "from-env")
    assert cfg.password() == "from-env"
    monkeypatch.delenv("CCOIN_PASSWORD")
    bare = NodeConfig(base_path=tmp_path)
    with pytest.raises(ConfigError, match="password"):
        bare.password()
    missing = NodeConfig(base_path=tmp_path, password_file=tmp_path / "nope")
    with pytest.raises(ConfigError, match="cannot read"):
        missing.password()


def test_the_readme_config_example_loads() -> None:
    """The example a user copies from the README is a config the parser accepts."""
    import json
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    example = readme.split("### Node config")[1].split("```json")[1].split("```")[0]
    config = parse_config(json.loads(example))
    assert config.base_path == Path("/var/lib/ccoin")
    assert config.account_address == bytes.fromhex("968414d67505a526b6b34614d354d34546734584")
    assert config.bootnodes == ("tcp://10.0.0.2:30333",) and not config.p2p_curve
    assert (config.mempool_max_count, config.max_reorg) == (200_000, 1000)
    assert config.min_free_mb == 100 == NodeConfig(base_path=Path("/d")).min_free_mb
    assert parse_config({"app": {"base_path": "/d"}, "chain": {"min_free_mb": 0}}).min_free_mb == 0


def test_a_genesis_file_that_cannot_be_read_says_so(tmp_path: Path) -> None:
    with pytest.raises(GenesisError, match="cannot read genesis file"):
        load_genesis(tmp_path / "nope.json")


def test_the_multi_host_layouts_node_configs_are_valid() -> None:
    """deploy/multihost/*.json, with its placeholders filled in as the operator does, are
    node configs: the chain host admits the gateways' keys, each gateway names its key."""
    root = Path(__file__).resolve().parents[3] / "deploy" / "multihost"
    fill = {"<this validator's address>": "3f" * 20}
    configs = {}
    for name in ("chain", "gateway"):
        text = (root / f"{name}.json").read_text()
        for hole in set(re.findall(r"<[^>]*>", text)):
            text = text.replace(hole, fill.get(hole, "ab" * 32 if "key" in hole else "x"))
        configs[name] = parse_config(json.loads(text), root / f"{name}.json")
    chain, gateway = configs["chain"], configs["gateway"]
    assert len(chain.bus_allow) == 2 and gateway.bus_server_key == bytes.fromhex("ab" * 32)
    assert {chain.endpoint(n) for n in ("state", "events", "miner", "p2p")} == {
        gateway.endpoint(n) for n in ("state", "events", "miner", "p2p")}
    assert all(chain.endpoint(n).startswith("tcp://10.0.0.1:")
               for n in ("state", "events", "miner", "p2p"))
