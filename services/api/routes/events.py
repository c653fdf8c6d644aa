"""Routes of live events: server-sent events (`/events`) and the same over a WebSocket
(`/ws`), both from the gateway's numbered stream (`services.api.events`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Header, WebSocket
from starlette.responses import StreamingResponse

from common.errors import CcoinError, Malformed
from common.types import MAX_AMOUNT
from services.api import events, metrics
from services.api.gateway import Gateway
from services.api.kinds import Int, Kind, Parser
from services.api.routes.deps import GW, api_router, gateway_of
from services.api.spec import Param

router = api_router()
ROUTERS = (router,)
MAX_LENGTH = 200


class EventTypesKind(Kind):
    """A comma-separated list of event types -> the set chosen (empty: all of them)."""

    __slots__ = ()

    def annotation(self) -> Any:
        return str

    def constraints(self) -> dict[str, Any]:
        one = "(" + "|".join(events.TYPES) + ")"
        return {"pattern": f"^{one}(,{one})*$", "max_length": MAX_LENGTH}

    def parser(self) -> Parser:
        def parse(text: str, name: str) -> frozenset[str]:
            if len(text) > MAX_LENGTH:
                raise Malformed(f"{name} longer than {MAX_LENGTH} characters")
            chosen = frozenset(t.strip() for t in text.split(",") if t.strip())
            unknown = chosen - set(events.TYPES)
            if unknown:
                raise Malformed(f"unknown event type(s) {', '.join(sorted(unknown))[:200]}; "
                                f"known: {', '.join(events.TYPES)}")
            return chosen

        return parse


TYPES = Param(EventTypesKind(), "types", "comma-separated event types to receive (head, "
              "reorg, txs_added, txs_removed); resync always comes", "head,reorg")
SINCE_DOC = ("resume after this sequence number (the Last-Event-ID header wins); default: "
             "only new events")


def _chosen(types: str | None) -> frozenset[str]:
    return TYPES.parse(types) if types else frozenset()


@router.get("/events", tags=["events"], response_class=StreamingResponse,
            responses={200: {"description": "an endless text/event-stream",
                             "content": {"text/event-stream": {"example": events.SSE_EXAMPLE}}}})
async def event_stream(gw: Gateway = GW,
                       since: int | None = Int(0, MAX_AMOUNT).query(None, description=SINCE_DOC),
                       types: str | None = TYPES.query(),
                       last_event_id: str | None = Header(None, alias="Last-Event-ID",
                                                          max_length=40),
                       ) -> StreamingResponse:
    """Server-sent events: new heads, reorgs, transactions added to and removed from the
    pool. Each event is `id: <seq>` and `data: {"seq", "type", ...}`; `seq` rises by one per
    event of this gateway process, so a gap means a loss. Reconnect with `Last-Event-ID`
    (browsers do) or `?since=` to resume; a `resync` event says when that was not possible
    (then re-read `/api/v1/status`). A comment line is sent every 15 s of silence."""
    chosen = _chosen(types)
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
async def event_socket(websocket: WebSocket,
                       since: int | None = Int(0, MAX_AMOUNT).query(None,
                                                                    description=SINCE_DOC),
                       types: str | None = TYPES.query()) -> None:
    """The events of /events over a WebSocket: one JSON text message per event."""
    gw = gateway_of(websocket)
    try:
        chosen = _chosen(types)
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
