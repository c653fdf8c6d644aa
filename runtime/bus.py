"""ZeroMQ plumbing shared by every service: the request server, the client, the publisher.

Requests travel DEALER -> ROUTER as frames `[request_id, message]` and replies come back as
`[request_id, reply]`, so many requests can be in flight on one socket (pipelining, which
is what lets bulk work reach tens of thousands of messages per second). Every request gets
a reply: a handler's typed error becomes an `ErrorReply`, an unexpected exception becomes
an `internal` error reply and is logged, undecodable input a `malformed` one.

Clients follow the ZeroMQ guide's Lazy Pirate pattern: a timeout per attempt, a bounded
number of retries with the same request id, and a fresh socket after a failure. The server
remembers recent replies by request id, so a retried request is answered from that memory
instead of being executed twice: every request is idempotent across retries. A client also
watches its connection (a ZeroMQ socket monitor): when the server's end drops (its process
was killed, or restarted by supervisord), what was in flight may never have reached it, so
it is sent again at once, and waits in the socket until the server is back, rather than
after a timeout that may be long (a sync's block import waits 30 s).

A request made while serving an HTTP request carries that request's id (`REQUEST_ID`, the
gateway's `X-Request-ID`) as an optional third frame, `[request_id, message, trace]`; the
serving side sets `REQUEST_ID` while it handles it, so the log lines an operator's action
causes in every service name the same id (`request_id` in the JSON logs). Like
jupyter_client's message header, it is context, never part of what is asked.

Events are published as `[topic, seq, message]` after the change they describe has been
committed; `seq` rises by one per event of that topic (as in Bitcoin Core's ZMQ
notifications), so a subscriber can tell it missed one (PUB drops silently at its
high-water mark) and ask the service for the current state instead.

Every message carries the bus protocol version (`messages.BUS_VERSION`, in the message
envelope, like the version in jupyter_client's header). A request of another version is
answered with a typed `VersionMismatch` error in the one form every version reads, and the
server goes on serving; an event of another version is reported once in the log as an error
(`VersionMismatch`, not `malformed`) and ignored. So a service restarted from another
installation says what is wrong instead of failing obscurely.

A tcp:// endpoint is CurveZMQ (runtime/buscurve.py): servers and publishers take the
process's `Guard`, clients and subscribers its `BusCurve` keys; ipc:// and inproc:// ones
need neither.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import logging
import os
import re
import struct
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import zmq
import zmq.asyncio
from zmq.utils.monitor import parse_monitor_message

from common import messages
from common.encoding import unpack
from common.errors import CcoinError, Internal, Malformed, Unavailable, VersionMismatch
from common.messages import ErrorReply, Message
from runtime.buscurve import BusCurve, Guard, check_client, secure_client
from runtime.loopsocket import LoopSocket, plain_socket, wait_any_readable

log = logging.getLogger("ccoin.bus")

Handler = Callable[[Any], "Message | Awaitable[Message]"]
R = TypeVar("R", bound=Message)

DEFAULT_TIMEOUT = 5.0
DEFAULT_RETRIES = 3
MAX_MESSAGE = messages.MAX_SIZE
REPLY_MEMORY = 4096
HWM = 10_000
# ZMTP heartbeats (the ZeroMQ guide's): a link whose far end went silent without closing it
# (a cable pulled, a host frozen) stays a half-open tcp connection that TCP alone gives up
# on after minutes; a gateway cut from its chain host streamed no events for ~25 s after the
# link came back. A PING every second, and a link dropped after HEARTBEAT_TIMEOUT_MS
# without a word, make the socket connect afresh, which its users watch for (a client
# resends what was in flight, a subscriber re-reads what it follows). libzmq's own thread
# answers them, so a busy service still does.
HEARTBEAT_IVL_MS = 1_000
HEARTBEAT_TIMEOUT_MS = 5_000
# A connect made while the link is down waits for TCP's SYN retries, which back off to
# many seconds: one that has not completed in this long is given up and made again, so
# that a link back up is used within about that long.
CONNECT_TIMEOUT_MS = 2_000
_SEQ = struct.Struct(">Q")
# the id of the request being handled in this context ("" when none): set by the gateway per
# HTTP request and by `Server` per bus request; sent along by `BusClient` and `SyncBusClient`
REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
VALID_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:\-]{1,64}")
MISMATCH_LOG_INTERVAL = 60.0  # seconds between two log lines about the same mismatch
_mismatch_logged: dict[str, float] = {}


def _log_mismatch(level: int, text: str) -> None:
    """Log a version mismatch once, then at most once a minute: a node whose services run
    two installations would otherwise log it for every message."""
    now = time.monotonic()
    last = _mismatch_logged.get(text)
    if last is None or now - last >= MISMATCH_LOG_INTERVAL:
        if len(_mismatch_logged) >= 256:  # the text names the sender's type: keep it bounded
            _mismatch_logged.clear()
        _mismatch_logged[text] = now
        log.log(level, "%s", text)


def _trace_frames() -> list[bytes]:
    rid = REQUEST_ID.get()
    return [rid.encode("ascii")] if rid else []


def _tune(sock: zmq.Socket[Any]) -> None:
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE)
    sock.setsockopt(zmq.SNDHWM, HWM)
    sock.setsockopt(zmq.RCVHWM, HWM)
    sock.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_IVL_MS)
    sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS)
    sock.setsockopt(zmq.CONNECT_TIMEOUT, CONNECT_TIMEOUT_MS)


def prepare_endpoint(endpoint: str) -> None:
    """Make the directory of an ipc:// endpoint exist and remove a stale socket file."""
    if endpoint.startswith("ipc://"):
        path = endpoint[len("ipc://"):]
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


