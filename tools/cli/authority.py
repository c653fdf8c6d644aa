"""`ccoin authority list | propose ADDR --add|--remove | discard ADDR`: the authorities of a
PoA chain and the votes that change them (Clique, common/authorities.py), over the node's
REST API (`GET /consensus`'s `votes`, `POST` and `DELETE /consensus/proposals`).

`propose` and `discard` set what this node's miner votes for (admin routes: on the node's
machine, or with its bearer token, as `ccoin peers add`). Its authority casts the vote in
the blocks it seals, one per block; a proposal passes when more than half of the
authorities voted alike, and the set changes at that block."""

from __future__ import annotations

import argparse
from typing import Any

from client import VotesInfo, parse_address
from common.errors import NotFound
from tools.cli.client import add_api_args, node_client, table
from tools.cli.network import ADMIN_NOTE, admin_call
from tools.cli.util import CliError, note, print_json


def register(sub: Any) -> None:
    auth = sub.add_parser("authority", help="the PoA authorities and the votes that change "
                                            "them: list | propose | discard")
    asub = auth.add_subparsers(dest="authority_cmd", metavar="COMMAND", required=True)
    listing = asub.add_parser("list", help="the authorities, open proposals with who voted, "
                                           "the latest changes, this node's proposals")
    add_api_args(listing)
    listing.set_defaults(func=cmd_list)
    propose = asub.add_parser("propose", help="make this node's miner vote to add or remove "
                                              "an authority (admin)", description=ADMIN_NOTE)
    propose.add_argument("address", metavar="ADDR", help="the address (40 hex)")
    way = propose.add_mutually_exclusive_group(required=True)
    way.add_argument("--add", dest="authorize", action="store_true",
                     help="vote to make it an authority")
    way.add_argument("--remove", dest="authorize", action="store_false",
                     help="vote to remove it from the authorities")
    add_api_args(propose)
    propose.set_defaults(func=cmd_propose)
    discard = asub.add_parser("discard", help="stop voting for this node's proposal about "
                                              "an address (admin)", description=ADMIN_NOTE)
    discard.add_argument("address", metavar="ADDR", help="the address (40 hex)")
    add_api_args(discard)
    discard.set_defaults(func=cmd_discard)


def _show(votes: VotesInfo, json: bool) -> int:
    if json:
        print_json(votes.doc)
        return 0
    if not votes.authorities:
        print("proof of work: no authorities to vote on")
        return 0
    n = len(votes.authorities)
    print(f"{n} authorit{'y' if n == 1 else 'ies'} (in turn order); a proposal passes with "
          f"{votes.needed} vote{'s' if votes.needed != 1 else ''}; next checkpoint at block "
          f"{votes.next_checkpoint} (clears open votes)")
    for address in votes.authorities:
        print(f"  {address}")
    if votes.proposals:
        rows = [("proposal", "address", "votes", "voters")]
        rows += [("add" if p["authorize"] else "remove", p["address"],
                  f"{p['votes']}/{votes.needed}", ", ".join(v[:8] for v in p["voters"]))
                 for p in votes.proposals]
        table(rows)
    else:
        print("no open proposals")
    for c in votes.changes:
        print(f"block {c['height']}: {c['address']} {'added' if c['authorize'] else 'removed'}")
    for o in votes.own:
        how = ("done: already true" if o["done"] else
               "voted, open" if o["voted"] else "votes in its next sealed block")
        print(f"this node: {'add' if o['authorize'] else 'remove'} {o['address']} ({how})")
    for warning in votes.warnings:
        note(f"warning: {warning}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with node_client(args) as c:
        votes = c.votes()
    return _show(votes, args.json)


def cmd_propose(args: argparse.Namespace) -> int:
    address = parse_address(args.address, "ADDR")
    with node_client(args, admin=True) as c, admin_call():
        votes = c.propose(address, args.authorize)
    return _show(votes, args.json)


def cmd_discard(args: argparse.Namespace) -> int:
    address = parse_address(args.address, "ADDR")
    with node_client(args, admin=True) as c, admin_call():
        try:
            votes = c.discard(address)
        except NotFound:
            raise CliError(f"this node has no proposal about {address.hex()}") from None
    return _show(votes, args.json)
