"""The REST gateway (DESIGN §6) assembled: one FastAPI app per gateway process.

What goes into it, each in its own module: the bus links (`gateway`), the routes by area
(`routes/`), the one error shape (`errors`), the OpenAPI document (`openapi`) and its page
(`docs`), the dashboard (`dashboard`), and at the edge, outermost first: request id, rate
limit, metrics and access log (`edge`), the body size limit (`runtime.http_edge`), the
budget of large bodies handled at once (`bodybudget`), CORS when configured.

The gateway is stateless: it does the stateless half of every submission itself (strict
JSON validation, chain id, signature) so that state only ever sees verified transactions,
and so that running more gateways adds verification capacity.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import zmq.asyncio
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from common import __version__
from common.errors import Malformed
from common.genesis import Genesis
from runtime.config import NodeConfig, load_config, load_genesis
from runtime.http_edge import BodyLimit
from runtime.service import log_request_ids, setup_logging
from services.api import dashboard, docs, errors, metrics, openapi, routes
from services.api.bodybudget import BodyBudget
from services.api.edge import Edge
from services.api.gateway import Gateway
from services.api.hotroutes import HotRoutes

log = logging.getLogger("ccoin.api")

MAX_BODY = 4 * 1024 * 1024
CONFIG_ENV = "CCOIN_API_CONFIG"
LOG_LEVEL_ENV = "CCOIN_API_LOG_LEVEL"


def create_app(config: NodeConfig, chain_id: int, *, body_limit: int = MAX_BODY,
               ctx: zmq.asyncio.Context | None = None,
               genesis: Genesis | None = None) -> FastAPI:
    """The gateway app for one node; `chain_id` is the genesis `network_id`. `ctx` is the
    ZeroMQ context of its bus links (by default its own, made at startup); `genesis` the
    chain's, when at hand (readiness needs its block interval)."""
    gw = Gateway(config, chain_id, ctx, genesis)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await gw.start()
        log.info("api gateway for chain %d, state at %s, wallet %r", chain_id,
                 config.endpoint("state"), gw.wallet)
        try:
            yield
        finally:
            await gw.close()
            metrics.worker_exit(os.getpid())

    log_request_ids()
    # /docs is served by `docs` from packaged assets (FastAPI's own loads them from a CDN)
    app = FastAPI(title="ccoin node API", version=__version__, lifespan=lifespan,
                  description=openapi.DESCRIPTION, openapi_tags=openapi.TAGS,
                  docs_url=None, redoc_url=None)
    app.state.gateway = gw
    app.include_router(dashboard.router)  # the web dashboard at `/`
    routes.include(app)
    errors.install(app)
    openapi.install(app)
    docs.install(app)
    app.add_middleware(HotRoutes)  # innermost: every layer below applies to them too
    if config.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(config.cors_origins),
                           allow_methods=["GET", "POST"], allow_headers=["*"])
    app.add_middleware(BodyBudget, budget=config.body_budget_mb * 2**20, body_limit=body_limit)
    app.add_middleware(BodyLimit, limit=body_limit, reject=errors.reject)
    app.add_middleware(Edge, rate=config.rate_limit, burst=config.rate_burst,
                       limit_loopback=config.rate_limit_loopback)
    return app


def app_from_config(path: str | Path) -> FastAPI:
    config = load_config(path)
    genesis = load_genesis(config.genesis_file())
    return create_app(config, genesis.network_id, genesis=genesis)


def app_from_env() -> FastAPI:
    """App factory for uvicorn workers (`services.api.app:app_from_env`, factory=True):
    each worker process builds its own app, and so its own bus clients."""
    setup_logging("api", os.environ.get(LOG_LEVEL_ENV, "INFO"))
    path = os.environ.get(CONFIG_ENV)
    if not path:
        raise Malformed(f"{CONFIG_ENV} is not set")
    return app_from_config(path)
