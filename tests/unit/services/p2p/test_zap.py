"""The p2p gatekeeper (ZAP, RFC 27) over real ZeroMQ sockets: refused connections never
deliver a frame, admitted ones do, and a Curve link carries the key ZAP saw; then the node
behind it, with Curve and an allow-list."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
import zmq
import zmq.asyncio
from zmq.utils import z85
from zmq.utils.monitor import parse_monitor_message

from common import wire
from common.wire import ByeCode
from runtime import zap
from services.p2p import curve
from tests.framework.localnet import LocalNet
from tests.framework.wire_peer import WirePeer


def test_requests_and_replies_follow_the_rfc() -> None:
    frames = [b"1.0", b"7", b"ccoin-p2p", b"10.0.0.5", b"", b"CURVE", b"k" * 32]
    req = zap.parse_request(frames)
    assert req is not None
    assert (req.request_id, req.address, req.mechanism, req.curve_key) == (
        b"7", "10.0.0.5", b"CURVE", b"k" * 32)
    assert zap.parse_request([b"1.0", b"7", b"d", b"a", b"", b"NULL"]).curve_key == b""  # type: ignore[union-attr]
    assert zap.parse_request(frames[:5]) is None
    assert zap.parse_request([b"2.0", *frames[1:]]) is None
    assert zap.reply(b"7", None, "uid") == [b"1.0", b"7", b"200", b"OK", b"uid", b""]
    assert zap.reply(b"7", "banned address")[:4] == [b"1.0", b"7", b"400", b"banned address"]


async def _exchange(admit: zap.Admit, *, use_curve: bool, dealers: int = 1,
                    ) -> tuple[list[str], list[str]]:
    """Connect DEALERs one after the other to a guarded ROUTER, each sending one frame;
    (addresses ZAP was asked about, User-Id of each frame the ROUTER received)."""
    ctx = zmq.asyncio.Context()
    asked: list[str] = []

    def recording(req: zap.ZapRequest) -> str | None:
        asked.append(req.address)
        return admit(req)

    def user(req: zap.ZapRequest) -> str:
        return curve.user_id(req.curve_key) if req.curve_key else ""

    keeper = zap.Gatekeeper(ctx, recording, user)
    keeper.start()
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.ZAP_DOMAIN, zap.P2P_DOMAIN)
    server_public, server_secret = zmq.curve_keypair()
    client_public, client_secret = zmq.curve_keypair()
    if use_curve:
        curve.make_server(router, z85.decode(server_public), z85.decode(server_secret))
    port = router.bind_to_random_port("tcp://127.0.0.1")
    users: list[str] = []
    opened = []
    try:
        for _ in range(dealers):
            dealer = ctx.socket(zmq.DEALER)
            opened.append(dealer)
            if use_curve:
                curve.make_client(dealer, z85.decode(client_public),
                                  z85.decode(client_secret), z85.decode(server_public))
            dealer.connect(f"tcp://127.0.0.1:{port}")
            await dealer.send(b"hello")
            while await router.poll(1000):
                frames = await router.recv_multipart(copy=False)
                users.append(str(frames[-1].get("User-Id") or ""))
    finally:
        for sock in (*opened, router):
            sock.close(0)
        keeper.stop()
        ctx.term()
    assert all(a == "127.0.0.1" for a in asked)
    if use_curve:  # the key the client used, as ZAP saw it
        assert all(curve.user_key(u) == z85.decode(client_public) for u in users)
    return asked, users


def test_a_refused_connection_delivers_nothing_and_an_admitted_one_does() -> None:
    asked, users = asyncio.run(_exchange(lambda req: "banned address", use_curve=False))
    assert asked and users == []
    asked, users = asyncio.run(_exchange(lambda req: None, use_curve=False))
    assert len(asked) == 1 and users == [""]


def test_a_curve_link_carries_the_key_zap_admitted() -> None:
    asked, users = asyncio.run(_exchange(
        lambda req: None if req.mechanism == b"CURVE" and len(req.curve_key) == 32
        else "plain", use_curve=True))
    assert len(asked) == 1 and len(users) == 1
    asked, users = asyncio.run(_exchange(lambda req: "not on the allow-list", use_curve=True))
    assert asked and users == []


def test_a_failing_decision_refuses_and_the_handler_goes_on() -> None:
    calls: list[int] = []

    def broken(req: zap.ZapRequest) -> str | None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a bug")
        return None

    asked, users = asyncio.run(_exchange(broken, use_curve=False, dealers=2))
    # the first connection is refused; the handler lives on and admits the second
    assert len(asked) == 2 and users == [""]


# --- the node's door, over tcp on 127.0.0.1 (ZeroMQ runs no ZAP on inproc) -----------------


def _pair() -> tuple[bytes, bytes]:
    public, secret = zmq.curve_keypair()
    return z85.decode(public), z85.decode(secret)


HANDSHAKE_FAILED = (zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)


async def _refused(peer: WirePeer) -> None:
    """Say hello, and wait until ZeroMQ reports our connection's handshake failed (the
    node's ZAP handler said no, or the mechanisms differ): nothing reached the node."""
    assert peer.monitor is not None, "connect(..., monitor=HANDSHAKE_FAILED)"
    await peer.hello()
    event = parse_monitor_message(await asyncio.wait_for(peer.monitor.recv_multipart(), 10))
    assert event["event"] & HANDSHAKE_FAILED


@pytest.mark.anyio
async def test_a_private_curve_node_admits_only_listed_keys(tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture,
                                                            ) -> None:
    caplog.set_level(logging.INFO, logger="ccoin.p2p")
    server, friend, stranger = _pair(), _pair(), _pair()
    async with LocalNet(tmp_path) as net:
        node = await net.node("a", listen="tcp://127.0.0.1:0", curve_keys=server,
                              allow_list=frozenset({friend[0]}))
        ok = net.peer(curve=(server[0], *friend)).connect(node.me.listen)
        theirs = await ok.handshake()
        assert theirs.curve_key == server[0]
        assert node.peers.by_id[ok.node_id].link.curve_key == friend[0]  # as ZAP saw it
        await _refused(net.peer(curve=(server[0], *stranger)).connect(
            node.me.listen, monitor=HANDSHAKE_FAILED))
        assert "not on the allow-list" in caplog.text
        await _refused(net.peer().connect(node.me.listen, monitor=HANDSHAKE_FAILED))  # plain
        assert node.transport.gatekeeper is not None
        assert node.transport.gatekeeper.refused >= 1
        assert [p.node_id for p in node.peers.all()] == [ok.node_id]  # nothing else got in


@pytest.mark.anyio
async def test_a_hello_naming_another_curve_key_bans_the_key(tmp_path: Path) -> None:
    server, client = _pair(), _pair()
    async with LocalNet(tmp_path) as net:
        node = await net.node("a", listen="tcp://127.0.0.1:0", curve_keys=server)
        liar = net.peer(curve=(server[0], *client)).connect(node.me.listen)
        await liar.hello(curve_key=_pair()[0])  # not the key of its link
        bye = await liar.expect(wire.Bye)
        assert bye.code == ByeCode.BANNED
        assert node.discipline.bans.banned(("curve", client[0]))
        # a new connection with that key does not get past ZeroMQ's handshake
        await _refused(net.peer(curve=(server[0], *client)).connect(
            node.me.listen, monitor=HANDSHAKE_FAILED))
