"""`ccoin discovery --host H --port P`: run the discovery service in the foreground (the
seed's `twistd discovery -p 4444 -h 0.0.0.0`)."""

from __future__ import annotations

import argparse
from typing import Any

from tools.cli.util import check_port_free, note


def register(sub: Any) -> None:
    from services.discovery.__main__ import add_arguments

    p = sub.add_parser("discovery", help="run the discovery service (HTTP, default port 4444)")
    add_arguments(p)
    p.set_defaults(func=cmd_discovery)


def cmd_discovery(args: argparse.Namespace) -> int:
    from services.discovery.__main__ import serve

    check_port_free(args.host, args.port, "listen")
    note(f"discovery service on http://{args.host}:{args.port} "
         f"(nodes expire after {args.ttl:g} s); Ctrl-C stops it")
    serve(args)
    return 0
