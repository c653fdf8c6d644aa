"""The gateway's bus links (`services.api.gateway`) over real ZeroMQ sockets: inproc:// (and
an ipc:// file where presence is a file) against a real `runtime.bus.Server`, whose
`requests_served` shows what reached the service. The one TTL cache, the one "is this
optional service there" rule, and single submissions sharing one bus request."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zmq.asyncio

from common import messages
from common.errors import Internal, NotAValidator, P2PUnavailable, PoolFull, Unavailable
from common.types import Transaction
from runtime.config import parse_config
from services.api.gateway import Gateway, OptionalService, TtlCache
from tests.framework.util import wait_until_async
from tests.unit.services.api.support import bus_server, gateway_over, run, signed

MINING = messages.MiningReply(True, b"\x3f" * 20, 7, b"", 0, 0, 0, "")


class Clock:
    """A clock the test moves by hand (the cache reads time through it)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_ttl_cache() -> None:
    clock = Clock()
    cache: TtlCache[str] = TtlCache(ttl=1.0, absent_ttl=5.0, clock=clock)
    assert cache.get() == (False, None)
    cache.put("up")
    clock.now += 0.9
    assert cache.get() == (True, "up")
    clock.now += 0.2
    assert cache.get() == (False, None)  # a value lives `ttl`
    cache.put(None)
    clock.now += 4.9
    assert cache.get() == (True, None)  # "absent" is remembered longer
    clock.now += 0.2
    assert cache.get() == (False, None)
    cache.put("up")
    cache.clear()
    assert cache.get() == (False, None)


def miner_link(ctx: zmq.asyncio.Context, endpoint: str, clock: Clock,
               timeout: float = 5.0) -> OptionalService[messages.MiningReply]:
    return OptionalService("miner", endpoint, ctx, ask_status=messages.GetMining(),
                           status_type=messages.MiningReply, missing=NotAValidator, ttl=1.0,
                           absent_ttl=5.0, timeout=timeout, clock=clock)


def miner_handlers(calls: list[Any]) -> dict[type[messages.Message], Callable[[Any], Any]]:
    def get(msg: messages.GetMining) -> messages.MiningReply:
        calls.append(msg)
        return MINING

    def set_(msg: messages.SetMining) -> messages.MiningReply:
        calls.append(msg)
        return messages.MiningReply(msg.enabled, MINING.address, 7, b"", 0, 0, 0, "")

    return {messages.GetMining: get, messages.SetMining: set_}


def test_absent_ipc_service_is_not_asked(tmp_path: Path) -> None:
    """An ipc:// endpoint without its socket file: nobody listens, so nothing is sent and
    nothing waits (the link's timeout is long: a request would hang the test)."""

    async def scenario() -> None:
        ctx = zmq.asyncio.Context()
        link = miner_link(ctx, f"ipc://{tmp_path}/miner.sock", Clock(), timeout=60)
        try:
            assert link.absent()
            assert await asyncio.wait_for(link.status(fresh=True), 2) is None
            with pytest.raises(NotAValidator, match="no miner service runs"):
                await asyncio.wait_for(link.command(messages.SetMining(True),
                                                    messages.MiningReply), 2)
        finally:
            link.close()
            ctx.destroy(linger=0)

    run(scenario)


def test_status_is_cached_for_its_ttl(tmp_path: Path) -> None:
    endpoint = f"ipc://{tmp_path}/miner.sock"

    async def scenario() -> None:
        ctx = zmq.asyncio.Context()
        clock = Clock()
        calls: list[Any] = []
        async with bus_server(ctx, endpoint, miner_handlers(calls)):
            link = miner_link(ctx, endpoint, clock)
            try:
                assert not link.absent()
                assert await link.status() == MINING
                assert await link.status() == MINING and len(calls) == 1  # from the cache
                assert await link.status(fresh=True) == MINING and len(calls) == 2
                clock.now += 1.5
                assert await link.status() == MINING and len(calls) == 3  # expired: asked
            finally:
                link.close()
        ctx.destroy(linger=0)

    run(scenario)


def test_silent_service_counts_as_absent_until_its_absent_ttl() -> None:
    endpoint = f"inproc://miner-{os.urandom(4).hex()}"

    async def scenario() -> None:
        ctx = zmq.asyncio.Context()
        clock = Clock()
        calls: list[Any] = []
        link = miner_link(ctx, endpoint, clock, timeout=0.05)
        try:
            assert not link.absent()  # inproc: presence is known only by asking
            with pytest.raises(NotAValidator, match="did not answer"):
                await link.command(messages.SetMining(True), messages.MiningReply,
                                   timeout=0.05)
            assert await link.status() is None  # nothing bound: no answer in time
            async with bus_server(ctx, endpoint, miner_handlers(calls)):
                # answered from the cache without yielding: a request would have let the
                # server run (and record it) before the reply
                assert await link.status() is None and not calls  # remembered as absent
                clock.now += 5.5
                assert await link.status() == MINING
                # inproc hands the bound server what was queued before the bind too
                assert isinstance(calls[-1], messages.GetMining)
        finally:
            link.close()
            ctx.destroy(linger=0)

    run(scenario)


