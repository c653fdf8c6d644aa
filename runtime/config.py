"""Node configuration: the ccoin seed's `ccoin.json` shape, extended.

```
{
  "app": {"base_path": "~/.ccoin"},                  # the data dir
  "client": {"account_address": "<40 hex>"},         # the node's own account
  "discovery_service": {"host": "127.0.0.1", "port": 4444, "proto": "http"},
  "genesis": "genesis.json",                          # relative to the config file
  "api": {"host": "127.0.0.1", "port": 8000, "workers": 1, "admin_token": "",
          "cors_origins": [], "rate_limit": 200, "rate_burst": 400,   # per client IP
          "rate_limit_loopback": false,                              # loopback exempt
          "body_budget_mb": 12},   # large request bodies handled at once; more wait
  "p2p": {"host": "127.0.0.1", "port": 30333, "bootnodes": [],
          "max_peers": 0, "curve": false, "allow_list": "", "ban_seconds": 600,
          "max_inbound_per_ip": 4, "max_inbound_per_subnet": 8,   # 0: no limit
          "limit_loopback": false,                                # loopback exempt
          "outbound_only": false},                   # true: never listen, only dial out
  "keystore": {"password_file": "password.txt"},    # or $CCOIN_PASSWORD
  "mining": {"autostart": true},
  "mempool": {"max_count": 200000, "max_future": 64},   # pool size; nonces held past a gap
  "chain": {"max_reorg": 1000,                           # deepest reorg applied
            "min_free_mb": 100},   # below this much free disk, txs and blocks are refused
  "endpoints": {"state": "...", "events": "...", "miner": "..."},  # default ipc:// in run/
  "bus": {"allow": ["<64 hex>", ...],   # gateway keys admitted to this node's tcp:// bus
          "server_key": "<64 hex>",     # the chain host's bus key (default: this node's)
          "plaintext_loopback": false}  # true: tcp://127.0.0.1 endpoints without Curve
}
```
Unknown sections or fields are errors; everything but `app.base_path` has a default.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zmq.utils import z85

from common.crypto import address_from_hex
from common.errors import Malformed
from common.genesis import Genesis, GenesisError, parse_genesis


class ConfigError(Malformed):
    """node config is invalid"""


_SECTIONS: dict[str, set[str]] = {
    "app": {"base_path"},
    "client": {"account_address"},
    "discovery_service": {"host", "port", "proto"},
    "genesis": set(),
    "api": {"host", "port", "workers", "admin_token", "cors_origins", "rate_limit", "rate_burst",
            "rate_limit_loopback", "body_budget_mb"},
    "p2p": {"host", "port", "bootnodes", "max_peers", "curve", "allow_list", "ban_seconds",
            "max_inbound_per_ip", "max_inbound_per_subnet", "limit_loopback",
            "outbound_only"},
    "keystore": {"password_file"},
    "mining": {"autostart"},
    "mempool": {"max_count", "max_future"},
    "chain": {"max_reorg", "min_free_mb"},
    "endpoints": {"state", "events", "miner", "p2p"},
    "bus": {"allow", "server_key", "plaintext_loopback"},
    "sync": {"assume_valid"},
}


@dataclass(frozen=True, slots=True)
class NodeConfig:
    base_path: Path
    account_address: bytes = b""
    genesis_path: Path | None = None
    discovery: str = ""
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_workers: int = 1
    admin_token: str = ""
    cors_origins: tuple[str, ...] = ()
    rate_limit: int = 200  # requests/s per client IP (token bucket); 0: no limit
    rate_burst: int = 400
    body_budget_mb: int = 12  # large request bodies one gateway process holds at once
    rate_limit_loopback: bool = False  # loopback clients are exempt unless true
    p2p_host: str = "127.0.0.1"
    p2p_port: int = 30333
    bootnodes: tuple[str, ...] = ()
    p2p_max_peers: int = 0  # 0: the genesis max_peers (itself 0: 25)
    p2p_curve: bool = False  # CurveZMQ on node-to-node links
    p2p_allow_list: Path | None = None  # Curve client keys allowed in (one hex key a line)
    p2p_ban_seconds: int = 600
    # inbound links from one IP address, one /24 (IPv4) or /64 (IPv6); 0: no limit
    p2p_max_inbound_per_ip: int = 4
    p2p_max_inbound_per_subnet: int = 8
    p2p_limit_loopback: bool = False  # loopback peers are exempt from those unless true
    p2p_outbound_only: bool = False  # no listening socket: the node only dials out
    password_file: Path | None = None
    mining_autostart: bool = True
    mempool_max_count: int = 200_000
    mempool_max_future: int = 64
    max_reorg: int = 1000
    min_free_mb: int = 100  # free disk space state keeps; 0: no free-space guard
    endpoint_overrides: dict[str, str] = field(default_factory=dict)
    # CurveZMQ on tcp:// bus endpoints (runtime/buscurve.py): the client keys admitted
    # besides this node's own, the key of the host that binds them, plaintext on loopback
    bus_allow: tuple[bytes, ...] = ()
    bus_server_key: bytes = b""
    bus_plaintext_loopback: bool = False
    # a block hash (32 bytes) below which (it and its ancestors) sync skips transaction
    # signatures (Bitcoin Core's assumevalid; docs/operations.md); empty: verify everything
    assume_valid: bytes = b""
    config_path: Path | None = None

    @property
    def chain_dir(self) -> Path:
        return self.base_path / "chain"

    @property
    def keystore_dir(self) -> Path:
        return self.base_path / "keystore"

    @property
    def run_dir(self) -> Path:
        return self.base_path / "run"

    @property
    def log_dir(self) -> Path:
        return self.base_path / "logs"

    def endpoint(self, name: str) -> str:
        """Bus endpoint of a service (`state`, `events`, `miner`, `p2p`)."""
        return self.endpoint_overrides.get(name) or f"ipc://{self.run_dir / name}.sock"

    def genesis_file(self) -> Path:
        return self.genesis_path or self.base_path / "genesis.json"

    def password(self) -> str:
        """The keystore password: $CCOIN_PASSWORD, else the configured password file."""
        env = os.environ.get("CCOIN_PASSWORD")
        if env is not None:
            return env
        if self.password_file is not None:
            try:
                return self.password_file.read_text().rstrip("\n")
            except OSError as exc:
                raise ConfigError(f"cannot read password file {self.password_file}: "
                                  f"{exc.strerror}") from None
        raise ConfigError("no keystore password: set CCOIN_PASSWORD or keystore.password_file")


def _hex_address(value: Any, where: str) -> bytes:
    if value in ("", None):
        return b""
    raw = address_from_hex(value) if isinstance(value, str) else None
    if raw is None:
        raise ConfigError(f"{where}: {value!r} is not a 40-hex-character address")
    return raw


def curve_key(value: Any, where: str) -> bytes:
    """A CurveZMQ public key as an operator writes it: 64 hex characters (what `ccoin node
    keys` prints) or the 40-character z85 form; raw 32 bytes."""
    key = b""
    if isinstance(value, str):
        text = value.strip()
        try:
            key = bytes.fromhex(text) if len(text) == 64 else z85.decode(text.encode("ascii"))
        except (ValueError, KeyError, TypeError, UnicodeEncodeError):
            key = b""
    if len(key) != 32:
        raise ConfigError(f"{where}: {value!r} is not a CurveZMQ public key (64 hex "
                          "characters, as `ccoin node keys` prints)")
    return key


def block_hash(value: Any, where: str) -> bytes:
    """A block hash as 64 hex characters ("" for none)."""
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a block hash (64 hex characters)")
    if value == "":
        return b""
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ConfigError(f"{where} must be a block hash (64 hex characters), not {value!r}")
    return raw


def _flag(value: Any, where: str) -> bool:
    if type(value) is not bool:
        raise ConfigError(f"{where} must be true or false")
    return value


def parse_config(doc: Any, config_path: Path | None = None) -> NodeConfig:
    if not isinstance(doc, dict):
        raise ConfigError("config must be a JSON object")
    for key, value in doc.items():
        if key not in _SECTIONS:
            raise ConfigError(f"unknown config section {key!r}")
        if key != "genesis":
            if not isinstance(value, dict):
                raise ConfigError(f"config section {key!r} must be an object")
            unknown = set(value) - _SECTIONS[key]
            if unknown:
                raise ConfigError(f"{key}: unknown field(s) {', '.join(sorted(unknown))}")
    here = config_path.parent if config_path else Path.cwd()

    def path(value: Any, where: str) -> Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where} must be a path")
        p = Path(os.path.expanduser(value))
        return p if p.is_absolute() else (here / p).resolve()

    def integer(value: Any, where: str, lo: int, hi: int) -> int:
        if type(value) is not int or not lo <= value <= hi:
            raise ConfigError(f"{where} must be an integer in [{lo}, {hi}]")
        return value

    app = doc.get("app", {})
    if "base_path" not in app:
        raise ConfigError("app.base_path is required")
    api, p2p = doc.get("api", {}), doc.get("p2p", {})
    disc = doc.get("discovery_service", {})
    ks, mining = doc.get("keystore", {}), doc.get("mining", {})
    endpoints = doc.get("endpoints", {})
    if not all(isinstance(v, str) for v in endpoints.values()):
        raise ConfigError("endpoints must be strings")
    bootnodes = p2p.get("bootnodes", [])
    if not isinstance(bootnodes, list) or not all(isinstance(b, str) for b in bootnodes):
        raise ConfigError("p2p.bootnodes must be a list of endpoints")
    origins = api.get("cors_origins", [])
    if not isinstance(origins, list) or not all(isinstance(o, str) for o in origins):
        raise ConfigError("api.cors_origins must be a list of origins")
    discovery = ""
    if disc:
        discovery = (f"{disc.get('proto', 'http')}://{disc.get('host', '127.0.0.1')}:"
                     f"{integer(disc.get('port', 4444), 'discovery_service.port', 1, 65535)}")
    autostart = mining.get("autostart", True)
    if type(autostart) is not bool:
        raise ConfigError("mining.autostart must be true or false")
    pool, chain = doc.get("mempool", {}), doc.get("chain", {})
    bus = doc.get("bus", {})
    allow = bus.get("allow", [])
    if not isinstance(allow, list):
        raise ConfigError("bus.allow must be a list of gateway bus keys")
    return NodeConfig(
        base_path=path(app["base_path"], "app.base_path"),
        account_address=_hex_address(doc.get("client", {}).get("account_address"),
                                     "client.account_address"),
        genesis_path=path(doc["genesis"], "genesis") if "genesis" in doc else None,
        discovery=discovery,
        api_host=str(api.get("host", "127.0.0.1")),
        api_port=integer(api.get("port", 8000), "api.port", 0, 65535),
        api_workers=integer(api.get("workers", 1), "api.workers", 1, 64),
        admin_token=str(api.get("admin_token", "")),
        cors_origins=tuple(origins),
        rate_limit=integer(api.get("rate_limit", 200), "api.rate_limit", 0, 10**6),
        rate_burst=integer(api.get("rate_burst", 400), "api.rate_burst", 1, 10**7),
        body_budget_mb=integer(api.get("body_budget_mb", 12), "api.body_budget_mb", 1, 10**5),
        rate_limit_loopback=_flag(api.get("rate_limit_loopback", False),
                                  "api.rate_limit_loopback"),
        p2p_host=str(p2p.get("host", "127.0.0.1")),
        p2p_port=integer(p2p.get("port", 30333), "p2p.port", 0, 65535),
        bootnodes=tuple(bootnodes),
        p2p_max_peers=integer(p2p.get("max_peers", 0), "p2p.max_peers", 0, 10_000),
        p2p_curve=_flag(p2p.get("curve", False), "p2p.curve"),
        p2p_allow_list=path(p2p["allow_list"], "p2p.allow_list")
        if p2p.get("allow_list") else None,
        p2p_ban_seconds=integer(p2p.get("ban_seconds", 600), "p2p.ban_seconds", 0, 10**7),
        p2p_max_inbound_per_ip=integer(p2p.get("max_inbound_per_ip", 4),
                                       "p2p.max_inbound_per_ip", 0, 10_000),
        p2p_max_inbound_per_subnet=integer(p2p.get("max_inbound_per_subnet", 8),
                                           "p2p.max_inbound_per_subnet", 0, 10_000),
        p2p_limit_loopback=_flag(p2p.get("limit_loopback", False), "p2p.limit_loopback"),
        p2p_outbound_only=_flag(p2p.get("outbound_only", False), "p2p.outbound_only"),
        password_file=path(ks["password_file"], "keystore.password_file")
        if "password_file" in ks else None,
        mining_autostart=autostart,
        mempool_max_count=integer(pool.get("max_count", 200_000), "mempool.max_count", 1,
                                  10_000_000),
        mempool_max_future=integer(pool.get("max_future", 64), "mempool.max_future", 1, 10_000),
        max_reorg=integer(chain.get("max_reorg", 1000), "chain.max_reorg", 1, 1_000_000),
        min_free_mb=integer(chain.get("min_free_mb", 100), "chain.min_free_mb", 0, 10**7),
        endpoint_overrides=dict(endpoints),
        bus_allow=tuple(curve_key(k, f"bus.allow[{i}]") for i, k in enumerate(allow)),
        bus_server_key=curve_key(bus["server_key"], "bus.server_key")
        if bus.get("server_key") else b"",
        bus_plaintext_loopback=_flag(bus.get("plaintext_loopback", False),
                                     "bus.plaintext_loopback"),
        assume_valid=block_hash(doc.get("sync", {}).get("assume_valid", ""),
                                "sync.assume_valid"),
        config_path=config_path,
    )


def load_config(path: str | Path) -> NodeConfig:
    p = Path(path).resolve()
    try:
        doc = json.loads(p.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from None
    return parse_config(doc, p)


def load_genesis(path: str | Path) -> Genesis:
    """Read and parse a genesis file (`common.genesis.parse_genesis` holds the rules)."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise GenesisError(f"cannot read genesis file {path}: {exc.strerror}") from None
    return parse_genesis(text)
