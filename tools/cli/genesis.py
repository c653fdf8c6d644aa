"""`ccoin genesis init`: validate a genesis file, build the genesis block and store it
(the seed's initc). A PoA genesis gets one line on stderr about how many of its authorities
may fail: a warning for 2 (neither may: Clique's recency rule)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from common.chainhealth import authorities_note
from common.errors import CcoinError
from common.genesis import Genesis
from common.types import Block
from runtime.config import load_genesis
from runtime.keystore import Keystore
from tools.cli.account import add_location_args
from tools.cli.util import (
    NODE_CONFIG,
    CliError,
    Location,
    locate,
    note,
    port_number,
    print_json,
    set_config_port,
    shell_path,
)


def register(sub: Any) -> None:
    genesis = sub.add_parser("genesis", help="the chain's genesis block")
    gsub = genesis.add_subparsers(dest="genesis_cmd", metavar="COMMAND", required=True)
    init = gsub.add_parser("init", help="validate a genesis file and store its block")
    init.add_argument("--genesis", metavar="FILE",
                      help="genesis file (default: the one the node config names)")
    add_location_args(init)
    init.add_argument("--port", type=port_number,
                      help="the node's API port, written to its node.json (default 8000)")
    init.add_argument("--p2p-port", type=port_number, metavar="PORT",
                      help="the node's p2p port, written to its node.json (default 30333)")
    init.add_argument("--json", action="store_true", help="print JSON")
    init.set_defaults(func=cmd_init)


def store_genesis(chain_dir: Path, genesis: Genesis) -> Block:
    try:
        from services.state.store import init_chain
    except ImportError as exc:
        raise CliError(f"the state store is not available: {exc}") from None
    return init_chain(chain_dir, genesis)


def init_genesis(loc: Location, genesis_path: Path | None) -> tuple[Block, Genesis, Path]:
    """Validate, build and store the genesis block in `loc`'s chain dir, and make sure the
    node will find the same genesis: the file is copied to where the node config points (or
    DATA/genesis.json) when nothing is there yet. Returns the block, the genesis and the
    file the node uses."""
    if genesis_path is None:
        if loc.config is None:
            raise CliError("--genesis FILE is required (no node config names one)")
        genesis_path = loc.config.genesis_file()
    genesis = load_genesis(genesis_path)
    target = loc.config.genesis_file() if loc.config else loc.data_dir / "genesis.json"
    copy = False
    if target.resolve() != genesis_path.resolve():
        if not target.exists():
            copy = True
        else:
            try:
                same = load_genesis(target) == genesis
            except CcoinError:
                same = False
            if not same:
                if loc.config is not None and loc.config.genesis_path is not None:
                    raise CliError(f"the node config names genesis file {target}, which "
                                   f"differs from {genesis_path}")
                copy = True  # DATA/genesis.json is ours: replaced below, once stored
    chain_dir = chain_dir_of(loc)
    if genesis.genesis_difficulty >= 16:
        note(f"mining the genesis block at {genesis.genesis_difficulty} bits of difficulty...")
    loc.data_dir.mkdir(parents=True, exist_ok=True)
    block = store_genesis(chain_dir, genesis)
    if copy:
        if target.exists():
            note(f"replacing {target} with {genesis_path}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(genesis_path.read_text())
    return block, genesis, target.resolve()


def write_minimal_config(loc: Location, ports: dict[str, int] | None = None) -> Path | None:
    """For `--data DIR` without a node config: write DIR/node.json so that
    `ccoin node start --config DIR/node.json` works (the node's account is the keystore's
    only key, when there is exactly one; `ports`: {"api"|"p2p": port} to set)."""
    path = loc.data_dir / NODE_CONFIG
    if loc.config is not None or path.exists():
        return None
    doc: dict[str, Any] = {"app": {"base_path": str(loc.data_dir)}, "genesis": "genesis.json"}
    keys = Keystore(loc.keystore_dir).addresses()
    if len(keys) == 1:
        doc["client"] = {"account_address": keys[0].hex()}
    for section, port in (ports or {}).items():
        doc[section] = {"port": port}
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


def chain_dir_of(loc: Location) -> Path:
    return loc.config.chain_dir if loc.config else loc.data_dir / "chain"


def cmd_init(args: argparse.Namespace) -> int:
    loc = locate(args)
    chain_dir = chain_dir_of(loc)
    existed = (chain_dir / "CURRENT").is_file()  # LevelDB's own file: a database is there
    block, genesis, used = init_genesis(loc, Path(args.genesis) if args.genesis else None)
    ports = {section: port for section, port in (("api", args.port), ("p2p", args.p2p_port))
             if port is not None}
    written = write_minimal_config(loc, ports)
    if not written and ports:
        config_path = loc.config.config_path if loc.config else None
        assert config_path is not None  # a node config exists when none was written
        for section, port in ports.items():
            set_config_port(config_path, section, port)
    h = block.header
    if args.json:
        print_json({"height": h.height, "nonce": h.nonce, "pow_hash": h.seal_hash.hex(),
                    "hash": block.hash.hex(), "created": not existed,
                    "genesis_file": str(used), "chain_dir": str(chain_dir),
                    "config": str(written) if written else None})
    elif existed:
        # the block was stored by an earlier run: say so rather than mine it again
        print(f"Genesis block already exists: hash={block.hash.hex()} in {chain_dir}; "
              "the chain is unchanged")
        note(f"to start a new chain instead: stop the node, remove {shell_path(chain_dir)} "
             "(its blocks and accounts; keys stay), and run genesis init again")
    else:
        print(f"Genesis block has been mined: nonce={h.nonce}, pow_hash={h.seal_hash.hex()}, "
              f"hash={block.hash.hex()}")
    if written:
        note(f"wrote node config {written}")
    elif ports:
        note(f"set {' and '.join(f'{s}.port' for s in ports)} in "
             f"{loc.config.config_path if loc.config else ''}")
    advice = authorities_note(len(genesis.miners))  # 2 authorities: neither may fail
    if advice and not existed:
        note(advice)
    return 0
