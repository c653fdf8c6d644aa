"""How the REST gateway answers a failure: `{"error": {"code", "message"}}`, always.

- A `CcoinError` raised by a route (or sent back by state, rebuilt as its class) answers with
  its `code` and the `http_status` its class declares in `common.errors`; there is no second
  table of statuses here.
- FastAPI's own refusals become typed errors the same way: no route is `NotFound`, a wrong
  method `MethodNotAllowed` (with `Allow` naming the methods the path takes), an invalid
  parameter `Malformed`, a body over the limit `TooLarge`.
- 429 and 503 carry `Retry-After: 1` (a busy node, not a wrong request).
- Anything else is a 500 `internal`, logged with its traceback; a client never sees it.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from common.errors import (
    CcoinError,
    Forbidden,
    Internal,
    Malformed,
    MethodNotAllowed,
    NotFound,
    PeerUnreachable,
    PoolFull,
    TooLarge,
    Unavailable,
    error_from_code,
)
from services.api.replies import JSONResponse, error_body

log = logging.getLogger("ccoin.api")

RETRY_LATER = (429, 503)
# FastAPI's and Starlette's refusals, by status, as the typed errors they are
HTTP_ERRORS: dict[int, type[CcoinError]] = {
    cls.http_status: cls for cls in (Malformed, Forbidden, NotFound, MethodNotAllowed, TooLarge)
}


def error_response(error: CcoinError, status: int | None = None) -> JSONResponse:
    """The JSON error reply of `error`, with its class's status unless `status` is given."""
    status = status or error.http_status
    headers = {"Retry-After": "1"} if status in RETRY_LATER else None
    return JSONResponse(error_body(error), status_code=status, headers=headers)


def failure_response(exc: Exception) -> JSONResponse:
    """The reply to what a route raised: a typed error as itself (logged when it is a
    fault, not a busy node or peer), anything else as a logged 500 `internal`."""
    if isinstance(exc, CcoinError):
        if exc.http_status >= 500 and not isinstance(exc, (Unavailable, PoolFull,
                                                           PeerUnreachable)):
            log.error("%s: %s", exc.code, exc.message)
        return error_response(exc)
    log.error("unhandled %s", exc.__class__.__name__, exc_info=exc)
    return error_response(Internal("internal error"))


def reject(code: str, message: str) -> JSONResponse:
    """`runtime.http_edge.BodyLimit`'s refusal (it names the error by its code)."""
    return error_response(error_from_code(code, message))


def allowed_methods(app: FastAPI, path: str) -> list[str]:
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


def install(app: FastAPI) -> None:
    """Answer every failure of `app` in the one error shape."""

    @app.exception_handler(CcoinError)
    async def ccoin_error(_: Request, exc: CcoinError) -> Response:
        return failure_response(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> Response:
        problems = []
        for err in exc.errors()[:5]:
            where = ".".join(str(p) for p in err.get("loc", ()))
            problems.append(f"{where}: {err.get('msg', 'invalid')}")
        return error_response(Malformed("; ".join(problems) or "invalid request"))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        status = exc.status_code
        message = str(exc.detail)
        if status == NotFound.http_status:
            message = f"no route {request.method} {request.url.path}"
        elif status == MethodNotAllowed.http_status:
            message = f"{request.method} is not allowed on {request.url.path}"
        response = error_response(HTTP_ERRORS.get(status, CcoinError)(message), status)
        if exc.headers:
            response.headers.update(exc.headers)
        if status == MethodNotAllowed.http_status:
            allowed = allowed_methods(app, request.url.path)
            if allowed:
                response.headers["Allow"] = ", ".join(allowed)
        return response

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> Response:
        return failure_response(exc)
