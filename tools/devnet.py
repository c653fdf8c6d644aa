"""A local network of N nodes sharing one genesis: what `ccoin devnet` runs and the
multi-node tests start.

Layout of a devnet directory `DIR`:

    DIR/devnet.json     the manifest (below); `load_devnet` reads it back to resume
    DIR/genesis.json    the one genesis every node uses
    DIR/password.txt    the keystore password of every node (a throwaway dev password)
    DIR/developer.txt   the funded developer account (its key is in every node's keystore)
    DIR/discovery.log   the discovery service's log (while `ccoin devnet` runs it)
    DIR/allow_list.txt  with `private`: every node's Curve public key, one a line
    DIR/nodeI/          node I's data dir: node.json, password.txt, keystore/, chain/, logs/,
                        run/ (its own supervisord socket and config), and with `curve`
                        p2p/curve.key and curve.key_secret (its CurveZMQ key pair)

Nodes 1..K are validators, K+1..N basic nodes. In PoA (the default) validator I is the
authority `miners[I-1]` of the genesis and holds that key, and only that authority key, in
its keystore; a basic node holds a key of its own (its wallet). In PoW (`pow=True`) there
are no authorities: every node runs the miner with its own key as coinbase.

Ports, from a base port P: node I serves its REST API on P+I-1 and its p2p socket on
P+100+I-1; discovery listens on P+200. Every node but node 1 lists node 1's p2p endpoint as
its bootnode, and every node registers with the devnet's discovery service.

With `curve=True` every node-to-node link is CurveZMQ (`p2p.curve`). A Curve client must
know the server's public key before it dials, and a node's pair is otherwise created on its
first start, so the devnet creates every node's pair up front, in the files and format the
p2p service loads (`services.p2p.identity`), and writes node 1's bootnode address as
`tcp://host:port#<hex key>`. With `private=True` (which implies `curve`) each node also
admits only the devnet's own keys: `p2p.allow_list` names DIR/allow_list.txt.

The manifest, `devnet.json`:

    {"version": 1, "network_id": 1337, "consensus": "poa" | "pow", "interval_ms": 2000,
     "base_port": 8100, "genesis_hash": "<64 hex>", "developer": "<40 hex>",
     "discovery": {"host": "127.0.0.1", "port": 8300}, "curve": false, "private": false,
     "nodes": [{"name": "node1", "type": "validator", "dir": "node1", "account": "<40 hex>",
                "api_port": 8100, "p2p_host": "127.0.0.1", "p2p_port": 8200,
                "curve_key": "<64 hex>" | ""}, ...]}

`curve`, `private` and `curve_key` may be missing (a manifest written before they
existed): false, false and "".
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.crypto import KeyType, PrivateKey
from common.errors import CcoinError
from common.genesis import genesis_block
from runtime.config import load_genesis
from runtime.keystore import Keystore
from runtime.ports import free_base
from services.p2p import identity
from tools.devchain import (
    DEV_FUNDS,
    TEST_SCRYPT_N,
    genesis_doc,
    node_config_doc,
    write_json,
    write_password,
)

MANIFEST = "devnet.json"
MANIFEST_VERSION = 1
DEFAULT_BASE_PORT = 8100
DEFAULT_INTERVAL_MS = 2000
DEFAULT_NETWORK_ID = 1337
MAX_NODES = 64
P2P_OFFSET = 100
DISCOVERY_OFFSET = 200
ALLOW_LIST = "allow_list.txt"


class DevnetError(CcoinError):
    """the devnet cannot be created or read"""

    code = "devnet"


@dataclass(frozen=True, slots=True)
class DevnetNode:
    index: int  # 1-based
    node_type: str  # validator | basic
    base_path: Path
    account: bytes  # the node's own account: its coinbase, and its authority key in PoA
    api_port: int
    p2p_host: str
    p2p_port: int
    curve_key: bytes = b""  # its CurveZMQ public key, on a `curve` devnet

    @property
    def name(self) -> str:
        return f"node{self.index}"

    @property
    def config_path(self) -> Path:
        return self.base_path / "node.json"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def p2p_endpoint(self) -> str:
        return f"tcp://{self.p2p_host}:{self.p2p_port}"

    @property
    def p2p_address(self) -> str:
        """What a peer dials: the endpoint, with `#<hex key>` on a Curve devnet."""
        if self.curve_key:
            return f"{self.p2p_endpoint}#{self.curve_key.hex()}"
        return self.p2p_endpoint

    @property
    def is_validator(self) -> bool:
        return self.node_type == "validator"


@dataclass(frozen=True, slots=True)
class Devnet:
    base_path: Path
    network_id: int
    pow: bool
    interval_ms: int
    base_port: int
    genesis_hash: bytes
    developer: bytes
    discovery_host: str
    discovery_port: int
    nodes: tuple[DevnetNode, ...]
    curve: bool = False  # CurveZMQ on every node-to-node link
    private: bool = False  # and each node admits only the devnet's own Curve keys

    @property
    def genesis_path(self) -> Path:
        return self.base_path / "genesis.json"

    @property
    def password_file(self) -> Path:
        return self.base_path / "password.txt"

    @property
    def allow_list_path(self) -> Path:
        return self.base_path / ALLOW_LIST

    @property
    def discovery_url(self) -> str:
        return f"http://{self.discovery_host}:{self.discovery_port}"

    @property
    def validators(self) -> tuple[DevnetNode, ...]:
        return tuple(n for n in self.nodes if n.is_validator)

    def password(self) -> str:
        return self.password_file.read_text().rstrip("\n")

    def node(self, index: int) -> DevnetNode:
        return self.nodes[index - 1]

    def manifest(self) -> dict[str, Any]:
        return {
            "version": MANIFEST_VERSION,
            "network_id": self.network_id,
            "consensus": "pow" if self.pow else "poa",
            "interval_ms": self.interval_ms,
            "base_port": self.base_port,
            "genesis_hash": self.genesis_hash.hex(),
            "developer": self.developer.hex(),
            "discovery": {"host": self.discovery_host, "port": self.discovery_port},
            "curve": self.curve,
            "private": self.private,
            "nodes": [{"name": n.name, "type": n.node_type,
                       "dir": str(n.base_path.relative_to(self.base_path)),
                       "account": n.account.hex(), "api_port": n.api_port,
                       "p2p_host": n.p2p_host, "p2p_port": n.p2p_port,
                       "curve_key": n.curve_key.hex()} for n in self.nodes],
        }


def ports(base_port: int, nodes: int) -> tuple[list[int], list[int], int]:
    """(api ports, p2p ports, discovery port) of a devnet of `nodes` nodes at `base_port`."""
    api = [base_port + i for i in range(nodes)]
    p2p = [base_port + P2P_OFFSET + i for i in range(nodes)]
    return api, p2p, base_port + DISCOVERY_OFFSET


def free_base_port(nodes: int) -> int:
    """A base port at which a devnet of `nodes` nodes finds all its ports free right now,
    below the kernel's ephemeral range (see `runtime.ports`)."""
    api, p2p, discovery = ports(0, nodes)
    return free_base([*api, *p2p, discovery])


