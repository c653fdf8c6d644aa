"""Routes of the gateway itself: `/health` (liveness: the process answers, and its link to
state), `/api/v1/ready` (readiness: the node is doing its job, `services.api.readiness`)
and `/metrics` (Prometheus)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from starlette.responses import Response

from common import __version__, messages
from common.errors import CcoinError, StorageUnavailable, Unavailable
from runtime.service import now_ms
from services.api import metrics, node_replies, readiness
from services.api.gateway import READ_TIMEOUT, Gateway
from services.api.replies import JSONResponse
from services.api.routes.deps import GW, api_router, gateway_of

HEALTH_TIMEOUT = READ_TIMEOUT  # a shorter one would reset the shared socket under load
HEALTH_WINDOW = 100  # blocks the chain-health figures look at (as GET /consensus by default)
METRICS_EXAMPLE = "# TYPE ccoin_chain_height gauge\nccoin_chain_height 42.0\n"

router = APIRouter(tags=["node"])
api = api_router()
ROUTERS = (router, api)


@router.get("/health", response_model=node_replies.HEALTH.model,
            responses={503: {"model": node_replies.HEALTH.model}})
async def health(request: Request) -> Response:
    """Liveness: the gateway answers and reaches state. A storage problem is said: one that
    clears by itself (low disk space, a failed write) leaves the node alive, `degraded`;
    a damaged database is `unavailable` (503), as the node cannot heal it."""
    gw = gateway_of(request)
    try:
        pong = await gw.ask(messages.ServicePing(), messages.ServicePong,
                            timeout=HEALTH_TIMEOUT, retries=0)
    except CcoinError as exc:
        return JSONResponse(node_replies.HEALTH.render(
            status="unavailable", gateway="ok", state="unavailable", storage="unknown",
            version=__version__, error=Unavailable(exc.message)),
            status_code=503, headers={"Retry-After": "1"})
    if not pong.problem:
        return JSONResponse(node_replies.HEALTH.render(status="ok", gateway="ok", state="ok",
                                                  storage="ok", version=__version__))
    return JSONResponse(node_replies.HEALTH.render(
        status="unavailable" if pong.fatal else "degraded", gateway="ok", state="ok",
        storage=pong.problem, version=__version__, error=StorageUnavailable(pong.problem)),
        status_code=503 if pong.fatal else 200)


async def gather(gw: Gateway) -> readiness.Facts:
    """What the node's services answer now: state's status (one attempt, the health
    timeout), and the miner's and p2p's (their status caches, a second at most)."""

    async def state() -> tuple[messages.StatusReply | None, str]:
        try:
            return await gw.ask(messages.GetStatus(), messages.StatusReply,
                                timeout=HEALTH_TIMEOUT, retries=0), ""
        except CcoinError as exc:
            return None, exc.message

    (status, error), peers, mining = await asyncio.gather(state(), gw.p2p.status(),
                                                          gw.miner.status())
    genesis = gw.genesis
    return readiness.Facts(
        now_ms=now_ms(), state=status, state_error=error,
        has_miner=not gw.miner.absent(), miner=mining, has_p2p=not gw.p2p.absent(),
        peers=peers, outbound_only=gw.config.p2p_outbound_only,
        interval_ms=genesis.interval_ms if genesis else 0,
        allow_empty=genesis.allow_empty if genesis else True, attached=gw.attached)


@api.get("/ready", response_model=readiness.READY_OUT.model, tags=["node"],
         responses={503: {"model": readiness.READY_OUT.model,
                          "description": "not ready: `reasons` says why"}})
async def ready(gw: Gateway = GW) -> Response:
    """Readiness: 200 when every check passes, 503 with the failing checks' reasons."""
    answer = readiness.assess(await gather(gw))
    if answer.ready:
        return JSONResponse(readiness.READY_OUT.render(answer))
    return JSONResponse(readiness.READY_OUT.render(answer), status_code=503,
                        headers={"Retry-After": "1"})


@router.get("/metrics", response_class=Response, summary="Prometheus metrics",
            responses={200: {"description": "Prometheus text format 0.0.4",
                             "content": {"text/plain": {"example": METRICS_EXAMPLE}}}})
async def metrics_route(request: Request) -> Response:
    """Prometheus text format: node-wide figures read now, and this gateway's counters."""
    gw = gateway_of(request)

    async def chain_health() -> messages.SignersReply | None:
        try:
            return await gw.ask(messages.GetSigners(HEALTH_WINDOW, now_ms()),
                                messages.SignersReply, retries=0)
        except CcoinError:
            return None

    facts, health = await asyncio.gather(gather(gw), chain_health())
    families = metrics.node_families(facts.state, facts.peers, facts.peers is not None,
                                     facts.miner, dict(gw.hub.topic_seq), __version__, health)
    families += metrics.readiness_families(readiness.assess(facts))
    return Response(metrics.exposition(families), media_type=metrics.CONTENT_TYPE)
