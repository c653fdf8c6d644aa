"""The p2p gatekeeper (ZAP, RFC 27) over real ZeroMQ sockets: refused connections never
deliver a frame, admitted ones do, and a Curve link carries the key ZAP saw."""

from __future__ import annotations

import asyncio

import zmq
import zmq.asyncio
from zmq.utils import z85

from services.p2p import curve, zap


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
    router.setsockopt(zmq.ZAP_DOMAIN, zap.DOMAIN)
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
