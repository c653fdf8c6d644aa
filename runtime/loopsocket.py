"""A ZeroMQ socket driven by the running asyncio loop through its file descriptor, the way
the ZeroMQ guide integrates libzmq with an event loop: wait until `ZMQ_FD` is readable, then
ask `ZMQ_EVENTS` what the socket can do, and read or write without blocking.

The bus's services spend most of a small request's time on the sockets, and pyzmq's own
asyncio sockets make several futures and loop callbacks per message: a request's round
trip through them costs about twice what it costs here (measured in docs/benchmarks.md's
single-submission stage). The socket itself is an ordinary blocking `zmq.Socket` made by
the given context (so the context still closes it, and inproc:// works within it); only
this class touches its I/O.

The one subtlety is the one the guide warns about: `ZMQ_FD` only says that something
changed, and any operation on the socket (a send, a receive, even asking `ZMQ_EVENTS`) may
read that notification, including one meant for a receiver or a sender that is waiting.
So after every operation, while anyone waits, this class asks `ZMQ_EVENTS` itself in the
next loop iteration, and a receiver or sender always tries before it waits.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import zmq


def plain_socket(ctx: zmq.Context[Any], kind: int) -> zmq.Socket[bytes]:
    """A blocking socket of `ctx` (an asyncio context's too: it still closes it)."""
    return cast("zmq.Socket[bytes]", ctx.socket(kind, socket_class=zmq.Socket))


class LoopSocket:
    """One socket, one receiver at a time, any number of senders."""

    def __init__(self, ctx: zmq.Context[Any], kind: int) -> None:
        self.sock = plain_socket(ctx, kind)
        self._fd = cast(int, self.sock.getsockopt(zmq.FD))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._readable: asyncio.Future[None] | None = None
        self._writable: list[asyncio.Future[None]] = []
        self._look_scheduled = False

    # --- receiving ----------------------------------------------------------------------

    def recv_nowait(self) -> list[bytes] | None:
        """The next message's frames, or None when none is waiting."""
        try:
            return self.sock.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return None
        finally:
            self._after_io()

    async def recv_multipart(self) -> list[bytes]:
        """The next message's frames (waits for one)."""
        while True:
            frames = self.recv_nowait()
            if frames is not None:
                return frames
            await self.wait_readable()

    async def wait_readable(self) -> None:
        """Return once a message may be waiting (`recv_nowait` then tells)."""
        fut = self._readable_future()
        if fut is not None:
            await fut

    def _readable_future(self) -> asyncio.Future[None] | None:
        """A future done when a message may be waiting; None when one is already."""
        loop = self._attach()
        events = self._events()
        if events & zmq.POLLOUT and self._writable:
            self._look_soon()  # the look took the edge that would have told the senders
        if events & zmq.POLLIN:
            return None
        if self._readable is None or self._readable.done():
            fut = self._readable = loop.create_future()
            fut.add_done_callback(self._forget_readable)
        return self._readable

    def _forget_readable(self, fut: asyncio.Future[None]) -> None:
        if self._readable is fut:
            self._readable = None

    # --- sending ------------------------------------------------------------------------

    def send_nowait(self, frames: list[bytes]) -> bool:
        """Send at once; False when the socket cannot take it now (its high-water mark, or
        no peer yet for a socket type that waits for one)."""
        try:
            self.sock.send_multipart(frames, zmq.NOBLOCK)
        except zmq.Again:
            return False
        finally:
            self._after_io()
        return True

    async def send_multipart(self, frames: list[bytes]) -> None:
        """Send, waiting while the socket cannot take the message."""
        while not self.send_nowait(frames):
            loop = self._attach()
            fut = loop.create_future()
            self._writable.append(fut)
            self._look_soon()
            try:
                await fut
            finally:
                if fut in self._writable:
                    self._writable.remove(fut)

    # --- the loop's side ----------------------------------------------------------------

    def _events(self) -> int:
        return cast(int, self.sock.getsockopt(zmq.EVENTS))

    def _attach(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(self._fd)
            self._loop = loop
            loop.add_reader(self._fd, self._look)
        return loop

    def _after_io(self) -> None:
        """Any operation on the socket may have read the notification a waiter of the
        other kind needs: whoever waits is looked at again (the next loop iteration)."""
        if self._writable or (self._readable is not None and not self._readable.done()):
            self._look_soon()

    def _look_soon(self) -> None:
        if self._loop is not None and not self._look_scheduled:
            self._look_scheduled = True
            self._loop.call_soon(self._look)

    def _look(self) -> None:
        """The fd said something changed (or a send may have hidden that it did)."""
        self._look_scheduled = False
        if self.sock.closed:
            self._detach()
            return
        events = self._events()
        if events & zmq.POLLIN and self._readable is not None and not self._readable.done():
            self._readable.set_result(None)
        if events & zmq.POLLOUT and self._writable:
            waiting, self._writable = self._writable, []
            for fut in waiting:
                if not fut.done():
                    fut.set_result(None)

    def _detach(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._fd)
        self._loop = None

    def close(self, linger: int = 0) -> None:
        """Close the socket; a waiting receiver or sender is cancelled."""
        self._detach()
        for fut in (self._readable, *self._writable):
            if fut is not None and not fut.done():
                fut.cancel()
        self.sock.close(linger)


async def wait_any_readable(*socks: LoopSocket) -> None:
    """Return once any of `socks` may have a message waiting."""
    futures = []
    for sock in socks:
        fut = sock._readable_future()
        if fut is None:
            return
        futures.append(fut)
    try:
        await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for fut in futures:
            if not fut.done():
                fut.cancel()
