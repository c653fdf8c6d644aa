"""What ccoin's HTTP services (the api gateway and discovery) share at their edge: the
request body limit, answered in each service's own error shape."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from common.errors import TooLarge

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
ErrorResponse = Callable[[str, str], ASGIApp]


class BodyLimit:
    """Refuse request bodies over `limit` bytes with 413 `too_large`: at once when the
    Content-Length says so (nothing more is read), else as soon as the bytes received
    exceed it (chunked uploads: `TooLarge` is raised to the app's error handler).
    `reject(code, message)` builds the service's own error response."""

    def __init__(self, app: ASGIApp, limit: int, reject: ErrorResponse) -> None:
        self.app = app
        self.limit = limit
        self.reject = reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit():
                    await self.reject("malformed", "bad Content-Length")(scope, receive, send)
                    return
                if int(value) > self.limit:
                    await self.reject("too_large", f"body of {int(value)} bytes exceeds "
                                      f"{self.limit}")(scope, receive, send)
                    return
        received = 0
        limit = self.limit

        async def limited() -> Any:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise TooLarge(f"body exceeds {limit} bytes")
            return message

        await self.app(scope, limited, send)

