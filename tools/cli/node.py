"""`ccoin node start|status|stop|restart|logs|url|keys` (the seed's cnode, under supervisord),
`ccoin node check|reindex` (tools/cli/repair.py) and `ccoin quickstart` (what `make run`
calls)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from client import Client
from common.errors import CcoinError
from common.genesis import Genesis
from runtime import buscurve
from runtime.config import NodeConfig, load_config, load_genesis
from runtime.keystore import SCRYPT_N, Keystore
from runtime.ports import bind_error
from tools import supervisor as sv
from tools.cli import repair
from tools.cli.genesis import init_genesis
from tools.cli.logs import SOURCES, cmd_logs, level_arg
from tools.cli.util import (
    NODE_CONFIG,
    CliError,
    Location,
    api_url_of,
    block_hash_arg,
    check_port_free,
    init_command,
    note,
    port_number,
    positive_int,
    print_json,
    require_config,
    set_config_port,
)

QUICKSTART_INTERVAL_MS = 2000
READY_TIMEOUT = 8.0  # the ready route waits up to 3 s for state


def add_config_args(p: argparse.ArgumentParser, short: bool = False) -> None:
    """--config FILE | --data DIR (default $CCOIN_DATA); `short`: -c for --config too (the
    seed's cnode)."""
    where = p.add_mutually_exclusive_group()
    where.add_argument(*(("-c", "--config") if short else ("--config",)), metavar="FILE",
                       help="node config (node.json)")
    where.add_argument("--data", metavar="DIR",
                       help="node data dir holding node.json (default $CCOIN_DATA)")


def add_service_arg(p: argparse.ArgumentParser, verb: str) -> None:
    """The optional SERVICE of `node status|stop|restart`: one of the node's services (an
    unknown one is refused with the list)."""
    names = ", ".join(sv.SERVICE_TABLE)
    p.add_argument("service", nargs="?", choices=tuple(sv.SERVICE_TABLE), metavar="SERVICE",
                   help=f"the service to {verb}: one of {names} (default: all)")


def register(sub: Any) -> None:
    node = sub.add_parser("node", help="run and control a node (supervisord)")
    nsub = node.add_subparsers(dest="node_cmd", metavar="COMMAND", required=True)

    start = nsub.add_parser(
        "start", help="start the node in the foreground",
        description="The seed's `cnode -c FILE -t TYPE -p PORT` works as it is: -c is "
                    "--config, -t is --type, -p is --p2p-port (the seed's node port: where "
                    "it talks to peers). Ports given here override the config's for this "
                    "run.")
    add_config_args(start, short=True)
    start.add_argument("-t", "--type", "--node_type", dest="node_type", choices=sv.NODE_TYPES,
                       default="basic", help="validator also runs the miner (default basic)")
    start.add_argument("--port", type=port_number, help="API port (overrides the config)")
    start.add_argument("-p", "--p2p-port", type=port_number, metavar="PORT",
                       help="p2p port (overrides the config)")
    start.add_argument("--assume-valid", type=block_hash_arg, metavar="HASH",
                       help="skip transaction signatures of this block and its ancestors "
                            "while syncing (overrides sync.assume_valid; \"\" turns it off)")
    start.add_argument("--services", metavar="LIST",
                       help="comma-separated subset to run on this host, e.g. api")
    start.add_argument("--dry-run", action="store_true",
                       help="write run/supervisord.conf, print its path, start nothing")
    start.set_defaults(func=cmd_start)

    status = nsub.add_parser("status", help="state of each service, and the node's "
                                            "readiness")
    add_service_arg(status, "show")
    add_config_args(status)
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(func=cmd_status)

    stop = nsub.add_parser("stop", help="stop the node (or one service)")
    add_service_arg(stop, "stop")
    add_config_args(stop)
    stop.set_defaults(func=cmd_stop)

    restart = nsub.add_parser("restart", help="restart one service (or all)")
    add_service_arg(restart, "restart")
    add_config_args(restart)
    restart.set_defaults(func=cmd_restart)

    logs = nsub.add_parser("logs", help="the services' logs, merged by time (-f follows them)")
    logs.add_argument("services", nargs="*", metavar="SERVICE",
                      help=f"whose logs: {', '.join(SOURCES)} (default all)")
    add_config_args(logs)
    logs.add_argument("-f", "--follow", action="store_true",
                      help="keep printing new lines until Ctrl-C")
    logs.add_argument("-n", "--lines", type=positive_int, default=50, metavar="N",
                      help="show the last N lines first (default 50)")
    logs.add_argument("--level", type=level_arg, metavar="LEVEL",
                      help="this level and above: debug, info, warning, error, critical")
    logs.add_argument("--grep", metavar="TEXT",
                      help="only messages containing TEXT (case-insensitive)")
    logs.add_argument("--request-id", metavar="ID",
                      help="only lines of the request with this X-Request-ID")
    logs.add_argument("--json", action="store_true", help="print the JSON lines themselves")
    logs.set_defaults(func=cmd_logs)

    url = nsub.add_parser("url", help="print the node's API URL (from its node.json), "
                                      "e.g. for curl")
    add_config_args(url)
    url.set_defaults(func=cmd_url)

    keys = nsub.add_parser(
        "keys", help="print this node's bus key (made the first time), for another host",
        description="A gateway on another host (`node start --services api`) reaches the "
                    "chain host's tcp:// bus with CurveZMQ: put the chain host's key in the "
                    "gateway's bus.server_key, and the gateway's key in the chain host's "
                    "bus.allow.")
    add_config_args(keys)
    keys.add_argument("--json", action="store_true", help="print JSON")
    keys.set_defaults(func=cmd_keys)

    repair.register(nsub, add_config_args)  # check, reindex

    quick = sub.add_parser("quickstart",
                           help="create (first time) and start a local validator node")
    quick.add_argument("--data", metavar="DIR", default="data", help="data dir (default data)")
    quick.add_argument("--port", type=port_number,
                       help="API port (default 8000 for a new chain, else the config's)")
    quick.add_argument("--p2p-port", type=port_number, metavar="PORT",
                       help="p2p port (default 30333 for a new chain, else the config's)")
    quick.add_argument("--dry-run", action="store_true", help=argparse.SUPPRESS)
    quick.set_defaults(func=cmd_quickstart)


# --- start ----------------------------------------------------------------------------------


def _check_validator(config: NodeConfig, genesis: Genesis) -> None:
    """Fail here, in one line, rather than with a miner that supervisord marks FATAL."""
    if not config.account_address:
        raise CliError("a validator needs client.account_address in the node config")
    address = config.account_address.hex()
    if genesis.is_poa:
        # an address outside the genesis miners may be voted in later: its miner waits
        store = Keystore(config.keystore_dir)
        if not store.path_of(config.account_address).is_file():
            raise CliError(f"no key for {address} in {config.keystore_dir}")
        store.load(config.account_address, config.password())


def _refuse_running(paths: sv.Paths, base: Path) -> None:
    control = sv.Control(paths, timeout=2.0)
    if control.is_running():
        pid = control.pidfile_pid()
        raise CliError(f"a node is already running on {base}"
                       + (f" (supervisord pid {pid})" if pid else "")
                       + "; stop it with `ccoin node stop`")


def prepare_start(config: NodeConfig, node_type: str, port: int | None,
                  only: tuple[str, ...] = (), p2p_port: int | None = None,
                  assume_valid: bytes | None = None) -> tuple[Path, list[str]]:
    """Every check a start needs, then write run/supervisord.conf; return it and the
    services it runs."""
    names = sv.select_services(node_type, only)
    paths = sv.Paths.of(config)
    sv.check_socket_path(paths)
    _refuse_running(paths, config.base_path)
    assert config.config_path is not None
    left = sv.leftover_services([config.config_path, paths.effective_config])
    if left:
        raise CliError("services of an earlier run of this node are still running ("
                       + ", ".join(f"{name} pid {pid}" for pid, name in left)
                       + "); stop them first")
    if not config.genesis_file().exists():
        raise CliError(f"no genesis file {config.genesis_file()}: create the chain first "
                       f"with `{init_command(config.base_path)}`")
    genesis = load_genesis(config.genesis_file())
    if "miner" in names:
        _check_validator(config, genesis)
    if "api" in names:
        check_port_free(config.api_host, port if port is not None else config.api_port,
                        "serve the API")
    listen = p2p_port if p2p_port is not None else config.p2p_port
    if "p2p" in names and not config.p2p_outbound_only and listen:
        # p2p would exit at every start and stop the node (tools.fatal): say so now
        reason = bind_error(config.p2p_host, listen)
        if reason is not None:
            raise CliError(f"p2p cannot listen on {config.p2p_host}:{listen}: "
                           f"{reason} (free the port, pick another with --p2p-port or "
                           "p2p.port, or set p2p.outbound_only to only dial out)")
    _check_bus(config, names)
    effective = sv.effective_config(config, paths, port, p2p_port, assume_valid)
    if effective == config.config_path:
        paths.effective_config.unlink(missing_ok=True)  # a stale --port override
    progs = sv.programs(effective, names)
    conf = sv.write_conf(paths, progs, identifier=f"ccoin:{config.base_path}", watch=True)
    return conf, names


def _check_bus(config: NodeConfig, names: list[str]) -> None:
    """The bus keys before any service needs them, and a gateway's one required setting: a
    host that runs no state service reaches another host's, whose key it must know."""
    if not buscurve.uses_tcp(config):
        return
    try:
        buscurve.load_keys(config.base_path)
    except CcoinError as exc:
        raise CliError(exc.message) from None
    endpoint = config.endpoint("state")
    if ("state" not in names and not config.bus_server_key
            and buscurve.mode(endpoint, config.bus_plaintext_loopback) == buscurve.CURVE):
        raise CliError(f"this host runs no state service and reaches {endpoint} with "
                       "CurveZMQ: set bus.server_key to the chain host's bus key (`ccoin "
                       "node keys` there prints it), and add this host's key to its "
                       "bus.allow")


def start_node(config: NodeConfig, node_type: str, port: int | None,
               only: tuple[str, ...] = (), dry_run: bool = False,
               p2p_port: int | None = None, assume_valid: bytes | None = None) -> int:
    conf, names = prepare_start(config, node_type, port, only, p2p_port, assume_valid)
    if dry_run:
        print(conf)
        return 0
    if "api" in names:
        note(f"dashboard: {api_url_of(config)}/  API: {api_url_of(config)}/api/v1  "
             "(OpenAPI at /docs)")
    note(f"starting {node_type} node ({', '.join(names)}) under supervisord; "
         f"logs in {config.log_dir}; Ctrl-C stops it")
    return sv.run_supervisord(conf, sv.Paths.of(config))


def cmd_start(args: argparse.Namespace) -> int:
    config = require_config(args, starting=True)
    only = tuple(s.strip() for s in args.services.split(",") if s.strip()) \
        if args.services else ()
    return start_node(config, args.node_type, args.port, only, args.dry_run, args.p2p_port,
                      args.assume_valid)


def cmd_url(args: argparse.Namespace) -> int:
    print(api_url_of(require_config(args)))
    return 0


# --- control --------------------------------------------------------------------------------


def _control(args: argparse.Namespace) -> sv.Control:
    return sv.Control(sv.Paths.of(require_config(args)))


def _uptime(seconds: int) -> str:
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02}:{s:02}"


