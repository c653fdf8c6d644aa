"""Client commands over a node's REST API: `ccoin status|balance|block|tx|send`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from common.crypto import Signer
from common.keystore import Keystore
from services.cli.util import (
    CliError,
    api_url,
    locate,
    note,
    password,
    positive_int,
    print_fields,
    print_json,
)
from services.node.client import Client, parse_address, parse_hex


def add_api_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--api", metavar="URL",
                   help="node API (default: from --config/--data, $CCOIN_API, or "
                        "http://127.0.0.1:8000)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--config", metavar="FILE", help="node config (its API and keys)")
    where.add_argument("--data", metavar="DIR", help="node data dir (its API and keys)")
    p.add_argument("--json", action="store_true", help="print JSON")


def register(sub: Any) -> None:
    status = sub.add_parser("status", help="the node's chain status")
    add_api_args(status)
    status.set_defaults(func=cmd_status)

    balance = sub.add_parser("balance", help="an account's balance and nonce")
    balance.add_argument("address")
    add_api_args(balance)
    balance.set_defaults(func=cmd_balance)

    block = sub.add_parser("block", help="one block by height or hash")
    block.add_argument("ref", metavar="HEIGHT|HASH")
    add_api_args(block)
    block.set_defaults(func=cmd_block)

    tx = sub.add_parser("tx", help="one transaction by id")
    tx.add_argument("id")
    add_api_args(tx)
    tx.set_defaults(func=cmd_tx)

    send = sub.add_parser("send", help="sign a transfer locally and submit it")
    send.add_argument("--to", required=True, metavar="ADDR", help="recipient address")
    send.add_argument("--amount", required=True, type=positive_int, metavar="N",
                      help="coins to send (an integer)")
    send.add_argument("--fee", type=positive_int, default=0, metavar="F",
                      help="fee for the block's miner (default 0)")
    send.add_argument("--payload", metavar="HEX", default="",
                      help="data payload of the transaction, hex")
    send.add_argument("--from", dest="sender", metavar="ADDR",
                      help="sending account (default: the config's account, or the "
                           "keystore's only key)")
    send.add_argument("--nonce", type=positive_int, help="nonce (default: pending nonce)")
    send.add_argument("--keystore", metavar="DIR", help="key directory (default DATA/keystore)")
    send.add_argument("--password-file", metavar="FILE",
                      help="keystore password file (else $CCOIN_PASSWORD, the config's, "
                           "or a prompt)")
    send.add_argument("--wait", action="store_true", help="wait until it is in a block")
    send.add_argument("--timeout", type=float, default=120.0, metavar="S",
                      help="how long --wait waits (default 120)")
    add_api_args(send)
    send.set_defaults(func=cmd_send)


def _client(args: argparse.Namespace) -> Client:
    return Client(api_url(args))


def cmd_status(args: argparse.Namespace) -> int:
    with _client(args) as c:
        st: dict[str, Any] = dict(c.status())
    if args.json:
        print_json(st)
        return 0
    keys = ["network_id", "genesis", "height", "head", "total_weight", "consensus", "peers",
            "syncing", "mining", "version"]
    rows = [(k, st[k]) for k in keys if k in st]
    pool = st.get("mempool")
    if isinstance(pool, dict):
        rows.append(("mempool", f"{pool.get('count', 0)} txs, {pool.get('bytes', 0)} bytes"))
    print_fields(rows)
    return 0


def cmd_balance(args: argparse.Namespace) -> int:
    address = parse_address(args.address).hex()
    with _client(args) as c:
        acct = c.account(address)
    if args.json:
        print_json(acct)
    else:
        print_fields([("address", acct["address"]), ("balance", acct["balance"]),
                      ("nonce", acct["nonce"]), ("pending nonce", acct["pending_nonce"])])
    return 0


def cmd_block(args: argparse.Namespace) -> int:
    ref = args.ref.strip().removeprefix("0x")
    if not ref.isdigit():
        if len(ref) != 64:
            raise CliError(f"{args.ref!r} is neither a height nor a 64-hex-character hash")
        parse_hex(ref, "block hash")
    with _client(args) as c:
        block = c.block(ref)
    if args.json:
        print_json(block)
        return 0
    h = block.get("header", {})
    rows: list[tuple[str, Any]] = [("hash", block.get("hash"))]
    rows += [(k, h.get(k)) for k in ("height", "parent", "timestamp", "coinbase", "signer",
                                     "tx_root", "state_root", "difficulty", "nonce", "extra")
             if k in h]
    txs = block.get("txs", [])
    rows.append(("transactions", len(txs)))
    print_fields(rows)
    for tx in txs:
        if isinstance(tx, dict):
            print(f"  {tx.get('id')}  {tx.get('from')} -> {tx.get('to')}  "
                  f"amount {tx.get('amount')} fee {tx.get('fee')}")
        else:
            print(f"  {tx}")
    return 0


def cmd_tx(args: argparse.Namespace) -> int:
    tx_id = parse_hex(args.id, "transaction id").hex()
    if len(tx_id) != 64:
        raise CliError(f"{args.id!r} is not a 64-hex-character transaction id")
    with _client(args) as c:
        tx = c.tx(tx_id)
    if args.json:
        print_json(tx)
        return 0
    keys = ["id", "status", "from", "to", "amount", "fee", "nonce", "data", "height", "block",
            "index", "confirmations"]
    print_fields([(k, tx[k]) for k in keys if k in tx])
    return 0


def _sender(args: argparse.Namespace, store: Keystore, config_account: bytes) -> bytes:
    if args.sender:
        return parse_address(args.sender, "--from")
    if config_account:
        return config_account
    keys = store.addresses()
    if len(keys) == 1:
        return keys[0]
    raise CliError(f"--from ADDR is required ({len(keys)} keys in {store.dir})")


class _Progress:
    """`--wait` progress on stderr: one rewritten line on a terminal, a line per status
    change (and every 10 s) otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = ("", -10.0)

    def __call__(self, status: str, elapsed: float) -> None:
        if self.tty:
            print(f"\rwaiting for confirmation: {status} ({elapsed:.0f}s)   ", end="",
                  file=sys.stderr, flush=True)
        elif status != self.last[0] or elapsed - self.last[1] >= 10:
            note(f"waiting for confirmation: {status} ({elapsed:.0f}s)")
            self.last = (status, elapsed)

    def done(self) -> None:
        if self.tty:
            print(file=sys.stderr)


