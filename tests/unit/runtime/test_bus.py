"""The bus's request framing over real ZeroMQ sockets: the optional trace frame that carries
an operator's request id into every service's logs."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import pytest
import zmq
import zmq.asyncio

from common import messages as m
from runtime import bus
from runtime.service import log_request_ids


def _serve(tmp_path: Path, seen: list[str]) -> tuple[zmq.asyncio.Context, bus.Server, str]:
    def status(_: m.GetStatus) -> m.ServicePong:
        seen.append(bus.REQUEST_ID.get())
        logging.getLogger("ccoin.test.bus").info("handled")
        return m.ServicePong("test", "0")

    endpoint = f"ipc://{tmp_path}/t.sock"
    ctx = zmq.asyncio.Context()
    return ctx, bus.Server(ctx, endpoint, "test", {m.GetStatus: status}), endpoint


def test_the_request_id_crosses_the_bus_and_names_the_log_lines(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    log_request_ids()
    seen: list[str] = []

    async def scenario() -> None:
        ctx, server, endpoint = _serve(tmp_path, seen)
        task = asyncio.create_task(server.serve_forever())
        client = bus.BusClient(endpoint, ctx, timeout=2, retries=0)
        try:
            token = bus.REQUEST_ID.set("op-7.a")
            try:
                await client.request(m.GetStatus(), m.ServicePong)
            finally:
                bus.REQUEST_ID.reset(token)
            await client.request(m.GetStatus(), m.ServicePong)  # none: none is made up
            # a trace frame that is not an id is dropped, and the request still answered
            raw = ctx.socket(zmq.DEALER)
            raw.connect(endpoint)
            await raw.send_multipart([os.urandom(12), m.encode(m.GetStatus()), b"bad id!"])
            reply = await asyncio.wait_for(raw.recv_multipart(), 2)
            assert isinstance(m.decode(reply[1]), m.ServicePong)
            raw.close(0)
        finally:
            client.close()
            task.cancel()
            server.close()
            ctx.term()

    with caplog.at_level(logging.INFO, logger="ccoin.test.bus"):
        asyncio.run(scenario())
    assert seen == ["op-7.a", "", ""]
    handled = [r for r in caplog.records if r.name == "ccoin.test.bus"]
    assert [getattr(r, "request_id", None) for r in handled] == ["op-7.a", None, None]


def test_the_blocking_client_sends_it_too(tmp_path: Path) -> None:
    seen: list[str] = []

    async def scenario() -> None:
        ctx, server, endpoint = _serve(tmp_path, seen)
        task = asyncio.create_task(server.serve_forever())
        client = bus.SyncBusClient(endpoint, timeout=2, retries=0)

        def ask() -> None:
            bus.REQUEST_ID.set("cli-1")  # this thread's own context
            client.request(m.GetStatus(), m.ServicePong)

        try:
            await asyncio.to_thread(ask)
        finally:
            client.close()
            task.cancel()
            server.close()
            ctx.term()

    asyncio.run(scenario())
    assert seen == ["cli-1"]