def api_lines(config: NodeConfig) -> list[str]:
    """What the node's API says of it, a line each: its readiness (`GET /api/v1/ready`, or
    why it is unknown) and, when assume-valid is on, what sync skipped for it (`GET
    /api/v1/status`: `node start --assume-valid` is in no config file `node status` reads)."""
    lines: list[str] = []
    try:
        with Client(api_url_of(config), timeout=READY_TIMEOUT) as api:
            lines.append(f"readiness: {api.ready().line()}")
            av = api.status().assume_valid
            assumed = av.line() if av else None
            if assumed:
                lines.append(f"assume-valid: {assumed}")
    except CcoinError as exc:
        if not lines:  # a status that fails after the readiness is said by that line
            lines.append(f"readiness: unknown ({exc.message})")
    return lines


def cmd_status(args: argparse.Namespace) -> int:
    config = require_config(args)
    infos = sv.Control(sv.Paths.of(config)).status(args.service)
    if args.json:
        print_json([i.as_json() for i in infos])
        return 0
    width = max(len(i.name) for i in infos) if infos else 0
    for i in infos:
        if i.state == "RUNNING":
            detail = f"pid {i.pid}, uptime {_uptime(i.uptime)}"
        else:
            detail = i.description
        print(f"{i.name:<{width}}  {i.state:<9} {detail}")
    if args.service is None:
        attached = buscurve.attachment(config.endpoint("state"), config.bus_plaintext_loopback)
        if attached:
            print(f"chain host: {attached}")
        for line in api_lines(config):
            print(line)
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    config = require_config(args)
    try:
        public, _ = buscurve.load_keys(config.base_path)
    except CcoinError as exc:
        raise CliError(exc.message) from None
    server = config.bus_server_key or public
    if args.json:
        print_json({"bus_key": public.hex(), "bus_key_file": str(buscurve.key_file(
            config.base_path)), "bus_server_key": server.hex(),
            "bus_allow": [k.hex() for k in config.bus_allow]})
        return 0
    print(f"bus key         {public.hex()}")
    if server != public:
        print(f"bus server key  {server.hex()}  (bus.server_key: the chain host this "
              "gateway reaches)")
    note("on a gateway host: add the bus key to the chain host's node.json "
         '"bus": {"allow": [...]}; on the chain host: give it to each gateway as '
         '"bus": {"server_key": ...}')
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    control = _control(args)
    if args.service:
        control.stop(args.service)
        note(f"{args.service} stopped")
    else:
        pid = control.shutdown()
        note(f"node stopped (supervisord pid {pid})")
    return 0


