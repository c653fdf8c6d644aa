"""The bus over real ZeroMQ sockets: the optional trace frame that carries an operator's
request id into every service's logs, and the protocol version every message carries (a
request, a reply or an event of another version is a typed `VersionMismatch`, never
`malformed`, and the server serves on), and requests that run apart (`concurrent`)."""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import time
from pathlib import Path

import pytest
import zmq
import zmq.asyncio

from common import messages as m
from common.encoding import pack
from common.errors import Internal, Malformed, VersionMismatch
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


# --- the bus protocol version ------------------------------------------------------------------


def test_a_request_of_another_version_gets_version_mismatch_and_the_server_serves_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
        ) -> None:
    monkeypatch.setattr(bus, "_mismatch_logged", {})
    seen: list[str] = []

    async def scenario() -> None:
        ctx, server, endpoint = _serve(tmp_path, seen)
        task = asyncio.create_task(server.serve_forever())
        raw = ctx.socket(zmq.DEALER)
        raw.connect(endpoint)
        client = bus.BusClient(endpoint, ctx, timeout=2, retries=0)
        try:
            newer = pack([m.BUS_VERSION + 1, "get_status", []])
            older = pack(["get_status", []])  # a process from before the bus had versions
            for rid, payload in ((b"r1", newer), (b"r2", older), (b"r3", newer)):
                await raw.send_multipart([rid, payload])
                reply_rid, reply = await asyncio.wait_for(raw.recv_multipart(), 2)
                assert reply_rid == rid
                assert reply.startswith(b"\x92\xa3err")  # the unversioned form all can read
                error = m.decode(reply)
                assert isinstance(error, m.ErrorReply)
                exc = error.to_exception()
                assert type(exc) is VersionMismatch
                assert exc.message.startswith("test: ")  # which service refused
                assert f"speaks version {m.BUS_VERSION}" in exc.message
                theirs = m.BUS_VERSION + 1 if payload is newer else 0
                assert f"bus protocol version {theirs}" in exc.message
            # the server serves on: a request of our version is answered
            assert await client.request(m.GetStatus(), m.ServicePong) == m.ServicePong("test", "0")
        finally:
            raw.close(0)
            client.close()
            task.cancel()
            server.close()
            ctx.term()

    with caplog.at_level(logging.WARNING, logger="ccoin.bus"):
        asyncio.run(scenario())
    refusals = [r for r in caplog.records if "refused a request" in r.getMessage()]
    assert len(refusals) == 2  # one line per foreign version, not one per request
    assert seen == [""]  # no handler ran for the refused requests


def _ping_answered_with(reply: bytes) -> None:
    """A ping to a ROUTER that answers it with `reply`: what the client raises, raised."""
    async def scenario() -> None:
        ctx = zmq.asyncio.Context()
        router = ctx.socket(zmq.ROUTER)
        router.bind("inproc://scripted-service")
        client = bus.BusClient("inproc://scripted-service", ctx, timeout=2, retries=0)

        async def answer() -> None:
            identity, rid, _ = await router.recv_multipart()
            await router.send_multipart([identity, rid, reply])

        try:
            server = asyncio.create_task(answer())
            try:
                await client.request(m.ServicePing(), m.ServicePong)
            finally:
                await server
        finally:
            client.close()
            router.close(0)
            ctx.term()

    asyncio.run(scenario())


def test_a_reply_of_another_version_is_a_typed_error_at_the_client() -> None:
    with pytest.raises(VersionMismatch, match=f"version {m.BUS_VERSION + 1}"):
        _ping_answered_with(pack([m.BUS_VERSION + 1, "pong", ["test", "9"]]))


@pytest.mark.parametrize(("reply", "says"), [
    (b"\xc1", "does not decode: undecodable msgpack"),
    (pack([m.BUS_VERSION, "pong", ["test"]]), "does not decode: pong must be an array"),
    (pack([m.BUS_VERSION, "ok", []]), "expected pong, got ok"),
])
def test_a_reply_that_is_not_the_answer_is_the_server_s_fault_not_the_asker_s(
        reply: bytes, says: str) -> None:
    """`Internal` (a gateway's 500), never `Malformed` (its 400: the caller's input)."""
    with pytest.raises(Internal, match=says):
        _ping_answered_with(reply)


