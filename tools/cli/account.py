"""`ccoin account new|list|import|export`: keys in the encrypted keystore (the seed's
create-account, plus what a wallet needs to move a key in and out).

A secret never comes from the command line itself (shell history, `ps`): `import` reads a
key file, a file holding the hex secret, standard input (`-`) or a hidden prompt; `export`
prints the encrypted key file, or the plain hex secret only with `--raw --yes`.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_der_private_key

from client import parse_address
from common.crypto import RSA_BITS, KeyType, PrivateKey
from common.errors import CcoinError
from runtime.keystore import SCRYPT_N, Keystore, decrypt_key
from tools.cli.util import (
    CliError,
    Location,
    locate,
    note,
    password,
    print_json,
    read_password_file,
)

KEY_TYPES = {"ed25519": KeyType.ED25519, "rsa": KeyType.RSA}
KEY_NAMES = {int(v): k for k, v in KEY_TYPES.items()}
MAX_SOURCE = 64 * 1024  # a key file or an RSA key's hex is a few KiB


def add_location_args(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group()
    where.add_argument("--data", metavar="DIR", help="node data dir (default ~/.ccoin)")
    where.add_argument("--config", metavar="FILE", help="node config (its data dir)")
    p.add_argument("--keystore", metavar="DIR", help="key directory (default DATA/keystore)")


def register(sub: Any) -> None:
    account = sub.add_parser("account", help="create, list, import and export accounts (keys)")
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

    imp = asub.add_parser(
        "import", help="add a key: a ccoin key file, or a hex private key from a file, "
                       "stdin (-) or a prompt; prints its address")
    imp.add_argument("source", nargs="?", metavar="FILE|-",
                     help="key file (JSON) or file holding the hex secret; - reads stdin; "
                          "omitted: a hidden prompt")
    add_location_args(imp)
    imp.add_argument("--key-type", choices=sorted(KEY_TYPES),
                     help="type of a hex secret (default: ed25519 for 32 bytes, else rsa "
                          "PKCS#8 DER)")
    imp.add_argument("--password-file", metavar="FILE",
                     help="password to encrypt the key with in the keystore (else "
                          "$CCOIN_PASSWORD or a prompt)")
    imp.add_argument("--key-password-file", metavar="FILE",
                     help="password of the imported key file, if it differs")
    imp.add_argument("--json", action="store_true", help="print JSON")
    imp.set_defaults(func=cmd_import)

    exp = asub.add_parser("export", help="print an account's encrypted key file (or, with "
                                         "--raw --yes, its plain hex secret)")
    exp.add_argument("address")
    add_location_args(exp)
    exp.add_argument("--raw", action="store_true",
                     help="print the private key itself, in hex (needs --yes and the password)")
    exp.add_argument("--yes", action="store_true",
                     help="confirm that the plain private key may be printed")
    exp.add_argument("--password-file", metavar="FILE",
                     help="keystore password for --raw (else $CCOIN_PASSWORD or a prompt)")
    exp.set_defaults(func=cmd_export)


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


# --- import ----------------------------------------------------------------------------------


def _read_source(source: str | None) -> str:
    if source is None:
        if not sys.stdin.isatty():
            raise CliError("give a key file, or - to read the hex secret from stdin")
        try:
            return getpass.getpass("Private key (hex): ")
        except EOFError:
            raise CliError("no private key given") from None
    if source == "-":
        text = sys.stdin.read(MAX_SOURCE + 1)
    else:
        try:
            with open(source, encoding="utf-8", errors="replace") as f:
                text = f.read(MAX_SOURCE + 1)
        except OSError as exc:
            raise CliError(f"cannot read {source}: {exc.strerror}") from None
    if len(text) > MAX_SOURCE:
        raise CliError(f"{source} is too large to be a key")
    return text


def key_from_hex(text: str, key_type: str | None) -> PrivateKey:
    """A private key from its hex secret: a 32-byte Ed25519 seed (or libsodium's 64-byte
    seed||public key), or an RSA key's PKCS#8 DER."""
    cleaned = "".join(text.split()).removeprefix("0x")
    try:
        secret = bytes.fromhex(cleaned)
    except ValueError:
        raise CliError("the private key is not hex (nor a ccoin key file)") from None
    kind = KEY_TYPES[key_type] if key_type else \
        KeyType.ED25519 if len(secret) in (32, 64) else KeyType.RSA
    if kind == KeyType.ED25519:
        if len(secret) == 64:
            seed = secret[:32]
            if PrivateKey(KeyType.ED25519, seed).public_key != secret[32:]:
                raise CliError("a 64-byte Ed25519 key must be seed || public key")
            secret = seed
        if len(secret) != 32:
            raise CliError(f"an Ed25519 private key is 32 bytes, not {len(secret)}")
    else:
        try:
            loaded = load_der_private_key(secret, password=None)
        except (ValueError, TypeError):
            if key_type:
                raise CliError("not an RSA private key (PKCS#8 DER in hex expected)") from None
            raise CliError(f"not a private key: {len(secret)} bytes are neither a 32-byte "
                           "Ed25519 seed nor an RSA key in PKCS#8 DER") from None
        if not isinstance(loaded, rsa.RSAPrivateKey) or loaded.key_size not in RSA_BITS:
            raise CliError("only RSA keys of 2048, 3072 or 4096 bits can sign ccoin "
                           "transactions")
    return PrivateKey(kind, secret)


def cmd_import(args: argparse.Namespace) -> int:
    loc = locate(args)
    text = _read_source(args.source)
    store = Keystore(loc.keystore_dir)
    doc: Any = None
    if text.lstrip().startswith("{"):
        try:
            doc = json.loads(text)
        except ValueError:
            raise CliError(f"{args.source} is not a valid JSON key file") from None
    pw = password(args, loc, new=True)
    if isinstance(doc, dict):
        key_pw = read_password_file(args.key_password_file) if args.key_password_file \
            else pw
        try:
            key = decrypt_key(doc, key_pw)
        except CcoinError as exc:
            hint = "" if args.key_password_file else \
                " (use --key-password-file if the file has another password)"
            raise CliError(f"{exc.message}{hint}") from None
        origin = "key file"
    elif doc is not None:
        raise CliError(f"{args.source} is JSON but not a ccoin key file")
    else:
        key = key_from_hex(text, args.key_type)
        origin = "hex secret"
    if store.path_of(key.address).exists():
        raise CliError(f"account {key.address.hex()} is already in {store.dir}")
    path = store.save(key, pw)
    name = KEY_NAMES[int(key.key_type)]
    if args.json:
        print_json({"address": key.address.hex(), "key_type": name, "path": str(path)})
    else:
        note(f"Imported {name} account from a {origin}, key file {path}")
        print(key.address.hex())
    return 0


# --- export ----------------------------------------------------------------------------------


def cmd_export(args: argparse.Namespace) -> int:
    loc = locate(args)
    store = Keystore(loc.keystore_dir)
    address = parse_address(args.address)
    path = store.path_of(address)
    if not path.is_file():
        raise CliError(f"no key for {address.hex()} in {store.dir}")
    if not args.raw:
        try:
            doc = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise CliError(f"cannot read key file {path}: {exc}") from None
        print_json(doc)
        return 0
    if not args.yes:
        raise CliError("--raw prints the private key in plain text; add --yes to confirm")
    key = store.load(address, password(args, loc))
    note(f"the private key of {address.hex()} ({KEY_NAMES[int(key.key_type)]}); anyone who "
         "sees it controls the account")
    print(key.secret.hex())
    return 0
