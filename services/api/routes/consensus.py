"""Admin routes of the authority votes (Clique, common/authorities.py): what this node's miner
votes for. `GET /api/v1/consensus` (routes/chain.py) shows them with the set and the tallies."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import Request
from starlette.responses import Response

from common import messages
from runtime.service import now_ms
from services.api import chainhealth, replies, schema
from services.api.gateway import Gateway
from services.api.replies import JSONResponse
from services.api.routes.deps import GW, admin_router, read_json
from services.api.spec import request_body

admin = admin_router()
ROUTERS = (admin,)

HEALTH_WINDOW = 100  # blocks the removal warning's liveness looks at (as GET /consensus)
POW_REFUSED: dict[int | str, dict[str, Any]] = {
    409: {"model": replies.ERROR_OUT.model,
          "description": "`refused`: a proof-of-work chain has no authorities, or this node "
                         "already has 64 proposals"}}


async def _answer(gw: Gateway, request: messages.SetProposal) -> Response:
    votes, signers = await asyncio.gather(
        gw.ask(request, messages.AuthoritiesReply),
        gw.ask(messages.GetSigners(HEALTH_WINDOW, now_ms()), messages.SignersReply))
    return JSONResponse(chainhealth.votes_json(votes, signers))


@admin.post("/consensus/proposals", response_model=chainhealth.VOTES_OUT.model,
            tags=["chain"], openapi_extra=request_body(schema.PROPOSAL_IN),
            responses=POW_REFUSED)
async def propose(request: Request, gw: Gateway = GW) -> Response:
    """Make this node's miner vote to authorize (`"authorize": true`) or deauthorize an
    address (admin), replacing any proposal of this node about it. Its authority casts the
    vote in the next block it seals (one vote per block, its proposals in turn), unless the
    vote is already true or already cast; a proposal passes when more than half of the
    authorities voted alike. Kept across restarts until discarded. Answers the votes as
    `GET /consensus` shows them."""
    doc = schema.PROPOSAL_IN.parse(await read_json(request))
    return await _answer(gw, messages.SetProposal(doc["address"], doc["authorize"], False))


@admin.delete("/consensus/proposals/{address}", response_model=chainhealth.VOTES_OUT.model,
              tags=["chain"], responses=POW_REFUSED)
async def discard(address: str = schema.PROPOSED.path(), gw: Gateway = GW) -> Response:
    """Stop voting for this node's proposal about `address` (admin); 404 `not_found` when
    it has none. Votes already cast stay open until a checkpoint clears them."""
    return await _answer(gw, messages.SetProposal(schema.PROPOSED.parse(address), False,
                                                  True))