def test_an_event_of_another_version_is_reported_once_and_not_as_malformed(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bus, "_mismatch_logged", {})
    newer = [b"head", struct.pack(">Q", 1),
             pack([m.BUS_VERSION + 1, "ev_head", [1, bytes(32), 1, 0, 0, 0]])]

    async def scenario() -> None:
        ctx = zmq.asyncio.Context()
        other = ctx.socket(zmq.PUB)  # a state service of another installation
        other.bind("inproc://newer-events")
        ours = bus.Publisher(ctx, "inproc://events")
        sub = bus.subscriber(ctx, "inproc://newer-events", (b"head",))
        sub.connect("inproc://events")
        try:
            # a subscription takes effect some time after connect: publish until one arrives
            deadline = time.monotonic() + 5
            while not await sub.poll(10):
                assert time.monotonic() < deadline, "the subscriber never received an event"
                await other.send_multipart(newer)
            for _ in range(3):
                with pytest.raises(VersionMismatch) as info:
                    bus.parse_event(await sub.recv_multipart())
                assert not isinstance(info.value, Malformed)
                await other.send_multipart(newer)
            head = m.HeadEvent(2, bytes(32), 2, 0, 0, 0)
            deadline = time.monotonic() + 5
            while True:  # skip the newer events still queued; ours is read as usual
                ours.publish(b"head", head)
                if not await sub.poll(10):
                    assert time.monotonic() < deadline, "our event never arrived"
                    continue
                try:
                    topic, _, event = bus.parse_event(await sub.recv_multipart())
                except VersionMismatch:
                    continue
                break
            assert (topic, event) == (b"head", head)
        finally:
            sub.close(0)
            other.close(0)
            ours.close()
            ctx.term()

    with caplog.at_level(logging.ERROR, logger="ccoin.bus"):
        asyncio.run(scenario())
    reports = [r for r in caplog.records if r.name == "ccoin.bus"]
    assert len(reports) == 1 and reports[0].levelno == logging.ERROR
    text = reports[0].getMessage()
    assert "ignoring 'head' events" in text and f"version {m.BUS_VERSION + 1}" in text
    assert f"speaks version {m.BUS_VERSION}" in text


def test_a_subscription_notices_lost_events_and_a_restarted_publisher(tmp_path: Path) -> None:
    """Every (re)connection to the publisher comes first as `CONNECTED`, before any event
    over the new link; events come in order; a gap in a topic's numbering (PUB dropped some,
    or the publisher started numbering again) marks the next event `missed`; an unreadable
    one is skipped. (ipc, not inproc: a SUB reconnects to a restarted ipc publisher.)"""
    endpoint = f"ipc://{tmp_path}/events.sock"
    head = m.HeadEvent(1, bytes(32), 1, 0, 0, 0)
    txs = m.TxsEvent((b"\x01" * 32,))

    async def scenario() -> None:
        ctx = zmq.asyncio.Context()
        publisher = bus.Publisher(ctx, endpoint)
        events = bus.Subscription(ctx, endpoint, (b"head", b"txs"))
        try:
            assert await events.next() is bus.CONNECTED  # before anything was published
            # the subscription takes effect a moment after the link: publish until one comes
            deadline = time.monotonic() + 5
            while not await events.poll(10):
                assert time.monotonic() < deadline, "the subscriber never received an event"
                publisher.publish(b"txs", txs)
            first = await events.next()
            while await events.poll(0):  # the probes that arrived meanwhile
                first = await events.next()
            assert first.topic == b"txs" and not first.missed

            publisher.publish(b"head", head)
            publisher.publish(b"txs", txs)
            assert [(e.topic, e.message, e.missed) for e in
                    (await events.next(), await events.next())] == [
                (b"head", head, False), (b"txs", txs, False)]

            publisher.seq[b"head"] += 3  # three head events lost at the high-water mark
            publisher.sock.send_multipart([b"head", b"\x00", b"garbage"])  # unreadable
            publisher.publish(b"head", head)
            publisher.publish(b"txs", txs)
            lost, after = await events.next(), await events.next()
            assert (lost.topic, lost.missed, lost.seq) == (b"head", True, 5)
            assert (after.topic, after.missed) == (b"txs", False)

            publisher.seq[b"head"] = 999  # a long-lived publisher...
            publisher.publish(b"head", head)
            assert (await events.next()).seq == 1000
            publisher.close()  # ...restarts, publishing before the subscriber is back
            publisher = bus.Publisher(ctx, endpoint)
            publisher.publish(b"head", head)  # lost to the subscriber: not linked yet
            reconnected = await events.next()  # yet it learns that it may have missed some
            assert reconnected is bus.CONNECTED and reconnected.missed
            deadline = time.monotonic() + 5
            while not await events.poll(10):
                assert time.monotonic() < deadline, "no event after the restart"
                publisher.publish(b"head", head)
            again = await events.next()
            assert again.topic == b"head" and 1 < again.seq < 1000 and again.missed
        finally:
            events.close()
            publisher.close()
            ctx.term()

    asyncio.run(scenario())


