"""Routes of the gateway itself: `/health` (the process answers, and its link to state) and
`/metrics` (Prometheus)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from starlette.responses import Response

from common import __version__, messages
from common.errors import CcoinError, Unavailable
from runtime.service import now_ms
from services.api import metrics, replies
from services.api.gateway import READ_TIMEOUT
from services.api.replies import JSONResponse
from services.api.routes.deps import gateway_of

HEALTH_TIMEOUT = READ_TIMEOUT  # a shorter one would reset the shared socket under load
HEALTH_WINDOW = 100  # blocks the chain-health figures look at (as GET /consensus by default)
METRICS_EXAMPLE = "# TYPE ccoin_chain_height gauge\nccoin_chain_height 42.0\n"

router = APIRouter(tags=["node"])
ROUTERS = (router,)


@router.get("/health", response_model=replies.HEALTH.model,
            responses={503: {"model": replies.HEALTH.model}})
async def health(request: Request) -> Response:
    gw = gateway_of(request)
    try:
        await gw.ask(messages.ServicePing(), messages.ServicePong, timeout=HEALTH_TIMEOUT,
                     retries=0)
    except CcoinError as exc:
        return JSONResponse(replies.HEALTH.render(
            status="unavailable", gateway="ok", state="unavailable", version=__version__,
            error=Unavailable(exc.message)), status_code=503, headers={"Retry-After": "1"})
    return JSONResponse(replies.HEALTH.render(status="ok", gateway="ok", state="ok",
                                              version=__version__))


@router.get("/metrics", response_class=Response, summary="Prometheus metrics",
            responses={200: {"description": "Prometheus text format 0.0.4",
                             "content": {"text/plain": {"example": METRICS_EXAMPLE}}}})
async def metrics_route(request: Request) -> Response:
    """Prometheus text format: node-wide figures read now, and this gateway's counters."""
    gw = gateway_of(request)
    state: messages.StatusReply | None
    health: messages.SignersReply | None
    try:
        state, health = await asyncio.gather(
            gw.ask(messages.GetStatus(), messages.StatusReply, retries=0),
            gw.ask(messages.GetSigners(HEALTH_WINDOW, now_ms()), messages.SignersReply,
                   retries=0))
    except CcoinError:
        state = health = None
    peers, mining = await asyncio.gather(gw.p2p.status(), gw.miner.status())
    families = metrics.node_families(state, peers, peers is not None, mining,
                                     dict(gw.hub.topic_seq), __version__, health)
    return Response(metrics.exposition(families), media_type=metrics.CONTENT_TYPE)
