"""`LoopSocket` over real ZeroMQ sockets: a receiver that waits is woken by a message, even
when sends on its own socket (which can swallow the fd's edge) happen meanwhile; a send the
socket cannot take yet waits for it; closing cancels whoever waits; `wait_any_readable`
wakes for either of two sockets."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
import zmq
import zmq.asyncio

from runtime.loopsocket import LoopSocket, wait_any_readable

TIMEOUT = 10.0
T = TypeVar("T")


def _started(work: Coroutine[Any, Any, T]) -> tuple[asyncio.Task[T], asyncio.Event]:
    """`work` as a task, and an event set as it starts: once the event is seen, the task has
    run up to its first wait (the event's waiter resumes only after the task suspends)."""
    started = asyncio.Event()

    async def run() -> T:
        started.set()
        return await work

    return asyncio.create_task(run()), started


@pytest.mark.parametrize("pause_every", [1, 7, 50])
def test_a_waiting_receiver_gets_every_reply_while_its_socket_keeps_sending(
        tmp_path: Path, pause_every: int) -> None:
    """Many requests in flight on one DEALER: the reader waits on the socket while the
    sender sends on it and while it waits to be able to send, so the socket's operations
    regularly take the notification one of the others needs (over ipc:// this hangs
    without the looks `LoopSocket` makes after each operation)."""
    async def scenario() -> None:
        ctx = zmq.asyncio.Context()
        server, client = LoopSocket(ctx, zmq.ROUTER), LoopSocket(ctx, zmq.DEALER)
        for end in (server, client):  # nothing dropped at a high-water mark
            end.sock.setsockopt(zmq.SNDHWM, 0)
            end.sock.setsockopt(zmq.RCVHWM, 0)
        server.sock.bind(f"ipc://{tmp_path}/echo")
        client.sock.connect(f"ipc://{tmp_path}/echo")
        n = 20_000

        echoed = 0
        echo_caught_up = asyncio.Event()
        wanted = 0

        async def echo() -> None:
            nonlocal echoed
            for _ in range(n):
                await server.send_multipart(await server.recv_multipart())
                echoed += 1
                if echoed >= wanted:
                    echo_caught_up.set()

        async def read() -> list[bytes]:
            return [(await client.recv_multipart())[0] for _ in range(n)]

        async def write() -> None:
            nonlocal wanted
            for i in range(n):
                await client.send_multipart([b"%d" % i])
                if i % pause_every == 0:
                    # Replies must arrive while this socket keeps sending (the interleaving
                    # under test): wait until the server has sent back what was asked so far,
                    # not until the reader took it (then the reader drains first, and the
                    # bug stays hidden).
                    wanted = i + 1
                    echo_caught_up.clear()
                    if echoed < wanted:
                        await echo_caught_up.wait()

        try:
            async with asyncio.timeout(TIMEOUT):
                replies, *_ = await asyncio.gather(read(), echo(), write())
            assert replies == [b"%d" % i for i in range(n)]
        finally:
            server.close()
            client.close()
            ctx.term()

    asyncio.run(scenario())


def test_a_send_waits_until_the_socket_can_take_it() -> None:
    async def scenario() -> None:
        ctx = zmq.asyncio.Context()
        client = LoopSocket(ctx, zmq.DEALER)  # no peer yet: a DEALER cannot send
        server = LoopSocket(ctx, zmq.ROUTER)
        try:
            assert not client.send_nowait([b"now"])
            sending, started = _started(client.send_multipart([b"later"]))
            await started.wait()  # the sender is waiting on the socket now
            assert not sending.done()
            server.sock.bind("inproc://late")
            client.sock.connect("inproc://late")
            async with asyncio.timeout(TIMEOUT):
                await sending
                frames = await server.recv_multipart()
            assert frames[1:] == [b"later"]
        finally:
            server.close()
            client.close()
            ctx.term()

    asyncio.run(scenario())


def test_close_cancels_a_waiting_receiver() -> None:
    async def scenario() -> None:
        ctx = zmq.asyncio.Context()
        sock = LoopSocket(ctx, zmq.PULL)
        sock.sock.bind("inproc://quiet")
        receiving, started = _started(sock.recv_multipart())
        await started.wait()  # the receiver is waiting on the socket now
        sock.close()
        async with asyncio.timeout(TIMEOUT):
            done = await asyncio.gather(receiving, return_exceptions=True)
        assert isinstance(done[0], asyncio.CancelledError)
        ctx.term()

    asyncio.run(scenario())


def test_wait_any_readable_wakes_for_the_socket_that_has_a_message() -> None:
    async def scenario() -> None:
        ctx = zmq.asyncio.Context()
        quiet, busy = LoopSocket(ctx, zmq.PULL), LoopSocket(ctx, zmq.PULL)
        quiet.sock.bind("inproc://quiet-one")
        busy.sock.bind("inproc://busy-one")
        push = ctx.socket(zmq.PUSH)
        push.connect("inproc://busy-one")
        try:
            waiting, started = _started(wait_any_readable(quiet, busy))
            await started.wait()  # both sockets are watched now
            assert not waiting.done()
            await push.send(b"hello")
            async with asyncio.timeout(TIMEOUT):
                await waiting
            assert quiet.recv_nowait() is None
            assert busy.recv_nowait() == [b"hello"]
        finally:
            push.close(0)
            quiet.close()
            busy.close()
            ctx.term()

    asyncio.run(scenario())
