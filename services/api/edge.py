"""What happens to every request before routing: a request id, rate limiting, and the
numbers and log line it leaves behind.

- **Request id.** A client's `X-Request-ID` (up to 64 characters of `[A-Za-z0-9._:-]`) is
  kept, otherwise one is made; it is echoed in the response's `X-Request-ID` and attached
  to every log record written while the request is handled (`request_id` in the JSON log).
  It is not carried across the bus: the bus's own 12-byte request ids must stay unique per
  bus request (they key the server's retry memory), and one HTTP request may make several.
- **Rate limiting.** A token bucket per client IP (the socket peer, never a forwarding
  header): `api.rate_limit` requests/s refilled up to `api.rate_burst`; past it, 429
  `rate_limited` with `Retry-After`. Loopback clients are exempt unless
  `api.rate_limit_loopback` is set (the benchmark and local tools run there). The table of
  buckets is bounded: full buckets are forgotten first (a full bucket is a new one).
- **Server-Timing.** A route may note what its steps took (`note_timing`): the response
  then carries them in a `Server-Timing` header (milliseconds), with `app`, the time from
  the edge to the response's start. The submission routes do (parsing and the signature
  check, the state round trip), so a client sees where a request's time went.
- **Metrics and logs.** Requests and latency per route template (bounded labels: an
  unmatched path counts as `<unmatched>`); one JSON log line per request at DEBUG, at INFO
  for 4xx and 503 (retry later), WARNING for other 5xx.
"""

from __future__ import annotations

import logging
import math
import os
import time
from typing import Any

import orjson

from common.errors import RateLimited
from runtime.bus import REQUEST_ID, VALID_REQUEST_ID
from runtime.http_edge import ASGIApp, Receive, Scope, Send
from services.api import metrics
from services.api.admin import is_loopback_ip
from services.api.replies import error_body

log = logging.getLogger("ccoin.api.access")
MAX_BUCKETS = 100_000
OPERATOR_ACTION = "ccoin.operator_action"  # scope key: an admin route that changes something
TIMINGS = "ccoin.timings"  # scope key: the (step, seconds) a route noted


def note_timing(scope: Scope, **steps: float) -> None:
    """Record step durations (seconds) for the response's `Server-Timing` header."""
    scope.setdefault(TIMINGS, []).extend(steps.items())


def server_timing(steps: list[tuple[str, float]], app: float) -> bytes:
    return ", ".join(f"{name};dur={dur * 1000:.3f}"
                     for name, dur in (*steps, ("app", app))).encode("ascii")


def new_request_id() -> str:
    return os.urandom(8).hex()


class RateLimiter:
    """Token buckets per key: `rate` tokens per second, at most `burst`."""

    def __init__(self, rate: float, burst: int, max_keys: int = MAX_BUCKETS) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.max_keys = max_keys
        self.buckets: dict[str, list[float]] = {}  # key -> [tokens, last refill]

    def allow(self, key: str, now: float | None = None) -> float:
        """0 when the request may go ahead, else the seconds until a token is back."""
        now = time.monotonic() if now is None else now
        bucket = self.buckets.get(key)
        if bucket is None:
            if len(self.buckets) >= self.max_keys:
                self._prune(now)
            self.buckets[key] = [self.burst - 1, now]
            return 0.0
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens < 1:
            bucket[0] = tokens
            return (1 - tokens) / self.rate
        bucket[0] = tokens - 1
        return 0.0

    def _prune(self, now: float) -> None:
        full = [k for k, (tokens, last) in self.buckets.items()
                if tokens + (now - last) * self.rate >= self.burst]
        for k in full:
            del self.buckets[k]
        if len(self.buckets) >= self.max_keys:  # a flood of distinct addresses: start over
            self.buckets.clear()


class Edge:
    """ASGI middleware: request id, rate limit, metrics and access log."""

    def __init__(self, app: ASGIApp, *, rate: float = 0, burst: int = 1,
                 limit_loopback: bool = False) -> None:
        self.app = app
        self.limiter = RateLimiter(rate, burst) if rate > 0 else None
        self.limit_loopback = limit_loopback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        rid = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                rid = value.decode("ascii") if VALID_REQUEST_ID.fullmatch(value) else ""
                break
        rid = rid or new_request_id()
        token = REQUEST_ID.set(rid)
        try:
            if self.limiter is not None:
                client = scope.get("client")
                host = client[0] if client else ""
                if self.limit_loopback or not is_loopback_ip(host):
                    wait = self.limiter.allow(host)
                    if wait:
                        metrics.RATE_LIMITED.inc()
                        await _refuse(scope, send, rid, wait)
                        return
            if kind == "websocket":
                await self.app(scope, receive, send)
                return
            await self._http(scope, receive, send, rid)
        finally:
            REQUEST_ID.reset(token)

    async def _http(self, scope: Scope, receive: Receive, send: Send, rid: str) -> None:
        start = time.perf_counter()
        status = 500
        header = (b"x-request-id", rid.encode("ascii"))

        async def send_with_id(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", ()), header]
                steps = scope.get(TIMINGS)
                if steps:
                    headers.append((b"server-timing",
                                    server_timing(steps, time.perf_counter() - start)))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            route = getattr(scope.get("route"), "path", None) or "<unmatched>"
            method = scope["method"]
            metrics.REQUESTS.labels(route, method, str(status)).inc()
            metrics.LATENCY.labels(route, method).observe(elapsed)
            # an operator's action (mining, peers, sync, wallet) is worth a line even when
            # it succeeds; reads and transaction submissions are too many to log
            ok = logging.INFO if scope.get(OPERATOR_ACTION) else logging.DEBUG
            level = ok if status < 400 else logging.INFO \
                if status < 500 or status == 503 else logging.WARNING
            if log.isEnabledFor(level):
                log.log(level, "%s %s %d %.1fms", method, scope.get("path", ""), status,
                        elapsed * 1000)


async def _refuse(scope: Scope, send: Send, rid: str, wait: float) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1013, "reason": "rate limited"})
        return
    body = orjson.dumps(error_body(RateLimited("too many requests from this address; "
                                               "slow down")))
    await send({"type": "http.response.start", "status": RateLimited.http_status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(max(1, math.ceil(wait))).encode()),
        (b"x-request-id", rid.encode("ascii"))]})
    await send({"type": "http.response.body", "body": body})
