"""Listening ports on a machine shared with other programs: is one free, and which to pick.

A port checked free is only a guess until it is bound. Inside the kernel's ephemeral range
(Linux: 32768-60999) that guess is worst, because every outbound connection on the machine
draws its local port from there; a port picked below that range can only be taken by
another program binding it on purpose.
"""

from __future__ import annotations

import random
import socket
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path

LOWEST = 10_000  # below this are well-known and registered services' ports
_LINUX_DEFAULT_EPHEMERAL = 32768
_handed_out: deque[int] = deque(maxlen=4096)  # recent picks of this process, not yet bound


def bind_error(host: str, port: int) -> str | None:
    """Why `port` on `host` cannot be bound right now (the OS's words), or None if it can."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        # a port whose last connection lingers in TIME_WAIT can still be listened on
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if `port` can be bound on `host` right now."""
    return bind_error(host, port) is None


def ephemeral_start() -> int:
    """The first port the kernel hands out to outbound connections."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return _LINUX_DEFAULT_EPHEMERAL


def free_base(offsets: Sequence[int], host: str = "127.0.0.1", attempts: int = 500,
              rng: random.Random | None = None) -> int:
    """A base port such that `base + off` is free for every offset, all below the ephemeral
    range, and not handed out before by this process (a caller may not have bound it yet)."""
    rng = rng or random.Random(time.time_ns())
    top = max(ephemeral_start(), LOWEST + 2_000) - max(offsets) - 1
    for _ in range(attempts):
        base = rng.randrange(LOWEST, top)
        wanted = [base + off for off in offsets]
        if any(p in _handed_out for p in wanted):
            continue
        if all(is_free(p, host) for p in wanted):
            _handed_out.extend(wanted)
            return base
    raise RuntimeError(f"no free ports for offsets {list(offsets)} below {top}")


def free_port(host: str = "127.0.0.1") -> int:
    """One free port below the ephemeral range."""
    return free_base((0,), host)
