"""What every route module shares: its routers, the gateway dependency and the admin check.

`api_router()` makes a router under `/api/v1` documenting the error replies any route may
give; `admin_router()` one whose every route first passes the admin rule
(`services.api.admin`) and is logged as an operator's action when it changes something.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.requests import HTTPConnection

from services.api import openapi, schema
from services.api.admin import check_admin
from services.api.edge import OPERATOR_ACTION
from services.api.gateway import Gateway

PREFIX = "/api/v1"


def gateway_of(conn: HTTPConnection) -> Gateway:
    """The gateway of the app serving this request or WebSocket."""
    gw: Gateway = conn.app.state.gateway
    return gw


async def _gateway(request: Request) -> Gateway:
    # async: FastAPI runs a plain-def dependency in a worker thread, for every request
    return gateway_of(request)


GW: Any = Depends(_gateway)


async def require_admin(request: Request) -> None:
    gw = gateway_of(request)
    check_admin(request, gw.config.admin_token, gw.config.cors_origins)
    request.scope[OPERATOR_ACTION] = request.method not in ("GET", "HEAD")


def api_router() -> APIRouter:
    return APIRouter(prefix=PREFIX, responses=openapi.ERRORS)


def admin_router() -> APIRouter:
    return APIRouter(prefix=PREFIX, responses=openapi.ADMIN_ERRORS,
                     dependencies=[Depends(require_admin)], tags=["admin"])


async def read_json(request: Request) -> Any:
    """The request body, parsed by orjson (`malformed` when it is not JSON)."""
    return schema.loads(await request.body())
