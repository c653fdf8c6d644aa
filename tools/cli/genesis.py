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
from tools.cli.util import NODE_CONFIG, CliError, Location, locate, note, print_json


def register(sub: Any) -> None:
    genesis = sub.add_parser("genesis", help="the chain's genesis block")
    gsub = genesis.add_subparsers(dest="genesis_cmd", metavar="COMMAND", required=True)
    init = gsub.add_parser("init", help="validate a genesis file and store its block")
    init.add_argument("--genesis", metavar="FILE",
                      help="genesis file (default: the one the node config names)")
    add_location_args(init)
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
    chain_dir = loc.config.chain_dir if loc.config else loc.data_dir / "chain"
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


def write_minimal_config(loc: Location) -> Path | None:
    """For `--data DIR` without a node config: write DIR/node.json so that
    `ccoin node start --config DIR/node.json` works (the node's account is the keystore's
    only key, when there is exactly one)."""
    path = loc.data_dir / NODE_CONFIG
    if loc.config is not None or path.exists():
        return None
    doc: dict[str, Any] = {"app": {"base_path": str(loc.data_dir)}, "genesis": "genesis.json"}
    keys = Keystore(loc.keystore_dir).addresses()
    if len(keys) == 1:
        doc["client"] = {"account_address": keys[0].hex()}
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


def cmd_init(args: argparse.Namespace) -> int:
    loc = locate(args)
    block, genesis, used = init_genesis(loc, Path(args.genesis) if args.genesis else None)
    written = write_minimal_config(loc)
    h = block.header
    if args.json:
        print_json({"height": h.height, "nonce": h.nonce, "pow_hash": h.seal_hash.hex(),
                    "hash": block.hash.hex(), "genesis_file": str(used),
                    "chain_dir": str(loc.config.chain_dir if loc.config
                                      else loc.data_dir / "chain"),
                    "config": str(written) if written else None})
    else:
        print(f"Genesis block has been mined: nonce={h.nonce}, pow_hash={h.seal_hash.hex()}, "
              f"hash={block.hash.hex()}")
        if written:
            note(f"wrote node config {written}")
    advice = authorities_note(len(genesis.miners))  # 2 authorities: neither may fail
    if advice:
        note(advice)
    return 0
