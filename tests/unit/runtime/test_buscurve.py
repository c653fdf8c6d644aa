"""CurveZMQ on the bus over real tcp sockets (runtime/buscurve.py): an admitted key gets
replies and events, a key not in `bus.allow` and a plaintext client get nothing (the node
logs each refusal once), a tcp endpoint without keys is refused at start, plaintext only on
loopback and only when asked; the key file is made once, even by racing services."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import zmq
import zmq.asyncio

from common import messages as m
from common.errors import Unavailable
from runtime import bus, buscurve
from runtime.config import ConfigError, parse_config
from tests.framework.ports import free_port


def _keys(tmp_path: Path, name: str) -> tuple[bytes, bytes]:
    return buscurve.load_keys(tmp_path / name)


def _curve(tmp_path: Path, name: str, server: bytes = b"",
           allow: tuple[bytes, ...] = ()) -> buscurve.BusCurve:
    public, secret = _keys(tmp_path, name)
    return buscurve.BusCurve(public, secret, server or public, frozenset((public, *allow)))


def test_the_key_is_made_once_private_and_stable_even_by_racing_services(
        tmp_path: Path) -> None:
    with ThreadPoolExecutor(8) as pool:
        pairs = list(pool.map(lambda _: buscurve.load_keys(tmp_path), range(8)))
    assert len(set(pairs)) == 1  # every racer reads the one key that won
    path = buscurve.key_file(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["curve.secret"]
    assert buscurve.load_keys(tmp_path) == pairs[0]
    path.write_text("not a key\n")
    with pytest.raises(ConfigError, match="does not hold a CurveZMQ secret key"):
        buscurve.load_keys(tmp_path)
    with pytest.raises(ConfigError, match="ccoin node keys"):
        buscurve.load_keys(tmp_path / "none", create=False)


def test_which_endpoints_get_curve() -> None:
    assert buscurve.mode("ipc:///x/state.sock", False) == buscurve.LOCAL
    assert buscurve.mode("inproc://state", True) == buscurve.LOCAL
    assert buscurve.mode("tcp://127.0.0.1:7101", False) == buscurve.CURVE
    assert buscurve.mode("tcp://127.0.0.1:7101", True) == buscurve.PLAIN
    assert buscurve.mode("tcp://[::1]:7101", True) == buscurve.PLAIN
    assert buscurve.mode("tcp://localhost:7101", True) == buscurve.PLAIN
    # the flag relaxes loopback only: a network address stays Curve
    assert buscurve.mode("tcp://10.0.0.1:7101", True) == buscurve.CURVE


def test_a_tcp_endpoint_without_keys_is_refused_at_start() -> None:
    ctx = zmq.asyncio.Context()
    try:
        with pytest.raises(ConfigError, match="tcp:// is CurveZMQ only"):
            bus.BusClient("tcp://127.0.0.1:1", ctx)
        with pytest.raises(ConfigError, match="tcp:// is CurveZMQ only"):
            bus.SyncBusClient("tcp://127.0.0.1:1")
        with pytest.raises(ConfigError, match="tcp:// is CurveZMQ only"):
            bus.Server(ctx, "tcp://127.0.0.1:1", "test", {})
    finally:
        ctx.destroy(0)


def test_bus_keys_in_the_config() -> None:
    key = "ab" * 32
    cfg = parse_config({"app": {"base_path": "/d"},
                        "bus": {"allow": [key], "server_key": key, "plaintext_loopback": True}})
    assert cfg.bus_allow == (bytes.fromhex(key),) and cfg.bus_server_key == bytes.fromhex(key)
    assert cfg.bus_plaintext_loopback
    for bad, where in (({"allow": ["zz"]}, "bus.allow"), ({"allow": "x"}, "bus.allow"),
                       ({"server_key": "12"}, "bus.server_key"),
                       ({"plaintext_loopback": 1}, "bus.plaintext_loopback"),
                       ({"keys": 1}, "bus: unknown")):
        with pytest.raises(ConfigError, match=where):
            parse_config({"app": {"base_path": "/d"}, "bus": bad})


def test_admitted_keys_are_served_and_others_get_nothing(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "ccoin.bus.curve")
    port, events_port = free_port(), free_port()
    endpoint, events = f"tcp://127.0.0.1:{port}", f"tcp://127.0.0.1:{events_port}"
    gateway = _curve(tmp_path, "gateway")
    node = _curve(tmp_path, "node", allow=(gateway.public,))
    as_gateway = buscurve.BusCurve(gateway.public, gateway.secret, node.public,
                                   gateway.allow)
    stranger = buscurve.BusCurve(*_keys(tmp_path, "stranger"), node.public, frozenset())

    async def scenario() -> None:
        ctx = zmq.asyncio.Context()
        guard = buscurve.Guard(ctx, node)
        server = bus.Server(ctx, endpoint, "test", {}, guard=guard)
        publisher = bus.Publisher(ctx, events, guard=guard)
        task = asyncio.create_task(server.serve_forever())
        clients: list[bus.BusClient] = []
        try:
            for curve in (node, as_gateway):  # the node's own services, and the gateway
                clients.append(bus.BusClient(endpoint, ctx, timeout=3, retries=0,
                                             curve=curve))
                pong = await clients[-1].request(m.ServicePing(), m.ServicePong)
                assert pong.service == "test"
            sub = bus.Subscription(ctx, events, (b"head",), curve=as_gateway)
            assert (await asyncio.wait_for(sub.next(), 5)) is bus.CONNECTED
            # the subscription itself travels after the handshake: publish until it lands
            for _ in range(50):
                publisher.publish(b"head", m.ServicePing())
                if await sub.poll(100):
                    break
            got = await asyncio.wait_for(sub.next(), 5)
            assert isinstance(got.message, m.ServicePing)
            sub.close()
            # a key the node does not admit, tried three times: no reply, one log line
            for _ in range(3):
                refused = bus.BusClient(endpoint, ctx, timeout=0.5, retries=0, curve=stranger)
                with pytest.raises(Unavailable):
                    await refused.request(m.ServicePing(), m.ServicePong)
                refused.close()
            # plaintext: the handshake fails (another mechanism); no reply either
            plain = ctx.socket(zmq.DEALER)
            plain.connect(endpoint)
            await plain.send_multipart([os.urandom(12), m.encode(m.ServicePing())])
            assert not await plain.poll(800)
            plain.close(0)
            plain_sub = bus.Subscription(ctx, events, (b"head",),
                                         curve=buscurve.BusCurve(b"", b"", b"", frozenset(),
                                                                 plaintext_loopback=True))
            assert not await plain_sub.poll(500)  # not even the connection comes up
            plain_sub.close()
        finally:
            task.cancel()
            for c in clients:
                c.close()
            server.close()
            publisher.close()
            guard.close()
            # as the state service ends, term() at once (the loop runs nothing in between):
            # it waits for every socket, the guard's too
            term = threading.Thread(target=ctx.term)
            term.start()
            term.join(5)
            if term.is_alive():
                ctx.destroy(0)  # unblocks term(), then fails the test
                raise AssertionError("a socket of the guard kept ctx.term() waiting")
        assert guard.refused >= 3

    asyncio.run(scenario())
    refusals = [r.getMessage() for r in caplog.records
                if "refused a bus client" in r.getMessage()]
    assert len(refusals) == 1, refusals
    assert "refused a bus client from 127.0.0.1" in refusals[0]
    handshakes = [r.getMessage() for r in caplog.records
                  if "refused a connection to" in r.getMessage()]
    assert 1 <= len(handshakes) <= 2, handshakes  # once per endpoint: requests, events


def test_plaintext_on_loopback_when_asked(tmp_path: Path) -> None:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    plain = buscurve.BusCurve(*_keys(tmp_path, "n"), b"", frozenset(), plaintext_loopback=True)
    plain = buscurve.BusCurve(plain.public, plain.secret, plain.public,
                              frozenset((plain.public,)), plaintext_loopback=True)

    async def scenario() -> None:
        ctx = zmq.asyncio.Context()
        guard = buscurve.Guard(ctx, plain)
        server = bus.Server(ctx, endpoint, "test", {}, guard=guard)
        task = asyncio.create_task(server.serve_forever())
        raw = ctx.socket(zmq.DEALER)  # no keys at all
        raw.connect(endpoint)
        try:
            await raw.send_multipart([b"r1", m.encode(m.ServicePing())])
            reply = await asyncio.wait_for(raw.recv_multipart(), 3)
            assert isinstance(m.decode(reply[1]), m.ServicePong)
            assert guard.keeper is None  # no ZAP handler for plaintext
        finally:
            task.cancel()
            raw.close(0)
            server.close()
            guard.close()
            ctx.destroy(0)

    asyncio.run(scenario())
