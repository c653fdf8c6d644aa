"""What one gateway process holds: its links to the node's services over the bus.

The gateway is stateless (DESIGN §1): each process holds one `BusClient` for state, shared
by every concurrent HTTP request (requests are multiplexed over it by request id), and a
link to each service that may not run on this node at all: the miner (a basic node runs
none) and p2p (a single node may run none). Both optional links are one `OptionalService`:
the same "is it there" rule, the same short timeouts, and one `TtlCache` of its status, so
that the status route, asked on every dashboard refresh, does not wait for a service that is
not there. Single transaction submissions that arrive together share one bus request
(`Coalescer`). The node wallet, the event stream and the threads that check a batch's
signatures (`SignatureChecker`) hang off the gateway too, so a route finds everything
through `request.app.state.gateway`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

import zmq.asyncio

from common import messages
from common.errors import (
    CcoinError,
    Internal,
    NotAValidator,
    P2PUnavailable,
    Unavailable,
)
from common.genesis import Genesis
from common.messages import Message
from common.types import Transaction
from runtime import buscurve
from runtime.bus import BusClient
from runtime.buscurve import BusCurve
from runtime.config import NodeConfig
from services.api import events, metrics
from services.api.signatures import SignatureChecker
from services.api.wallet import NodeWallet

READ_TIMEOUT = 3.0  # per attempt, and one retry (Lazy Pirate): a read fails within ~6 s
SUBMIT_TIMEOUT = 10.0  # per attempt; a 5000-transaction batch must fit
STATE_RETRIES = 1
STATUS_TIMEOUT = 0.5  # an optional service that does not answer at once counts as absent
COMMAND_TIMEOUT = 3.0  # an operator's command may take a moment (p2p dials a peer)

R = TypeVar("R", bound=Message)
T = TypeVar("T")


class TtlCache(Generic[T]):
    """One remembered value: fresh for `ttl` seconds, or `absent_ttl` when it is None (a
    service that did not answer: asked again later, but not on every request)."""

    def __init__(self, ttl: float, absent_ttl: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.absent_ttl = absent_ttl
        self.clock = clock
        self._entry: tuple[float, T | None] | None = None

    def get(self) -> tuple[bool, T | None]:
        """(True, value) while the remembered value is fresh, else (False, None)."""
        entry = self._entry
        if entry is None:
            return False, None
        stored, value = entry
        if self.clock() - stored < (self.ttl if value is not None else self.absent_ttl):
            return True, value
        return False, None

    def put(self, value: T | None) -> None:
        self._entry = (self.clock(), value)

    def clear(self) -> None:
        self._entry = None


class OptionalService(Generic[R]):
    """The link to a service that may not run on this node, and its cached status.

    It is absent when its endpoint is an ipc:// socket file that does not exist (nothing
    listens there: no request is sent), or when it does not answer within `timeout`.
    `status` answers None then; `command` raises `missing` (the error this node's clients
    get, e.g. `not_a_validator` for the miner)."""

    def __init__(self, name: str, endpoint: str, ctx: zmq.asyncio.Context, *,
                 ask_status: Message, status_type: type[R], missing: type[CcoinError],
                 ttl: float, absent_ttl: float, timeout: float = STATUS_TIMEOUT,
                 clock: Callable[[], float] = time.monotonic,
                 curve: BusCurve | None = None) -> None:
        self.name = name
        self.endpoint = endpoint
        self.client = BusClient(endpoint, ctx, timeout=timeout, retries=0, curve=curve)
        self.ask_status = ask_status
        self.status_type = status_type
        self.missing = missing
        self.cache: TtlCache[R] = TtlCache(ttl, absent_ttl, clock)

    def absent(self) -> bool:
        """True when the endpoint is an ipc socket file that is not there."""
        endpoint = self.endpoint
        return endpoint.startswith("ipc://") and not Path(endpoint[len("ipc://"):]).exists()

    async def status(self, fresh: bool = False) -> R | None:
        """The service's status, or None when it is absent; cached unless `fresh`."""
        if not fresh:
            hit, value = self.cache.get()
            if hit:
                return value
        status = None
        if not self.absent():
            try:
                status = await self.client.request(self.ask_status, self.status_type,
                                                   retries=0)
            except Unavailable:
                status = None
        self.cache.put(status)
        return status

    async def command(self, msg: Message, expect: type[Any],
                      timeout: float = COMMAND_TIMEOUT) -> Any:
        """Send an operator's command and return the reply; raise `missing` when the
        service is absent or silent. A command changes the service, so the cached status
        is dropped, or replaced by the reply when the reply is a status."""
        try:
            if self.absent():
                raise self.missing(f"no {self.name} service runs on this node")
            try:
                reply = await self.client.request(msg, expect, timeout=timeout, retries=0)
            except Unavailable:
                raise self.missing(f"the {self.name} service did not answer") from None
        except CcoinError:
            self.cache.clear()
            raise
        if isinstance(reply, self.status_type):
            self.cache.put(reply)
        else:
            self.cache.clear()
        return reply

    def close(self) -> None:
        self.client.close()


