"""`python -m services.api --config node.json`: the REST gateway under uvicorn.

Arguments, logging, config errors and SIGTERM are `runtime.service.run_server`'s, as for
every service. uvicorn runs with uvloop and httptools (DESIGN §1) and with
`proxy_headers=False`, so that `request.client` is the real socket peer and the admin check
cannot be fooled by an `X-Forwarded-For` sent through a local proxy (DESIGN §10). With
`api.workers` > 1 the workers are separate processes built from an app factory, each with its
own bus clients, and Prometheus metrics run in multiprocess mode (a fresh
`run/prometheus-api/` directory). WebSockets (`/api/v1/ws`) are served by the sans-I/O
`websockets` implementation.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
from typing import Any

import uvicorn

from runtime.config import NodeConfig, load_genesis
from runtime.service import run_server
from services.api.app import CONFIG_ENV, LOG_LEVEL_ENV, create_app
from services.api.metrics import MULTIPROC_ENV


def serve(config: NodeConfig, args: argparse.Namespace) -> None:
    genesis = load_genesis(config.genesis_file())
    settings: dict[str, Any] = dict(
        host=config.api_host, port=config.api_port, loop="uvloop", http="httptools",
        ws="websockets-sansio", lifespan="on", proxy_headers=False, server_header=False,
        log_config=None, log_level=args.log_level.lower(), access_log=False,
        timeout_graceful_shutdown=5,
    )
    logging.getLogger("ccoin.api").info(
        "serving on %s:%d with %d worker(s)", config.api_host, config.api_port,
        config.api_workers)
    if config.api_workers > 1:
        metrics_dir = config.run_dir / "prometheus-api"
        shutil.rmtree(metrics_dir, ignore_errors=True)  # the last run's workers are gone
        metrics_dir.mkdir(parents=True)
        os.environ[MULTIPROC_ENV] = str(metrics_dir)
        os.environ[CONFIG_ENV] = str(config.config_path or args.config)
        os.environ[LOG_LEVEL_ENV] = args.log_level
        uvicorn.run("services.api.app:app_from_env", factory=True,
                    workers=config.api_workers, **settings)
    else:
        uvicorn.run(create_app(config, genesis.network_id, genesis=genesis), **settings)


def main(argv: list[str] | None = None) -> None:
    run_server("api", serve, argv)


if __name__ == "__main__":
    main()
