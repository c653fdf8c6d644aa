"""Routes of accounts: balance and nonces, and the account's confirmed history."""

from __future__ import annotations

import asyncio

from starlette.responses import Response

from common import messages
from common.errors import CcoinError, Internal, NotFound
from common.types import MAX_AMOUNT
from services.api import replies, schema
from services.api.gateway import Gateway
from services.api.kinds import Int
from services.api.replies import JSONResponse
from services.api.routes.deps import GW, api_router

router = api_router()
ROUTERS = (router,)


@router.get("/accounts/{address}", response_model=replies.ACCOUNT_OUT.model,
            tags=["accounts"])
async def account(address: str = schema.ACCOUNT.path(), gw: Gateway = GW) -> Response:
    reply = await gw.ask(messages.GetAccount(schema.ACCOUNT.parse(address)),
                         messages.AccountReply)
    return JSONResponse(replies.ACCOUNT_OUT.render(reply))


async def _tx_or_none(gw: Gateway, tx_id: bytes) -> messages.TxReply | None:
    try:
        return await gw.ask(messages.GetTx(tx_id), messages.TxReply)
    except NotFound:
        return None


@router.get("/accounts/{address}/txs", response_model=replies.HISTORY_OUT.model,
            tags=["accounts"])
async def account_txs(address: str = schema.ACCOUNT.path(), gw: Gateway = GW,
                      offset: int = Int(0, MAX_AMOUNT).query(
                          0, description="entries to skip, newest first"),
                      limit: int = Int(1, schema.MAX_PAGE).query(20),
                      before: str | None = schema.BEFORE.query(),
                      ) -> Response:
    """The account's confirmed transactions, newest first, sent (`out`), received (`in`)
    or both (`self`), with their amounts and fees. To walk a long history, follow `next`
    with `?before=`: each page costs the same, and new transactions arriving at the top do
    not shift the pages (as they do with `offset`)."""
    addr = schema.ACCOUNT.parse(address)
    position: tuple[int, ...] = schema.BEFORE.parse(before) if before is not None else ()
    reply = await gw.ask(messages.GetAccountTxs(addr, offset, limit, position),
                         messages.AccountTxsReply)
    txs = await asyncio.gather(*(_tx_or_none(gw, item.id) for item in reply.items))
    try:
        items = [replies.history_item_json(item, tx) for item, tx in zip(reply.items, txs)]
    except CcoinError as exc:
        raise Internal(f"state sent an undecodable transaction: {exc.message}") from None
    last = reply.items[-1] if reply.items else None
    more = f"{last.height}:{last.index}" if reply.more and last is not None else None
    return JSONResponse(replies.HISTORY_OUT.render(
        reply, address=addr, offset=offset, limit=limit, before=before, next=more,
        items=items))