def cmd_send(args: argparse.Namespace) -> int:
    if args.amount < 1:
        raise CliError("--amount must be at least 1")
    to = parse_address(args.to, "--to")
    payload = parse_hex(args.payload, "--payload") if args.payload else b""
    loc = locate(args)
    store = Keystore(loc.keystore_dir)
    sender = _sender(args, store, loc.config.account_address if loc.config else b"")
    if not store.path_of(sender).is_file():
        raise CliError(f"no key for {sender.hex()} in {store.dir}")
    key = store.load(sender, password(args, loc))
    with _client(args) as c:
        tx = c.send(Signer(key), to=to, amount=args.amount, fee=args.fee, data=payload,
                    nonce=args.nonce)
        tx_id = tx.id.hex()
        if not args.wait:
            if args.json:
                print_json({"id": tx_id, "status": "pending", "nonce": tx.nonce})
            else:
                print(tx_id)
            return 0
        note(f"submitted {tx_id} (nonce {tx.nonce})")
        progress = _Progress()
        try:
            info = c.wait_confirmed(tx_id, timeout=args.timeout, progress=progress)
        finally:
            progress.done()
    if args.json:
        print_json(info)
    else:
        print(tx_id)
        note(f"confirmed in block {info.get('height')} ({info.get('block')})")
    return 0
