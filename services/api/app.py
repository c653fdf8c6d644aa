"""The REST gateway (DESIGN §6): FastAPI routes over the state and miner services.

The gateway is stateless: each process holds one bus `BusClient` for state (concurrent HTTP
requests are multiplexed over it by request id), one short-timeout `BusClient` for the miner,
and the node wallet's key. It does the stateless half of every submission itself (strict
JSON validation, chain id, signature) so that state only ever sees verified transactions,
and so that running more gateways adds verification capacity.

Routes read raw bodies and answer with `orjson`; every failure, including FastAPI's own
404/405/validation errors and bodies over the size limit, is `{"error": {"code",
"message"}}` with the status its error class declares (`common.errors`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal, NoReturn, TypeVar

import zmq.asyncio
from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, WebSocket
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response, StreamingResponse

from common import __version__, messages
from common.errors import (
    CcoinError,
    Internal,
    Malformed,
    NotAValidator,
    NotFound,
    P2PUnavailable,
    PoolFull,
    Unavailable,
    error_from_code,
    http_status,
)
from common.genesis import load_genesis
from common.messages import Message
from common.types import MAX_AMOUNT, Block, Transaction
from runtime.bus import BusClient
from runtime.config import NodeConfig, load_config
from runtime.http_edge import BodyLimit
from runtime.service import log_request_ids
from services.api import dashboard, events, metrics, models, schema
from services.api.admin import check_admin
from services.api.edge import OPERATOR_ACTION, Edge
from services.api.wallet import NodeWallet

log = logging.getLogger("ccoin.api")

MAX_BODY = 4 * 1024 * 1024
READ_TIMEOUT = 3.0  # per attempt, and one retry (Lazy Pirate): a read fails within ~6 s
SUBMIT_TIMEOUT = 10.0  # per attempt; a 5000-transaction batch must fit
STATE_RETRIES = 1
HEALTH_TIMEOUT = READ_TIMEOUT  # a shorter one would reset the shared socket under load
MINER_TIMEOUT = 0.5
MINER_CACHE_S = 1.0
NO_MINER_CACHE_S = 5.0
P2P_TIMEOUT = 0.5  # status and peer list: a p2p that does not answer at once counts as down
P2P_COMMAND_TIMEOUT = 3.0
P2P_CACHE_S = 1.0
NO_P2P_CACHE_S = 2.0
THREAD_PARSE_BYTES = 64 * 1024  # batches above this are validated off the event loop
CONFIG_ENV = "CCOIN_API_CONFIG"
METRICS_EXAMPLE = "# TYPE ccoin_chain_height gauge\nccoin_chain_height 42.0\n"
R = TypeVar("R", bound=Message)



class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return schema.dumps(content)


def error_response(code: str, message: str, status: int | None = None) -> JSONResponse:
    status = status or http_status(code)
    headers = {"Retry-After": "1"} if status in (429, 503) else None
    return JSONResponse(schema.error_body(code, message), status_code=status, headers=headers)


# --- the per-process link to the node --------------------------------------------------------


class Gateway:
    """What one gateway process holds: its bus clients, the chain id and the node wallet."""

    def __init__(self, config: NodeConfig, chain_id: int) -> None:
        self.config = config
        self.chain_id = chain_id
        self.wallet = NodeWallet(config.account_address, None, "wallet not loaded yet")
        self.ctx: zmq.asyncio.Context | None = None
        self._state: BusClient | None = None
        self._miner: BusClient | None = None
        self._p2p: BusClient | None = None
        self._send_lock: asyncio.Lock | None = None
        self._singles: list[tuple[Transaction, asyncio.Future[messages.TxResult]]] = []
        self._flushes: set[asyncio.Task[None]] = set()
        self._mining: tuple[float, messages.MiningReply | None] | None = None
        self._peers: tuple[float, messages.PeersReply | None] | None = None
        self.hub = events.EventHub()
        self._follow: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.ctx = zmq.asyncio.Context()
        self._state = BusClient(self.config.endpoint("state"), self.ctx, timeout=READ_TIMEOUT,
                             retries=STATE_RETRIES)
        self._miner = BusClient(self.config.endpoint("miner"), self.ctx, timeout=MINER_TIMEOUT,
                             retries=0)
        self._p2p = BusClient(self.config.endpoint("p2p"), self.ctx, timeout=P2P_TIMEOUT,
                           retries=0)
        self._send_lock = asyncio.Lock()
        self._follow = asyncio.get_running_loop().create_task(
            self.hub.run(self.ctx, self.config.endpoint("events")))
        self.wallet = await asyncio.to_thread(NodeWallet.load, self.config)

    async def close(self) -> None:
        if self._follow is not None:
            self._follow.cancel()
            try:
                await self._follow
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                pass
            self._follow = None
        for client in (self._state, self._miner, self._p2p):
            if client is not None:
                client.close()
        if self.ctx is not None:
            self.ctx.destroy(linger=0)
            self.ctx = None

    @property
    def state(self) -> BusClient:
        if self._state is None:
            raise Unavailable("gateway is not started")
        return self._state

    async def ask(self, msg: Message, expect: type[R], timeout: float = READ_TIMEOUT,
                  retries: int | None = None) -> R:
        return await self.state.request(msg, expect, timeout=timeout, retries=retries)

    async def submit(self, txs: list[Transaction]) -> tuple[messages.TxResult, ...]:
        if not txs:
            return ()
        reply = await self.ask(messages.SubmitTxs(tuple(tx.raw for tx in txs)),
                               messages.SubmitResult, timeout=SUBMIT_TIMEOUT)
        if len(reply.results) != len(txs):
            raise Internal(f"state answered {len(reply.results)} results for {len(txs)} txs")
        metrics.count_submissions(r.code for r in reply.results)
        return reply.results

    async def submit_one(self, tx: Transaction) -> messages.TxResult:
        """Submit one transaction, sharing a `SubmitTxs` with the other single submissions
        that arrive in the same event-loop iteration (one bus round trip for all of them)."""
        fut: asyncio.Future[messages.TxResult] = asyncio.get_running_loop().create_future()
        self._singles.append((tx, fut))
        if len(self._singles) == 1:
            asyncio.get_running_loop().call_soon(self._flush_singles)
        return await fut

    def _flush_singles(self) -> None:
        batch, self._singles = self._singles, []
        task = asyncio.get_running_loop().create_task(self._submit_singles(batch))
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _submit_singles(self, batch: list[tuple[Transaction, asyncio.Future[Any]]],
                              ) -> None:
        try:
            results = await self.submit([tx for tx, _ in batch])
        except Exception as exc:
            for _, fut in batch:
                if not fut.done():  # a client that went away cancelled its future
                    fut.set_exception(exc)
            return
        for (_, fut), result in zip(batch, results, strict=True):
            if not fut.done():
                fut.set_result(result)

    # miner

    def _miner_absent(self) -> bool:
        """An ipc endpoint with no socket file: no miner runs here (a basic node)."""
        endpoint = self.config.endpoint("miner")
        return endpoint.startswith("ipc://") and not Path(endpoint[len("ipc://"):]).exists()

    async def mining_status(self, fresh: bool = False) -> messages.MiningReply | None:
        """The miner's status, or None when no miner answers; cached briefly so that a
        basic node's status route does not wait for a miner that is not there."""
        now = time.monotonic()
        cached = self._mining
        if cached is not None and not fresh:
            ttl = MINER_CACHE_S if cached[1] is not None else NO_MINER_CACHE_S
            if now - cached[0] < ttl:
                return cached[1]
        status = await self._ask_miner(messages.GetMining()) if not self._miner_absent() \
            else None
        self._mining = (now, status)
        return status

    async def _ask_miner(self, msg: Message) -> messages.MiningReply | None:
        assert self._miner is not None
        try:
            return await self._miner.request(msg, messages.MiningReply, retries=0)
        except Unavailable:
            return None

    async def set_mining(self, enabled: bool) -> messages.MiningReply:
        status = None if self._miner_absent() else \
            await self._ask_miner(messages.SetMining(enabled))
        self._mining = (time.monotonic(), status)
        if status is None:
            raise NotAValidator("no miner answers on this node (a basic node runs none)")
        return status

    # p2p

    def _p2p_absent(self) -> bool:
        endpoint = self.config.endpoint("p2p")
        return endpoint.startswith("ipc://") and not Path(endpoint[len("ipc://"):]).exists()

    async def peers_status(self, fresh: bool = False) -> messages.PeersReply | None:
        """p2p's peer list and sync state, or None when no p2p service answers; cached
        briefly, since the status route asks for it on every call."""
        now = time.monotonic()
        cached = self._peers
        if cached is not None and not fresh:
            ttl = P2P_CACHE_S if cached[1] is not None else NO_P2P_CACHE_S
            if now - cached[0] < ttl:
                return cached[1]
        reply = None
        if not self._p2p_absent():
            assert self._p2p is not None
            try:
                reply = await self._p2p.request(messages.GetPeers(), messages.PeersReply,
                                                retries=0)
            except Unavailable:
                reply = None
        self._peers = (now, reply)
        return reply

    async def p2p_command(self, msg: Message) -> None:
        """Send a control message (AddPeer, SyncNow) to p2p; `p2p_unavailable` when no p2p
        service answers."""
        if self._p2p_absent():
            raise P2PUnavailable("no p2p service runs on this node")
        assert self._p2p is not None
        try:
            await self._p2p.request(msg, messages.Ok, timeout=P2P_COMMAND_TIMEOUT, retries=0)
        except Unavailable:
            raise P2PUnavailable("the p2p service did not answer") from None
        finally:
            self._peers = None

    # wallet

    async def send(self, req: schema.SendRequest) -> Transaction:
        """Sign a transfer from the node account at its pending nonce and submit it.

        Sends from this process are serialised; if another gateway process took the same
        nonce meanwhile, state refuses the second and the send is retried once."""
        signer = self.wallet.require_signer()
        assert self._send_lock is not None
        async with self._send_lock:
            for attempt in range(2):
                account = await self.ask(messages.GetAccount(signer.address),
                                         messages.AccountReply)
                tx = Transaction.create(signer, chain_id=self.chain_id,
                                        nonce=account.pending_nonce, to=req.to,
                                        amount=req.amount, fee=req.fee, data=req.data)
                result = await self.submit_one(tx)
                if not result.code:
                    return tx
                if attempt or result.code not in ("nonce_too_low", "duplicate", "underpriced"):
                    raise_code(result.code, result.message)
        raise Internal("unreachable")


