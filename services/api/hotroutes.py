"""The single-submission routes, dispatched by a table lookup (issue 16).

Wallets, the dashboard and most REST clients send one transaction per request, so
`POST /api/v1/txs` and `POST /api/v1/wallet/send` are most of a busy gateway's requests,
and most of such a request's time is the framework around it: FastAPI's router tries
every route of the API in turn (twice: to match, then to handle), solves the route's
dependencies and passes it through its exception middleware, about 0.15 ms of CPU per
request here (py-spy; docs/benchmarks.md has the whole request's steps). `HotRoutes` sends
these two straight to their endpoint functions.

Nothing else about them changes: they stay declared (and documented in OpenAPI) as FastAPI
routes, with the same endpoint functions; the edge before this (request id, rate limit,
body limit and budget, Server-Timing, metrics and the log line) is the same; the admin
rule of `/wallet/send` is applied as its router applies it; a failure gets the same reply
as from FastAPI's exception handlers (`errors.failure_response`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from runtime.http_edge import ASGIApp, Receive, Scope, Send
from services.api.errors import failure_response
from services.api.gateway import Gateway
from services.api.routes import transactions, wallet
from services.api.routes.deps import PREFIX, gateway_of, require_admin

Endpoint = Callable[[Request, Gateway], Awaitable[Response]]
Guard = Callable[[Request], Awaitable[None]]


@dataclass(frozen=True)
class HotRoute:
    """One route's dispatch; `path` names it in metrics and logs, as a matched route's
    template does (the edge reads `scope["route"].path`)."""

    path: str
    endpoint: Endpoint
    guards: tuple[Guard, ...] = ()


ROUTES: dict[tuple[str, str], HotRoute] = {
    ("POST", PREFIX + "/txs"): HotRoute(PREFIX + "/txs", transactions.submit_tx),
    ("POST", PREFIX + "/wallet/send"): HotRoute(PREFIX + "/wallet/send", wallet.wallet_send,
                                                (require_admin,)),
}


class HotRoutes:
    """ASGI middleware: the `ROUTES` requests to their endpoints, the rest to `app`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = ROUTES.get((scope.get("method", ""), scope.get("path", ""))) \
            if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = route
        request = Request(scope, receive)
        try:
            for guard in route.guards:
                await guard(request)
            response = await route.endpoint(request, gateway_of(request))
        except Exception as exc:  # the same reply as FastAPI's handlers would give
            response = failure_response(exc)
        await response(scope, receive, send)
