"""`python -m services.discovery --host H --port P [--ttl S]`: the discovery service.

The same as `ccoin discovery` (which calls `serve`); the default port is the seed's 4444 and
the default host, as in the seed, every interface."""

from __future__ import annotations

import argparse
import logging
import sys

from runtime.service import exit_zero_on_sigterm, setup_logging
from services.discovery.registry import DEFAULT_MAX_NETWORKS, DEFAULT_MAX_NODES, DEFAULT_TTL_MS

DEFAULT_HOST = "0.0.0.0"
DEFAULT_PORT = 4444


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help=f"address to listen on (default {DEFAULT_HOST}: every interface)")
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT,
                        help=f"TCP port (default {DEFAULT_PORT})")
    parser.add_argument("--ttl", type=_seconds, default=DEFAULT_TTL_MS / 1000, metavar="SECONDS",
                        help="an entry not renewed for this long expires "
                             f"(default {DEFAULT_TTL_MS // 1000})")
    parser.add_argument("--max-nodes", type=_count, default=DEFAULT_MAX_NODES,
                        help=f"live nodes per network (default {DEFAULT_MAX_NODES})")
    parser.add_argument("--max-networks", type=_count, default=DEFAULT_MAX_NETWORKS,
                        help=f"networks served (default {DEFAULT_MAX_NETWORKS})")
    parser.add_argument("--log-level", default="INFO")


def _port(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0.05 <= value <= 86_400:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0.05 and 86400 seconds")
    return value


def _count(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 1 <= value <= 1_000_000:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 1 and 1000000")
    return value


def serve(args: argparse.Namespace) -> None:
    """Run the service in the foreground until SIGINT/SIGTERM."""
    # here, not at the top: `ccoin` builds its parser from `add_arguments` for every command,
    # and fastapi and uvicorn take most of a second to import
    import uvicorn

    from services.discovery.app import create_app, make_registry

    setup_logging("discovery", args.log_level)
    registry = make_registry(int(args.ttl * 1000), args.max_nodes, args.max_networks)
    logging.getLogger("ccoin.discovery").info(
        "discovery on %s:%d (ttl %g s, at most %d nodes per network)", args.host, args.port,
        args.ttl, args.max_nodes)
    exit_zero_on_sigterm()
    # h11 rather than httptools: a heartbeat every few seconds per node needs no speed, and
    # h11 bounds a request's headers (16 KiB here), so no request grows without limit
    uvicorn.run(create_app(registry), host=args.host, port=args.port, loop="uvloop",
                http="h11", ws="none", lifespan="on", proxy_headers=False,
                server_header=False, log_config=None, log_level=args.log_level.lower(),
                access_log=False, timeout_graceful_shutdown=2,
                h11_max_incomplete_event_size=16 * 1024)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="ccoin-discovery",
                                     description="ccoin discovery service (HTTP)")
    add_arguments(parser)
    args = parser.parse_args(argv)
    serve(args)
    sys.exit(0)


if __name__ == "__main__":
    main()
