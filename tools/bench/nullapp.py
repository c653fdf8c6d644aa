"""`python -m tools.bench.nullapp PORT`: an HTTP server that answers every request 202 with
a small JSON body and does nothing else, under uvicorn with the gateway's own settings
(uvloop, httptools, no access log). The single-submission stage runs its concurrent
clients against it too: what this machine and this client reach when the server's work
is nothing, the ceiling a real route is compared with."""

from __future__ import annotations

import sys
from typing import Any

import uvicorn

BODY = b'{"id":"' + b"0" * 64 + b'"}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(BODY))]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 202, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), loop="uvloop", http="httptools",
                lifespan="off", log_config=None, access_log=False, server_header=False)
