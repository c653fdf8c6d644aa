"""Routes of the chain: the node's status, blocks, branch tips and consensus health."""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import Query
from starlette.responses import Response

from common import __version__, messages
from common.errors import CcoinError, Internal
from common.types import MAX_AMOUNT, Block, BlockOutline
from runtime.service import now_ms
from services.api import chainhealth, replies, schema
from services.api.gateway import Gateway
from services.api.kinds import Int
from services.api.replies import JSONResponse
from services.api.routes.deps import GW, api_router

router = api_router()
ROUTERS = (router,)


def decode_block(raw: bytes) -> Block:
    try:
        return Block.decode(raw)
    except CcoinError as exc:
        raise Internal(f"state sent an undecodable block: {exc.message}") from None


def outline_block(raw: bytes, ids: bytes = b"") -> BlockOutline:
    try:
        return BlockOutline.decode(raw, ids)
    except CcoinError as exc:
        raise Internal(f"state sent an undecodable block: {exc.message}") from None


@router.get("/status", response_model=replies.STATUS_OUT.model, tags=["chain"])
async def status(gw: Gateway = GW) -> Response:
    st, mining, peers = await asyncio.gather(gw.ask(messages.GetStatus(), messages.StatusReply),
                                             gw.miner.status(), gw.p2p.status())
    return JSONResponse(replies.STATUS_OUT.render(
        st, mining=bool(mining and mining.enabled), validator=mining is not None,
        version=__version__, p2p=peers is not None,
        peers=len(peers.peers) if peers else 0, syncing=bool(peers and peers.syncing),
        p2p_endpoint=peers.endpoint or None if peers else None,
        chain_host=gw.attached or None, assume_valid=peers.assume_valid if peers else None))


@router.get("/blocks/count", response_model=replies.COUNT_OUT.model, tags=["chain"])
async def block_count(gw: Gateway = GW) -> Response:
    st = await gw.ask(messages.GetStatus(), messages.StatusReply)
    return JSONResponse(replies.COUNT_OUT.render(count=st.height + 1))


@router.get("/blocks", response_model=replies.BLOCKS_OUT.model, tags=["chain"])
async def blocks(
    gw: Gateway = GW,
    start: int | None = Int(0, MAX_AMOUNT).query(
        None, description="first height of the page (default: the head, or 0 with "
                          "order=asc)"),
    limit: int = Int(1, schema.MAX_PAGE).query(20),
    order: Literal["desc", "asc"] = Query("desc", description="desc: newest first"),
    full: bool = Query(False, description="whole transactions instead of their ids"),
) -> Response:
    newest_first = order == "desc"
    first = start if start is not None else (-1 if newest_first else 0)
    reply = await gw.ask(messages.GetBlockRange(first, limit, newest_first),
                         messages.BlockPageReply)
    out = []
    for paged in reply.blocks:
        # ids need no decoding, and state has those of the blocks it imported lately
        block = decode_block(paged.raw) if full else outline_block(paged.raw, paged.ids)
        out.append(replies.block_summary_json(block,
                                              confirmations=reply.height - block.height + 1))
    return JSONResponse(replies.BLOCKS_OUT.render(reply, blocks=out))


@router.get("/blocks/{ref}", response_model=replies.BLOCK_OUT.model, tags=["chain"])
async def block(ref: str = schema.BLOCK_REF.path(), gw: Gateway = GW,
                changes: bool = Query(True, description="list the accounts the block "
                                                       "changed, before -> after")) -> Response:
    """One block with all its transactions and, the seed's "state" of a block, the accounts
    it changed (a main-chain block's: the node keeps no state for a block off it)."""
    height, hash_ = schema.BLOCK_REF.parse(ref)
    reply = await gw.ask(messages.GetBlock(height, hash_, changes), messages.BlockReply)
    extra = {"changes": reply.changes if reply.has_changes else None} if changes else {}
    return JSONResponse(replies.BLOCK_OUT.render(
        decode_block(reply.block), total_weight=reply.total_weight,
        confirmations=reply.confirmations, on_main_chain=reply.on_main_chain, **extra))


@router.get("/chain/tips", response_model=replies.TIPS_OUT.model, tags=["chain"])
async def chain_tips(gw: Gateway = GW) -> Response:
    """Every known branch tip: the head (`active`), stored lighter forks (`valid-fork`,
    with how many blocks they are off the main chain) and blocks found `invalid`."""
    reply = await gw.ask(messages.GetTips(), messages.TipsReply)
    return JSONResponse(replies.TIPS_OUT.render(reply))


@router.get("/consensus", response_model=chainhealth.CONSENSUS_OUT.model, tags=["chain"])
async def consensus(gw: Gateway = GW,
                    window: int = Int(1, 10_000).query(
                        100, description="how many recent blocks to look at"),
                    ) -> Response:
    """Chain health: whether the next block is overdue (time since the head against the
    interval), which authorities are live, who may seal next under the recency rule, each
    authority's turns sealed and missed (missed slots counted from time too), a sentence
    saying why the chain waits, and the authority votes (`votes`: the set, open proposals
    with who voted, the latest changes, this node's own proposals, and a warning for a
    removal that would leave too few live authorities)."""
    st, signers, votes = await asyncio.gather(
        gw.ask(messages.GetStatus(), messages.StatusReply),
        gw.ask(messages.GetSigners(window, now_ms()), messages.SignersReply),
        gw.ask(messages.GetAuthorities(), messages.AuthoritiesReply))
    return JSONResponse(chainhealth.consensus_json(st, signers, window, votes))
