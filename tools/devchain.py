"""Create a ready-to-run local chain: authority keys, a funded developer account, a genesis
file and a node config, all in one data directory. Used by `ccoin quickstart` (`make run`),
the devnet and the tests, so all three run the very same setup."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.crypto import KeyType, PrivateKey
from runtime.keystore import Keystore

DEV_FUNDS = 1_000_000_000
TEST_SCRYPT_N = 2**10  # test chains use a cheap KDF; real keys use keystore.SCRYPT_N


@dataclass(frozen=True, slots=True)
class DevChain:
    base_path: Path
    config_path: Path
    genesis_path: Path
    validator: PrivateKey
    developer: PrivateKey
    password: str
    api_port: int


def genesis_doc(*, network_id: int, miners: list[bytes], alloc: dict[bytes, int],
                interval_ms: int, max_bound: int, min_bound: int = 0, reward: int = 100,
                difficulty: int = 4, allow_empty: bool = True) -> dict[str, Any]:
    """A genesis file (the JSON object) for a local chain; `difficulty` in bits, written as
    `difficulty_bits` (a file's `difficulty` counts hex digits, as in the seed)."""
    return {
        "network_id": network_id,
        "miners": [m.hex() for m in miners],
        "block_mining": {
            "interval": max(1, interval_ms // 1000),
            "interval_ms": interval_ms,
            "max_bound": max_bound,
            "min_bound": min_bound,
            "reward": reward,
            "difficulty_bits": difficulty,
            "allow_empty": allow_empty,
            "placeholder_data": ["rnd", 15],
        },
        "max_peers": 25,
        "genesis_block": {"coinbase": "", "coinbase_reward": 0, "difficulty_bits": 4},
        "alloc": {a.hex(): {"balance": b} for a, b in sorted(alloc.items())},
    }


def write_password(base: Path, password: str) -> Path:
    """`base/password.txt`, readable by its owner only (what `keystore.password_file` names)."""
    pw_file = base / "password.txt"
    pw_file.write_text(password + "\n")
    pw_file.chmod(0o600)
    return pw_file


def write_json(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


def node_config_doc(base: Path, *, account: bytes, genesis_path: Path, api_port: int,
                    password_file: Path, **sections: dict[str, Any]) -> dict[str, Any]:
    """A node.json document; `sections` adds more (`p2p`, `discovery_service`, ...)."""
    return {
        "app": {"base_path": str(base)},
        "client": {"account_address": account.hex()},
        "genesis": str(genesis_path),
        "api": {"host": "127.0.0.1", "port": api_port, "workers": 1},
        "keystore": {"password_file": str(password_file)},
        "mining": {"autostart": True},
        **sections,
    }


def create_dev_chain(base_path: str | Path, *, api_port: int = 8000, interval_ms: int = 2000,
                     max_bound: int = 5000, min_bound: int = 0, allow_empty: bool = True,
                     extra_alloc: dict[bytes, int] | None = None, network_id: int = 1337,
                     scrypt_n: int = TEST_SCRYPT_N, password: str | None = None,
                     poa: bool = True, difficulty: int = 4,
                     p2p_port: int | None = None) -> DevChain:
    """Write keys, genesis.json, password.txt and node.json under `base_path`; p2p listens
    on `p2p_port` (default: the config's default, 30333)."""
    base = Path(base_path).resolve()
    base.mkdir(parents=True, exist_ok=True)
    password = password if password is not None else secrets.token_hex(16)
    validator = PrivateKey.generate(KeyType.ED25519)
    developer = PrivateKey.generate(KeyType.ED25519)
    store = Keystore(base / "keystore")
    store.save(validator, password, scrypt_n)
    store.save(developer, password, scrypt_n)
    pw_file = write_password(base, password)
    alloc = {developer.address: DEV_FUNDS, **(extra_alloc or {})}
    genesis = genesis_doc(network_id=network_id, miners=[validator.address] if poa else [],
                          alloc=alloc, interval_ms=interval_ms, max_bound=max_bound,
                          min_bound=min_bound, allow_empty=allow_empty, difficulty=difficulty)
    genesis_path = write_json(base / "genesis.json", genesis)
    p2p = {"p2p": {"host": "127.0.0.1", "port": p2p_port}} if p2p_port is not None else {}
    config = node_config_doc(base, account=validator.address, genesis_path=genesis_path,
                             api_port=api_port, password_file=pw_file, **p2p)
    config_path = write_json(base / "node.json", config)
    (base / "developer.txt").write_text(developer.address.hex() + "\n")
    return DevChain(base, config_path, genesis_path, validator, developer, password, api_port)