# each transaction's refusal, None when state took it
Outcomes = Sequence[messages.TxRefusal | None]
Submit = Callable[[Sequence[bytes]], Awaitable[Outcomes]]


class Coalescer:
    """Single submissions go to state in groups: one `SubmitTxs` at a time is in flight,
    and the submissions that arrive meanwhile wait for it and then go together, as the next
    (with those of the same event-loop iteration). Each group costs one bus round trip and
    one synced journal write in state, however many it holds: a group commit, so that
    concurrent clients share the sync instead of queueing one each behind it. A lone
    submission goes at once. Each caller gets its own result, or the error that failed
    its group."""

    MAX_GROUP = 512  # transactions per request: well under the bus's message size

    def __init__(self, submit: Submit) -> None:
        self._submit = submit
        self._waiting: list[tuple[Transaction, asyncio.Future[messages.TxRefusal | None]]] = []
        self._busy = False  # a group is in flight, or about to be sent
        self._flushes: set[asyncio.Task[None]] = set()

    async def submit_one(self, tx: Transaction) -> messages.TxRefusal | None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[messages.TxRefusal | None] = loop.create_future()
        self._waiting.append((tx, fut))
        if not self._busy:
            self._busy = True
            loop.call_soon(self._flush)  # after the others of this iteration joined
        return await fut

    def _flush(self) -> None:
        group = self._waiting[:self.MAX_GROUP]
        del self._waiting[:self.MAX_GROUP]
        task = asyncio.get_running_loop().create_task(self._send(group))
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _send(self, group: list[tuple[Transaction, asyncio.Future[Any]]]) -> None:
        try:
            results = await self._submit([tx.raw for tx, _ in group])
        except Exception as exc:
            for _, fut in group:
                if not fut.done():  # a client that went away cancelled its future
                    fut.set_exception(exc)
            return
        else:
            for (_, fut), result in zip(group, results, strict=True):
                if not fut.done():
                    fut.set_result(result)
        finally:
            if self._waiting:
                self._flush()
            else:
                self._busy = False