def cmd_restart(args: argparse.Namespace) -> int:
    control = _control(args)
    control.restart(args.service)
    note(f"{args.service or 'all services'} restarted")
    return 0


# --- quickstart ------------------------------------------------------------------------------


def _clean_data(data_arg: str) -> str:
    """The Makefile's command that forgets this data dir (its DATA defaults to `data`)."""
    return "make clean-data" if data_arg.rstrip("/") == "data" else \
        f"make clean-data DATA={data_arg}"


def _banner(config: NodeConfig, data_arg: str, developer: str, funds: int | None,
            created: bool) -> None:
    url = api_url_of(config)
    d = data_arg
    lines = [
        "",
        f"  ccoin local validator node ({'new chain' if created else 'resuming'} in {d})",
        f"  Dashboard         {url}/",
        f"  API               {url}/api/v1   (OpenAPI: {url}/docs)",
        f"  validator         {config.account_address.hex()}",
    ]
    if developer:
        lines.append(f"  developer account {developer}"
                     + (f" (genesis balance {funds})" if funds is not None else ""))
        lines += [
            "",
            "  Send coins (signs locally with the developer key, waits for the block):",
            f"    ccoin send --data {d} --from {developer} \\",
            "               --to <40-hex address> --amount 100 --wait",
            f"  New account:   ccoin account new --data {d}",
            f"  Balance:       ccoin balance --data {d} <address>",
        ]
    lines += [
        f"  Node status:   ccoin node status --data {d}",
        f"  Stop: Ctrl-C.  Forget this chain: {_clean_data(d)}",
        "",
    ]
    print("\n".join(lines), flush=True)