def raise_code(code: str, message: str) -> NoReturn:
    """Raise the typed error of a code state sent back."""
    raise error_from_code(code, message)


def _block(raw: bytes) -> Block:
    try:
        return Block.decode(raw)
    except CcoinError as exc:
        raise Internal(f"state sent an undecodable block: {exc.message}") from None


def _tx_item(outcome: Transaction | schema.Rejected, result: messages.TxResult | None,
             ) -> dict[str, Any]:
    if isinstance(outcome, schema.Rejected):
        body = schema.error_body(outcome.error.code, outcome.error.message)
        return {"id": outcome.id.hex(), **body} if outcome.id else body
    assert result is not None
    if result.code:
        return {"id": outcome.id.hex(), **schema.error_body(result.code, result.message)}
    return {"id": outcome.id.hex(), "status": "accepted"}


# --- error handlers --------------------------------------------------------------------------

def _allowed_methods(app: FastAPI, path: str) -> list[str]:
    """The methods the API documents for `path` (for `Allow` on a 405): those of the
    concrete path if there is one (as OpenAPI matches concrete paths before templated
    ones), else of every template it fits. The router's own 405 names only the first route
    whose path matched, e.g. GET /txs/{tx_id} for POST-only /txs/batch."""
    table: dict[str, Any] | None = getattr(app.state, "allow", None)
    if table is None:
        table = {"exact": {}, "templates": []}
        for template, ops in app.openapi().get("paths", {}).items():
            methods = {m.upper() for m in ops}
            if "{" in template:
                pattern = re.sub(r"\\\{[^}/]+\\\}", "[^/]+", re.escape(template))
                table["templates"].append((re.compile(pattern), methods))
            else:
                table["exact"][template] = methods
        app.state.allow = table
    if path in table["exact"]:
        return sorted(table["exact"][path])
    return sorted({m for pattern, methods in table["templates"] if pattern.fullmatch(path)
                   for m in methods})


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CcoinError)
    async def ccoin_error(_: Request, exc: CcoinError) -> Response:
        if exc.http_status >= 500 and not isinstance(exc, (Unavailable, PoolFull)):
            log.error("%s: %s", exc.code, exc.message)  # a fault, not a busy node
        return error_response(exc.code, exc.message, exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> Response:
        problems = []
        for err in exc.errors()[:5]:
            where = ".".join(str(p) for p in err.get("loc", ()))
            problems.append(f"{where}: {err.get('msg', 'invalid')}")
        return error_response("malformed", "; ".join(problems) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {400: "malformed", 403: "forbidden", 404: "not_found",
                405: "method_not_allowed", 413: "too_large"}.get(exc.status_code, "error")
        message = str(exc.detail)
        if exc.status_code == 404:
            message = f"no route {request.method} {request.url.path}"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        response = error_response(code, message, exc.status_code)
        if exc.headers:
            response.headers.update(exc.headers)
        if exc.status_code == 405:
            allowed = _allowed_methods(app, request.url.path)
            if allowed:
                response.headers["Allow"] = ", ".join(allowed)
        return response

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> Response:
        log.error("unhandled %s", exc.__class__.__name__, exc_info=exc)
        return error_response("internal", "internal error")


def _install_openapi(app: FastAPI) -> None:
    """Add the request-body models (read by hand, so FastAPI cannot see them) to the
    OpenAPI components, and drop FastAPI's 422 responses: invalid parameters are answered
    400 `malformed` here, as documented."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version,
                              description=app.description, routes=app.routes,
                              tags=app.openapi_tags)
            for ops in doc.get("paths", {}).values():
                for op in ops.values():
                    op.get("responses", {}).pop("422", None)
            components = doc.setdefault("components", {}).setdefault("schemas", {})
            for unused in ("HTTPValidationError", "ValidationError"):
                components.pop(unused, None)
            for model in models.REQUEST_MODELS:
                schema_ = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(schema_.pop("$defs", {}))
                components[model.__name__] = schema_
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


# --- routes ----------------------------------------------------------------------------------

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": models.ErrorOut} for status in (400, 404, 409, 413, 503)
}
ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {**ERRORS, 403: {"model": models.ErrorOut}}


def _gateway(request: Request) -> Gateway:
    gw: Gateway = request.app.state.gateway
    return gw


def _gateway_of(websocket: WebSocket) -> Gateway:
    gw: Gateway = websocket.app.state.gateway
    return gw


async def gateway(request: Request) -> Gateway:
    # async: FastAPI runs a plain-def dependency in a worker thread, for every request
    return _gateway(request)


async def require_admin(request: Request) -> None:
    gw = _gateway(request)
    check_admin(request, gw.config.admin_token, gw.config.cors_origins)
    request.scope[OPERATOR_ACTION] = request.method not in ("GET", "HEAD")


router = APIRouter(prefix="/api/v1", responses=ERRORS)
admin = APIRouter(prefix="/api/v1", responses=ADMIN_ERRORS, dependencies=[Depends(require_admin)],
                  tags=["admin"])
GW = Depends(gateway)
# the patterns document the shapes; the routes check them (with clearer messages)
HASH_PATTERN = "^(0x)?[0-9a-fA-F]{64}$"
ADDRESS_PATTERN = "^(0x)?[0-9a-fA-F]{40}$"
HISTORY_CURSOR = re.compile(r"^[0-9]{1,20}:[0-9]{1,10}$")
BLOCK_REF_PATTERN = "^(0|[1-9][0-9]{0,17}|(0x)?[0-9a-fA-F]{64})$"
TX_ID = PathParam(description="transaction id (64 hex)", examples=["9c" * 32],
                  json_schema_extra={"pattern": HASH_PATTERN})
ADDRESS = PathParam(description="account address (40 hex)", examples=["3f" * 20],
                    json_schema_extra={"pattern": ADDRESS_PATTERN})


async def _read_json(request: Request) -> Any:
    return schema.loads(await request.body())


@router.get("/status", response_model=models.StatusOut, tags=["chain"])
async def status(gw: Gateway = GW) -> Response:
    st, mining, peers = await asyncio.gather(gw.ask(messages.GetStatus(), messages.StatusReply),
                                             gw.mining_status(), gw.peers_status())
    return JSONResponse(schema.status_json(
        st, mining=bool(mining and mining.enabled), version=__version__,
        peers=len(peers.peers) if peers else 0, syncing=bool(peers and peers.syncing)))


@router.get("/blocks/count", response_model=models.CountOut, tags=["chain"])
async def block_count(gw: Gateway = GW) -> Response:
    st = await gw.ask(messages.GetStatus(), messages.StatusReply)
    return JSONResponse({"count": st.height + 1})


@router.get("/blocks", response_model=models.BlocksOut, tags=["chain"])
async def blocks(
    gw: Gateway = GW,
    start: int | None = Query(None, ge=0, le=MAX_AMOUNT,
                              description="first height of the page (default: the head, or 0 "
                                          "with order=asc)"),
    limit: int = Query(20, ge=1, le=schema.MAX_PAGE),
    order: Literal["desc", "asc"] = Query("desc", description="desc: newest first"),
    full: bool = Query(False, description="whole transactions instead of their ids"),
) -> Response:
    newest_first = order == "desc"
    first = start if start is not None else (-1 if newest_first else 0)
    reply = await gw.ask(messages.GetBlockRange(first, limit, newest_first),
                         messages.BlockRangeReply)
    out = []
    for raw in reply.blocks:
        block = _block(raw)
        out.append(schema.block_json(block, full=full,
                                     confirmations=reply.height - block.height + 1))
    return JSONResponse({"height": reply.height, "blocks": out})


@router.get("/blocks/{ref}", response_model=models.BlockOut, tags=["chain"])
async def block(ref: str = PathParam(description="a height (decimal) or a block hash (64 hex)",
                                     examples=["42"],
                                     json_schema_extra={"pattern": BLOCK_REF_PATTERN}),
                gw: Gateway = GW) -> Response:
    height, hash_ = schema.parse_block_ref(ref)
    reply = await gw.ask(messages.GetBlock(height, hash_), messages.BlockReply)
    return JSONResponse(schema.block_json(_block(reply.block), total_weight=reply.total_weight,
                                          confirmations=reply.confirmations,
                                          on_main_chain=reply.on_main_chain))


@router.get("/txs/{tx_id}", response_model=models.TxStatusOut, tags=["transactions"])
async def get_tx(tx_id: str = TX_ID, gw: Gateway = GW) -> Response:
    """A transaction and its explained status: pending, queued (with the nonce it waits
    for), confirmed (block, index, confirmations), rejected (the error code), replaced (by
    which transaction) or dropped (evicted, stale, reorg-conflict)."""
    if tx_id == "batch":  # POST-only /txs/batch, not a transaction id
        raise StarletteHTTPException(405)
    reply = await gw.ask(messages.GetTx(schema.parse_hash(tx_id, "transaction id")),
                         messages.TxReply)
    try:
        return JSONResponse(schema.tx_reply_json(reply))
    except CcoinError as exc:
        raise Internal(f"state sent an undecodable transaction: {exc.message}") from None


@router.get("/txs/{tx_id}/proof", response_model=models.ProofOut, tags=["transactions"])
async def tx_proof(tx_id: str = TX_ID, gw: Gateway = GW) -> Response:
    """Merkle inclusion proof of a confirmed transaction against its block header's
    `tx_root` (404 `not_found` while it is not in a main-chain block). See the API
    description for the ten lines that check it."""
    reply = await gw.ask(messages.GetTxProof(schema.parse_hash(tx_id, "transaction id")),
                         messages.TxProofReply)
    return JSONResponse(schema.proof_json(reply))


@router.post("/txs", status_code=202, response_model=models.IdOut, tags=["transactions"],
             openapi_extra=models.body((models.TxIn, models.RawTxIn)))
async def submit_tx(request: Request, gw: Gateway = GW) -> Response:
    try:
        tx = schema.parse_submission(await _read_json(request), gw.chain_id)
    except CcoinError as exc:
        metrics.count_submissions([exc.code])
        raise
    result = await gw.submit_one(tx)
    if result.code:
        raise_code(result.code, result.message)
    return JSONResponse({"id": tx.id.hex()}, status_code=202)


@router.post("/txs/batch", response_model=models.BatchOut, tags=["transactions"],
             openapi_extra=models.body(models.BatchIn))
async def submit_batch(request: Request, gw: Gateway = GW) -> Response:
    body = await request.body()
    if len(body) > THREAD_PARSE_BYTES:
        outcomes = await asyncio.to_thread(schema.parse_batch, body, gw.chain_id)
    else:
        outcomes = schema.parse_batch(body, gw.chain_id)
    valid = [o for o in outcomes if isinstance(o, Transaction)]
    metrics.count_submissions(o.error.code for o in outcomes if isinstance(o, schema.Rejected))
    results = iter(await gw.submit(valid))
    items = [_tx_item(o, next(results) if isinstance(o, Transaction) else None)
             for o in outcomes]
    accepted = sum(1 for item in items if "status" in item)
    return JSONResponse({"results": items, "accepted": accepted})


@router.get("/accounts/{address}", response_model=models.AccountOut, tags=["accounts"])
async def account(address: str = ADDRESS, gw: Gateway = GW) -> Response:
    reply = await gw.ask(messages.GetAccount(schema.parse_address(address)),
                         messages.AccountReply)
    return JSONResponse(schema.account_json(reply))


async def _tx_or_none(gw: Gateway, tx_id: bytes) -> messages.TxReply | None:
    try:
        return await gw.ask(messages.GetTx(tx_id), messages.TxReply)
    except NotFound:
        return None


@router.get("/accounts/{address}/txs", response_model=models.HistoryOut, tags=["accounts"])
async def account_txs(address: str = ADDRESS, gw: Gateway = GW,
                      offset: int = Query(0, ge=0, le=MAX_AMOUNT,
                                          description="entries to skip, newest first"),
                      limit: int = Query(20, ge=1, le=schema.MAX_PAGE),
                      before: str | None = Query(
                          None, pattern=HISTORY_CURSOR.pattern, examples=["42:0"],
                          description="only entries older than this position "
                                      "(`height:index`, the `next` of the previous page)"),
                      ) -> Response:
    """The account's confirmed transactions, newest first, sent (`out`), received (`in`)
    or both (`self`), with their amounts and fees. To walk a long history, follow `next`
    with `?before=`: each page costs the same, and new transactions arriving at the top do
    not shift the pages (as they do with `offset`)."""
    addr = schema.parse_address(address)
    position: tuple[int, ...] = ()
    if before is not None:
        height, index = (int(part) for part in before.split(":"))
        if height >= 2**64 or index >= 2**32:
            raise Malformed("before: height or index out of range")
        position = (height, index)
    reply = await gw.ask(messages.GetAccountTxs(addr, offset, limit, position),
                         messages.AccountTxsReply)
    txs = await asyncio.gather(*(_tx_or_none(gw, item.id) for item in reply.items))
    try:
        items = [schema.history_item_json(item, tx) for item, tx in zip(reply.items, txs)]
    except CcoinError as exc:
        raise Internal(f"state sent an undecodable transaction: {exc.message}") from None
    last = reply.items[-1] if reply.items else None
    more = f"{last.height}:{last.index}" if reply.more and last is not None else None
    return JSONResponse({"address": addr.hex(), "total": reply.total, "offset": offset,
                         "limit": limit, "before": before, "next": more, "items": items})


@router.get("/mempool", response_model=models.MempoolOut, tags=["transactions"])
async def mempool(gw: Gateway = GW, offset: int = Query(0, ge=0, le=MAX_AMOUNT),
                  limit: int = Query(100, ge=0, le=schema.MAX_MEMPOOL_PAGE),
                  sender: str | None = Query(None, description="only this sender's "
                                             "transactions, in nonce order",
                                             examples=["3f" * 20],
                                             json_schema_extra={"pattern": ADDRESS_PATTERN}),
                  ) -> Response:
    """Pool size, and a page of its transactions in arrival order (or one sender's)."""
    who = schema.parse_address(sender, "sender") if sender is not None else b""
    reply = await gw.ask(messages.GetMempool(offset, limit, who), messages.MempoolReply)
    try:
        txs = [schema.tx_json(Transaction.decode(raw)) for raw in reply.txs]
    except CcoinError as exc:
        raise Internal(f"state sent an undecodable transaction: {exc.message}") from None
    return JSONResponse({"count": reply.count, "bytes": reply.size, "offset": offset,
                         "limit": limit, "sender": who.hex() or None, "txs": txs})


@router.get("/mempool/history", response_model=models.PoolHistoryOut, tags=["transactions"])
async def mempool_history(gw: Gateway = GW) -> Response:
    """The pool's size right after each of the last heads (up to 120), oldest first: what
    the dashboard's pool chart starts from."""
    return JSONResponse({"samples": [{"height": h, "count": c}
                                     for h, c in gw.hub.pool_samples]})


@router.get("/chain/tips", response_model=models.TipsOut, tags=["chain"])
async def chain_tips(gw: Gateway = GW) -> Response:
    """Every known branch tip: the head (`active`), stored lighter forks (`valid-fork`,
    with how many blocks they are off the main chain) and blocks found `invalid`."""
    reply = await gw.ask(messages.GetTips(), messages.TipsReply)
    return JSONResponse({"tips": [schema.tip_json(t) for t in reply.tips]})


@router.get("/consensus", response_model=models.ConsensusOut, tags=["chain"])
async def consensus(gw: Gateway = GW,
                    window: int = Query(100, ge=1, le=10_000,
                                        description="how many recent blocks to look at"),
                    ) -> Response:
    """Proof-of-Authority health: the authorities, whose turn it is, and per signer its
    last sealed block, how many it sealed and how many of its turns others took."""
    st, signers = await asyncio.gather(gw.ask(messages.GetStatus(), messages.StatusReply),
                                       gw.ask(messages.GetSigners(window),
                                              messages.SignersReply))
    return JSONResponse(schema.consensus_json(st, signers, window))


@router.get("/peers", response_model=models.PeersOut, tags=["network"])
async def peers(gw: Gateway = GW) -> Response:
    """Connected peers and the sync state; `"p2p": false` (and no peers) when no p2p
    service answers on this node."""
    return JSONResponse(schema.peers_json(await gw.peers_status(fresh=True)))


@admin.post("/peers", response_model=models.OkOut, tags=["network"],
            openapi_extra=models.body(models.PeerIn),
            responses={503: {"model": models.ErrorOut,
                             "description": "`p2p_unavailable`: no p2p service answers"}})
async def add_peer(request: Request, gw: Gateway = GW) -> Response:
    """Ask p2p to connect to a peer by endpoint (admin)."""
    endpoint = schema.parse_endpoint(await _read_json(request))
    await gw.p2p_command(messages.AddPeer(endpoint))
    return JSONResponse({"ok": True})


@admin.post("/sync", response_model=models.OkOut, tags=["network"],
            responses={503: {"model": models.ErrorOut,
                             "description": "`p2p_unavailable`: no p2p service answers"}})
async def sync_now(gw: Gateway = GW) -> Response:
    """Ask p2p to sync from its best peer now (admin)."""
    await gw.p2p_command(messages.SyncNow())
    return JSONResponse({"ok": True})


def _event_types(types: str | None) -> frozenset[str]:
    if not types:
        return frozenset()
    chosen = frozenset(t.strip() for t in types.split(",") if t.strip())
    unknown = chosen - set(events.TYPES)
    if unknown:
        raise Malformed(f"unknown event type(s) {', '.join(sorted(unknown))[:200]}; known: "
                        f"{', '.join(events.TYPES)}")
    return chosen


SINCE = Query(None, ge=0, le=MAX_AMOUNT, description="resume after this sequence number "
              "(the Last-Event-ID header wins); default: only new events")
TYPES = Query(None, max_length=200, description="comma-separated event types to receive "
              "(head, reorg, txs_added, txs_removed); resync always comes",
              examples=["head,reorg"], json_schema_extra={
                  "pattern": "^(head|reorg|txs_added|txs_removed|resync)"
                             "(,(head|reorg|txs_added|txs_removed|resync))*$"})


@router.get("/events", tags=["events"], response_class=StreamingResponse,
            responses={200: {"description": "an endless text/event-stream",
                             "content": {"text/event-stream": {"example": events.SSE_EXAMPLE}}}})
async def event_stream(gw: Gateway = GW, since: int | None = SINCE, types: str | None = TYPES,
                       last_event_id: str | None = Header(None, alias="Last-Event-ID",
                                                          max_length=40),
                       ) -> StreamingResponse:
    """Server-sent events: new heads, reorgs, transactions added to and removed from the
    pool. Each event is `id: <seq>` and `data: {"seq", "type", ...}`; `seq` rises by one per
    event of this gateway process, so a gap means a loss. Reconnect with `Last-Event-ID`
    (browsers do) or `?since=` to resume; a `resync` event says when that was not possible
    (then re-read `/api/v1/status`). A comment line is sent every 15 s of silence."""
    chosen = _event_types(types)
    start = events.parse_since(last_event_id, since)
    after = gw.hub.seq if start is None else start

    async def stream() -> AsyncIterator[bytes]:
        metrics.EVENT_CLIENTS.inc()
        try:
            yield events.SSE_HEADER
            async for item in gw.hub.follow(after, chosen):
                yield events.SSE_HEARTBEAT if item is None else events.sse_frame(*item)
        finally:
            metrics.EVENT_CLIENTS.dec()

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.websocket("/ws")
async def event_socket(websocket: WebSocket, since: int | None = SINCE,
                       types: str | None = TYPES) -> None:
    """The events of /events over a WebSocket: one JSON text message per event."""
    gw = _gateway_of(websocket)
    try:
        chosen = _event_types(types)
    except CcoinError as exc:
        await websocket.close(code=1008, reason=exc.message[:120])
        return
    await websocket.accept()
    after = gw.hub.seq if since is None else since

    async def pump() -> None:
        async for item in gw.hub.follow(after, chosen):
            if item is not None:
                await websocket.send_text(item[1].decode())

    metrics.EVENT_CLIENTS.inc()
    sender = asyncio.get_running_loop().create_task(pump())
    try:
        while not sender.done():
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
    finally:
        sender.cancel()
        metrics.EVENT_CLIENTS.dec()


@router.get("/mining", response_model=models.MiningOut, tags=["mining"])
async def mining(gw: Gateway = GW) -> Response:
    return JSONResponse(schema.mining_json(await gw.mining_status(fresh=True)))


@admin.post("/mining/start", response_model=models.MiningOut, tags=["mining"])
async def mining_start(gw: Gateway = GW) -> Response:
    return JSONResponse(schema.mining_json(await gw.set_mining(True)))


@admin.post("/mining/stop", response_model=models.MiningOut, tags=["mining"])
async def mining_stop(gw: Gateway = GW) -> Response:
    return JSONResponse(schema.mining_json(await gw.set_mining(False)))


@admin.get("/wallet", response_model=models.WalletOut, tags=["wallet"])
async def wallet(gw: Gateway = GW) -> Response:
    address = gw.wallet.require_address()
    reply = await gw.ask(messages.GetAccount(address), messages.AccountReply)
    public_key = gw.wallet.public_key
    return JSONResponse({**schema.account_json(reply), "key_type": gw.wallet.key_type,
                         "public_key": public_key.hex() if public_key is not None else None,
                         "can_sign": gw.wallet.can_sign})


@admin.post("/wallet/send", status_code=202, response_model=models.SendOut, tags=["wallet"],
            openapi_extra=models.body(models.SendIn))
async def wallet_send(request: Request, gw: Gateway = GW) -> Response:
    req = schema.parse_send(await _read_json(request))
    tx = await gw.send(req)
    return JSONResponse({"id": tx.id.hex(), "nonce": tx.nonce, "from": tx.sender.hex()},
                        status_code=202)


async def health(request: Request) -> Response:
    gw = _gateway(request)
    try:
        await gw.ask(messages.ServicePing(), messages.ServicePong, timeout=HEALTH_TIMEOUT,
                     retries=0)
    except CcoinError as exc:
        return JSONResponse({"status": "unavailable", "gateway": "ok", "state": "unavailable",
                             "version": __version__,
                             **schema.error_body("unavailable", exc.message)},
                            status_code=503, headers={"Retry-After": "1"})
    return JSONResponse({"status": "ok", "gateway": "ok", "state": "ok",
                         "version": __version__})


async def metrics_route(request: Request) -> Response:
    """Prometheus text format: node-wide figures read now, and this gateway's counters."""
    gw = _gateway(request)
    state: messages.StatusReply | None
    try:
        state = await gw.ask(messages.GetStatus(), messages.StatusReply, retries=0)
    except CcoinError:
        state = None
    peers, mining = await asyncio.gather(gw.peers_status(), gw.mining_status())
    families = metrics.node_families(state, peers, peers is not None, mining,
                                     dict(gw.hub.topic_seq), __version__)
    return Response(metrics.exposition(families), media_type=metrics.CONTENT_TYPE)


# --- the application -------------------------------------------------------------------------

DESCRIPTION = """\
REST gateway of a ccoin node (DESIGN §6). Amounts are integers, bytes are lowercase hex,
timestamps are milliseconds since the epoch. Every error is
`{"error": {"code", "message"}}` with a 4xx status for a request that is wrong or conflicts
with the chain (`malformed`, `not_found`, `bad_signature`, `nonce_gap`, `forbidden`, ...),
429 `rate_limited`, and 503 for a service that cannot answer now (`unavailable`,
`pool_full`, `p2p_unavailable`), with `Retry-After`. Every response carries an
`X-Request-ID` (yours, if you sent one), also found in the gateway's JSON log.

**Admin** routes (tag `admin`) answer loopback clients, or any client with
`Authorization: Bearer <api.admin_token>`; forwarding headers, a foreign `Host` or `Origin`
make a loopback request non-admin.

**Live events**: `GET /api/v1/events` (server-sent events) and the WebSocket
`/api/v1/ws` (same JSON, one text message per event; `?since=` and `?types=` as for
/events). Every event has a gap-free `seq`. Programs on the node's host can also subscribe
to the state service's ZeroMQ PUB socket directly (docs/zmq.md).

**Checking a Merkle proof** (`GET /api/v1/txs/{id}/proof`) takes ten lines; compare the
root with the `tx_root` of the block's header (`GET /api/v1/blocks/{block}`):

```python
import hashlib, httpx
def check(api: str, txid: str) -> bool:
    p = httpx.get(f"{api}/api/v1/txs/{txid}/proof").json()
    header = httpx.get(f"{api}/api/v1/blocks/{p['block']}").json()["header"]
    acc = hashlib.sha256(b"\\x00" + bytes.fromhex(txid)).digest()           # the leaf
    for step in p["steps"]:
        sib = bytes.fromhex(step["hash"])
        pair = sib + acc if step["left"] else acc + sib
        acc = hashlib.sha256(b"\\x01" + pair).digest()                       # inner node
    return acc.hex() == header["tx_root"]
```
"""

TAGS = [
    {"name": "chain", "description": "status, blocks, forks and consensus health"},
    {"name": "transactions", "description": "submit, look up, prove; the pool"},
    {"name": "accounts", "description": "balances, nonces and history"},
    {"name": "events", "description": "live events (server-sent events; WebSocket at "
                                      "/api/v1/ws)"},
    {"name": "network", "description": "peers and sync (through the p2p service)"},
    {"name": "mining", "description": "the node's miner"},
    {"name": "wallet", "description": "the node's own account (admin)"},
    {"name": "admin", "description": "loopback or bearer token only"},
    {"name": "node", "description": "gateway health and metrics"},
]


def create_app(config: NodeConfig, chain_id: int, *, body_limit: int = MAX_BODY) -> FastAPI:
    """The gateway app for one node; `chain_id` is the genesis `network_id`."""
    gw = Gateway(config, chain_id)

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
    app = FastAPI(title="ccoin node API", version=__version__, lifespan=lifespan,
                  description=DESCRIPTION, openapi_tags=TAGS)
    app.state.gateway = gw
    app.add_api_route("/health", health, methods=["GET"], response_model=models.Health,
                      tags=["node"], responses={503: {"model": models.Health}})
    app.add_api_route("/metrics", metrics_route, methods=["GET"], tags=["node"],
                      response_class=Response, summary="Prometheus metrics",
                      responses={200: {"description": "Prometheus text format 0.0.4",
                                       "content": {"text/plain": {"example": METRICS_EXAMPLE}}}})
    app.include_router(dashboard.router)  # the web dashboard at `/`
    app.include_router(router)
    app.include_router(admin)
    _install_error_handlers(app)
    _install_openapi(app)
    if config.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(config.cors_origins),
                           allow_methods=["GET", "POST"], allow_headers=["*"])
    app.add_middleware(BodyLimit, limit=body_limit, reject=error_response)
    app.add_middleware(Edge, rate=config.rate_limit, burst=config.rate_burst,
                       limit_loopback=config.rate_limit_loopback)
    return app


def app_from_config(path: str | Path) -> FastAPI:
    config = load_config(path)
    return create_app(config, load_genesis(config.genesis_file()).network_id)


def app_from_env() -> FastAPI:
    """App factory for uvicorn workers (`services.api.app:app_from_env`, factory=True):
    each worker process builds its own app, and so its own bus clients."""
    from runtime.service import setup_logging

    setup_logging("api", os.environ.get("CCOIN_API_LOG_LEVEL", "INFO"))
    path = os.environ.get(CONFIG_ENV)
    if not path:
        raise Malformed(f"{CONFIG_ENV} is not set")
    return app_from_config(path)

