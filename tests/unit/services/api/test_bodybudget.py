"""The gateway's budget of large request bodies (services/api/bodybudget.py): large ones
wait their turn in order, small ones never wait, a body over the whole budget runs alone,
a wait too long is 503, a client that gives up holds no one up, the heap is trimmed when
the last large one is done; and over the real app, concurrent large batches all succeed
with the budget given back."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.api import bodybudget
from services.api.bodybudget import LARGE_BODY, BodyBudget
from tests.framework.util import wait_until_async
from tests.unit.services.api.support import ED, run, signed, state_node

MB = 2**20


class Handler:
    """The app under the budget: each request reads its body, then waits until the test
    lets it finish; it records how many bytes of large bodies are being handled at once."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.most = 0
        self.started: list[str] = []
        self.release: dict[str, asyncio.Event] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        name = scope["path"]
        size = int(dict(scope["headers"]).get(b"content-length", b"0"))
        while (await receive()).get("more_body"):
            pass
        self.in_flight += size
        self.most = max(self.most, self.in_flight)
        self.started.append(name)
        gate = self.release.setdefault(name, asyncio.Event())
        await gate.wait()
        self.in_flight -= size
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    def finish(self, name: str) -> None:
        self.release.setdefault(name, asyncio.Event()).set()


class Trims:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def request(name: str, size: int) -> tuple[dict[str, Any], Any]:
    scope = {"type": "http", "method": "POST", "path": name,
             "headers": [(b"content-length", str(size).encode())]}
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        chunk = b"" if sent else b"x" * size
        sent = True
        return {"type": "http.request", "body": chunk, "more_body": False}

    return scope, receive


async def call(budget: BodyBudget, name: str, size: int) -> int:
    """The request's status."""
    scope, receive = request(name, size)
    status = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await budget(scope, receive, send)
    return status[0]


async def until(condition: Any) -> None:
    await wait_until_async(condition, timeout=10, what="the budget's requests to get there")


def test_large_bodies_wait_their_turn_in_order_and_small_ones_never_wait() -> None:
    async def scenario() -> None:
        app, trims = Handler(), Trims()
        budget = BodyBudget(app, budget=2 * MB, body_limit=4 * MB, trim=trims)
        large = [asyncio.create_task(call(budget, f"/large{i}", MB)) for i in range(4)]
        await until(lambda: len(app.started) == 2 and len(budget.waiting) == 2)
        assert app.started == ["/large0", "/large1"]
        small = asyncio.create_task(call(budget, "/small", LARGE_BODY - 1))
        await until(lambda: "/small" in app.started)  # past the queue
        app.finish("/small")
        assert await small == 200
        app.finish("/large1")
        await until(lambda: len(app.started) == 4)
        assert app.started[3] == "/large2"  # the first in the queue went first
        for i in range(4):
            app.finish(f"/large{i}")
        assert await asyncio.gather(*large) == [200] * 4
        assert app.most == 2 * MB + LARGE_BODY - 1  # never more large bytes than the budget
        assert budget.available == budget.budget and not budget.waiting
        await until(lambda: trims.count == 1)  # the last large one done: heap trimmed once

    run(scenario)


def test_a_body_larger_than_the_budget_runs_alone() -> None:
    async def scenario() -> None:
        app = Handler()
        budget = BodyBudget(app, budget=MB, body_limit=4 * MB, trim=Trims())
        first = asyncio.create_task(call(budget, "/huge", 3 * MB))
        await until(lambda: app.started == ["/huge"])
        second = asyncio.create_task(call(budget, "/next", LARGE_BODY))
        await until(lambda: len(budget.waiting) == 1)
        app.finish("/huge")
        app.finish("/next")
        assert await asyncio.gather(first, second) == [200, 200]

    run(scenario)


def test_a_wait_too_long_is_503_and_a_gone_waiter_holds_no_one_up(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bodybudget, "QUEUE_TIMEOUT_S", 0.05)

    async def scenario() -> None:
        app = Handler()
        budget = BodyBudget(app, budget=2 * MB, body_limit=4 * MB, trim=Trims())
        holder = asyncio.create_task(call(budget, "/holder", MB + LARGE_BODY))
        await until(lambda: app.started == ["/holder"])
        assert await call(budget, "/late", 2 * MB) == 503  # waited, gave up, left the queue
        assert not budget.waiting
        # a waiter whose client goes away, ahead of one that fits
        gone = asyncio.create_task(call(budget, "/gone", 2 * MB))
        await until(lambda: len(budget.waiting) == 1)
        fits = asyncio.create_task(call(budget, "/fits", LARGE_BODY))
        await until(lambda: len(budget.waiting) == 2)
        gone.cancel()
        await until(lambda: "/fits" in app.started)  # no longer behind the one that left
        app.finish("/fits")
        app.finish("/holder")
        assert await asyncio.gather(holder, fits) == [200, 200]
        assert budget.available == budget.budget

    run(scenario)


def test_concurrent_large_batches_through_the_real_gateway(tmp_path: Path) -> None:
    n_batches, per_batch = 6, 400
    batches = [[signed(b * per_batch + i, data=bytes(600)) for i in range(per_batch)]
               for b in range(n_batches)]

    async def scenario() -> None:
        async with state_node(tmp_path, funded=(ED.address,),
                              config={"api": {"body_budget_mb": 1}}) as node:
            bodies = [{"txs": [{"raw": tx.raw.hex()} for tx in batch]} for batch in batches]
            assert all(len(httpx.Request("POST", "/", json=b).content) > LARGE_BODY
                       for b in bodies)
            replies = await asyncio.gather(*(node.http.post("/api/v1/txs/batch", json=body)
                                             for body in bodies))
            assert [r.status_code for r in replies] == [200] * n_batches
            assert sum(r.json()["accepted"] for r in replies) == n_batches * per_batch
            metrics = (await node.http.get("/metrics")).text
            assert "ccoin_api_body_bytes_in_flight 0.0" in metrics
            assert "ccoin_api_bodies_waiting 0.0" in metrics

    run(scenario)
