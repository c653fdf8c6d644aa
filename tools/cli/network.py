"""Operator commands over a node's network, mining and consensus routes (`client`):
`ccoin peers [add ENDPOINT]|sync|mining [start|stop]|consensus`. Human-readable by default,
`--json` for scripts.

`peers add`, `sync` and `mining start|stop` use admin routes (DESIGN §6): the node answers
them for a client on its own machine, or for one with its bearer token, taken from
$CCOIN_ADMIN_TOKEN or else the `api.admin_token` of the node config named by --config/--data.
Anyone else gets one `forbidden` line."""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from client import Client, NodeStatus, VotesInfo
from common.errors import Forbidden
from common.status import PeerOutcome
from tools.cli.client import TOKEN_ENV, add_api_args, node_client, short, table
from tools.cli.util import CliError, note, positive_int, print_fields, print_json, seconds

ADMIN_NOTE = (f"An admin command: the node answers it on its own machine, or with ${TOKEN_ENV} "
              "(else the --config/--data node config's api.admin_token) as bearer token.")


def register(sub: Any) -> None:
    peers = sub.add_parser("peers", help="the node's peers; `peers add ENDPOINT` links one")
    add_api_args(peers)
    peers.set_defaults(func=cmd_peers)
    psub = peers.add_subparsers(dest="peers_cmd", metavar="COMMAND")
    add = psub.add_parser("add", help="ask the node to connect to a peer (admin)",
                          description=ADMIN_NOTE)
    add.add_argument("endpoint", metavar="ENDPOINT",
                     help="the peer's p2p address: tcp://host:port[#curve key] (`ccoin "
                          "status` on that node shows it), or that node's page URL, "
                          "http://host:port/ (the node reads its status for the address)")
    add.add_argument("--timeout", type=seconds, default=5.0, metavar="S",
                     help="how long the node waits for the handshake (default 5, at most 60)")
    add_api_args(add, inherited=True)
    add.set_defaults(func=cmd_peers_add)

    sync = sub.add_parser("sync", help="ask the node to sync from its best peer now",
                          description=ADMIN_NOTE)
    sync.add_argument("--wait", action="store_true",
                      help="then wait until the node is no longer syncing")
    sync.add_argument("--timeout", type=seconds, default=120.0, metavar="S",
                      help="how long --wait waits (default 120)")
    add_api_args(sync)
    sync.set_defaults(func=cmd_sync)

    mining = sub.add_parser("mining", help="the node's miner; `mining start|stop` "
                                           "switches it")
    add_api_args(mining)
    mining.set_defaults(func=cmd_mining)
    msub = mining.add_subparsers(dest="mining_cmd", metavar="COMMAND")
    for action, text in (("start", "let the miner seal blocks again (admin)"),
                         ("stop", "stop the miner sealing blocks (admin)")):
        p = msub.add_parser(action, help=text, description=ADMIN_NOTE)
        add_api_args(p, inherited=True)
        p.set_defaults(func=cmd_mining_switch, enable=action == "start")

    cons = sub.add_parser("consensus", help="chain health: is the next block overdue and "
                                            "why; the authorities, who may seal, who missed "
                                            "turns")
    cons.add_argument("--window", type=positive_int, default=100, metavar="N",
                      help="look at the N newest blocks (1..10000, default 100)")
    add_api_args(cons)
    cons.set_defaults(func=cmd_consensus)


@contextmanager
def admin_call() -> Iterator[None]:
    """A refused admin call says how to get through."""
    try:
        yield
    except Forbidden as exc:
        raise CliError(f"forbidden: {exc.args[0]} (run it on the node's machine, or set "
                       f"${TOKEN_ENV} to its api.admin_token)") from None


def _ms(value: int) -> str:
    return f"{value} ms" if value < 10_000 else f"{value / 1000:.0f} s"


def _ago(epoch_ms: int | None) -> str | None:
    if not epoch_ms:
        return None
    seconds = max(0.0, time.time() - epoch_ms / 1000)
    return f"{seconds:.1f}s ago" if seconds < 60 else f"{seconds / 60:.0f} min ago"


# --- peers -----------------------------------------------------------------------------------


def cmd_peers(args: argparse.Namespace) -> int:
    with node_client(args) as c:
        peers = c.peers()
    if args.json:
        print_json(peers.doc)
        return 0
    if not peers.p2p:
        print("no p2p service answers on this node: it has no peers")
        return 0
    if peers.peers:
        rows = [("node id", "endpoint", "dir", "height", "score", "latency")]
        rows += [(short(p.node_id), p.endpoint, p.direction, str(p.height), str(p.score),
                  _ms(p.latency_ms)) for p in peers.peers]
        table(rows)
    sync = (f"syncing to height {peers.sync_target}" if peers.sync_target is not None
            else "syncing") if peers.syncing else "in sync"
    count = len(peers.peers)
    print(f"{count} peer{'s' if count != 1 else ''}, {peers.banned} banned, {sync}; "
          f"this node is {peers.node_id or '-'}, reachable at {peers.endpoint or 'no address'}")
    return 0


def cmd_peers_add(args: argparse.Namespace) -> int:
    endpoint = args.endpoint.strip()
    if not 0 < args.timeout <= 60:
        raise CliError("--timeout must be more than 0 and at most 60 seconds")
    with node_client(args, admin=True) as c, admin_call():
        added = c.add_peer(endpoint, wait=args.timeout)
    if args.json:
        print_json(added.doc)
        return 0
    linked = "connected" if added.outcome == PeerOutcome.CONNECTED else "already connected"
    print(f"{linked} to {added.node_id} at {added.endpoint} ({added.direction})")
    return 0