class Server:
    """Serves typed requests on a ROUTER socket through a dispatch table.

    Requests are handled one at a time, in order, unless their type is in `concurrent`:
    such a request (one that waits on the world, like p2p's `AddPeer` waiting for a
    handshake) runs as a task of its own and is answered when it is done, so the requests
    behind it are not held up. A retry of one still running is dropped (its reply, once
    made, is remembered for the next retry)."""

    def __init__(self, ctx: zmq.asyncio.Context, endpoint: str, name: str,
                 handlers: dict[type[Message], Handler],
                 concurrent: frozenset[type[Message]] = frozenset(),
                 guard: Guard | None = None) -> None:
        self.name = name
        self.handlers: dict[type[Message], Handler] = {messages.ServicePing: self._ping, **handlers}
        self.concurrent = concurrent
        self._running: dict[bytes, asyncio.Task[None]] = {}
        self.io = LoopSocket(ctx, zmq.ROUTER)
        self.sock = self.io.sock
        _tune(self.sock)
        self.sock.setsockopt(zmq.ROUTER_MANDATORY, 0)
        (guard or Guard(ctx, None)).serve(self.sock, endpoint)
        prepare_endpoint(endpoint)
        self.sock.bind(endpoint)
        self.replies: OrderedDict[bytes, bytes] = OrderedDict()
        self.requests_served = 0

    def _ping(self, _: messages.ServicePing) -> messages.ServicePong:
        from common import __version__

        return messages.ServicePong(self.name, __version__)

    async def handle(self, payload: bytes) -> Message:
        try:
            try:
                request = messages.decode(payload)
            except VersionMismatch as exc:
                mismatch = VersionMismatch(f"{self.name}: {exc.message}")
                _log_mismatch(logging.WARNING, f"refused a request: {mismatch.message}")
                return ErrorReply.of(mismatch)  # unversioned: the sender can read it
            handler = self.handlers.get(type(request))
            if handler is None:
                raise Malformed(f"{self.name} does not serve {request.TYPE}")
            result = handler(request)
            if asyncio.iscoroutine(result):
                result = await result
            return result  # type: ignore[return-value]
        except CcoinError as exc:
            return ErrorReply.of(exc)
        except Exception as exc:  # a bug must not leave the client without a reply
            log.exception("%s: handler failed", self.name)
            return ErrorReply("internal", f"{exc.__class__.__name__}: {exc}")

    async def serve_forever(self) -> None:
        try:
            while True:
                frames = await self.io.recv_multipart()
                if len(frames) not in (3, 4):
                    continue  # not our framing: nothing to answer to
                identity, request_id, payload = frames[:3]
                trace = frames[3] if len(frames) == 4 else b""
                if request_id in self._running:
                    continue  # a retry of a request still being handled
                if request_id not in self.replies and self._runs_apart(payload):
                    self._running[request_id] = asyncio.create_task(
                        self._answer(identity, request_id, payload, trace),
                        name=f"{self.name}-request")
                    continue
                await self._answer(identity, request_id, payload, trace)
        finally:
            for task in self._running.values():
                task.cancel()

    def _runs_apart(self, payload: bytes) -> bool:
        """Whether the request is of a `concurrent` type (a cheap look at its type name:
        `handle` decodes and checks it properly)."""
        if not self.concurrent:
            return False
        try:
            value = unpack(payload, MAX_MESSAGE)
        except CcoinError:
            return False
        cls = (messages.CATALOGUE.get(value[1]) if type(value) is tuple and len(value) == 3
               and type(value[1]) is str else None)
        return cls in self.concurrent

    async def _answer(self, identity: bytes, request_id: bytes, payload: bytes,
                      trace: bytes) -> None:
        try:
            cached = self.replies.get(request_id)
            if cached is None:
                # an unreadable trace is dropped, not refused: it is only context for logs
                token = REQUEST_ID.set(trace.decode("ascii")
                                       if VALID_REQUEST_ID.fullmatch(trace) else "")
                try:
                    reply = await self.handle(payload)
                finally:
                    REQUEST_ID.reset(token)
                cached = messages.encode(reply)
                self.replies[request_id] = cached
                if len(self.replies) > REPLY_MEMORY:
                    self.replies.popitem(last=False)
            self.requests_served += 1
            await self.io.send_multipart([identity, request_id, cached])
        finally:
            self._running.pop(request_id, None)

    def close(self) -> None:
        for task in self._running.values():
            task.cancel()
        self.io.close(0)


