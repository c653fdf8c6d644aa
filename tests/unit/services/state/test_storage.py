"""The storage guard (services/state/storage.py) in the real state service, served over the
real bus (inproc://) on a real LevelDB: low disk space, a failed write and damage found at
run time each refuse the requests that write with 503 `storage_unavailable` (never 500),
are named in the status (what readiness, `/status` and the metrics show), are logged once
when they start and once when they end; a failed write is recovered from in place by
reopening the database, and nothing acknowledged before is lost."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import zmq.asyncio

from common import errors
from common import messages as m
from common.types import Transaction
from runtime.bus import BusClient, Server
from services.state.chain import Chain
from services.state.service import StateService
from services.state.storage import MB, StorageGuard
from services.state.store import REMEDY, Store
from tests.framework import rules as rh
from tests.framework import stored_chain as sc
from tests.framework.stored_chain import FailingWrites, free_space_as_n

NOW = 2**62
GiB = 1024 * MB


class Served:
    """A state service on `chain` with `guard`, and a client of it."""

    def __init__(self, ctx: zmq.asyncio.Context, chain: Chain, guard: StorageGuard) -> None:
        self.service = StateService(chain, None, guard)
        endpoint = f"inproc://state-{id(self)}"
        self.server = Server(ctx, endpoint, "state", self.service.handlers())  # type: ignore[arg-type]
        self.client = BusClient(endpoint, ctx, timeout=10.0, retries=0)
        self.task = asyncio.create_task(self.server.serve_forever())

    async def status(self) -> m.StatusReply:
        return await self.client.request(m.GetStatus(), m.StatusReply)

    async def submit(self, txs: list[Transaction]) -> list[str]:
        result = await self.client.request(m.SubmitTxs(tuple(t.raw for t in txs)),
                                           m.SubmitResult)
        return result.codes()

    async def template(self) -> m.TemplateReply:
        return await self.client.request(m.GetTemplate(rh.address(0), NOW, b""),
                                         m.TemplateReply)


@asynccontextmanager
async def served(chain: Chain, guard: StorageGuard) -> AsyncIterator[Served]:
    ctx = zmq.asyncio.Context()
    s = Served(ctx, chain, guard)
    try:
        yield s
    finally:
        s.task.cancel()
        await asyncio.gather(s.task, return_exceptions=True)
        s.client.close()
        s.server.close()
        s.service.chain.store.close()
        ctx.destroy(linger=0)


def run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(body())  # type: ignore[arg-type]


async def refused(request: Awaitable[object]) -> errors.CcoinError:
    """The request's error: always `storage_unavailable` (HTTP 503), never `internal`."""
    with pytest.raises(errors.CcoinError) as caught:
        await request
    assert caught.value.code == "storage_unavailable" and caught.value.http_status == 503
    return caught.value


def logged(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "ccoin.state.storage" and r.levelno == level]


@pytest.fixture
def stored(tmp_path: Path) -> sc.StoredChain:
    return sc.build(tmp_path / "chain", n_blocks=6, tail=1)


def test_low_disk_space_refuses_writes_until_space_returns(
        stored: sc.StoredChain, caplog: pytest.LogCaptureFixture) -> None:
    """Below `chain.min_free_mb` (here: a threshold above what this disk has free, then
    lowered under it, as freeing space would do), transactions and templates are refused,
    reads are served, and the status says why."""
    caplog.set_level(logging.INFO)
    guard = StorageGuard(stored.chain_dir, 0)
    free = guard.free_bytes()
    assert free is not None
    guard.min_free = free + GiB
    chain = Chain(Store(stored.chain_dir), stored.genesis)
    tx = rh.transfer(1, rh.address(9), 1, nonce=len(stored.blocks))  # after the pending one

    async def body() -> None:
        async with served(chain, guard) as s:
            for _ in range(3):
                status = await s.status()
                assert status.storage.startswith("disk space low: ")
                assert "below chain.min_free_mb" in status.storage
                assert status.min_free == guard.min_free and status.disk_free > 0
                err = await refused(s.submit([tx]))
                assert isinstance(err, errors.StorageUnavailable)
                assert free_space_as_n(err.message) == free_space_as_n(status.storage)
                await refused(s.template())
            assert (await s.status()).height == stored.head.height  # reads go on
            guard.min_free = 1
            assert (await s.status()).storage == ""
            assert await s.submit([tx]) == [""]

    run(body)
    assert len(logged(caplog, logging.WARNING)) == 1  # once when it started...
    [back] = logged(caplog, logging.INFO)  # ...and once when it ended
    assert back.startswith("disk space is back")


