"""Routes of the network, through the p2p service: peers and sync state; adding a peer (by
its p2p endpoint, or by its page URL: `services.api.peer_page`) and syncing now are admin
routes."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.responses import Response

from common import messages
from common.errors import NoPeers, P2PUnavailable
from services.api import node_replies, peer_page, replies, schema
from services.api.gateway import COMMAND_TIMEOUT, Gateway
from services.api.replies import JSONResponse
from services.api.routes.deps import GW, admin_router, api_router, read_json
from services.api.spec import request_body

router = api_router()
admin = admin_router()
ROUTERS = (router, admin)

NO_P2P: dict[int | str, dict[str, Any]] = {
    503: {"model": replies.ERROR_OUT.model,
          "description": "`p2p_unavailable`: no p2p service answers"}}


@router.get("/peers", response_model=node_replies.PEERS_OUT.model, tags=["network"])
async def peers(gw: Gateway = GW) -> Response:
    """Connected peers and the sync state; `"p2p": false` (and no peers) when no p2p
    service answers on this node."""
    return JSONResponse(node_replies.peers_json(await gw.p2p.status(fresh=True)))


ADD_PEER_ERRORS: dict[int | str, dict[str, Any]] = {
    **NO_P2P,
    409: {"model": replies.ERROR_OUT.model,
          "description": "refused, by this node or the peer: `peer_wrong_network`, "
                         "`peer_banned`, `peer_full` (no free slot), `peer_is_self`, "
                         "`peer_refused` (any other reason, named in the message); "
                         "`peer_no_p2p`: the node at the page URL runs no p2p service"},
    422: {"model": replies.ERROR_OUT.model,
          "description": "a page URL that gives no peer: `peer_url_unreachable` (nothing "
                         "answered within 3 s), `peer_url_not_ccoin` (the answer is not a "
                         "ccoin node's status)"},
    504: {"model": replies.ERROR_OUT.model,
          "description": "`peer_unreachable`: no handshake within `wait_ms` (the address "
                         "stays in the node's address book and is retried)"}}


@admin.post("/peers", response_model=node_replies.ADD_PEER_OUT.model, tags=["network"],
            openapi_extra=request_body(schema.PEER_IN), responses=ADD_PEER_ERRORS)
async def add_peer(request: Request, gw: Gateway = GW) -> Response:
    """Ask p2p to connect to a peer by endpoint (admin), and say what happened: connected
    (with the peer's node id), already connected, refused (why), or unreachable. The peer
    may also be given by its page URL (`http://host:8000/`): this node reads that node's
    status, checks that it runs the same network and genesis, and dials its `p2p_endpoint`
    (the reply's `endpoint`)."""
    endpoint, wait_ms = schema.parse_add_peer(await read_json(request))
    if peer_page.is_page_url(endpoint):
        if await gw.p2p.status(fresh=True) is None:  # before fetching anything
            raise P2PUnavailable("no p2p service runs on this node")
        status = await gw.ask(messages.GetStatus(), messages.StatusReply)
        endpoint = await peer_page.resolve(endpoint, status.network_id, status.genesis)
    reply = await gw.p2p.command(messages.AddPeer(endpoint, wait_ms), messages.AddPeerReply,
                                 timeout=wait_ms / 1000 + COMMAND_TIMEOUT)
    return JSONResponse(node_replies.ADD_PEER_OUT.render(reply))


@admin.post("/sync", response_model=node_replies.OK_OUT.model, tags=["network"],
            responses={**NO_P2P, 409: {"model": replies.ERROR_OUT.model,
                                       "description": "`no_peers`: no peer to sync from"}})
async def sync_now(gw: Gateway = GW) -> Response:
    """Ask p2p to sync from its best peer now (admin); 409 `no_peers` when it has none
    (p2p would accept the request and do nothing, and the caller would wait in vain)."""
    status = await gw.p2p.status(fresh=True)
    if status is not None and not status.peers:
        raise NoPeers("no peer is connected: there is no one to sync from (add one first)")
    await gw.p2p.command(messages.SyncNow(), messages.Ok)
    return JSONResponse(node_replies.OK)
