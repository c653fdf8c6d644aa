"""CurveZMQ on node-to-node links (when `p2p.curve` is set).

The bound ROUTER is a Curve server with the node's key pair; every outbound DEALER is a
Curve client with the same pair and the server key of the node it dials (from discovery,
PEX, or a `tcp://host:port#<hex key>` address). The node's ZAP handler (runtime/zap.py) decides
which client keys may connect (`refusal`). The hello then binds the link's Curve key to the
peer's node id (its signed hello names the key).
"""

from __future__ import annotations

import logging
from typing import Any

import zmq
import zmq.asyncio
from zmq.utils import z85

log = logging.getLogger("ccoin.p2p.curve")

def refusal(key: bytes, allow: frozenset[bytes] | None, banned: bool) -> str | None:
    """Why a client key may not connect (None: it may): any key on an open network, only
    the allow-list's on a private one, never a banned one."""
    if banned:
        return "banned key"
    if allow is not None and key not in allow:
        return "not on the allow-list"
    return None


def user_id(key: bytes) -> str:
    """What ZAP hands back as the link's "User-Id" (read back by `user_key`)."""
    return z85.encode(key).decode("ascii")


def make_server(sock: zmq.Socket[Any], public: bytes, secret: bytes) -> None:
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