def check_shape(nodes: int, validators: int | None, pow: bool, base_port: int) -> int:
    if not 1 <= nodes <= MAX_NODES:
        raise DevnetError(f"--nodes must be between 1 and {MAX_NODES}")
    if pow:
        if validators not in (None, nodes):
            raise DevnetError("--validators applies to PoA only: in PoW every node mines")
        validators = nodes
    elif validators is None:
        validators = nodes
    if not 1 <= validators <= nodes:
        raise DevnetError(f"--validators must be between 1 and --nodes ({nodes})")
    if not 1 <= base_port or base_port + DISCOVERY_OFFSET > 65535:
        raise DevnetError(f"--base-port must be between 1 and {65535 - DISCOVERY_OFFSET}")
    return validators


def create_devnet(base_path: str | Path, *, nodes: int, validators: int | None = None,
                  pow: bool = False, base_port: int = DEFAULT_BASE_PORT,
                  interval_ms: int = DEFAULT_INTERVAL_MS, difficulty: int = 4,
                  allow_empty: bool = True, max_bound: int = 5000, min_bound: int = 0,
                  retarget_blocks: int | None = None, network_id: int = DEFAULT_NETWORK_ID,
                  scrypt_n: int = TEST_SCRYPT_N, password: str | None = None,
                  p2p_hosts: Sequence[str] | None = None, discovery_host: str = "127.0.0.1",
                  extra_alloc: dict[bytes, int] | None = None, curve: bool = False,
                  private: bool = False) -> Devnet:
    """Write a new devnet under `base_path` (which must not hold one): keys, the genesis,
    every node's data dir and node.json, and the manifest.

    `p2p_hosts[I-1]` is the address node I's p2p socket binds and advertises (default
    127.0.0.1 for all: one machine); the tests give each node its own network namespace and
    address this way. `curve` encrypts every p2p link; `private` (implies `curve`) also
    restricts each node to the devnet's own keys."""
    validators = check_shape(nodes, validators, pow, base_port)
    if p2p_hosts is not None and len(p2p_hosts) != nodes:
        raise DevnetError("p2p_hosts must name one address per node")
    base = Path(base_path).expanduser().resolve()
    if (base / MANIFEST).exists():
        raise DevnetError(f"{base} already holds a devnet ({MANIFEST})")
    base.mkdir(parents=True, exist_ok=True)
    password = password if password is not None else secrets.token_hex(16)
    pw_file = write_password(base, password)
    developer = PrivateKey.generate(KeyType.ED25519)
    keys = [PrivateKey.generate(KeyType.ED25519) for _ in range(nodes)]
    authorities = [] if pow else [k.address for k in keys[:validators]]
    doc = genesis_doc(network_id=network_id, miners=authorities,
                      alloc={developer.address: DEV_FUNDS, **(extra_alloc or {})},
                      interval_ms=interval_ms, max_bound=max_bound, min_bound=min_bound,
                      difficulty=difficulty, allow_empty=allow_empty)
    # every node dials node 1: its inbound slots (max_peers less at most 8 outbound) hold all
    doc["max_peers"] = max(25, 2 * nodes)
    if retarget_blocks is not None:
        doc["block_mining"]["retarget_blocks"] = retarget_blocks
    genesis_path = write_json(base / "genesis.json", doc)
    genesis_hash = genesis_block(load_genesis(genesis_path)).hash
    (base / "developer.txt").write_text(developer.address.hex() + "\n")

    api_ports, p2p_ports, discovery_port = ports(base_port, nodes)
    hosts = list(p2p_hosts) if p2p_hosts is not None else ["127.0.0.1"] * nodes
    curve = curve or private
    dirs = [base / f"node{i + 1}" for i in range(nodes)]
    # the pairs the p2p service would create on first start, created now: a bootnode
    # address must name its node's server key before that node ever ran
    curve_keys = [identity.load_curve_keys(identity.key_dir(d))[0] if curve else b""
                  for d in dirs]
    members = tuple(
        DevnetNode(index=i + 1, node_type="validator" if i < validators else "basic",
                   base_path=dirs[i], account=keys[i].address, api_port=api_ports[i],
                   p2p_host=hosts[i], p2p_port=p2p_ports[i], curve_key=curve_keys[i])
        for i in range(nodes))
    p2p_extra: dict[str, Any] = {"curve": True} if curve else {}
    if private:
        allow = identity.write_allow_list(
            base / ALLOW_LIST, [(n.name, n.curve_key) for n in members],
            header="the devnet's nodes: only these Curve keys may connect (p2p.allow_list)")
        p2p_extra["allow_list"] = str(allow)
    for node, key in zip(members, keys, strict=True):
        node.base_path.mkdir(parents=True, exist_ok=True)
        store = Keystore(node.base_path / "keystore")
        store.save(key, password, scrypt_n)
        store.save(developer, password, scrypt_n)
        node_pw = write_password(node.base_path, password)
        bootnodes = [] if node.index == 1 else [members[0].p2p_address]
        config = node_config_doc(
            node.base_path, account=node.account, genesis_path=genesis_path,
            api_port=node.api_port, password_file=node_pw,
            p2p={"host": node.p2p_host, "port": node.p2p_port, "bootnodes": bootnodes,
                 **p2p_extra},
            discovery_service={"host": discovery_host, "port": discovery_port,
                               "proto": "http"})
        write_json(node.config_path, config)
    devnet = Devnet(base_path=base, network_id=network_id, pow=pow, interval_ms=interval_ms,
                    base_port=base_port, genesis_hash=genesis_hash,
                    developer=developer.address, discovery_host=discovery_host,
                    discovery_port=discovery_port, nodes=members, curve=curve,
                    private=private)
    tmp = base / (MANIFEST + ".tmp")
    write_json(tmp, devnet.manifest())
    tmp.replace(base / MANIFEST)  # last: a devnet.json means a complete devnet
    pw_file.chmod(0o600)
    return devnet