class Gateway:
    """The bus links, chain id, wallet and event stream of one gateway process.

    `ctx` may be given (tests serve state in-process over inproc://, which needs the same
    context); otherwise `start` makes one and `close` destroys it. `genesis`, when given,
    is the chain's (readiness reads its block interval)."""

    def __init__(self, config: NodeConfig, chain_id: int,
                 ctx: zmq.asyncio.Context | None = None, genesis: Genesis | None = None,
                 ) -> None:
        self.config = config
        self.chain_id = chain_id
        self.genesis = genesis  # its block interval tells readiness what "late" is
        self.wallet = NodeWallet(config.account_address, None, "wallet not loaded yet")
        self.hub = events.EventHub(start=events.fresh_start())
        self.signatures = SignatureChecker()
        self.ctx = ctx
        self._own_ctx = ctx is None
        self._state: BusClient | None = None
        self._miner: OptionalService[messages.MiningReply] | None = None
        self._p2p: OptionalService[messages.PeersReply] | None = None
        self._coalescer = Coalescer(self.submit)
        self._follow: asyncio.Task[None] | None = None
        self.curve: BusCurve | None = None  # the bus keys, when an endpoint is tcp://

    async def start(self) -> None:
        if self.ctx is None:
            self.ctx = zmq.asyncio.Context()
        ctx, endpoint = self.ctx, self.config.endpoint
        curve = self.curve = await asyncio.to_thread(buscurve.for_config, self.config)
        self._state = BusClient(endpoint("state"), ctx, timeout=READ_TIMEOUT,
                                retries=STATE_RETRIES, curve=curve)
        self._miner = OptionalService(
            "miner", endpoint("miner"), ctx, ask_status=messages.GetMining(),
            status_type=messages.MiningReply, missing=NotAValidator, ttl=1.0, absent_ttl=5.0,
            curve=curve)
        self._p2p = OptionalService(
            "p2p", endpoint("p2p"), ctx, ask_status=messages.GetPeers(),
            status_type=messages.PeersReply, missing=P2PUnavailable, ttl=1.0, absent_ttl=2.0,
            curve=curve)
        self._follow = asyncio.get_running_loop().create_task(
            self.hub.run(ctx, endpoint("events"), curve))
        self.wallet = await asyncio.to_thread(NodeWallet.load, self.config)

    async def close(self) -> None:
        if self._follow is not None:
            self._follow.cancel()
            try:
                await self._follow
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                pass
            self._follow = None
        if self._state is not None:
            self._state.close()
        for link in (self._miner, self._p2p):
            if link is not None:
                link.close()
        self.signatures.close()
        if self.ctx is not None and self._own_ctx:
            self.ctx.destroy(linger=0)
            self.ctx = None

    @property
    def attached(self) -> str:
        """The chain host this gateway reaches over tcp:// ("" when state is local)."""
        return buscurve.attachment(self.config.endpoint("state"),
                                   self.config.bus_plaintext_loopback)

    def _started(self, link: T | None) -> T:
        if link is None:
            raise Unavailable("gateway is not started")
        return link

    @property
    def state(self) -> BusClient:
        return self._started(self._state)

    @property
    def miner(self) -> OptionalService[messages.MiningReply]:
        return self._started(self._miner)

    @property
    def p2p(self) -> OptionalService[messages.PeersReply]:
        return self._started(self._p2p)

    async def ask(self, msg: Message, expect: type[R], timeout: float = READ_TIMEOUT,
                  retries: int | None = None) -> R:
        """A request to state, answered with its typed reply or raising its typed error."""
        return await self.state.request(msg, expect, timeout=timeout, retries=retries)

    async def submit(self, txs: Sequence[bytes]) -> list[messages.TxRefusal | None]:
        """Hand verified transactions (their canonical encodings) to state: each one's
        refusal, None when it is in the pool (or was known), in order."""
        if not txs:
            return []
        reply = await self.ask(messages.SubmitTxs(tuple(txs)), messages.SubmitResult,
                               timeout=SUBMIT_TIMEOUT)
        if reply.count != len(txs):
            raise Internal(f"state answered for {reply.count} transactions of {len(txs)}")
        outcomes = reply.refusals()  # they fit the count: an answer that does not, no decode
        metrics.count_submissions((r.code for r in reply.refused),
                                  accepted=len(txs) - len(reply.refused))
        return outcomes

    async def submit_one(self, tx: Transaction) -> messages.TxRefusal | None:
        """Submit one transaction, sharing a `SubmitTxs` with the other single submissions
        that arrive while one is in flight (`Coalescer`)."""
        return await self._coalescer.submit_one(tx)
