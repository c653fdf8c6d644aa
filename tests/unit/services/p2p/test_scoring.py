"""Discipline's pure parts (scoring.py): what offences cost, rate limits, bans, and which
addresses an IP ban may cover."""

from __future__ import annotations

import time

import pytest

from common import errors, wire
from common.errors import Malformed
from services.p2p import scoring


def test_penalties_rate_limits_and_bans() -> None:
    assert scoring.block_penalty(errors.BadStateRoot()) == scoring.INVALID_BLOCK
    assert scoring.block_penalty(errors.UnknownParent()) == 0
    assert scoring.block_penalty(errors.Unavailable()) == 0  # our state failing is not the peer's
    assert scoring.decode_penalty(wire.UnknownMessage()) < scoring.decode_penalty(Malformed())
    limiter = scoring.RateLimiter()
    now = 1000.0
    allowed = sum(limiter.allow(b"PNG", now) for _ in range(50))
    assert allowed == scoring.RATE_LIMITS[b"PNG"][1]  # the burst, then nothing
    assert limiter.allow(b"PNG", now + 1.0)  # refilled at its rate
    assert sum(limiter.allow(b"Q" + bytes([i, i]), now) for i in range(50)) == \
        scoring.DEFAULT_LIMIT[1]  # unknown headers share one bucket
    bans = scoring.BanList(seconds=10)
    bans.ban([("node", b"x"), ("endpoint", "tcp://h:1")], now=now)
    assert bans.banned(("node", b"x"), now=now + 9) and not bans.banned(("node", b"y"), now=now)
    assert not bans.banned(("node", b"x"), now=now + 10)


@pytest.mark.parametrize(("err", "points"), [
    # what state (rebuilt by error_from_code) or our own checks raise, and what it costs
    (errors.error_from_code("bad_timestamp", "2 s ahead"), scoring.MINOR_BLOCK),
    (errors.error_from_code("unknown_parent", ""), 0),
    (errors.error_from_code("duplicate", ""), 0),
    (errors.error_from_code("unavailable", ""), 0),
    (errors.error_from_code("internal", "a bug"), 0),
    (errors.error_from_code("error", "untyped"), 0),
    (errors.error_from_code("unauthorized_signer", ""), scoring.INVALID_BLOCK),
    (errors.error_from_code("invalid_block_transaction", ""), scoring.INVALID_BLOCK),
    (errors.error_from_code("malformed", ""), scoring.INVALID_BLOCK),
    (errors.WeakProof("local check"), scoring.INVALID_BLOCK),
])
def test_a_block_rejection_costs_by_its_type(err: errors.CcoinError, points: int) -> None:
    assert scoring.block_penalty(err) == points


def test_loopback_and_non_ip_addresses_are_never_ip_banned() -> None:
    for remote in ("127.0.0.1", "127.8.9.10", "127.255.255.254", "::1", "::ffff:127.0.0.1",
                   "::ffff:127.3.2.1", "", "unknown", "tcp://10.0.0.1:9", "10.0.0.1:9"):
        assert scoring.bannable_ip(remote) is None, remote
    assert scoring.bannable_ip("10.231.7.2") == "10.231.7.2"
    assert scoring.bannable_ip("192.0.2.7") == "192.0.2.7"
    assert scoring.bannable_ip("::ffff:192.0.2.7") == "192.0.2.7"  # one key per host
    assert scoring.bannable_ip("2001:db8::1") == "2001:db8::1"
    assert scoring.bannable_ip("2001:DB8:0::1") == "2001:db8::1"  # canonical form
    bans = scoring.BanList(seconds=10)
    now = time.monotonic()
    bans.ban([("ip", "192.0.2.7"), ("node", b"x")], now=now)
    assert bans.banned(("ip", "192.0.2.7"), now=now + 9)
    assert not bans.banned(("ip", "192.0.2.8"), now=now)
    assert bans.count("ip") == 1 and bans.count("node") == 1


def test_the_ip_an_endpoint_dials() -> None:
    assert scoring.endpoint_ip("tcp://10.231.7.2:8200") == "10.231.7.2"
    assert scoring.endpoint_ip("tcp://[2001:db8::1]:8200") == "2001:db8::1"
    for endpoint in ("tcp://127.0.0.1:8200", "tcp://[::1]:8200", "tcp://node1.example:8200",
                     "tcp://localhost:8200", "garbage"):
        assert scoring.endpoint_ip(endpoint) is None, endpoint