class _Dropped(Exception):
    """The connection to the server dropped while the request was in flight."""


_monitors = itertools.count()  # a unique inproc:// address for each socket's monitor


class BusClient:
    """asyncio client for one service; any number of concurrent requests."""

    def __init__(self, endpoint: str, ctx: zmq.asyncio.Context | None = None,
                 timeout: float = DEFAULT_TIMEOUT, retries: int = DEFAULT_RETRIES,
                 curve: BusCurve | None = None) -> None:
        check_client(endpoint, curve)
        self.endpoint = endpoint
        self.curve = curve
        self.ctx = ctx or zmq.asyncio.Context.instance()
        self.timeout = timeout
        self.retries = retries
        self.pending: dict[bytes, asyncio.Future[bytes]] = {}
        self.sock: LoopSocket | None = None
        self.reader: asyncio.Task[None] | None = None
        self.monitor: LoopSocket | None = None
        self.watcher: asyncio.Task[None] | None = None
        self.last_reply = 0.0  # monotonic time of the last frame received
        self.drops = 0  # how often the server's end of the connection dropped

    def _open(self) -> LoopSocket:
        if self.sock is None:
            sock = LoopSocket(self.ctx, zmq.DEALER)
            _tune(sock.sock)
            secure_client(sock.sock, self.endpoint, self.curve)
            address = f"inproc://bus-client-monitor-{os.getpid()}-{next(_monitors)}"
            sock.sock.monitor(address, zmq.EVENT_DISCONNECTED)
            monitor = LoopSocket(self.ctx, zmq.PAIR)
            monitor.sock.setsockopt(zmq.LINGER, 0)
            monitor.sock.connect(address)
            sock.sock.connect(self.endpoint)
            self.sock, self.monitor = sock, monitor
            loop = asyncio.get_running_loop()
            self.reader = loop.create_task(self._read(sock))
            self.watcher = loop.create_task(self._watch(monitor))
        return self.sock

    def _reset(self) -> None:
        """Lazy Pirate: abandon the socket after a timeout; in-flight requests retry."""
        for task in (self.reader, self.watcher):
            if task is not None:
                task.cancel()
        self.reader = self.watcher = None
        if self.monitor is not None:
            self.monitor.close(0)
            self.monitor = None
        if self.sock is not None:
            self.sock.close(0)
            self.sock = None

    async def _watch(self, monitor: LoopSocket) -> None:
        """Send what is in flight again as soon as the server's end drops (see the module
        docstring): each waiting request gets `_Dropped` and makes its next attempt."""
        try:
            while True:
                frames = await monitor.recv_multipart()
                if parse_monitor_message(frames)["event"] != zmq.EVENT_DISCONNECTED:
                    continue
                self.drops += 1
                for fut in self.pending.values():
                    if not fut.done():
                        fut.set_exception(_Dropped())
        except (asyncio.CancelledError, zmq.ZMQError):
            pass

    async def _read(self, sock: LoopSocket) -> None:
        try:
            while True:
                frames = await sock.recv_multipart()
                self.last_reply = time.monotonic()
                if len(frames) != 2:
                    continue
                fut = self.pending.get(frames[0])
                if fut is not None and not fut.done():
                    fut.set_result(frames[1])
        except (asyncio.CancelledError, zmq.ZMQError):
            pass

    async def request(self, msg: Message, expect: type[R], timeout: float | None = None,
                      retries: int | None = None) -> R:
        """Send `msg`, return the typed reply; raise its typed error, or `Unavailable`."""
        request_id = os.urandom(12)
        payload = messages.encode(msg)
        trace = _trace_frames()
        attempts = 1 + (self.retries if retries is None else retries)
        wait = self.timeout if timeout is None else timeout
        loop = asyncio.get_running_loop()
        try:
            for _ in range(attempts):
                fut: asyncio.Future[bytes] = loop.create_future()
                self.pending[request_id] = fut
                sock = self._open()
                sent = time.monotonic()
                try:
                    # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a
                    # cancellation that arrives as the reply does, and its caller never stops.
                    # The send is inside it too: to a peer that is gone (an inproc server that
                    # closed) a DEALER's send can block, and the request would never end.
                    async with asyncio.timeout(wait):
                        await sock.send_multipart([request_id, payload, *trace])
                        raw = await fut
                except TimeoutError:
                    # Reset only a socket that went silent: if other replies arrived meanwhile
                    # the link is fine and only this request was slow or lost.
                    if self.sock is sock and self.last_reply < sent:
                        self._reset()
                    continue
                except _Dropped:
                    continue  # the server's end dropped: again now, queued until it is back
                return _expect(_reply(raw, self.endpoint, msg), expect)
        finally:
            self.pending.pop(request_id, None)
        raise Unavailable(f"no reply from {self.endpoint} to {msg.TYPE} "
                          f"after {attempts} attempts")

    def close(self) -> None:
        self._reset()
        for fut in self.pending.values():
            fut.cancel()