def test_a_concurrent_request_runs_apart_and_a_retry_of_it_runs_once(tmp_path: Path) -> None:
    """A request of a `concurrent` type that waits does not hold up the ones behind it;
    its reply comes when it is done, and a retry sent meanwhile is not handled again."""
    calls: list[str] = []
    release = asyncio.Event()  # the slow request waits on the world until the test says

    async def slow(req: m.SyncNow) -> m.Ok:
        calls.append("slow")
        await release.wait()
        return m.Ok()

    def quick(_: m.GetStatus) -> m.ServicePong:
        calls.append("quick")
        return m.ServicePong("test", "0")

    async def scenario() -> None:
        endpoint = f"ipc://{tmp_path}/c.sock"
        ctx = zmq.asyncio.Context()
        server = bus.Server(ctx, endpoint, "test", {m.SyncNow: slow, m.GetStatus: quick},
                            concurrent=frozenset({m.SyncNow}))
        task = asyncio.create_task(server.serve_forever())
        raw = ctx.socket(zmq.DEALER)
        raw.connect(endpoint)
        try:
            request_id = os.urandom(12)
            await raw.send_multipart([request_id, m.encode(m.SyncNow())])
            await raw.send_multipart([request_id, m.encode(m.SyncNow())])  # a retry
            await raw.send_multipart([b"quick-one", m.encode(m.GetStatus())])
            first = await asyncio.wait_for(raw.recv_multipart(), 2)
            assert first[0] == b"quick-one"  # answered while the slow one still waits
            release.set()
            second = await asyncio.wait_for(raw.recv_multipart(), 2)
            assert second[0] == request_id and isinstance(m.decode(second[1]), m.Ok)
            assert sorted(calls) == ["quick", "slow"]  # the retry was not handled again
            await raw.send_multipart([request_id, m.encode(m.SyncNow())])  # a late retry
            third = await asyncio.wait_for(raw.recv_multipart(), 2)
            assert third == second and len(calls) == 2  # from the reply memory
        finally:
            raw.close(0)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            server.close()
            ctx.term()

    asyncio.run(scenario())


def test_a_request_in_flight_when_its_server_dies_goes_again_to_the_one_that_replaces_it(
        tmp_path: Path) -> None:
    """A server killed with a request in hand (state, restarted by supervisord): the client
    sees its connection drop and sends the request again, which the new server answers.
    The client's timeout is an hour: only the resend can end the wait."""
    received = asyncio.Event()

    async def hold(_: m.GetStatus) -> m.ServicePong:
        received.set()
        await asyncio.Event().wait()  # never answers: the process is about to die
        raise AssertionError("unreachable")

    async def scenario() -> None:
        endpoint = f"ipc://{tmp_path}/r.sock"
        ctx = zmq.asyncio.Context()
        first = bus.Server(ctx, endpoint, "first", {m.GetStatus: hold},
                           concurrent=frozenset({m.GetStatus}))
        serving = asyncio.create_task(first.serve_forever())
        client = bus.BusClient(endpoint, ctx, timeout=3600, retries=1)
        second: bus.Server | None = None
        try:
            asked = asyncio.create_task(client.request(m.GetStatus(), m.ServicePong))
            await asyncio.wait_for(received.wait(), 10)
            serving.cancel()
            await asyncio.gather(serving, return_exceptions=True)
            first.close()  # its end of the connection drops, the request unanswered
            second = bus.Server(ctx, endpoint, "second",
                                {m.GetStatus: lambda _: m.ServicePong("second", "0")})
            serving = asyncio.create_task(second.serve_forever())
            reply = await asyncio.wait_for(asked, 30)  # not the hour: it was sent again
            assert reply.service == "second" and client.drops >= 1
            # the link to the new server serves on
            again = await client.request(m.GetStatus(), m.ServicePong, timeout=10)
            assert again.service == "second"
        finally:
            serving.cancel()
            await asyncio.gather(serving, return_exceptions=True)
            client.close()
            if second is not None:
                second.close()
            ctx.term()

    asyncio.run(scenario())
