"""How much request body the gateway holds at once: large bodies wait their turn.

A batch of 5,000 transactions is a body of a few megabytes, and the gateway's memory while
it handles one is several times that (the bytes, the parsed JSON, the decoded transactions,
the message to state). Twenty-four such requests at once took the gateway from 72 MB to a
422 MB peak, and it kept 194 MB afterwards (issue 13). So:

- **A budget.** A request whose body is large (a Content-Length of `LARGE_BODY` or more, or
  no Content-Length: a chunked body, counted at the body limit) reserves its size from
  `api.body_budget_mb` before its body is read, and gives it back when its response is
  done. While the budget is spent, the next large request waits, in arrival order (a
  queue, not a refusal: the client only sees a slower answer); past `QUEUE_TIMEOUT_S` it
  is answered 503 `unavailable` with `Retry-After`. Small requests never wait. A body
  larger than the whole budget runs alone.
- **Back to the baseline.** When the last large request is done, the freed heap is handed
  back to the OS (glibc's `malloc_trim`; CPython leaves big freed blocks with malloc,
  which keeps them), at most once per `TRIM_EVERY_S`.

`ccoin_api_body_bytes_in_flight` and `ccoin_api_bodies_waiting` show it at work.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import math
import time
from collections import deque
from collections.abc import Callable

import orjson

from common.errors import Unavailable
from runtime.http_edge import ASGIApp, Receive, Scope, Send
from services.api import metrics
from services.api.replies import error_body

log = logging.getLogger("ccoin.api")

LARGE_BODY = 256 * 1024
QUEUE_TIMEOUT_S = 30.0
TRIM_EVERY_S = 1.0


def _malloc_trim() -> Callable[[], object] | None:
    """glibc's `malloc_trim(0)`, or None where there is none (musl, macOS)."""
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    return lambda: trim(0)


class BodyBudget:
    """ASGI middleware: the budget of the module docstring, `budget` bytes in all;
    `body_limit` is what a body without a Content-Length may grow to."""

    def __init__(self, app: ASGIApp, budget: int, body_limit: int,
                 trim: Callable[[], object] | None = None) -> None:
        self.app = app
        self.budget = budget
        self.body_limit = body_limit
        self.available = budget
        self.waiting: deque[tuple[int, asyncio.Future[None]]] = deque()
        self.trim = trim if trim is not None else _malloc_trim()
        self._last_trim = 0.0
        self._trims: set[asyncio.Task[object]] = set()

    def size_of(self, scope: Scope) -> int:
        """The bytes a request reserves: 0 for a small body."""
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return 0
        for name, value in scope["headers"]:
            if name == b"content-length":
                n = int(value) if value.isdigit() else 0
                return n if n >= LARGE_BODY else 0
        return self.body_limit  # chunked: it may be as large as the limit allows

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        size = min(self.size_of(scope), self.budget)
        if not size:
            await self.app(scope, receive, send)
            return
        try:
            async with asyncio.timeout(QUEUE_TIMEOUT_S):
                await self._reserve(size)
        except TimeoutError:
            await _busy(send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self._release(size)

    async def _reserve(self, size: int) -> None:
        if not self.waiting and self.available >= size:
            self._take(size)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.append((size, fut))
        metrics.BODIES_WAITING.inc()
        try:
            await fut
        except asyncio.CancelledError:  # its wait timed out, or its client went away
            if fut.done() and not fut.cancelled():
                self._release(size)  # granted as it was cancelled: give it back
            else:
                self.waiting.remove((size, fut))
                self._grant()  # it may have held up smaller ones behind it
            raise
        finally:
            metrics.BODIES_WAITING.dec()

    def _take(self, size: int) -> None:
        self.available -= size
        metrics.BODY_BYTES_IN_FLIGHT.inc(size)

    def _release(self, size: int) -> None:
        self.available += size
        metrics.BODY_BYTES_IN_FLIGHT.dec(size)
        self._grant()
        if self.available == self.budget:
            self._trim_heap()

    def _grant(self) -> None:
        """Let the waiting in, in order, while the budget allows."""
        while self.waiting and self.available >= self.waiting[0][0]:
            n, fut = self.waiting.popleft()
            self._take(n)
            fut.set_result(None)

    def _trim_heap(self) -> None:
        now = time.monotonic()
        if self.trim is None or now - self._last_trim < TRIM_EVERY_S:
            return
        self._last_trim = now
        # off the event loop: trimming a large heap takes milliseconds
        task = asyncio.get_running_loop().create_task(asyncio.to_thread(self.trim))
        self._trims.add(task)
        task.add_done_callback(self._trims.discard)


async def _busy(send: Send) -> None:
    body = orjson.dumps(error_body(Unavailable(
        "too many large requests at once: this one waited its turn for "
        f"{QUEUE_TIMEOUT_S:.0f} s (api.body_budget_mb); retry later")))
    await send({"type": "http.response.start", "status": Unavailable.http_status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(math.ceil(QUEUE_TIMEOUT_S / 10)).encode())]})
    await send({"type": "http.response.body", "body": body})
