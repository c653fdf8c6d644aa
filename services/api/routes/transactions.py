"""Routes of transactions: submit one or a batch, look one up, prove it; the pool."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from common import messages
from common.encoding import MEDIA_TYPE, pack
from common.errors import CcoinError, Internal, error_from_code
from common.signed import SignedTx
from common.types import MAX_AMOUNT, Transaction
from services.api import metrics, replies, schema
from services.api.edge import note_timing
from services.api.gateway import Gateway
from services.api.kinds import Int
from services.api.replies import JSONResponse
from services.api.routes.deps import GW, api_router, read_json
from services.api.spec import binary_reply, request_body

THREAD_PARSE_BYTES = 64 * 1024  # batches above this are read (JSON, decoding) off the event loop
BINARY_BATCH = (
    f"Up to {schema.MAX_BATCH} transactions as a msgpack array of bins, each a transaction's "
    "canonical encoding (the `raw` of `RawTxIn`, as bytes): no JSON and no hex, for a "
    "client that holds its transactions signed and encoded (the Python client's "
    "`submit_batch`). The reply is the same JSON, or msgpack to a request that accepts it "
    "(see the 200 response). A body that is not such an array is "
    "400 `malformed`; an item that is not a bin or not a canonical transaction fails alone.")
BINARY_BATCH_REPLY = (
    f"`BatchOut` in msgpack, each `id` as 32 bytes, not hex: the answer to a request whose "
    f"`Accept` names `{MEDIA_TYPE}`. An error of the whole request stays JSON.")

router = api_router()
ROUTERS = (router,)


def decode_txs(raws: tuple[bytes, ...]) -> list[Transaction]:
    try:
        return [Transaction.decode(raw) for raw in raws]
    except CcoinError as exc:
        raise Internal(f"state sent an undecodable transaction: {exc.message}") from None


@router.get("/txs/{tx_id}", response_model=replies.TX_STATUS_OUT.model, tags=["transactions"])
async def get_tx(tx_id: str = schema.TX_ID.path(), gw: Gateway = GW) -> Response:
    """A transaction and its explained status: pending, queued (with the nonce it waits
    for), confirmed (block, index, confirmations), rejected (the error code), replaced (by
    which transaction) or dropped (evicted, stale, reorg-conflict)."""
    if tx_id == "batch":  # POST-only /txs/batch, not a transaction id
        raise StarletteHTTPException(405)
    reply = await gw.ask(messages.GetTx(schema.TX_ID.parse(tx_id)), messages.TxReply)
    try:
        return JSONResponse(replies.tx_status_json(reply))
    except CcoinError as exc:
        raise Internal(f"state sent an undecodable transaction: {exc.message}") from None


@router.get("/txs/{tx_id}/proof", response_model=replies.PROOF_OUT.model,
            tags=["transactions"])
async def tx_proof(tx_id: str = schema.TX_ID.path(), gw: Gateway = GW) -> Response:
    """Merkle inclusion proof of a confirmed transaction against its block header's
    `tx_root` (404 `not_found` while it is not in a main-chain block). See the API
    description for the ten lines that check it."""
    reply = await gw.ask(messages.GetTxProof(schema.TX_ID.parse(tx_id)),
                         messages.TxProofReply)
    return JSONResponse(replies.PROOF_OUT.render(reply))


@router.post("/txs", status_code=202, response_model=replies.ID_OUT.model,
             tags=["transactions"],
             openapi_extra=request_body(schema.TX_IN, schema.RAW_TX_IN))
async def submit_tx(request: Request, gw: Gateway = GW) -> Response:
    """Submit one signed transaction (202: it is in the node's synced pool journal). The
    response's `Server-Timing` says what parsing with the signature check (`parse`) and
    the state round trip with its journal write (`state`) took."""
    start = time.perf_counter()
    try:
        tx = schema.parse_submission(await read_json(request), gw.chain_id)
    except CcoinError as exc:
        metrics.count_submissions([exc.code])
        raise
    parsed = time.perf_counter()
    refusal = await gw.submit_one(tx)
    note_timing(request.scope, parse=parsed - start, state=time.perf_counter() - parsed)
    if refusal is not None:
        raise error_from_code(refusal.code, refusal.message)
    return JSONResponse(replies.ID_OUT.render(tx), status_code=202)


Refusal = CcoinError | messages.TxRefusal  # anything with a code and a message


def _by_state(tx_id: bytes, refusal: messages.TxRefusal | None,
              ) -> tuple[bytes, messages.TxRefusal | None]:
    """A passed-on item's id and outcome: the id state gives a refusal is empty when the
    bytes, read here for their signature only, are not a transaction after all."""
    return (tx_id if refusal is None else refusal.id), refusal


def _json_item(tx_id: bytes, refusal: Refusal | None) -> dict[str, Any]:
    item = replies.BATCH_ITEM
    if refusal is None:
        return item.render(id=tx_id, status="accepted")
    if tx_id:
        return item.render(id=tx_id, error=refusal)
    return item.render(error=refusal)


def _msgpack_item(tx_id: bytes, refusal: Refusal | None) -> dict[str, Any]:
    if refusal is None:
        return {"id": tx_id, "status": "accepted"}
    error = {"code": refusal.code, "message": refusal.message}
    return {"id": tx_id, "error": error} if tx_id else {"error": error}


@router.post("/txs/batch", response_model=replies.BATCH_OUT.model, tags=["transactions"],
             openapi_extra={**request_body(schema.BATCH_IN, binary=(MEDIA_TYPE, BINARY_BATCH)),
                            **binary_reply(MEDIA_TYPE, BINARY_BATCH_REPLY)})
async def submit_batch(request: Request, gw: Gateway = GW) -> Response:
    """Submit many transactions: each item is checked alone and gets its result in its
    place of `results` (`accepted` when it is in the node's synced pool journal)."""
    body = await request.body()
    binary = schema.is_msgpack(request.headers.get("content-type", ""))
    if len(body) > THREAD_PARSE_BYTES:
        read = await asyncio.to_thread(schema.read_batch, body, gw.chain_id, binary=binary)
    else:
        read = schema.read_batch(body, gw.chain_id, binary=binary)
    verified = await gw.signatures.verify([o for o in read if isinstance(o, SignedTx)])
    outcomes = schema.settle_batch(read, verified)
    metrics.count_submissions(o.error.code for o in outcomes if isinstance(o, schema.Rejected))
    refusals = iter(await gw.submit([o.raw for o in outcomes if isinstance(o, SignedTx)]))
    settled = [(o.id, o.error) if isinstance(o, schema.Rejected) else _by_state(o.id,
                                                                              next(refusals))
               for o in outcomes]
    accepted = sum(1 for _, refusal in settled if refusal is None)
    if schema.accepts_msgpack(request.headers.get("accept", "")):
        return Response(pack({"results": [_msgpack_item(*s) for s in settled],
                              "accepted": accepted}), media_type=MEDIA_TYPE)
    return JSONResponse(replies.BATCH_OUT.render(results=[_json_item(*s) for s in settled],
                                                 accepted=accepted))


@router.get("/mempool", response_model=replies.MEMPOOL_OUT.model, tags=["transactions"])
async def mempool(gw: Gateway = GW, offset: int = Int(0, MAX_AMOUNT).query(0),
                  limit: int = Int(0, schema.MAX_MEMPOOL_PAGE).query(100),
                  sender: str | None = schema.SENDER.query()) -> Response:
    """Pool size, and a page of its transactions in arrival order (or one sender's)."""
    who = schema.SENDER.parse(sender) if sender is not None else b""
    reply = await gw.ask(messages.GetMempool(offset, limit, who), messages.MempoolReply)
    return JSONResponse(replies.MEMPOOL_OUT.render(
        reply, offset=offset, limit=limit, sender=who or None, txs=decode_txs(reply.txs)))


@router.get("/mempool/history", response_model=replies.POOL_HISTORY_OUT.model,
            tags=["transactions"])
async def mempool_history(gw: Gateway = GW) -> Response:
    """The pool's size right after each of the last heads (up to 120), oldest first: what
    the dashboard's pool chart starts from."""
    return JSONResponse(replies.POOL_HISTORY_OUT.render(samples=gw.hub.pool_samples))