def _field(doc: dict[str, Any], key: str, kind: type, where: str,
           default: Any = None) -> Any:
    """`doc[key]`, of type `kind`; missing, `default` if one is given."""
    if key not in doc and default is not None:
        return default
    value = doc.get(key)
    if type(value) is not kind:
        raise DevnetError(f"{where}: {key} missing or not a {kind.__name__}")
    return value


def load_devnet(base_path: str | Path) -> Devnet:
    """Read `base_path/devnet.json` back."""
    base = Path(base_path).expanduser().resolve()
    path = base / MANIFEST
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise DevnetError(f"{base} holds no devnet (no {MANIFEST})") from None
    except (OSError, ValueError) as exc:
        raise DevnetError(f"cannot read {path}: {exc}") from None
    where = str(path)
    if not isinstance(doc, dict) or doc.get("version") != MANIFEST_VERSION:
        raise DevnetError(f"{where}: not a version {MANIFEST_VERSION} devnet manifest")
    try:
        disc = _field(doc, "discovery", dict, where)
        members = []
        for i, entry in enumerate(_field(doc, "nodes", list, where)):
            w = f"{where}: nodes[{i}]"
            if not isinstance(entry, dict):
                raise DevnetError(f"{w} must be an object")
            node_type = _field(entry, "type", str, w)
            curve_key = bytes.fromhex(_field(entry, "curve_key", str, w, ""))
            if len(curve_key) not in (0, 32):
                raise DevnetError(f"{w}: curve_key must be 64 hex characters or empty")
            if node_type not in ("validator", "basic"):
                raise DevnetError(f"{w}: unknown type {node_type!r}")
            members.append(DevnetNode(
                index=i + 1, node_type=node_type,
                base_path=(base / _field(entry, "dir", str, w)).resolve(),
                account=bytes.fromhex(_field(entry, "account", str, w)),
                api_port=_field(entry, "api_port", int, w),
                p2p_host=_field(entry, "p2p_host", str, w),
                p2p_port=_field(entry, "p2p_port", int, w),
                curve_key=curve_key))
        consensus = _field(doc, "consensus", str, where)
        if consensus not in ("poa", "pow"):
            raise DevnetError(f"{where}: consensus must be poa or pow")
        devnet = Devnet(
            base_path=base, network_id=_field(doc, "network_id", int, where),
            pow=consensus == "pow", interval_ms=_field(doc, "interval_ms", int, where),
            base_port=_field(doc, "base_port", int, where),
            genesis_hash=bytes.fromhex(_field(doc, "genesis_hash", str, where)),
            developer=bytes.fromhex(_field(doc, "developer", str, where)),
            discovery_host=_field(disc, "host", str, f"{where}: discovery"),
            discovery_port=_field(disc, "port", int, f"{where}: discovery"),
            nodes=tuple(members), curve=_field(doc, "curve", bool, where, False),
            private=_field(doc, "private", bool, where, False))
    except ValueError as exc:
        raise DevnetError(f"{where}: {exc}") from None
    if not devnet.nodes:
        raise DevnetError(f"{where}: no nodes")
    return devnet
