"""Subscribing to a node's event bus (the state service's PUB socket) from a test, without
the PUB/SUB "slow joiner" race.

A SUB socket's subscription reaches the publisher only once the connection is up; events
published before that are lost to it. `subscribe` therefore waits, on a socket monitor,
until the ZMTP handshake with the publisher has completed: the subscription is the first
thing the SUB sends on that connection, ahead of anything the test sends after this
returns (the test's own requests then go to the same service, which publishes only after
handling them)."""

from __future__ import annotations

import time
from collections.abc import Sequence

import zmq
from zmq.utils.monitor import recv_monitor_message


def subscribe(endpoint: str, topics: Sequence[bytes] = (b"",), *, timeout: float = 10.0,
              ctx: zmq.Context[zmq.Socket[bytes]] | None = None) -> zmq.Socket[bytes]:
    """A SUB socket on `endpoint`, subscribed to `topics`, connected when this returns."""
    ctx = ctx or zmq.Context.instance()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    for topic in topics:
        sock.setsockopt(zmq.SUBSCRIBE, topic)
    monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
    connected = False
    try:
        sock.connect(endpoint)
        deadline = time.monotonic() + timeout
        while not connected and (left := deadline - time.monotonic()) > 0:
            if not monitor.poll(int(left * 1000) + 1):
                break
            connected = recv_monitor_message(monitor)["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED
    finally:
        sock.disable_monitor()
        monitor.close(0)
    if not connected:
        sock.close(0)
        raise TimeoutError(f"no connection to the publisher at {endpoint} in {timeout:g} s")
    return sock
