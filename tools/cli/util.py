"""What every `ccoin` command shares: where the node's files are, the keystore password,
printing data as text or JSON, and the one-line error."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.errors import CcoinError
from runtime.config import ConfigError, NodeConfig, block_hash, load_config
from runtime.ports import bind_error

DEFAULT_DATA = "~/.ccoin"
DEFAULT_API = "http://127.0.0.1:8000"
API_ENV = "CCOIN_API"  # the node's API URL, for client commands
DATA_ENV = "CCOIN_DATA"  # the data dir, for every command that takes --data
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


def data_arg(args: argparse.Namespace) -> str | None:
    """The data dir the command line names: `--data DIR`, else $CCOIN_DATA (unless
    `--config FILE` names the node instead)."""
    if getattr(args, "config", None):
        return None
    return getattr(args, "data", None) or os.environ.get(DATA_ENV) or None


def locate(args: argparse.Namespace) -> Location:
    config_arg = getattr(args, "config", None)
    keystore_arg = getattr(args, "keystore", None)
    config: NodeConfig | None = None
    if config_arg:
        config = load_config(config_arg)
        data_dir = config.base_path
    else:
        data_dir = Path(os.path.expanduser(data_arg(args) or DEFAULT_DATA)).resolve()
        if (data_dir / NODE_CONFIG).is_file():
            config = load_config(data_dir / NODE_CONFIG)
            data_dir = config.base_path
    if keystore_arg:
        keystore_dir = Path(os.path.expanduser(keystore_arg)).resolve()
    else:
        keystore_dir = config.keystore_dir if config else data_dir / "keystore"
    return Location(data_dir, config, keystore_dir)


def require_config(args: argparse.Namespace, *, starting: bool = False) -> NodeConfig:
    """The node config the command line names; without one, an error saying how to make
    one (`starting`: the node is about to be started, so `genesis init` comes first)."""
    loc = locate(args)
    if loc.config is None:
        missing = loc.data_dir / NODE_CONFIG
        if starting:
            raise CliError(f"no node config {missing}: create the chain first with "
                           f"`{init_command(loc.data_dir)}` (or pass --config FILE)")
        raise CliError(f"no node config: pass --config FILE (or --data DIR holding "
                       f"{NODE_CONFIG}); {missing} does not exist")
    return loc.config


def init_command(data_dir: Path) -> str:
    """The exact `genesis init` that sets up `data_dir` (its chain and node.json)."""
    return f"ccoin genesis init --genesis FILE --data {shell_path(data_dir)}"


def shell_path(path: Path) -> str:
    """`path` as a user would type it: relative to the working directory when inside it."""
    try:
        text = str(path.resolve().relative_to(Path.cwd().resolve())) or "."
    except ValueError:
        text = str(path)
    return shlex.quote(text)


def set_config_port(config_path: Path, section: str, port: int) -> None:
    """Set `section.port` ("api" or "p2p") in a node config file, keeping the rest."""
    doc = json.loads(config_path.read_text())
    doc.setdefault(section, {})["port"] = port
    config_path.write_text(json.dumps(doc, indent=2) + "\n")


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


@dataclass(frozen=True, slots=True)
class NodeChoice:
    """The node a client command talks to, and how it was chosen: `how` is "" for the
    default local node, else e.g. "--data data" or "$CCOIN_API"."""

    url: str
    how: str

    def hint(self) -> str:
        """Said after a failure to reach the node: which node, why that one, how to pick."""
        which = f"the node from {self.how}" if self.how else "the default local node"
        return f"{which}: is it running? Name the node with --data DIR or --api URL"


def choose_node(args: argparse.Namespace) -> NodeChoice:
    """The node a client command means: `--api URL`, else the node config of `--config
    FILE` or `--data DIR` (its API host and port), else $CCOIN_API, else the node config
    in $CCOIN_DATA, else http://127.0.0.1:8000."""
    if getattr(args, "api", None):
        return NodeChoice(str(args.api).rstrip("/"), "--api")
    config_arg = getattr(args, "config", None)
    flag_data = getattr(args, "data", None)
    if config_arg or flag_data:
        how = f"--config {config_arg}" if config_arg else f"--data {flag_data}"
        config = locate(args).config
        if config is not None:
            return NodeChoice(api_url_of(config), how)
    if os.environ.get(API_ENV):
        return NodeChoice(os.environ[API_ENV].rstrip("/"), f"${API_ENV}")
    env_data = os.environ.get(DATA_ENV)
    if env_data and not config_arg:
        config_file = Path(os.path.expanduser(env_data)) / NODE_CONFIG
        if config_file.is_file():
            return NodeChoice(api_url_of(load_config(config_file)),
                              f"${DATA_ENV}={env_data}")
    return NodeChoice(DEFAULT_API, "")


def api_url(args: argparse.Namespace) -> str:
    """The URL of the node the command line means (`choose_node`)."""
    return choose_node(args).url


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


def block_hash_arg(text: str) -> bytes:
    """A block hash given on the command line: 64 hex characters, or "" for none."""
    try:
        return block_hash(text, "it")
    except ConfigError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a block hash (64 hex characters)") from None


def check_port_free(host: str, port: int, what: str) -> None:
    """`CliError` ("cannot <what> on host:port: <reason>") unless the port can be bound now:
    a one-line refusal before anything starts, not a service dying in its log. Port 0
    (any free port) always passes."""
    if port and (reason := bind_error(host, port)) is not None:
        raise CliError(f"cannot {what} on {host}:{port}: {reason}")
