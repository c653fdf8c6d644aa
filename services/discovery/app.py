"""The discovery service's HTTP interface (the ccoin seed's discovery service, made strict).

One service can serve several networks; a network is (`network_id`, `genesis`).

    POST /register
        {"network_id": int, "genesis": "<64 hex>", "node_id": "<64 hex>",
         "endpoint": "tcp://host:port", "curve_key": "<64 hex>" or ""}
        -> 200 {"node": {...the fields..., "last_seen": ms}, "renewed": bool, "ttl_ms": int}
        The same call renews an entry (the heartbeat: send it every ttl/3 or so). An entry
        not renewed within the TTL (default 30 s) expires. `curve_key` may be left out ("").
        An endpoint whose host is unspecified (0.0.0.0, [::]) is stored with the address the
        request came from. Another node_id registered with the same endpoint is replaced.

    GET /nodes?network_id=<int>[&genesis=<64 hex>]
        -> 200 {"nodes": [{"network_id", "genesis", "node_id", "endpoint", "curve_key",
                           "last_seen"}, ...], "ttl_ms": int}
        Live nodes, most recently seen first; without `genesis`, every genesis of that id.

    GET /health -> 200 {"status": "ok", "networks": int, "nodes": int, "ttl_ms": int}

Errors are `{"error": {"code", "message"}}` with a 4xx status: 400 `malformed` (bad JSON,
wrong or missing or unknown field, bad query), 404 `not_found`, 405 `method_not_allowed`,
413 `too_large` (body over 4 KiB), 429 `full` (the network has `max_nodes` live nodes, or
the service `max_networks` networks; with Retry-After). The service never answers 5xx to
anything a client sends.

State is in memory (see `services.discovery.registry`): a restarted discovery service fills
up again within one heartbeat.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import orjson
from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from common.errors import CcoinError, Malformed
from runtime.http_edge import ASGIApp, BodyLimit
from services.discovery.registry import (
    DEFAULT_MAX_NETWORKS,
    DEFAULT_MAX_NODES,
    DEFAULT_TTL_MS,
    Registration,
    Registry,
)

log = logging.getLogger("ccoin.discovery")

MAX_BODY = 4096
MAX_ENDPOINT = 255
MAX_NETWORK_ID = 2**32 - 1  # the genesis file's bound
REGISTER_FIELDS = frozenset({"network_id", "genesis", "node_id", "endpoint", "curve_key"})
NODES_PARAMS = frozenset({"network_id", "genesis"})
STATUS = {"malformed": 400, "not_found": 404, "method_not_allowed": 405, "too_large": 413,
          "full": 429}

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,9}")
_ENDPOINT = re.compile(r"tcp://(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})")
_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(code: str, message: str) -> JSONResponse:
    status = STATUS.get(code, 400)
    headers = {"Retry-After": "5"} if status == 429 else None
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status,
                        headers=headers)


# --- validation ------------------------------------------------------------------------------


def parse_hex64(value: Any, name: str, *, optional: bool = False) -> str:
    if optional and value == "":
        return ""
    if type(value) is not str or not _HEX64.fullmatch(value):
        raise Malformed(f"{name} must be 64 hex characters" + (' or ""' if optional else ""))
    return value.lower()


def parse_network_id(value: Any) -> int:
    if type(value) is not int or not 0 <= value <= MAX_NETWORK_ID:
        raise Malformed(f"network_id must be an integer in [0, {MAX_NETWORK_ID}]")
    return value


def parse_endpoint(value: Any, peer_host: str | None) -> str:
    """`tcp://host:port` with an IPv4 or bracketed IPv6 address or a DNS name, and a port in
    [1, 65535]; an unspecified address becomes `peer_host` (the request's source)."""
    if type(value) is not str or len(value) > MAX_ENDPOINT:
        raise Malformed(f"endpoint must be a string of at most {MAX_ENDPOINT} characters")
    m = _ENDPOINT.fullmatch(value)
    if m is None:
        raise Malformed("endpoint must look like tcp://host:port")
    host, port_text = m.group(1), m.group(2)
    port = int(port_text)
    if not 1 <= port <= 65535 or port_text != str(port):
        raise Malformed("endpoint port must be an integer in [1, 65535]")
    address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    if host.startswith("["):
        try:
            address = ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise Malformed(f"endpoint host {host} is not an IPv6 address") from None
    elif re.fullmatch(r"[0-9.]+", host):
        try:
            address = ipaddress.IPv4Address(host)
        except ValueError:
            raise Malformed(f"endpoint host {host} is not an IPv4 address") from None
    elif len(host) > 253 or not all(_LABEL.fullmatch(label) for label in host.split(".")):
        raise Malformed(f"endpoint host {host!r} is not a valid host name")
    if address is not None and address.is_unspecified:
        if not peer_host:
            raise Malformed("endpoint host is unspecified and the request's address unknown")
        try:
            source = ipaddress.ip_address(peer_host)
        except ValueError:
            raise Malformed("endpoint host is unspecified and the request's address is "
                            "not an IP address") from None
        host = f"[{source}]" if source.version == 6 else str(source)
    elif address is not None:
        host = f"[{address}]" if address.version == 6 else str(address)  # canonical form
    else:
        host = host.lower()
    return f"tcp://{host}:{port}"


def parse_registration(body: bytes, peer_host: str | None) -> Registration:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Malformed(f"body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise Malformed("body must be a JSON object")
    unknown = doc.keys() - REGISTER_FIELDS
    if unknown:
        raise Malformed(f"unknown field(s): {', '.join(sorted(unknown))}")
    missing = REGISTER_FIELDS - {"curve_key"} - doc.keys()
    if missing:
        raise Malformed(f"missing field(s): {', '.join(sorted(missing))}")
    return Registration(
        network_id=parse_network_id(doc["network_id"]),
        genesis=parse_hex64(doc["genesis"], "genesis"),
        node_id=parse_hex64(doc["node_id"], "node_id"),
        endpoint=parse_endpoint(doc["endpoint"], peer_host),
        curve_key=parse_hex64(doc.get("curve_key", ""), "curve_key", optional=True),
    )


def parse_nodes_query(params: list[tuple[str, str]]) -> tuple[int, str | None]:
    seen: dict[str, str] = {}
    for key, value in params:
        if key not in NODES_PARAMS:
            raise Malformed(f"unknown query parameter {key!r} (network_id, genesis)")
        if key in seen:
            raise Malformed(f"query parameter {key!r} given twice")
        seen[key] = value
    if "network_id" not in seen:
        raise Malformed("query parameter network_id is required")
    text = seen["network_id"]
    if not _DECIMAL.fullmatch(text):
        raise Malformed("network_id must be a decimal integer")
    network_id = parse_network_id(int(text))
    genesis = parse_hex64(seen["genesis"], "genesis") if "genesis" in seen else None
    return network_id, genesis



def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CcoinError)
    async def ccoin_error(_: Request, exc: CcoinError) -> Response:
        return error_response(exc.code, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return error_response("not_found", f"no route {request.method} {request.url.path}")
        if exc.status_code == 405:
            response = error_response("method_not_allowed",
                                      f"{request.method} is not allowed on {request.url.path}")
            if exc.headers:
                response.headers.update(exc.headers)
            return response
        return error_response("malformed", str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> Response:
        # a bug: logged in full, but the client still gets a 4xx it can act on (retry)
        log.error("unhandled %s", exc.__class__.__name__, exc_info=exc)
        return error_response("malformed", "request could not be processed")


# --- the app ---------------------------------------------------------------------------------


def create_app(registry: Registry | None = None) -> ASGIApp:
    """The discovery ASGI app around `registry` (a fresh one by default)."""
    reg = registry if registry is not None else Registry()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async def sweep() -> None:
            while True:
                await asyncio.sleep(max(reg.ttl_ms / 2000, 0.05))
                dropped = reg.expire()
                if dropped:
                    log.info("expired %d node(s); %d live in %d network(s)", dropped,
                             reg.node_count, reg.network_count)

        task = asyncio.create_task(sweep())
        try:
            yield
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    app = FastAPI(title="ccoin discovery", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)
    app.state.registry = reg
    _install_error_handlers(app)

    @app.post("/register")
    async def register(request: Request) -> Response:
        peer = request.client.host if request.client else None
        registration = parse_registration(await request.body(), peer)
        entry, renewed = reg.register(registration)
        if not renewed:
            log.info("registered %s at %s (network %d)", registration.node_id[:16],
                     registration.endpoint, registration.network_id)
        return JSONResponse({"node": entry.as_json(), "renewed": renewed,
                             "ttl_ms": reg.ttl_ms})

    @app.get("/nodes")
    async def nodes(request: Request) -> Response:
        network_id, genesis = parse_nodes_query(request.query_params.multi_items())
        return JSONResponse({"nodes": [e.as_json() for e in reg.nodes(network_id, genesis)],
                             "ttl_ms": reg.ttl_ms})

    @app.get("/health")
    async def health() -> Response:
        return JSONResponse({"status": "ok", "networks": reg.network_count,
                             "nodes": reg.node_count, "ttl_ms": reg.ttl_ms})

    return BodyLimit(app, MAX_BODY, error_response)


def make_registry(ttl_ms: int = DEFAULT_TTL_MS, max_nodes: int = DEFAULT_MAX_NODES,
                  max_networks: int = DEFAULT_MAX_NETWORKS) -> Registry:
    return Registry(ttl_ms=ttl_ms, max_nodes=max_nodes, max_networks=max_networks)
