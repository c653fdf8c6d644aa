"""Picking ports: free ones, below the ephemeral range, never the same one twice."""

from __future__ import annotations

import random
import socket

from runtime import ports


def test_a_listening_port_is_not_free_and_the_reason_is_the_os_words() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert not ports.is_free(port)
        assert ports.bind_error("127.0.0.1", port) == "Address already in use"
    assert ports.is_free(port)


def test_the_ephemeral_range_start_is_the_kernels() -> None:
    start = ports.ephemeral_start()
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        assert start == int(f.read().split()[0])


def test_picked_ports_are_free_below_the_ephemeral_range_and_never_repeat() -> None:
    top = ports.ephemeral_start()
    picked = [ports.free_port() for _ in range(300)]
    assert len(set(picked)) == len(picked)
    assert all(ports.LOWEST <= p < top and ports.is_free(p) for p in picked)


def test_a_base_has_every_offset_free_and_steps_around_a_taken_port() -> None:
    offsets = (0, 1, 100, 200)
    base = ports.free_base(offsets)
    assert ports.LOWEST <= base and base + 200 < ports.ephemeral_start()
    assert all(ports.is_free(base + off) for off in offsets)
    # the same draws twice: the first pick's p2p-like port is taken, so the second must differ
    first_draw = random.Random(11).randrange(ports.LOWEST, ports.ephemeral_start() - 201)
    with socket.socket() as s:
        s.bind(("127.0.0.1", first_draw + 100))
        again = ports.free_base(offsets, rng=random.Random(11))
        assert again != first_draw
        assert all(ports.is_free(again + off) for off in offsets)
