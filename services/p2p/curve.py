"""CurveZMQ on node-to-node links (when `p2p.curve` is set).

The bound ROUTER is a Curve server with the node's key pair; every outbound DEALER is a
Curve client with the same pair and the server key of the node it dials (from discovery,
PEX, or a `tcp://host:port#<hex key>` address). A ZAP handler (pyzmq's
AsyncioAuthenticator) decides which client keys may connect: any key on an open network,
only the allow-list's keys on a private one, and never a banned key. The hello then binds
the link's Curve key to the peer's node id (its signed hello names the key).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import zmq
import zmq.asyncio
from zmq.auth.asyncio import AsyncioAuthenticator
from zmq.utils import z85

log = logging.getLogger("ccoin.p2p.curve")

ZAP_DOMAIN = b"ccoin-p2p"


class CurveGuard:
    """The ZAP policy: `allow` (None = any key) minus what `is_banned` refuses."""

    def __init__(self, ctx: zmq.asyncio.Context, allow: frozenset[bytes] | None,
                 is_banned: Callable[[bytes], bool]) -> None:
        self.allow = allow
        self.is_banned = is_banned
        self.auth = AsyncioAuthenticator(ctx)
        self.refused = 0

    def start(self) -> None:
        self.auth.start()
        self.auth.configure_curve_callback(ZAP_DOMAIN.decode(), credentials_provider=self)

    def stop(self) -> None:
        self.auth.stop()

    def callback(self, domain: str, z85_key: bytes) -> bool:
        try:
            key = z85.decode(z85_key)
        except (ValueError, KeyError, TypeError):
            return False
        if self.is_banned(key):
            self.refused += 1
            log.info("refused banned curve key %s", key.hex()[:16])
            return False
        if self.allow is not None and key not in self.allow:
            self.refused += 1
            log.info("refused curve key %s: not on the allow-list", key.hex()[:16])
            return False
        return True


def make_server(sock: zmq.Socket[Any], public: bytes, secret: bytes) -> None:
    sock.setsockopt(zmq.ZAP_DOMAIN, ZAP_DOMAIN)
    sock.setsockopt(zmq.CURVE_SERVER, 1)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, z85.encode(public))
    sock.setsockopt(zmq.CURVE_SECRETKEY, z85.encode(secret))


def make_client(sock: zmq.Socket[Any], public: bytes, secret: bytes, server_key: bytes) -> None:
    sock.setsockopt(zmq.CURVE_SERVERKEY, z85.encode(server_key))
    sock.setsockopt(zmq.CURVE_PUBLICKEY, z85.encode(public))
    sock.setsockopt(zmq.CURVE_SECRETKEY, z85.encode(secret))


def user_key(user_id: str | None) -> bytes:
    """The client key ZAP authenticated, from a frame's "User-Id" (z85 by default)."""
    if not user_id:
        return b""
    try:
        return z85.decode(user_id.encode())
    except (ValueError, KeyError, TypeError):
        return b""
