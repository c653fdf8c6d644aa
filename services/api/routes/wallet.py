"""Routes of the node's own account (admin): its balance and key, and sends it signs."""

from __future__ import annotations

import asyncio
import time

from fastapi import Request
from starlette.responses import Response

from common import messages
from services.api import replies, schema
from services.api.edge import note_timing
from services.api.gateway import Gateway
from services.api.replies import JSONResponse
from services.api.routes.deps import GW, admin_router, read_json
from services.api.spec import request_body

admin = admin_router()
ROUTERS = (admin,)


@admin.get("/wallet", response_model=replies.WALLET_OUT.model, tags=["wallet"])
async def wallet(gw: Gateway = GW) -> Response:
    """The node's account: its balance, what its pending sends will spend and so what is
    still available to send, and its key's type and public half (never the private key)."""
    address = gw.wallet.require_address()
    reply, pending_out = await asyncio.gather(
        gw.ask(messages.GetAccount(address), messages.AccountReply), gw.wallet.pending_out(gw))
    return JSONResponse(replies.WALLET_OUT.render(
        reply, key_type=gw.wallet.key_type, public_key=gw.wallet.public_key,
        can_sign=gw.wallet.can_sign, pending_out=pending_out,
        available=max(0, reply.balance - pending_out)))


@admin.post("/wallet/send", status_code=202, response_model=replies.SEND_OUT.model,
            tags=["wallet"], openapi_extra=request_body(schema.SEND_IN))
async def wallet_send(request: Request, gw: Gateway = GW) -> Response:
    """Sign a transfer with the node's key and submit it (202: in the synced pool journal).
    `Server-Timing` says what signing (`sign`, with the nonce lookup when one is needed) and
    the state round trip with its journal write (`state`) took."""
    req = schema.parse_send(await read_json(request))
    start = time.perf_counter()
    tx, signing = await gw.wallet.send(req, gw)
    note_timing(request.scope, sign=signing, state=time.perf_counter() - start - signing)
    return JSONResponse(replies.SEND_OUT.render(tx), status_code=202)
