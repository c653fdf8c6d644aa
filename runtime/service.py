"""What every ccoin service process shares: argument parsing, JSON logs, signal handling.

A service's `__main__` is `run_service("state", main)` where `main(config)` is a coroutine
that runs until cancelled. SIGTERM/SIGINT cancel it, so `finally` blocks run (sockets
closed, LevelDB closed) before the process exits 0, which is what supervisord expects.

A service whose server owns its event loop (the api gateway under uvicorn) uses the sibling
`run_server("api", serve)`: the same arguments, logging and config errors, then
`serve(config, args)` runs in the foreground and a SIGTERM still ends the process with 0.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import signal
import sys
import time
from collections.abc import Callable, Coroutine
from types import FrameType
from typing import Any

from common.errors import CcoinError
from runtime.bus import REQUEST_ID
from runtime.config import NodeConfig, load_config


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ("request_id", "peer", "height", "hash"):
            if hasattr(record, key):
                doc[key] = getattr(record, key)
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc)


_request_ids_logged = False


def log_request_ids() -> None:
    """Make every log record carry the id of the request being handled, if any (`request_id`
    in the JSON log); once per process."""
    global _request_ids_logged
    if _request_ids_logged:
        return
    _request_ids_logged = True
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        rid = REQUEST_ID.get()
        if rid and not hasattr(record, "request_id"):
            record.request_id = rid
        return record

    logging.setLogRecordFactory(factory)


def setup_logging(service: str, level: str = "INFO") -> None:
    log_request_ids()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def now_ms() -> int:
    """Wall clock in milliseconds: the only clock read consensus inputs come from."""
    return time.time_ns() // 1_000_000


# A service allocates small acyclic objects by the hundred thousand (a Transaction for each
# transaction decoded, a tuple for each msgpack array) and hardly ever a cycle. At CPython's
# default gen-0 threshold (700) a collection ran every few hundred transactions, walking
# every young object: 1.5 of state's 12.5 us per transaction imported. A collection every
# 50,000 allocations costs a few MB of garbage held at most; what start-up built (modules,
# genesis, config) is frozen out of every collection. Measured by make bench, A/B in one
# session: sync 0.55-0.59 -> 0.59-0.62 of the verify ceiling, end to end 0.33-0.37 -> 0.35-0.40.
GC_THRESHOLDS = (50_000, 20, 10)


def tune_collector() -> None:
    """Freeze what exists now and collect young objects in larger rounds (see above)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _start(name: str, argv: list[str] | None) -> tuple[argparse.Namespace, NodeConfig]:
    """`--config FILE [--log-level L]`, JSON logs, and the config read; a config that cannot
    be read ends the process with one line and status 2."""
    parser = argparse.ArgumentParser(prog=f"ccoin-{name}")
    parser.add_argument("--config", required=True, help="node config file (ccoin.json)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    setup_logging(name, args.log_level)
    try:
        config = load_config(args.config)
    except CcoinError as exc:
        print(f"ccoin-{name}: {exc}", file=sys.stderr)
        sys.exit(2)
    tune_collector()
    return args, config


def exit_zero_on_sigterm() -> None:
    """Make a SIGTERM end the process with status 0 instead of -15.

    uvicorn catches SIGTERM, shuts down gracefully and then raises the signal again so the
    previous handler acts on it; with the default one the process dies of the signal and
    supervisord reports every ordinary stop as "terminated by SIGTERM". A stop is what
    SIGTERM asks for, so once the server is down it is a clean exit, and a SIGTERM that
    arrives before uvicorn takes over ends the process at once all the same."""

    def stop(_signum: int, _frame: FrameType | None) -> None:
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)


def run_server(name: str, serve: Callable[[NodeConfig, argparse.Namespace], None],
               argv: list[str] | None = None) -> None:
    """`run_service` for a server that runs its own event loop and signal handling
    (uvicorn): `serve(config, args)` blocks until the server stops. A `CcoinError` it
    raises before serving (e.g. an unreadable genesis) ends the process like a config
    error: one line, status 2."""
    args, config = _start(name, argv)
    exit_zero_on_sigterm()
    try:
        serve(config, args)
    except CcoinError as exc:
        print(f"ccoin-{name}: {exc}", file=sys.stderr)
        sys.exit(2)


def run_service(name: str, main: Callable[[NodeConfig], Coroutine[Any, Any, None]],
                argv: list[str] | None = None) -> None:
    args, config = _start(name, argv)
    log = logging.getLogger(f"ccoin.{name}")

    async def runner() -> None:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        assert task is not None
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        log.info("starting", extra={})
        try:
            await main(config)
        except asyncio.CancelledError:
            log.info("stopping")

    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    try:
        asyncio.run(runner())
    except CcoinError as exc:
        log.error("fatal: %s", exc)
        sys.exit(1)
