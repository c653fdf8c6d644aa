"""The `ccoin` command line (DESIGN §7).

    ccoin account new|list|import|export   keys in the encrypted keystore
    ccoin genesis init                build and store the genesis block
    ccoin node start|status|stop|restart|logs|url
    ccoin node check|reindex          the chain database checked against its blocks; rebuilt
    ccoin discovery                   the discovery service (HTTP)
    ccoin devnet                      discovery plus N local nodes, in the foreground
    ccoin quickstart                  what `make run` does
    ccoin status|balance|block|tx|send   a node's REST API
    ccoin sign                        sign a transfer here: the body of POST /api/v1/txs
    ccoin history|mempool|watch       an account's history, the pool, live events
    ccoin peers|sync|mining|consensus   the node's network, miner and PoA health
    ccoin authority list|propose|discard   the PoA authorities and the votes that change them
    ccoin bench                       the benchmark (tools.bench)

Every failure is one line on stderr (`error: ...`) and a non-zero exit status: 1 when the
command failed, 2 when the command line is wrong, 130 on Ctrl-C. A command group without
its command (`ccoin`, `ccoin node`) prints its help and exits 2. Set CCOIN_DEBUG=1 to see
the traceback of an unexpected error.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import traceback
from typing import Any, NoReturn

from common.errors import CcoinError
from tools.cli.util import UsageError

PROG = "ccoin"
COMMAND = "COMMAND"  # the metavar of every command group's subcommand


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (plus a hint), not the whole usage text;
    a command group given no command (`ccoin`, `ccoin node`) prints its help instead."""

    def error(self, message: str) -> NoReturn:
        if message.startswith(f"the following arguments are required: {COMMAND}"):
            self.print_help()
            raise SystemExit(2)
        sys.stderr.write(f"error: {message} (see `{self.prog} --help`)\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    from tools.cli import account, authority, client, genesis, network, node, sign
    from tools.cli import devnet as devnet_cmd
    from tools.cli import discovery as discovery_cmd

    parser = Parser(prog=PROG, description="ccoin: a PoA/PoW cryptocurrency node")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                parser_class=Parser)
    account.register(sub)
    genesis.register(sub)
    node.register(sub)
    client.register(sub)
    sign.register(sub)
    network.register(sub)
    authority.register(sub)
    discovery_cmd.register(sub)
    devnet_cmd.register(sub)
    sub.add_parser("bench", help="run the benchmark (ccoin bench --help)", add_help=False)
    return parser


def run_bench(argv: list[str]) -> int:
    """`ccoin bench ...` is `tools.bench.main(argv)`, once that module exists."""
    if importlib.util.find_spec("tools.bench") is None:
        raise CcoinError("bench is not available in this installation yet")
    import tools.bench as bench

    entry: Any = bench.main  # returns None or an exit status
    return int(entry(argv) or 0)


def _dispatch(argv: list[str]) -> int:
    if argv and argv[0] == "bench":
        return run_bench(argv[1:])
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        return _dispatch(argv)
    except CcoinError as exc:
        # the node's errors say their code ("nonce_too_low: ..."); local ones read better
        # without one
        print(f"error: {exc.code}: {exc}" if exc.remote else f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, UsageError) else 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `ccoin account list | head`: the reader left; not an error worth a message
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the final flush
        except OSError:
            pass
        return 1
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, no trace
        if os.environ.get("CCOIN_DEBUG"):
            traceback.print_exc()
        print(f"error: unexpected {type(exc).__name__}: {exc} (CCOIN_DEBUG=1 shows details)",
              file=sys.stderr)
        return 1
