"""`ccoin sign`: sign a transfer here and print the JSON body of `POST /api/v1/txs`, for
any HTTP client (curl) to submit. The key never leaves this machine; with `--nonce` and
`--chain-id` (or the data dir's genesis) nothing asks a node, so it signs offline."""

from __future__ import annotations

import argparse
import json
from typing import Any

from client import sign_transfer, tx_to_json
from common.errors import CcoinError
from runtime.config import load_genesis
from tools.cli.client import add_api_args, node_client, transfer_args
from tools.cli.util import note, positive_int


def register(sub: Any) -> None:
    p = sub.add_parser(
        "sign", help="sign a transfer here; print the JSON body of POST /api/v1/txs",
        description="Sign a transfer with a key of the keystore and print the body of "
                    "POST /api/v1/txs on one line: `ccoin sign ... | curl -H 'Content-Type: "
                    "application/json' --data-binary @- URL/api/v1/txs`. The nonce is the "
                    "node's pending nonce of the sender unless --nonce is given; the chain id "
                    "is the data dir's genesis network_id, else the node's.")
    p.add_argument("--to", required=True, metavar="ADDR", help="recipient address")
    p.add_argument("--amount", required=True, type=positive_int, metavar="N",
                   help="coins to send (an integer)")
    p.add_argument("--fee", type=positive_int, default=0, metavar="F",
                   help="fee for the block's miner (default 0)")
    p.add_argument("--payload", metavar="HEX", default="", help="data payload, hex")
    p.add_argument("--from", dest="sender", metavar="ADDR",
                   help="signing account (default: the config's account, or the keystore's "
                        "only key)")
    p.add_argument("--nonce", type=positive_int, help="nonce (default: ask the node)")
    p.add_argument("--chain-id", type=positive_int, metavar="ID",
                   help="chain id (default: the genesis network_id)")
    p.add_argument("--keystore", metavar="DIR", help="key directory (default DATA/keystore)")
    p.add_argument("--password-file", metavar="FILE",
                   help="keystore password file (else $CCOIN_PASSWORD, the config's, or a "
                        "prompt)")
    add_api_args(p)
    p.set_defaults(func=cmd_sign)


def cmd_sign(args: argparse.Namespace) -> int:
    t = transfer_args(args)
    to, payload, loc, signer = t.to, t.payload, t.loc, t.signer
    chain_id, nonce = args.chain_id, args.nonce
    if chain_id is None and loc.config is not None:
        try:
            chain_id = load_genesis(loc.config.genesis_file()).network_id
        except CcoinError:
            pass  # no genesis file here: the node says
    if chain_id is None or nonce is None:
        with node_client(args) as c:
            if chain_id is None:
                chain_id = c.status().network_id
            if nonce is None:
                nonce = c.account(signer.address).pending_nonce
                note(f"nonce {nonce}: the pending nonce of {signer.address.hex()}")
    tx = sign_transfer(signer, chain_id=chain_id, nonce=nonce, to=to, amount=args.amount,
                       fee=args.fee, data=payload)
    print(json.dumps(tx_to_json(tx), indent=2 if args.json else None))
    return 0