def _reply(raw: bytes, endpoint: str, request: Message) -> Message:
    """A reply decoded. One that does not decode is the server's fault, never the caller's
    input: `Internal` (a gateway answers 500), not `Malformed` (which it would answer 400).
    Another version's stays `VersionMismatch`, whose message says what to do."""
    try:
        return messages.decode(raw)
    except Malformed as exc:
        raise Internal(f"the reply of {endpoint} to {request.TYPE} does not decode: "
                       f"{exc.message}") from None


def _expect(reply: Message, expect: type[R]) -> R:
    if isinstance(reply, ErrorReply):
        raise reply.to_exception()
    if not isinstance(reply, expect):
        raise Internal(f"expected {expect.TYPE}, got {reply.TYPE}")
    return reply


class SyncBusClient:
    """Blocking client for the CLI and tests; same framing, retries and typed errors."""

    def __init__(self, endpoint: str, timeout: float = DEFAULT_TIMEOUT,
                 retries: int = DEFAULT_RETRIES, curve: BusCurve | None = None) -> None:
        check_client(endpoint, curve)
        self.endpoint = endpoint
        self.curve = curve
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
        self.timeout = timeout
        self.retries = retries
        self.sock: zmq.Socket[bytes] | None = None

    def request(self, msg: Message, expect: type[R], timeout: float | None = None) -> R:
        request_id = os.urandom(12)
        payload = messages.encode(msg)
        trace = _trace_frames()
        wait_ms = int(1000 * (self.timeout if timeout is None else timeout))
        for _ in range(1 + self.retries):
            if self.sock is None:
                self.sock = self.ctx.socket(zmq.DEALER)
                _tune(self.sock)
                secure_client(self.sock, self.endpoint, self.curve)
                self.sock.connect(self.endpoint)
            self.sock.send_multipart([request_id, payload, *trace])
            deadline = time.monotonic() + wait_ms / 1000
            while (left := deadline - time.monotonic()) > 0:
                if not self.sock.poll(int(left * 1000) + 1):
                    break
                frames = self.sock.recv_multipart()
                if len(frames) == 2 and frames[0] == request_id:
                    return _expect(_reply(frames[1], self.endpoint, msg), expect)
            self.sock.close(0)
            self.sock = None
        raise Unavailable(f"no reply from {self.endpoint} to {msg.TYPE}")

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close(0)
            self.sock = None