# --- sync ------------------------------------------------------------------------------------


def cmd_sync(args: argparse.Namespace) -> int:
    with node_client(args, admin=True) as c:
        with admin_call():
            c.sync()
        if not args.wait:
            if args.json:
                print_json({"ok": True, "requested": "sync"})
            else:
                print(f"sync requested: {c.base_url} syncs from its best peer now")
            return 0
        note(f"sync requested; waiting until {c.base_url} is in sync")
        st = _wait_in_sync(c, args.timeout)
    if args.json:
        print_json(st.doc)
    else:
        print(f"in sync at height {st.height} ({short(st.head)}, {st.peers} "
              f"peer{'s' if st.peers != 1 else ''})")
    return 0


def _wait_in_sync(c: Client, timeout: float, poll: float = 0.5) -> NodeStatus:
    """Poll the status until `syncing` is false; progress on stderr when the height moves."""
    start = time.monotonic()
    time.sleep(min(poll, timeout))  # let p2p take the request up before the first look
    shown = -1
    while True:
        st = c.status()
        if not st.syncing:
            return st
        if st.height != shown:
            note(f"syncing: height {st.height}")
            shown = st.height
        elapsed = time.monotonic() - start
        if elapsed >= timeout:
            raise CliError(f"still syncing after {timeout:g}s (height {st.height})")
        time.sleep(min(poll, max(0.0, timeout - elapsed)))


# --- mining ----------------------------------------------------------------------------------


def _mining_rows(doc: dict[str, Any]) -> list[tuple[str, Any]]:
    return [("mining", doc.get("mining")), ("address", doc.get("address")),
            ("blocks sealed", doc.get("blocks_sealed")), ("last block", doc.get("last_block")),
            ("last sealed", _ago(doc.get("last_sealed_ms")))]


def cmd_mining(args: argparse.Namespace) -> int:
    with node_client(args) as c:
        doc = c.mining()
    if args.json:
        print_json(doc)
    elif not doc.get("validator"):
        print("no miner runs on this node (a basic node): it does not mine")
    else:
        print_fields(_mining_rows(doc))
    return 0


def cmd_mining_switch(args: argparse.Namespace) -> int:
    with node_client(args, admin=True) as c, admin_call():
        doc = c.set_mining(args.enable)
    if args.json:
        print_json(doc)
    else:
        state = "on: it seals blocks" if doc.get("mining") else "off: it seals no blocks"
        print(f"mining {state} ({doc.get('blocks_sealed', 0)} sealed so far)")
    return 0


# --- consensus -------------------------------------------------------------------------------


def _must_be_online(n: int, needed: int) -> str:
    if n == 1:
        return "it must be online"
    if n == 2:
        return "both must be online: neither may fail"
    return f"at least {needed} must be online ({n - needed} may fail)"


def cmd_consensus(args: argparse.Namespace) -> int:
    if not 1 <= args.window <= 10_000:
        raise CliError("--window must be in 1..10000")
    with node_client(args) as c:
        cons = c.consensus(args.window)
    if args.json:
        print_json(cons.doc)
        return 0
    doc = cons.doc
    if cons.summary:
        print(cons.summary)
    if cons.consensus != "poa":
        print(f"proof of work: no authorities, any miner may seal block {cons.next_height} "
              f"(difficulty {doc.get('difficulty', '-')} bits)")
        return 0
    n = len(cons.authorities)
    head = cons.next_height - 1
    interval = doc.get("interval_ms")
    age = ""
    if isinstance(interval, int) and interval > 0:
        age = (f"; block {head} was sealed {cons.since_head_ms / 1000:.1f} s ago "
               f"({cons.since_head_ms / interval:.1f} intervals of {interval / 1000:g} s)")
    needed = doc.get("needed_online")
    print(f"proof of authority: {n} authorit{'y' if n == 1 else 'ies'}, "
          f"{_must_be_online(n, needed if isinstance(needed, int) else n // 2 + 1)}{age}")
    rows = [("", "authority", "state", "may seal", "sealed", "last block", "missed",
             "since head")]
    by_address = {s.address: s for s in cons.signers}
    for address in cons.authorities:
        s = by_address.get(address)
        rows.append(("*" if address == cons.in_turn else "", address,
                     str(s.state or "-") if s else "-",
                     ("yes" if s.may_seal else "no") if s else "-",
                     str(s.sealed) if s else "-",
                     str(s.last_height) if s and s.last_height is not None else "-",
                     str(s.missed) if s else "-",
                     str(s.missed_since_head) if s else "-"))
    table(rows)
    note(f"over the {cons.window} newest blocks; * is in turn for block {cons.next_height}; "
         f"missed turns include the slots since the head that passed with no block")
    if isinstance(doc.get("votes"), dict):
        _print_votes(VotesInfo.from_json(doc["votes"]))
    return 0


def _print_votes(votes: VotesInfo) -> None:
    """The open proposals, the last change and the warnings (`ccoin authority list` has
    the whole picture)."""
    for p in votes.proposals:
        print(f"proposal: {'add' if p.get('authorize') else 'remove'} {p.get('address')}: "
              f"{p.get('votes')} of the {votes.needed} vote(s) it needs")
    if votes.changes:
        last = votes.changes[-1]
        print(f"last change: {'added' if last.get('authorize') else 'removed'} "
              f"{last.get('address')} at block {last.get('height')}")
    for warning in votes.warnings:
        print(f"warning: {warning}")