def test_a_failed_write_is_refused_then_recovered_in_place(
        stored: sc.StoredChain, caplog: pytest.LogCaptureFixture) -> None:
    """A journal write fails (ENOSPC): 503, the status names it, writes are refused
    without touching LevelDB and reads go on; the next look of the guard finds the disk
    writable, reopens the database, and the node takes writes again with every
    transaction it acknowledged before."""
    caplog.set_level(logging.INFO)
    store = Store(stored.chain_dir)
    failing = FailingWrites(store.db)
    store.db = failing
    chain = Chain(store, stored.genesis)
    nonce = len(stored.blocks)  # each sender sent one per block, and one is pending
    first = rh.transfer(1, rh.address(9), 1, nonce=nonce)
    second = rh.transfer(2, rh.address(9), 1, nonce=nonce)

    async def body() -> None:
        async with served(chain, StorageGuard(stored.chain_dir, 0)) as s:
            assert await s.submit([first]) == [""]  # acknowledged: in the journal
            failing.fail(sc.ENOSPC)
            err = await refused(s.submit([second]))
            assert "No space left on device" in err.message
            status = await s.status()
            assert "No space left on device" in status.storage
            assert status.mempool_count == len(stored.pending) + 1
            attempts = failing.attempts
            await refused(s.submit([second]))
            await refused(s.template())
            assert failing.attempts == attempts  # refused before LevelDB
            s.service.watch_storage()  # the guard's look: the disk takes writes, reopen
            assert s.service.chain is not chain
            assert (await s.status()).storage == ""
            assert await s.submit([second]) == [""]
            pool = set(s.service.chain.mempool.by_id)
            assert {first.id, second.id} | {t.id for t in stored.pending} == pool

    run(body)
    [started] = logged(caplog, logging.ERROR)
    assert "No space left on device" in started
    [ended] = logged(caplog, logging.INFO)
    assert ended.startswith("the chain database was reopened and takes writes again")
    reopened = Chain(Store(stored.chain_dir), stored.genesis)  # what a restart finds
    try:
        assert {first.id, second.id} <= set(reopened.mempool.by_id)
    finally:
        reopened.store.close()


def test_damage_found_at_run_time_stops_writes_and_names_the_remedy(
        stored: sc.StoredChain, caplog: pytest.LogCaptureFixture) -> None:
    """Table bytes flipped under a running state: a block read from them is 503 (never
    500), the other blocks are served, writes are refused with the damage and the remedy,
    one error line says so, and nothing is retried or reopened."""
    caplog.set_level(logging.INFO)
    chain = Chain(Store(stored.chain_dir), stored.genesis)
    guard = StorageGuard(stored.chain_dir, 0)

    async def body() -> None:
        async with served(chain, guard) as s:
            sc.flip_table_bytes(stored.chain_dir)
            served_blocks = damaged = 0
            for _ in range(2):
                for height in range(stored.head.height + 1):
                    try:
                        await s.client.request(m.GetBlock(height, b""), m.BlockReply)
                        served_blocks += 1
                    except errors.CcoinError as exc:
                        assert exc.code == "storage_unavailable", exc
                        damaged += 1
            assert damaged and served_blocks
            status = await s.status()
            assert "is damaged" in status.storage and REMEDY in status.storage
            err = await refused(s.submit([rh.transfer(3, rh.address(9), 1, nonce=99)]))
            assert err.message == status.storage  # the damage and the remedy
            s.service.watch_storage()
            assert s.service.chain is chain  # damage is not reopened away

    run(body)
    [line] = logged(caplog, logging.ERROR)
    assert "is damaged" in line and "`ccoin node check`" in line