class Publisher:
    """PUB socket that numbers each topic's events; publish only after the commit."""

    def __init__(self, ctx: zmq.asyncio.Context, endpoint: str,
                 guard: Guard | None = None) -> None:
        # a plain socket: PUB never waits (at its high-water mark it drops), so nothing here
        # needs the event loop, and a send costs a fraction of an asyncio socket's
        self.sock = plain_socket(ctx, zmq.PUB)
        _tune(self.sock)
        self.sock.setsockopt(zmq.SNDHWM, 100_000)
        (guard or Guard(ctx, None)).serve(self.sock, endpoint)
        prepare_endpoint(endpoint)
        self.sock.bind(endpoint)
        self.seq: dict[bytes, int] = {}

    def publish(self, topic: bytes, event: Message) -> None:
        seq = self.seq[topic] = self.seq.get(topic, 0) + 1
        try:
            self.sock.send_multipart([topic, _SEQ.pack(seq), messages.encode(event)],
                                     flags=zmq.NOBLOCK)
        except zmq.Again:
            pass  # at HWM PUB drops; subscribers see the sequence gap

    def close(self) -> None:
        self.sock.close(0)


def subscriber(ctx: zmq.asyncio.Context, endpoint: str, topics: tuple[bytes, ...] = (b"",),
               *, connect: bool = True, curve: BusCurve | None = None) -> zmq.asyncio.Socket:
    """A SUB socket for code that reads with pyzmq's asyncio (tests); `Subscription` is
    what the services use."""
    sock = ctx.socket(zmq.SUB)
    _subscribe(sock, endpoint, topics, curve)
    if connect:
        sock.connect(endpoint)
    return sock


def _subscribe(sock: zmq.Socket[Any], endpoint: str, topics: tuple[bytes, ...],
               curve: BusCurve | None) -> None:
    _tune(sock)
    secure_client(sock, endpoint, curve)
    sock.setsockopt(zmq.RCVHWM, 100_000)
    for topic in topics:
        sock.setsockopt(zmq.SUBSCRIBE, topic)


