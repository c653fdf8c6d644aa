"""`ccoin devnet --nodes N [--validators K] [--pow] [--curve] [--private]`: a local network
in one command.

Creates the devnet in `--data DIR` the first time (`tools.devnet`), resumes it
afterwards, then runs, in the foreground:

- the discovery service (`python -m services.discovery`, log in DIR/discovery.log), restarted
  if it dies (it is soft state: the nodes fill it again within one heartbeat);
- every node under its own supervisord, exactly what `ccoin node start --config
  DIR/nodeI/node.json --type validator|basic` runs (each with its own supervisord socket in
  DIR/nodeI/run/), so `ccoin node status|stop|restart --data DIR/nodeI` works on any of them.

`--curve` makes every node-to-node link CurveZMQ-encrypted (each node's key pair is created
with the devnet, so node 1's bootnode address can carry its key); `--private` (implies
`--curve`) also makes each node admit only the devnet's own keys (DIR/allow_list.txt).

Ctrl-C or SIGTERM stops every node (also one restarted by hand with `ccoin node start`)
and discovery, and waits until each has exited. A node stopped by hand while the devnet
runs, or stopped because one of its services went FATAL (tools/fatal.py: then with the
service and why), is reported and left stopped. The children run in sessions of their
own (a Ctrl-C in the terminal reaches only this process, which stops them in order) and,
on Linux, get SIGTERM from the kernel if this process dies without cleaning up.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

import httpx

from common.chainhealth import authorities_note, fault_tolerance
from runtime.config import NodeConfig, load_config
from runtime.keystore import SCRYPT_N
from runtime.ports import is_free
from tools import supervisor as sv
from tools.cli.node import prepare_start
from tools.cli.util import CliError, note, port_number, positive_int
from tools.devchain import DEV_FUNDS
from tools.devnet import (
    DEFAULT_BASE_PORT,
    DEFAULT_INTERVAL_MS,
    MANIFEST,
    Devnet,
    DevnetNode,
    check_shape,
    create_devnet,
    load_devnet,
    ports,
)
from tools.fatal import read_record

START_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 30.0
POLL_S = 0.5


def register(sub: Any) -> None:
    p = sub.add_parser("devnet", help="run a local network: discovery plus N nodes")
    p.add_argument("--nodes", type=_count, metavar="N",
                   help="number of nodes (required the first time)")
    p.add_argument("--validators", type=_count, metavar="K",
                   help="PoA authorities among them: nodes 1..K (default: all)")
    p.add_argument("--pow", action="store_true", default=None,
                   help="open Proof-of-Work instead of PoA: every node mines")
    p.add_argument("--curve", action="store_true", default=None,
                   help="encrypt every node-to-node link with CurveZMQ")
    p.add_argument("--private", action="store_true", default=None,
                   help="with --curve (implied): nodes admit only the devnet's own keys")
    p.add_argument("--data", metavar="DIR", default="devnet",
                   help="devnet directory (default devnet)")
    p.add_argument("--base-port", type=port_number, metavar="P",
                   help=f"node I's API on P+I-1, p2p on P+100+I-1, discovery on P+200 "
                        f"(default {DEFAULT_BASE_PORT})")
    p.add_argument("--interval-ms", type=_count, metavar="MS",
                   help=f"target block interval (default {DEFAULT_INTERVAL_MS})")
    p.add_argument("--difficulty", type=positive_int, metavar="BITS",
                   help="HashCash bits (PoW: the starting difficulty; default 4)")
    p.set_defaults(func=cmd_devnet)


def _count(text: str) -> int:
    value = positive_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


# --- create or resume ------------------------------------------------------------------------


def _check_resume(devnet: Devnet, args: argparse.Namespace) -> None:
    """Options given on a resume must agree with the devnet on disk."""
    validators = len(devnet.validators)
    have = {"--nodes": len(devnet.nodes), "--validators": validators,
            "--pow": devnet.pow, "--base-port": devnet.base_port,
            "--interval-ms": devnet.interval_ms, "--curve": devnet.curve,
            "--private": devnet.private}
    given = {"--nodes": args.nodes, "--validators": args.validators, "--pow": args.pow,
             "--base-port": args.base_port, "--interval-ms": args.interval_ms,
             "--curve": args.curve, "--private": args.private}
    for option, value in given.items():
        if value is not None and value != have[option]:
            kind = "PoW" if devnet.pow else f"PoA, {validators} validator(s)"
            raise CliError(f"{devnet.base_path} holds a devnet of {len(devnet.nodes)} "
                           f"node(s) ({kind}, base port {devnet.base_port}) and {option} "
                           f"differs; leave it out to resume, or pick another --data")
    if args.difficulty is not None:
        raise CliError("--difficulty applies only when the devnet is created")


def _check_ports(devnet: Devnet) -> None:
    wanted = [("discovery", devnet.discovery_port)]
    for n in devnet.nodes:
        wanted += [(f"{n.name} API", n.api_port), (f"{n.name} p2p", n.p2p_port)]
    busy = [f"{what} {port}" for what, port in wanted if not is_free(port)]
    if busy:
        raise CliError(f"port(s) in use: {', '.join(busy)} (another devnet or node? "
                       f"pick another --base-port when creating)")


def create_or_resume(args: argparse.Namespace) -> tuple[Devnet, bool]:
    data = Path(args.data).expanduser().resolve()
    if (data / MANIFEST).is_file():
        devnet = load_devnet(data)
        _check_resume(devnet, args)
        return devnet, False
    if args.nodes is None:
        raise CliError(f"{data} holds no devnet yet: --nodes N is required to create one")
    if data.exists() and any(data.iterdir()):
        raise CliError(f"{data} exists but has no {MANIFEST}: not a devnet dir "
                       "(remove it or pick another --data)")
    base_port = args.base_port or DEFAULT_BASE_PORT
    check_shape(args.nodes, args.validators, bool(args.pow), base_port)
    for i in range(1, args.nodes + 1):
        sv.check_socket_path(sv.Paths(data / f"node{i}" / "run", data / f"node{i}" / "logs"))
    # the same checks as a resume, before any file is written
    api, p2p, discovery = ports(base_port, args.nodes)
    busy = [str(p) for p in [*api, *p2p, discovery] if not is_free(p)]
    if busy:
        raise CliError(f"port(s) in use: {', '.join(busy)}; pick another --base-port")
    note(f"creating a devnet of {args.nodes} node(s) in {data} ...")
    devnet = create_devnet(
        data, nodes=args.nodes, validators=args.validators, pow=bool(args.pow),
        base_port=base_port, interval_ms=args.interval_ms or DEFAULT_INTERVAL_MS,
        difficulty=4 if args.difficulty is None else args.difficulty, scrypt_n=SCRYPT_N,
        curve=bool(args.curve), private=bool(args.private))
    return devnet, True


# --- processes -------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the devnet process dies (Linux), so a
    killed devnet does not leave a network running."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _spawn(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            cwd=sv.PACKAGE_ROOT, start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


def _terminate(proc: subprocess.Popen[bytes], timeout: float) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


class Network:
    """The running devnet: discovery plus one supervisord per node."""

    def __init__(self, devnet: Devnet) -> None:
        self.devnet = devnet
        self.discovery: subprocess.Popen[bytes] | None = None
        self.supervisors: dict[int, subprocess.Popen[bytes]] = {}
        self.reported: set[int] = set()
        self.configs: dict[int, NodeConfig] = {n.index: load_config(n.config_path)
                                               for n in devnet.nodes}

    @property
    def discovery_log(self) -> Path:
        return self.devnet.base_path / "discovery.log"

    def start_discovery(self) -> None:
        d = self.devnet
        self.discovery = _spawn([sys.executable, "-m", "services.discovery", "--host",
                                 d.discovery_host, "--port", str(d.discovery_port)],
                                self.discovery_log)

    def discovery_up(self) -> bool:
        try:
            return httpx.get(f"{self.devnet.discovery_url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def start_node(self, node: DevnetNode) -> None:
        config = self.configs[node.index]
        conf, _ = prepare_start(config, node.node_type, None)
        argv = sv.supervisord_argv(conf)
        self.supervisors[node.index] = _spawn(argv, config.run_dir / "supervisord.out")

    def api_up(self, node: DevnetNode) -> bool:
        try:
            return httpx.get(f"{node.api_url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_started(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = {n.index for n in self.devnet.nodes}
        while pending:
            for index in sorted(pending):
                node = self.devnet.node(index)
                proc = self.supervisors[index]
                if proc.poll() is not None:
                    paths = sv.Paths.of(self.configs[index])
                    fatal = read_record(paths.fatal_record)
                    raise CliError(f"{node.name} exited while starting: " + (
                        fatal.line() if fatal else
                        f"(status {proc.returncode}): {_tail(paths.log)}"))
                if self.api_up(node):
                    pending.discard(index)
            if pending and time.monotonic() > deadline:
                names = ", ".join(f"node{i}" for i in sorted(pending))
                raise CliError(f"{names} did not come up within {timeout:g} s "
                               f"(see DIR/nodeI/logs)")
            if pending:
                time.sleep(POLL_S)

    def watch(self) -> None:
        """Report nodes that stop; keep discovery running."""
        for index, proc in self.supervisors.items():
            if proc.poll() is not None and index not in self.reported:
                self.reported.add(index)
                fatal = read_record(sv.Paths.of(self.configs[index]).fatal_record)
                why = fatal.line() if fatal else \
                    f"supervisord exit status {proc.returncode}"
                note(f"node{index} stopped ({why}); "
                     f"the others keep running. Start it again with: ccoin node start "
                     f"--config {self.devnet.node(index).config_path} --type "
                     f"{self.devnet.node(index).node_type}")
        if self.discovery is not None and self.discovery.poll() is not None:
            note(f"discovery exited (status {self.discovery.returncode}): "
                 f"{_tail(self.discovery_log, 2)}; restarting it")
            time.sleep(1.0)
            self.start_discovery()

    def stop(self) -> None:
        """Stop every node of the devnet (ours, or restarted by hand) and discovery; wait."""
        ours = [p for p in self.supervisors.values() if p.poll() is None]
        for proc in ours:
            proc.send_signal(signal.SIGTERM)
        for node in self.devnet.nodes:  # restarted by hand under another supervisord
            mine = self.supervisors.get(node.index)
            if mine is not None and mine.poll() is None:
                continue
            control = sv.Control(sv.Paths.of(self.configs[node.index]), timeout=5.0)
            if control.pidfile_pid() is not None:
                with contextlib.suppress(sv.SupervisorError):
                    control.shutdown(wait=STOP_TIMEOUT_S)
        for proc in ours:
            _terminate(proc, STOP_TIMEOUT_S)
        if self.discovery is not None:
            _terminate(self.discovery, 10.0)
        configs = [c.config_path for c in self.configs.values() if c.config_path is not None]
        configs += [c.run_dir / "node.json" for c in self.configs.values()]
        for pid, service in sv.leftover_services(configs):
            note(f"killing leftover {service} (pid {pid})")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


# --- the command -----------------------------------------------------------------------------


class _Stop(Exception):
    """SIGTERM: stop the devnet like Ctrl-C does."""


def _on_sigterm(signum: int, frame: FrameType | None) -> NoReturn:
    raise _Stop()


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """While stopping, a second Ctrl-C or SIGTERM must not cut the cleanup short."""
    old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    old_term = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)


def _developer_balance(devnet: Devnet) -> int | None:
    node = devnet.nodes[-1]
    try:
        r = httpx.get(f"{node.api_url}/api/v1/accounts/{devnet.developer.hex()}", timeout=3)
        return int(r.json()["balance"]) if r.status_code == 200 else None
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None


def links(devnet: Devnet, data_arg: str) -> str:
    """How the nodes talk to each other, for the banner."""
    if devnet.private:
        return (f"CurveZMQ-encrypted, private: only the devnet's {len(devnet.nodes)} node "
                f"key(s) may connect ({data_arg}/{devnet.allow_list_path.name})")
    if devnet.curve:
        return "CurveZMQ-encrypted; any node with the devnet's genesis may connect"
    return "plain TCP, not encrypted (--curve when creating encrypts them)"


def banner(devnet: Devnet, data_arg: str, created: bool, balance: int | None) -> str:
    d = data_arg
    validators = len(devnet.validators)
    kind = ("PoW, every node mines" if devnet.pow else f"PoA, {validators} validator(s), "
            f"{fault_tolerance(validators)} may be offline")
    lines = ["", f"  ccoin devnet: {len(devnet.nodes)} node(s), {kind}, "
             f"{'new' if created else 'resumed'} in {d}",
             f"  genesis {devnet.genesis_hash.hex()}  network id {devnet.network_id}",
             f"  discovery {devnet.discovery_url}",
             f"  p2p links: {links(devnet, d)}", ""]
    width = max(len(n.name) for n in devnet.nodes)
    for n in devnet.nodes:
        lines.append(f"  {n.name:<{width}}  {n.node_type:<9} API {n.api_url}/api/v1   "
                     f"dashboard {n.api_url}/   p2p {n.p2p_address}   "
                     f"account {n.account.hex()}")
    funds = balance if balance is not None else (DEV_FUNDS if created else None)
    last = devnet.nodes[-1]
    lines += [
        "",
        f"  funded account    {devnet.developer.hex()}"
        + (f" (balance {funds})" if funds is not None else ""),
        f"  keystore password {devnet.password_file}",
        "",
        "  Send coins through any node (signs locally, waits for the block):",
        f"    ccoin send --data {d}/{last.name} --from {devnet.developer.hex()} \\",
        "        --to <40-hex address> --amount 100 --wait",
        f"  One node:  ccoin status --data {d}/node1;  ccoin node status --data {d}/node1",
        "  Stop all: Ctrl-C",
        "",
    ]
    return "\n".join(lines)


def cmd_devnet(args: argparse.Namespace) -> int:
    devnet, created = create_or_resume(args)
    if not created:
        _check_ports(devnet)
    advice = None if devnet.pow else authorities_note(len(devnet.validators))
    if advice and len(devnet.validators) == 2:  # the others are in the banner
        note(advice)
    network = Network(devnet)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        network.start_discovery()
        deadline = time.monotonic() + 20
        while not network.discovery_up():
            if network.discovery is not None and network.discovery.poll() is not None:
                raise CliError(f"discovery did not start: {_tail(network.discovery_log)}")
            if time.monotonic() > deadline:
                raise CliError(f"discovery did not answer on {devnet.discovery_url}")
            time.sleep(0.2)
        for node in devnet.nodes:
            network.start_node(node)
        note(f"starting {len(devnet.nodes)} node(s); logs in {args.data}/nodeI/logs ...")
        network.wait_started(START_TIMEOUT_S)
        print(banner(devnet, args.data, created, _developer_balance(devnet)), flush=True)
        while True:
            time.sleep(POLL_S)
            network.watch()
    except (KeyboardInterrupt, _Stop):
        note("stopping the devnet ...")
        return 0
    finally:
        with _signals_deferred():
            network.stop()
        signal.signal(signal.SIGTERM, previous)
        note("devnet stopped")