def cmd_quickstart(args: argparse.Namespace) -> int:
    from tools.devchain import DEV_FUNDS, create_dev_chain

    data = Path(args.data).expanduser().resolve()
    config_path = data / NODE_CONFIG
    _refuse_running(sv.Paths(data / "run", data / "logs"), data)
    created = False
    if not config_path.is_file():
        if data.exists() and any(data.iterdir()):
            raise CliError(f"{data} exists but has no {NODE_CONFIG}: not a ccoin data dir "
                           "(remove it or pick another --data)")
        sv.check_socket_path(sv.Paths(data / "run", data / "logs"))
        check_port_free("127.0.0.1", args.port or 8000, "serve the API")
        note(f"creating a new local chain in {data} ...")
        create_dev_chain(data, api_port=args.port or 8000, p2p_port=args.p2p_port,
                         interval_ms=QUICKSTART_INTERVAL_MS, scrypt_n=SCRYPT_N)
        created = True
    else:
        config = load_config(config_path)
        if args.port is not None and config.api_port != args.port:
            set_config_port(config_path, "api", args.port)
        if args.p2p_port is not None and config.p2p_port != args.p2p_port:
            set_config_port(config_path, "p2p", args.p2p_port)
    config = load_config(config_path)
    loc = Location(config.base_path, config, config.keystore_dir)
    try:
        block, genesis, _ = init_genesis(loc, None)
    except CcoinError:
        if created:
            note(f"(the new chain's files are in {data}; `{_clean_data(args.data)}` removes "
                 "them)")
        raise
    if created:
        h = block.header
        note(f"Genesis block has been mined: nonce={h.nonce}, pow_hash={h.seal_hash.hex()}, "
             f"hash={block.hash.hex()}")
    dev_file = data / "developer.txt"
    developer = dev_file.read_text().strip() if dev_file.is_file() else ""
    funds = dict((a.hex(), b) for a, b in genesis.alloc).get(developer)
    if funds is None and developer:
        funds = DEV_FUNDS if created else None
    # the banner comes before the services start, and before any failure to start them
    conf, names = prepare_start(config, "validator", None)
    _banner(config, args.data, developer, funds, created)
    if args.dry_run:
        print(conf)
        return 0
    note(f"starting validator node ({', '.join(names)}) under supervisord; "
         f"logs in {config.log_dir}; Ctrl-C stops it")
    return sv.run_supervisord(conf, sv.Paths.of(config))