def test_command_updates_or_drops_the_cached_status() -> None:
    endpoint = f"inproc://p2p-{os.urandom(4).hex()}"
    peers = messages.PeersReply((), False, 0, b"\x01" * 32, 0, "")

    async def scenario() -> None:
        ctx = zmq.asyncio.Context()
        calls: list[Any] = []

        def get_peers(msg: messages.GetPeers) -> messages.PeersReply:
            calls.append(msg)
            return peers

        def sync_now(msg: messages.SyncNow) -> messages.Ok:
            calls.append(msg)
            return messages.Ok()

        handlers: dict[type[messages.Message], Any] = {
            messages.GetPeers: get_peers, messages.SyncNow: sync_now, **miner_handlers(calls)}
        async with bus_server(ctx, endpoint, handlers):  # type: ignore[arg-type]
            p2p = OptionalService("p2p", endpoint, ctx, ask_status=messages.GetPeers(),
                                  status_type=messages.PeersReply, missing=P2PUnavailable,
                                  ttl=60, absent_ttl=60)
            miner = miner_link(ctx, endpoint, Clock())
            try:
                assert await p2p.status() == peers and len(calls) == 1
                await p2p.command(messages.SyncNow(), messages.Ok)
                assert await p2p.status() == peers and len(calls) == 3  # dropped: asked again
                stopped = await miner.command(messages.SetMining(False), messages.MiningReply)
                assert stopped.enabled is False
                assert await miner.status() == stopped and len(calls) == 4  # the reply is kept
            finally:
                p2p.close()
                miner.close()
        ctx.destroy(linger=0)

    run(scenario)


# --- the gateway's link to state -------------------------------------------------------------


def refuse_odd(batches: list[int]) -> Callable[[messages.SubmitTxs], messages.SubmitResult]:
    """A state that takes the even-placed transactions of each request and refuses the
    others."""

    def submit(msg: messages.SubmitTxs) -> messages.SubmitResult:
        batches.append(len(msg.txs))
        ids = [Transaction.decode(raw).id for raw in msg.txs]
        return messages.SubmitResult(len(ids), tuple(
            messages.TxRefusal(n, i, "nonce_gap", f"item {n}")
            for n, i in enumerate(ids) if n % 2))

    return submit


def test_single_submissions_of_one_loop_iteration_share_one_request(tmp_path: Path) -> None:
    txs = [signed(n) for n in range(5)]

    async def scenario() -> None:
        batches: list[int] = []
        handlers = {messages.SubmitTxs: refuse_odd(batches)}
        async with gateway_over(tmp_path, handlers) as (gw, server):
            results = await asyncio.gather(*(gw.submit_one(tx) for tx in txs))
            assert batches == [5] and server.requests_served == 1
            # each its own result: None when accepted, else its refusal
            assert [r and (r.id, r.code) for r in results] == [
                None, (txs[1].id, "nonce_gap"), None, (txs[3].id, "nonce_gap"), None]
            # one at a time: one request each
            await gw.submit_one(txs[0])
            await gw.submit_one(txs[1])
            assert batches == [5, 1, 1]

    run(scenario)


def test_submissions_arriving_while_one_is_in_flight_go_together_next(
        tmp_path: Path) -> None:
    txs = [signed(n) for n in range(6)]

    async def scenario() -> None:
        batches: list[int] = []
        accept = refuse_odd(batches)
        entered, release = asyncio.Event(), asyncio.Event()

        async def slow_first(msg: messages.SubmitTxs) -> messages.SubmitResult:
            if not batches:
                entered.set()
                await release.wait()  # state busy with the first (its journal sync)
            return accept(msg)

        async with gateway_over(tmp_path, {messages.SubmitTxs: slow_first}) as (gw, server):
            first = asyncio.create_task(gw.submit_one(txs[0]))
            await entered.wait()
            rest = [asyncio.create_task(gw.submit_one(tx)) for tx in txs[1:]]
            await wait_until_async(lambda: len(gw._coalescer._waiting) == len(rest),
                                   timeout=10, what="each queued behind the one in flight")
            assert server.requests_served == 0
            release.set()
            results = await asyncio.gather(first, *rest)
            assert batches == [1, 5] and server.requests_served == 2
            # the second request's odd places: txs[2] and txs[4]
            assert [r and r.id for r in results] == [
                None, None, txs[2].id, None, txs[4].id, None]
            await gw.submit_one(txs[0])  # alone again: at once, by itself
            assert batches == [1, 5, 1]

    run(scenario)


def test_a_failed_shared_request_fails_every_submission(tmp_path: Path) -> None:
    def refuse(_: messages.SubmitTxs) -> messages.SubmitResult:
        raise PoolFull("the pool is full")

    async def scenario() -> None:
        async with gateway_over(tmp_path, {messages.SubmitTxs: refuse}) as (gw, _):
            outcomes = await asyncio.gather(*(gw.submit_one(signed(n)) for n in range(3)),
                                            return_exceptions=True)
            assert [type(o) for o in outcomes] == [PoolFull] * 3

    run(scenario)


@pytest.mark.parametrize(("count", "places", "says"), [
    (1, (), "for 1 transactions of 2"),
    (2, (2,), "does not decode: submit_result must have each refusal's index"),
    (2, (1, 0), "does not decode: submit_result must have each refusal's index"),
])
def test_state_answering_for_other_transactions_is_internal(
        tmp_path: Path, count: int, places: tuple[int, ...], says: str) -> None:
    def wrong(msg: messages.SubmitTxs) -> messages.SubmitResult:
        return messages.SubmitResult(count, tuple(
            messages.TxRefusal(i, b"", "nonce_gap", "") for i in places))

    async def scenario() -> None:
        async with gateway_over(tmp_path, {messages.SubmitTxs: wrong}) as (gw, _):
            with pytest.raises(Internal, match=says):
                await gw.submit([signed(0).raw, signed(1).raw])
            assert await gw.submit([]) == []  # nothing to send: no request

    run(scenario)


def test_gateway_links_before_start(tmp_path: Path) -> None:
    gw = Gateway(parse_config({"app": {"base_path": str(tmp_path)}}), 1337)
    for name in ("state", "miner", "p2p"):
        with pytest.raises(Unavailable, match="not started"):
            getattr(gw, name)
