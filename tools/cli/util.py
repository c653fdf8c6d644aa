"""What every `ccoin` command shares: where the node's files are, the keystore password,
printing data as text or JSON, and the one-line error."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.errors import CcoinError
from runtime.config import NodeConfig, load_config
from runtime.ports import bind_error

DEFAULT_DATA = "~/.ccoin"
DEFAULT_API = "http://127.0.0.1:8000"
NODE_CONFIG = "node.json"


class CliError(CcoinError):
    """a command could not do what was asked"""

    code = "cli"


class UsageError(CliError):
    """the command line is wrong (exit status 2)"""

    code = "usage"


# --- where things are ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Location:
    """A node's files, from `--config FILE` or `--data DIR` (whose `node.json` is read when it
    exists) or the default data dir; `--keystore DIR` overrides the key directory."""

    data_dir: Path
    config: NodeConfig | None
    keystore_dir: Path


def locate(args: argparse.Namespace) -> Location:
    config_arg = getattr(args, "config", None)
    data_arg = getattr(args, "data", None)
    keystore_arg = getattr(args, "keystore", None)
    config: NodeConfig | None = None
    if config_arg:
        config = load_config(config_arg)
        data_dir = config.base_path
    else:
        data_dir = Path(os.path.expanduser(data_arg or DEFAULT_DATA)).resolve()
        if (data_dir / NODE_CONFIG).is_file():
            config = load_config(data_dir / NODE_CONFIG)
            data_dir = config.base_path
    if keystore_arg:
        keystore_dir = Path(os.path.expanduser(keystore_arg)).resolve()
    else:
        keystore_dir = config.keystore_dir if config else data_dir / "keystore"
    return Location(data_dir, config, keystore_dir)


def require_config(args: argparse.Namespace) -> NodeConfig:
    loc = locate(args)
    if loc.config is None:
        raise CliError(f"no node config: pass --config FILE (or --data DIR holding "
                       f"{NODE_CONFIG}); {loc.data_dir / NODE_CONFIG} does not exist")
    return loc.config


def api_url_of(config: NodeConfig) -> str:
    """The URL a local client reaches this node's API at (honours a `node start --port`)."""
    port = config.api_port
    effective = config.run_dir / NODE_CONFIG
    if effective.is_file():
        try:
            port = int(json.loads(effective.read_text())["api"]["port"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(config.api_host,
                                                                      config.api_host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def api_url(args: argparse.Namespace) -> str:
    """`--api URL`, else the node config's API (from --config or --data), else
    $CCOIN_API, else http://127.0.0.1:8000."""
    if getattr(args, "api", None):
        return str(args.api)
    if getattr(args, "config", None) or getattr(args, "data", None):
        loc = locate(args)
        if loc.config is not None:
            return api_url_of(loc.config)
    return os.environ.get("CCOIN_API") or DEFAULT_API


# --- passwords -------------------------------------------------------------------------------


def read_password_file(path: str | Path) -> str:
    try:
        return Path(path).read_text().rstrip("\r\n")
    except OSError as exc:
        raise CliError(f"cannot read password file {path}: {exc.strerror}") from None


def password(args: argparse.Namespace, loc: Location, *, new: bool = False) -> str:
    """The keystore password: --password-file, else $CCOIN_PASSWORD, else the node config's
    password file, else a prompt (asked twice for a new key)."""
    if getattr(args, "password_file", None):
        value = read_password_file(args.password_file)
    elif os.environ.get("CCOIN_PASSWORD") is not None:
        value = os.environ["CCOIN_PASSWORD"]
    elif loc.config is not None and loc.config.password_file is not None:
        value = read_password_file(loc.config.password_file)
    elif sys.stdin.isatty():
        try:
            value = getpass.getpass("Password: ")
            if new and getpass.getpass("Repeat password: ") != value:
                raise CliError("passwords do not match")
        except EOFError:
            raise CliError("no password given") from None
    else:
        raise CliError("no password: use --password-file FILE or set CCOIN_PASSWORD")
    if new and not value:
        raise CliError("the password must not be empty")
    return value


# --- output ----------------------------------------------------------------------------------


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=False))


def print_fields(rows: list[tuple[str, Any]]) -> None:
    width = max((len(k) for k, _ in rows), default=0)
    for key, value in rows:
        if isinstance(value, bool):
            value = "yes" if value else "no"
        elif value is None:
            value = "-"
        print(f"{key:<{width}}  {value}")


def note(text: str) -> None:
    """Human progress and hints go to stderr, so stdout stays the command's data."""
    print(text, file=sys.stderr, flush=True)


def positive_int(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


def seconds(text: str) -> float:
    """A duration on the command line: a non-negative number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a non-negative number of seconds")
    return value


def port_number(text: str) -> int:
    value = positive_int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number")
    return value


def check_port_free(host: str, port: int, what: str) -> None:
    """`CliError` ("cannot <what> on host:port: <reason>") unless the port can be bound now:
    a one-line refusal before anything starts, not a service dying in its log. Port 0
    (any free port) always passes."""
    if port and (reason := bind_error(host, port)) is not None:
        raise CliError(f"cannot {what} on {host}:{port}: {reason}")
