"""`ccoin account new|list`: keys in the encrypted keystore (the seed's create-account)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from common.crypto import KeyType, PrivateKey
from common.keystore import SCRYPT_N, Keystore
from services.cli.util import Location, locate, note, password, print_json

KEY_TYPES = {"ed25519": KeyType.ED25519, "rsa": KeyType.RSA}
KEY_NAMES = {int(v): k for k, v in KEY_TYPES.items()}


def add_location_args(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group()
    where.add_argument("--data", metavar="DIR", help="node data dir (default ~/.ccoin)")
    where.add_argument("--config", metavar="FILE", help="node config (its data dir)")
    p.add_argument("--keystore", metavar="DIR", help="key directory (default DATA/keystore)")


def register(sub: Any) -> None:
    account = sub.add_parser("account", help="create and list accounts (keys)")
    asub = account.add_subparsers(dest="account_cmd", metavar="COMMAND", required=True)

    new = asub.add_parser("new", help="create a key; prints its address")
    add_location_args(new)
    new.add_argument("--key-type", choices=sorted(KEY_TYPES), default="ed25519")
    new.add_argument("--password-file", metavar="FILE",
                     help="read the password from FILE (else $CCOIN_PASSWORD or a prompt)")
    new.add_argument("--json", action="store_true", help="print JSON")
    new.set_defaults(func=cmd_new)

    ls = asub.add_parser("list", help="list the keystore's addresses")
    add_location_args(ls)
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=cmd_list)


def create_account(loc: Location, key_type: KeyType, pw: str, n: int = SCRYPT_N,
                   ) -> tuple[PrivateKey, str]:
    key = PrivateKey.generate(key_type)
    path = Keystore(loc.keystore_dir).save(key, pw, n)
    return key, str(path)


def cmd_new(args: argparse.Namespace) -> int:
    loc = locate(args)
    pw = password(args, loc, new=True)
    key, path = create_account(loc, KEY_TYPES[args.key_type], pw)
    if args.json:
        print_json({"address": key.address.hex(), "key_type": args.key_type, "path": path})
    else:
        note(f"Created {args.key_type} account, key file {path}")
        print(key.address.hex())
    return 0


def key_type_of(path: Any) -> str:
    try:
        return KEY_NAMES.get(int(json.loads(path.read_text())["key_type"]), "?")
    except (OSError, ValueError, KeyError, TypeError):
        return "?"


def cmd_list(args: argparse.Namespace) -> int:
    loc = locate(args)
    store = Keystore(loc.keystore_dir)
    rows = [{"address": a.hex(), "key_type": key_type_of(store.path_of(a)),
             "path": str(store.path_of(a))} for a in store.addresses()]
    if args.json:
        print_json(rows)
    elif not rows:
        note(f"no accounts in {loc.keystore_dir}")
    else:
        for r in rows:
            print(f"{r['address']}  {r['key_type']:<7}  {r['path']}")
    return 0