def parse_event(frames: list[bytes]) -> tuple[bytes, int, Message]:
    """`(topic, seq, event)`; an event of another bus version is logged (once a minute) as
    an error and raised as `VersionMismatch`, which a subscriber skips like any other
    `CcoinError`."""
    if len(frames) != 3 or len(frames[1]) != 8:
        raise Malformed("event must be [topic, seq, message]")
    try:
        event = messages.decode(frames[2])
    except VersionMismatch as exc:
        topic = frames[0].decode("ascii", "replace")
        _log_mismatch(logging.ERROR, f"ignoring {topic!r} events: {exc.message}")
        raise
    return frames[0], _SEQ.unpack(frames[1])[0], event


@dataclass(frozen=True, slots=True)
class Event:
    """One event as a subscriber sees it, or (with `message` None, `topic` empty) the news
    that the link to the publisher was just (re)established.

    `missed` is true when what the subscriber knows may be stale, so it should re-read the
    current state rather than trust the events alone: events of this topic were lost before
    this one (a sequence gap: PUB dropped them at its high-water mark), the publisher
    restarted (its numbering began again), or the link came (back) up: a restarted
    publisher's first events go out before any subscriber has reconnected (the ZeroMQ
    guide's slow joiner), and no later event need ever come to reveal that."""

    topic: bytes
    seq: int
    message: Message | None
    missed: bool


CONNECTED = Event(b"", 0, None, True)


class Subscription:
    """A SUB socket's events, parsed and in order, with anything missed noticed: a gap in a
    topic's numbering (Bitcoin Core's ZMQ `sequence`), and every (re)connection to the
    publisher (a socket monitor), after which a subscriber re-reads what it follows (the
    ZeroMQ guide's Clone pattern: a late joiner takes a snapshot). An unreadable event is
    logged and skipped."""

    def __init__(self, ctx: zmq.asyncio.Context, endpoint: str,
                 topics: tuple[bytes, ...] = (b"",), curve: BusCurve | None = None) -> None:
        self.endpoint = endpoint
        self.io = LoopSocket(ctx, zmq.SUB)
        _subscribe(self.io.sock, endpoint, topics, curve)
        # watched from before the connect, so the first handshake is seen too
        address = f"inproc://ccoin-monitor-{id(self)}"
        self.io.sock.monitor(address, zmq.EVENT_HANDSHAKE_SUCCEEDED)
        self.monitor = LoopSocket(ctx, zmq.PAIR)
        self.monitor.sock.connect(address)
        self.io.sock.connect(endpoint)
        self.last: dict[bytes, int] = {}

    async def next(self) -> Event:
        """The next event (waits for it): `CONNECTED` after a (re)connection, else the next
        readable event."""
        while True:
            if self.monitor.recv_nowait() is not None:  # before the events of the new link
                return CONNECTED  # (it watches for handshakes only)
            frames = self.io.recv_nowait()
            if frames is None:
                await wait_any_readable(self.monitor, self.io)
                continue
            try:
                topic, seq, message = parse_event(frames)
            except VersionMismatch:
                continue  # parse_event said so, at most once a minute
            except CcoinError as exc:
                log.warning("unreadable event from %s: %s", self.endpoint, exc.message)
                continue
            previous = self.last.get(topic)
            self.last[topic] = seq
            return Event(topic, seq, message, previous is not None and seq != previous + 1)

    async def poll(self, timeout_ms: int) -> bool:
        """Whether `next` would answer at once, after at most `timeout_ms`."""
        try:
            async with asyncio.timeout(timeout_ms / 1000):
                await wait_any_readable(self.monitor, self.io)
        except TimeoutError:
            return False
        return True

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        return await self.next()

    def close(self) -> None:
        self.io.sock.disable_monitor()
        self.monitor.close(0)
        self.io.close(0)
