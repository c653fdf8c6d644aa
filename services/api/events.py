"""Live events for HTTP clients: the gateway's own numbered stream of the node's events.

Each gateway process subscribes to the state service's PUB socket (`[topic, seq, body]`,
docs/zmq.md) and renumbers what it receives into one gap-free sequence of its own, so an
HTTP client needs one number to tell whether it missed something and to resume: the
`id:` of a server-sent event, `"seq"` in every event's JSON. The last events are kept in
a ring bounded by count and by bytes; a client that reconnects with `Last-Event-ID: N`
(or `?since=N`) gets every kept event after N, then the live ones.

Two things cannot be replayed, and both are said out loud with a `resync` event (re-read
`/api/v1/status` and whatever else you keep, then carry on):
- the gateway itself lost events from state: state's per-topic `seq` jumped (PUB drops at
  its high-water mark) or went back (state restarted). This `resync` is a numbered event in
  the ring, seen by every client.
- a client asks for a sequence number the ring no longer holds (it was away too long) or
  never issued (the gateway restarted, or the reconnect reached another worker process or
  another gateway host). That `resync` goes to this client only and carries the number the
  stream resumes after.

Each gateway process numbers its own stream (it also numbers its own `resync` events), so a
number means something only to the process that issued it. For a client that moves (to
another worker, a restarted gateway, or another gateway host behind a proxy) to be told so
rather than silently replayed the wrong events, every process starts its numbering at a
random point of [1, 2^52) (`fresh_start`; still a safe integer in JavaScript): another
process's number then lies below this process's first or above its last, and both answer
`resync`, but for a chance of (events this process issued) in 2^52: one in four million
after a billion events. Such a client re-reads the state and carries on from the live end;
it sees every later event, none twice. `?since=0` still means "from the first event kept",
on any process. (Resuming on another gateway without that re-read would need one
numbering that every gateway shares: state's events numbered as one stream, not per topic,
with an epoch for its restarts. Not so today.)

The JSON of each type (`seq` and `type` in every one):
    head         height, hash, total_weight, tx_count, timestamp (ms), pool_count
    reorg        disconnected (from the old head down), connected (from the fork up),
                 depth (blocks disconnected)
    txs_added    ids (transactions accepted into the pool)
    txs_removed  ids, reasons (replaced | evicted | stale | reorg-conflict), parallel lists
    resync       reason
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import AsyncGenerator
from typing import Any

import orjson
import zmq
import zmq.asyncio

from common import messages as m
from runtime.bus import Subscription
from runtime.buscurve import BusCurve
from services.api import metrics

log = logging.getLogger("ccoin.api.events")

FIRST_SEQ_SPAN = 2**52  # fresh_start's range: a stream's numbers stay below 2^53
KEEP_EVENTS = 4096
POOL_SAMPLES = 120  # (height, pool size) at the last heads, for a chart that starts filled
KEEP_BYTES = 16 * 1024 * 1024
HEARTBEAT_S = 15.0
TYPES = ("head", "reorg", "txs_added", "txs_removed", "resync")
# events after which a pending nonce known from before may be wrong (a transaction left the
# pool, a block went back, or events were missed): `EventHub.disturbances` counts them
DISTURBING = frozenset({"reorg", "txs_removed", "resync"})


def event_fields(msg: m.Message) -> tuple[str, dict[str, Any]] | None:
    """The JSON type and fields of a bus event; None for a message that is not one."""
    if isinstance(msg, m.HeadEvent):
        return "head", {"height": msg.height, "hash": msg.hash.hex(),
                        "total_weight": msg.total_weight, "tx_count": msg.tx_count,
                        "timestamp": msg.timestamp, "pool_count": msg.pool_count}
    if isinstance(msg, m.ReorgEvent):
        return "reorg", {"disconnected": [h.hex() for h in msg.disconnected],
                         "connected": [h.hex() for h in msg.connected],
                         "depth": len(msg.disconnected)}
    if isinstance(msg, m.TxsEvent):
        return "txs_added", {"ids": msg.ids}  # bytes: rendered in hex (`render_event`)
    if isinstance(msg, m.TxsRemovedEvent):
        return "txs_removed", {"ids": [i.hex() for i in msg.ids], "reasons": list(msg.reasons)}
    return None


def _hex(value: Any) -> str:
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"{type(value).__name__} is not JSON")


def render_event(seq: int, type_: str, fields: dict[str, Any]) -> bytes:
    """An event's JSON; bytes in `fields` (ids) are written in hex."""
    return orjson.dumps({"seq": seq, "type": type_, **fields}, default=_hex)


