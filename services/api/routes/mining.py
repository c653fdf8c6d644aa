"""Routes of the node's miner: its status; starting and stopping it are admin routes."""

from __future__ import annotations

from starlette.responses import Response

from common import messages
from services.api import node_replies
from services.api.gateway import Gateway
from services.api.replies import JSONResponse
from services.api.routes.deps import GW, admin_router, api_router

router = api_router()
admin = admin_router()
ROUTERS = (router, admin)


@router.get("/mining", response_model=node_replies.MINING_OUT.model, tags=["mining"])
async def mining(gw: Gateway = GW) -> Response:
    return JSONResponse(node_replies.mining_json(await gw.miner.status(fresh=True)))


async def _set_mining(gw: Gateway, enabled: bool) -> Response:
    reply = await gw.miner.command(messages.SetMining(enabled), messages.MiningReply)
    return JSONResponse(node_replies.mining_json(reply))


@admin.post("/mining/start", response_model=node_replies.MINING_OUT.model, tags=["mining"])
async def mining_start(gw: Gateway = GW) -> Response:
    return await _set_mining(gw, True)


@admin.post("/mining/stop", response_model=node_replies.MINING_OUT.model, tags=["mining"])
async def mining_stop(gw: Gateway = GW) -> Response:
    return await _set_mining(gw, False)
