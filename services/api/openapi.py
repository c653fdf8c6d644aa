"""The gateway's OpenAPI document (`/openapi.json`, `/docs`): its text, its tags, the error
replies every route may give, and the two patches FastAPI's generated document needs.

The routes read their bodies themselves (for speed, `services.api.schema`), so FastAPI
cannot see the request models: `install` adds the declared request shapes to the
components, where each route's `requestBody` refers to them. And invalid parameters are
answered 400 `malformed` (`services.api.errors`), not FastAPI's 422, so FastAPI's 422
responses and their schemas are dropped (a route's own 422, e.g. POST /peers, stays).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from services.api import replies, spec
from services.api.schema import REQUEST_SHAPES

DESCRIPTION = """\
REST gateway of a ccoin node (DESIGN §6). Amounts are integers, bytes are lowercase hex,
timestamps are milliseconds since the epoch. Every error is
`{"error": {"code", "message"}}` with a 4xx status for a request that is wrong or conflicts
with the chain (`malformed`, `not_found`, `bad_signature`, `nonce_gap`, `forbidden`, ...),
429 `rate_limited`, and 503 for a service that cannot answer now (`unavailable`,
`pool_full`, `p2p_unavailable`, `storage_unavailable`), with `Retry-After`. Every response
carries an `X-Request-ID` (yours, if you sent one), also found in the gateway's JSON log.

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

# the error replies any /api/v1 route may give; admin routes add 403
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": replies.ERROR_OUT.model} for status in (400, 404, 409, 413, 503)
}
ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS, 403: {"model": replies.ERROR_OUT.model}}


def install(app: FastAPI) -> None:
    """Serve the patched document as `app.openapi()` (built once)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version,
                              description=app.description, routes=app.routes,
                              tags=app.openapi_tags)
            for ops in doc.get("paths", {}).values():
                for op in ops.values():
                    responses = op.get("responses", {})
                    if "HTTPValidationError" in str(responses.get("422", "")):
                        del responses["422"]  # FastAPI's, not a route's own 422
            schemas = doc.setdefault("components", {}).setdefault("schemas", {})
            for unused in ("HTTPValidationError", "ValidationError"):
                schemas.pop(unused, None)
            schemas.update(spec.components(REQUEST_SHAPES))
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