# What a `txs_added` event weighs in the ring before it is rendered: each id is 64 hex
# digits and its quotes and comma in the JSON, around a short head.
_ID_JSON = 67
_HEAD_JSON = 64


def fresh_start() -> int:
    """Where a gateway process starts numbering (the module docstring says why)."""
    return secrets.randbelow(FIRST_SEQ_SPAN - 1)


class EventHub:
    """The numbered stream and its replay ring (one per gateway process); the first event
    is `start + 1`."""

    def __init__(self, keep_events: int = KEEP_EVENTS, keep_bytes: int = KEEP_BYTES,
                 start: int = 0) -> None:
        self.keep_events = keep_events
        self.keep_bytes = keep_bytes
        self.start = start
        self.seq = start  # the last number issued
        # seq -> (type, its JSON or the fields to render it from, bytes it counts for)
        self.ring: OrderedDict[int, tuple[str, bytes | dict[str, Any], int]] = OrderedDict()
        self.ring_bytes = 0
        self.topic_seq: dict[bytes, int] = {}  # state's last seq per topic
        self.lost = 0  # state events this gateway knows it missed
        self._changed = asyncio.Event()
        self._last_head_ts: int | None = None
        self.pool_samples: deque[tuple[int, int]] = deque(maxlen=POOL_SAMPLES)
        self.disturbances = 0  # DISTURBING events published so far

    @property
    def oldest(self) -> int:
        """The oldest sequence number still kept (seq + 1 when none is)."""
        return next(iter(self.ring)) if self.ring else self.seq + 1

    def publish(self, type_: str, fields: dict[str, Any], *, size: int | None = None) -> int:
        """Number an event and keep it. With its `size` told, it is rendered only when
        someone reads it: an admitted batch's `txs_added` names a thousand ids, and most
        followers (a wallet waiting for heads, the bench) never ask for them."""
        if type_ in DISTURBING:
            self.disturbances += 1
        self.seq += 1
        if size is None:
            data = render_event(self.seq, type_, fields)
            self.ring[self.seq] = (type_, data, len(data))
            self.ring_bytes += len(data)
        else:
            self.ring[self.seq] = (type_, fields, size)
            self.ring_bytes += size
        while len(self.ring) > 1 and (len(self.ring) > self.keep_events
                                      or self.ring_bytes > self.keep_bytes):
            _, (_, _, old) = self.ring.popitem(last=False)
            self.ring_bytes -= old
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        return self.seq

    def on_connected(self) -> None:
        """The link to state's PUB socket came (back) up. After the first time, state or the
        link restarted: whatever it published meanwhile never reached this gateway."""
        if not self.topic_seq:
            return  # the first connection: nothing followed yet, nothing missed
        self.topic_seq.clear()  # a restarted state numbers from 1 again: not a second gap
        reason = "the link to state came back up: events in between may be missing"
        log.warning("event stream: %s", reason)
        self.publish("resync", {"reason": reason})

    def on_bus(self, topic: bytes, seq: int, msg: m.Message) -> None:
        """One event from state's PUB socket: check its topic's sequence, then number it."""
        last = self.topic_seq.get(topic)
        self.topic_seq[topic] = seq
        name = topic.decode("ascii", "replace")
        if last is not None and seq != last + 1:
            if seq <= last:
                reason = f"state restarted: its {name} events are numbered from {seq} again"
            else:
                self.lost += seq - last - 1
                metrics.EVENTS_LOST.inc(seq - last - 1)
                reason = f"lost {seq - last - 1} {name} event(s) from state"
            log.warning("event stream: %s", reason)
            self.publish("resync", {"reason": reason})
        converted = event_fields(msg)
        if converted is None:
            return
        type_, fields = converted
        metrics.EVENTS.labels(type_).inc()
        if isinstance(msg, m.TxsEvent):
            self.publish(type_, fields, size=_HEAD_JSON + _ID_JSON * len(msg.ids))
            return
        if isinstance(msg, m.HeadEvent):
            now_ms = time.time() * 1000
            metrics.HEAD_DELAY.observe(max(0.0, now_ms - msg.timestamp) / 1000)
            if self._last_head_ts is not None and msg.timestamp > self._last_head_ts:
                metrics.BLOCK_INTERVAL.observe((msg.timestamp - self._last_head_ts) / 1000)
            self._last_head_ts = msg.timestamp
            self._sample_pool(msg.height, msg.pool_count)
        elif isinstance(msg, m.TxsRemovedEvent):
            for reason in msg.reasons:
                metrics.TXS_REMOVED.labels(reason).inc()
        elif isinstance(msg, m.ReorgEvent):
            metrics.REORG_DEPTH.observe(len(msg.disconnected))
        self.publish(type_, fields)

    def _sample_pool(self, height: int, count: int) -> None:
        # after a reorg to a lower or equal height the samples above it describe blocks that
        # are no longer on the chain; the series stays ordered by height
        while self.pool_samples and self.pool_samples[-1][0] >= height:
            self.pool_samples.pop()
        self.pool_samples.append((height, count))

    def read(self, after: int, types: frozenset[str] = frozenset(),
             ) -> tuple[list[tuple[int, str, bytes]], int, str]:
        """Kept events after `after`, of `types` (all when empty; a resync always):
        (events, cursor, resync reason). The cursor is the last number covered; the reason
        is non-empty when some could not be replayed."""
        if after == 0:
            after = self.start  # a client that has seen nothing yet: every kept event
        if after > self.seq or after < self.start:
            return [], self.seq, (f"sequence {after} was not issued by this gateway process "
                                  f"(it restarted, or this is another worker or gateway); "
                                  f"last is {self.seq}")
        reason = ""
        first = after + 1
        if first < self.oldest:
            reason = (f"events {first}..{self.oldest - 1} are no longer kept; "
                      f"replaying from {self.oldest}")
            first = self.oldest
        out = []
        for seq in range(first, self.seq + 1):
            kept = self.ring.get(seq)
            if kept is None:
                continue
            type_, data, size = kept
            if types and type_ not in types and type_ != "resync":
                continue
            if not isinstance(data, bytes):
                data = render_event(seq, type_, data)
                self.ring[seq] = (type_, data, size)  # once
            out.append((seq, type_, data))
        return out, self.seq, reason

    async def wait_after(self, after: int, timeout: float) -> None:
        """Return when an event after `after` exists, or after `timeout`."""
        if self.seq > after:
            return
        try:
            async with asyncio.timeout(timeout):  # not wait_for: it can swallow a cancel
                await self._changed.wait()
        except TimeoutError:
            pass

    async def follow(self, after: int, types: frozenset[str] = frozenset(),
                     heartbeat: float = HEARTBEAT_S,
                     ) -> AsyncGenerator[tuple[int, bytes] | None, None]:
        """Events after `after` as (seq, JSON) forever, with None as a heartbeat when
        nothing happened for `heartbeat` seconds; a resync notice is produced when events
        cannot be replayed."""
        cursor = after
        while True:
            events, new_cursor, reason = self.read(cursor, types)
            if reason:
                resume = new_cursor if not events else events[0][0] - 1
                yield resume, render_event(resume, "resync", {"reason": reason})
            for seq, _, data in events:
                yield seq, data
            cursor = new_cursor
            before = self.seq
            await self.wait_after(cursor, heartbeat)
            if self.seq == before:
                yield None

    async def run(self, ctx: zmq.asyncio.Context, endpoint: str,
                  curve: BusCurve | None = None) -> None:
        """Subscribe to state's events and number them, until cancelled."""
        events = Subscription(ctx, endpoint, curve=curve)
        log.info("following node events at %s", endpoint)
        try:
            async for event in events:
                if event.message is None:
                    self.on_connected()
                else:
                    self.on_bus(event.topic, event.seq, event.message)
        finally:
            events.close()


def parse_since(last_event_id: str | None, since: int | None) -> int | None:
    """Where a client resumes: the `Last-Event-ID` header (what a browser's EventSource
    sends on reconnect) wins over `?since=`; None means "only new events"."""
    if last_event_id is not None and last_event_id.strip().isdigit():
        return int(last_event_id.strip())
    return since


def sse_frame(seq: int, data: bytes) -> bytes:
    return b"id: %d\ndata: %s\n\n" % (seq, data)


SSE_HEADER = b"retry: 2000\n\n"
SSE_EXAMPLE = ('id: 7\ndata: {"seq":7,"type":"head","height":42,"hash":"5e...","total_weight":84,'
               '"tx_count":3,"timestamp":1767225600000,'
               '"pool_count":12}\n\n'
               'id: 8\ndata: {"seq":8,"type":"txs_added","ids":["9c..."]}\n\n')
SSE_HEARTBEAT = b": keep-alive\n\n"
