"""Client commands over a node's REST API (`client`): `ccoin status|balance|block|tx|
send|history|mempool|watch`. Human-readable by default, `--json` for scripts."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from client import BlockInfo, Client, Event, TxInfo, parse_address, parse_hex
from common.crypto import Signer
from common.errors import CcoinError, Unavailable
from common.status import Direction, TxStatus
from runtime.keystore import Keystore
from tools.cli.util import (
    CliError,
    Location,
    choose_node,
    data_arg,
    locate,
    note,
    password,
    positive_int,
    print_fields,
    print_json,
    seconds,
)

EVENT_TYPES = ("head", "reorg", "txs_added", "txs_removed")


def add_api_args(p: argparse.ArgumentParser, *, inherited: bool = False) -> None:
    """--api, --config/--data and --json. `inherited`: on a subcommand's parser whose parent
    has them too, so they may come before or after the subcommand; without defaults of its
    own, the subparser does not overwrite what the parent parsed."""
    unset: dict[str, Any] = {"default": argparse.SUPPRESS} if inherited else {}
    p.add_argument("--api", metavar="URL",
                   help="node API (default: the node of --config/--data, else $CCOIN_API, "
                        "else the node in $CCOIN_DATA, else http://127.0.0.1:8000)",
                   **unset)
    where = p.add_mutually_exclusive_group()
    where.add_argument("--config", metavar="FILE", help="node config (its API and keys)",
                       **unset)
    where.add_argument("--data", metavar="DIR",
                       help="node data dir (its API and keys; default $CCOIN_DATA)",
                       **unset)
    p.add_argument("--json", action="store_true", help="print JSON", **unset)


def register(sub: Any) -> None:
    status = sub.add_parser("status", help="the node's chain status")
    add_api_args(status)
    status.set_defaults(func=cmd_status)

    balance = sub.add_parser("balance", help="an account's balance and nonce")
    balance.add_argument("address")
    add_api_args(balance)
    balance.set_defaults(func=cmd_balance)

    history = sub.add_parser("history", help="an account's confirmed transactions, newest "
                                             "first")
    history.add_argument("address")
    history.add_argument("--offset", type=positive_int, default=0, metavar="N",
                         help="skip the N newest (default 0)")
    history.add_argument("--limit", type=positive_int, default=20, metavar="N",
                         help="at most N entries (1..100, default 20)")
    history.add_argument("--before", metavar="HEIGHT:INDEX",
                         help="only entries older than this position (the previous page "
                              "says which to pass)")
    add_api_args(history)
    history.set_defaults(func=cmd_history)

    block = sub.add_parser("block", help="one block by height or hash")
    block.add_argument("ref", metavar="HEIGHT|HASH")
    add_api_args(block)
    block.set_defaults(func=cmd_block)

    tx = sub.add_parser("tx", help="one transaction by id, and what became of it")
    tx.add_argument("id")
    tx.add_argument("--proof", action="store_true",
                    help="also fetch and check its Merkle proof against the block header")
    add_api_args(tx)
    tx.set_defaults(func=cmd_tx)

    mempool = sub.add_parser("mempool", help="the pool: size and a page of transactions")
    mempool.add_argument("--sender", metavar="ADDR", help="only this sender's, in nonce order")
    mempool.add_argument("--offset", type=positive_int, default=0, metavar="N")
    mempool.add_argument("--limit", type=positive_int, default=20, metavar="N")
    add_api_args(mempool)
    mempool.set_defaults(func=cmd_mempool)

    watch = sub.add_parser("watch", help="follow the node's events live (heads, reorgs, "
                                         "pool changes)")
    watch.add_argument("--since", type=positive_int, metavar="SEQ",
                       help="replay kept events after this sequence number first")
    watch.add_argument("--types", metavar="LIST",
                       help=f"comma-separated subset of {','.join(EVENT_TYPES)}")
    watch.add_argument("--count", type=positive_int, metavar="N",
                       help="stop after N events (default: until Ctrl-C)")
    add_api_args(watch)
    watch.set_defaults(func=cmd_watch)

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
    send.add_argument("--timeout", type=seconds, default=120.0, metavar="S",
                      help="how long --wait waits (default 120)")
    add_api_args(send)
    send.set_defaults(func=cmd_send)


TOKEN_ENV = "CCOIN_ADMIN_TOKEN"


@contextmanager
def node_client(args: argparse.Namespace, *, admin: bool = False) -> Iterator[Client]:
    """The REST client of the node the options name (`choose_node`). When that is neither
    the default local node nor given by --api, one line on stderr says which node and why;
    a node that cannot be reached is named with how it was chosen, and how to pick
    another. `admin`: with the
    bearer token of $CCOIN_ADMIN_TOKEN, else the `api.admin_token` of the --config/--data
    node config (a node answers admin routes without one only on its own machine)."""
    choice = choose_node(args)
    if choice.how and choice.how != "--api":  # --api URL names it already
        note(f"(node {choice.url} from {choice.how})")
    token = ""
    if admin:
        token = os.environ.get(TOKEN_ENV, "")
        if not token and (getattr(args, "config", None) or data_arg(args)):
            config = locate(args).config
            token = config.admin_token if config is not None else ""
    try:
        with Client(choice.url, token=token) as c:
            yield c
    except Unavailable as exc:
        if exc.remote:  # the node answered: it is the node meant, busy or half up
            raise
        raise Unavailable(f"{exc.message} ({choice.hint()})") from None


def _address(text: str, what: str = "address") -> str:
    try:
        return parse_address(text, what).hex()
    except CcoinError as exc:
        raise CliError(exc.message) from None


def short(value: str | None, n: int = 16) -> str:
    return "-" if not value else value if len(value) <= n else value[:n] + "…"


def cmd_status(args: argparse.Namespace) -> int:
    with node_client(args) as c:
        status = c.status()
    st = status.doc
    if args.json:
        print_json(st)
        return 0
    keys = ["network_id", "genesis", "height", "head", "total_weight", "consensus", "peers",
            "p2p_endpoint", "syncing", "mining", "version"]
    rows = [(k, st[k]) for k in keys if k in st]
    if st.get("chain_host"):  # a gateway attached to state on another host
        rows.append(("chain_host", st["chain_host"]))
    pool = st.get("mempool")
    if isinstance(pool, dict):
        rows.append(("mempool", f"{pool.get('count', 0)} txs, {pool.get('bytes', 0)} bytes"))
    assumed = status.assume_valid.line() if status.assume_valid else None
    if assumed:
        rows.append(("assume_valid", assumed))
    print_fields(rows)
    return 0


def cmd_balance(args: argparse.Namespace) -> int:
    address = _address(args.address)
    with node_client(args) as c:
        acct = c.account(address)
    if args.json:
        print_json(acct.doc)
    else:
        print_fields([("address", acct.address), ("balance", acct.balance),
                      ("nonce", acct.nonce), ("pending nonce", acct.pending_nonce)])
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    address = _address(args.address)
    if not 1 <= args.limit <= 100:
        raise CliError("--limit must be in 1..100")
    with node_client(args) as c:
        page = c.history(address, offset=args.offset, limit=args.limit, before=args.before)
    if args.json:
        print_json(page.doc)
        return 0
    if not page.items:
        note(f"no confirmed transactions for {address}"
             + (f" past the first {args.offset}" if args.offset else "")
             + (f" before {args.before}" if args.before else ""))
        return 0
    rows = [("height", "dir", "amount", "fee", "counterparty", "id")]
    for item in page.items:
        other = item.to if item.direction == Direction.OUT else item.sender
        signs: dict[str, str] = {Direction.IN: "+", Direction.OUT: "-", Direction.SELF: " "}
        sign = signs.get(item.direction, "?")
        rows.append((str(item.height), item.direction, f"{sign}{item.amount}", str(item.fee),
                     other if item.direction != "self" else "(self)", item.id))
    table(rows)
    if page.next is not None:
        note(f"{len(page.items)} of {page.total} shown; older ones with --before {page.next}")
    return 0


def table(rows: Iterable[tuple[str, ...]]) -> None:
    rows = list(rows)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())


def cmd_block(args: argparse.Namespace) -> int:
    ref = args.ref.strip().removeprefix("0x")
    if not ref.isdigit():
        if len(ref) != 64:
            raise CliError(f"{args.ref!r} is neither a height nor a 64-hex-character hash")
        parse_hex(ref, "block hash")
    with node_client(args) as c:
        block = c.block(ref)
    if args.json:
        print_json(block.doc)
        return 0
    h = block.doc.get("header", {})
    rows: list[tuple[str, Any]] = [("hash", block.hash)]
    rows += [(k, h.get(k) if k != "difficulty" else f"{h.get(k)} bits")
             for k in ("height", "parent", "timestamp", "coinbase", "signer", "tx_root",
                       "state_root", "difficulty", "nonce", "extra")
             if k in h]
    if "confirmations" in block.doc:
        rows.append(("confirmations", block.confirmations))
    if "on_main_chain" in block.doc:
        rows.append(("main chain", block.on_main_chain))
    rows.append(("transactions", len(block.txs)))
    print_fields(rows)
    for tx in block.txs:
        if isinstance(tx, dict):
            print(f"  {tx.get('id')}  {tx.get('from')} -> {tx.get('to')}  "
                  f"amount {tx.get('amount')} fee {tx.get('fee')}")
        else:
            print(f"  {tx}")
    print_changes(block)
    return 0


def print_changes(block: BlockInfo) -> None:
    """The accounts the block changed, before -> after (nothing from a node that does not
    send them)."""
    if "changes" not in block.doc:
        return
    if block.changes is None:
        print("accounts changed: none stored (the block is off the main chain; its state "
              "is computed only if it joins it)")
        return
    print(f"accounts changed: {len(block.changes)}")
    if block.changes:
        table([("  address", "balance before -> after", "nonce before -> after")] + [
            (f"  {c.address}", f"{c.balance_before} -> {c.balance_after}",
             f"{c.nonce_before} -> {c.nonce_after}") for c in block.changes])


def _tx_rows(tx: TxInfo) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = [("id", tx.id), ("status", tx.status)]
    if tx.explanation:
        rows.append(("", tx.explanation))
    rows += [("from", tx.sender), ("to", tx.to), ("amount", tx.amount), ("fee", tx.fee),
             ("nonce", tx.nonce)]
    if tx.data:
        rows.append(("data", tx.data))
    if tx.status == TxStatus.CONFIRMED:
        rows += [("height", tx.height), ("block", tx.block), ("index", tx.index),
                 ("confirmations", tx.confirmations)]
    elif tx.status == TxStatus.QUEUED:
        rows.append(("expected nonce", tx.expected_nonce))
    elif tx.status in (TxStatus.REJECTED, TxStatus.DROPPED):
        rows.append(("reason", tx.reason))
    elif tx.status == TxStatus.REPLACED:
        rows.append(("replaced by", tx.replaced_by))
    return rows


def _tx_id(text: str) -> str:
    tx_id = parse_hex(text, "transaction id").hex()
    if len(tx_id) != 64:
        raise CliError(f"{text!r} is not a 64-hex-character transaction id")
    return tx_id


def cmd_tx(args: argparse.Namespace) -> int:
    tx_id = _tx_id(args.id)
    with node_client(args) as c:
        tx = c.tx(tx_id)
        proof_doc: dict[str, Any] | None = None
        rows = _tx_rows(tx)
        if args.proof:
            if tx.status != TxStatus.CONFIRMED:
                raise CliError(f"transaction {tx_id} is {tx.status}: no inclusion proof yet")
            proof = c.tx_proof(tx_id)
            header_root = c.block(proof.block).tx_root
            ok = proof.verify(header_root)
            proof_doc = {**proof.doc, "verified": ok, "header_tx_root": header_root}
            rows.append(("proof", f"{len(proof.steps)} step(s), "
                                  f"{'verifies against' if ok else 'DOES NOT verify against'} "
                                  f"the header's tx_root {header_root}"))
            if not ok:
                raise CliError(f"the Merkle proof of {tx_id} does not verify")
    if args.json:
        print_json({**tx.doc, "proof": proof_doc} if proof_doc else tx.doc)
        return 0
    print_fields(rows)
    return 0


def cmd_mempool(args: argparse.Namespace) -> int:
    sender = _address(args.sender, "--sender") if args.sender else None
    with node_client(args) as c:
        page = c.mempool(offset=args.offset, limit=args.limit, sender=sender)
    if args.json:
        print_json(page.doc)
        return 0
    print(f"{page.count} transactions, {page.bytes} bytes in the pool")
    for tx in page.txs:
        print(f"  {tx.id}  {tx.sender} nonce {tx.nonce} -> {tx.to}  amount {tx.amount} "
              f"fee {tx.fee}")
    return 0


def describe_event(event: Event) -> str:
    """One human line for a live event."""
    d = event.data
    if event.type == "head":
        return (f"#{event.seq} head {d.get('height')} {short(d.get('hash'))} "
                f"txs={d.get('tx_count')} weight={d.get('total_weight')}")
    if event.type == "reorg":
        return (f"#{event.seq} reorg: {len(d.get('disconnected', []))} block(s) out, "
                f"{len(d.get('connected', []))} in")
    if event.type == "txs_added":
        ids = d.get("ids", [])
        shown = " ".join(short(i, 12) for i in ids[:3]) + (" …" if len(ids) > 3 else "")
        return f"#{event.seq} pool +{len(ids)}: {shown}"
    if event.type == "txs_removed":
        pairs = list(zip(d.get("ids", []), d.get("reasons", [])))
        shown = " ".join(f"{short(i, 12)} ({r})" for i, r in pairs[:3])
        return f"#{event.seq} pool -{len(pairs)}: {shown}" + (" …" if len(pairs) > 3 else "")
    if event.type == "resync":
        return f"#{event.seq} resync: {d.get('reason')} (some events were lost: re-read state)"
    return f"#{event.seq} {event.type} {json.dumps(d)}"


def cmd_watch(args: argparse.Namespace) -> int:
    types: list[str] = []
    if args.types:
        types = [t.strip() for t in args.types.split(",") if t.strip()]
        unknown = sorted(set(types) - set(EVENT_TYPES))
        if unknown:
            raise CliError(f"unknown event type(s) {', '.join(unknown)}; choose from "
                           f"{', '.join(EVENT_TYPES)}")
    seen = 0
    last: int | None = None
    with node_client(args) as c:
        if not args.json:
            note(f"following events of {c.base_url} (Ctrl-C stops)")
        for event in c.events(since=args.since, types=types,
                              on_reconnect=lambda why: note(f"stream lost ({why}); "
                                                            "reconnecting…")):
            if last is not None and event.type != "resync" and event.seq != last + 1:
                note(f"events {last + 1}..{event.seq - 1} skipped (filtered or lost)")
            last = event.seq
            if args.json:
                print(json.dumps(event.data), flush=True)
            else:
                print(describe_event(event), flush=True)
            seen += 1
            if args.count is not None and seen >= args.count:
                break
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
            print(f"\r\x1b[Kwaiting for confirmation ({elapsed:.0f}s): {status}", end="",
                  file=sys.stderr, flush=True)
        elif status != self.last[0] or elapsed - self.last[1] >= 10:
            note(f"waiting for confirmation ({elapsed:.0f}s): {status}")
            self.last = (status, elapsed)

    def done(self) -> None:
        if self.tty:
            print(file=sys.stderr)


@dataclass(frozen=True)
class Transfer:
    """What `send` and `sign` read from their arguments: the signer (its key loaded from
    the keystore), the recipient and the data, and where the node is."""

    signer: Signer
    to: bytes
    payload: bytes
    loc: Location


def transfer_args(args: argparse.Namespace) -> Transfer:
    if args.amount < 1:
        raise CliError("--amount must be at least 1")
    to = parse_address(args.to, "--to")
    payload = parse_hex(args.payload, "--payload") if args.payload else b""
    loc = locate(args)
    store = Keystore(loc.keystore_dir)
    sender = _sender(args, store, loc.config.account_address if loc.config else b"")
    if not store.path_of(sender).is_file():
        raise CliError(f"no key for {sender.hex()} in {store.dir}")
    return Transfer(Signer(store.load(sender, password(args, loc))), to, payload, loc)


def cmd_send(args: argparse.Namespace) -> int:
    t = transfer_args(args)
    to, payload = t.to, t.payload
    with node_client(args) as c:
        tx = c.send(t.signer, to=to, amount=args.amount, fee=args.fee, data=payload,
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
        print_json(info.doc)
    else:
        print(tx_id)
        note(f"confirmed in block {info.height} ({info.block})")
    return 0
