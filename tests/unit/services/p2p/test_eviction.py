"""Eviction (eviction.py): which inbound peer gives up its slot, as a pure function. The
properties hold for any set of candidates; the examples pin each protection and the choice
among the rest."""

from __future__ import annotations

import random
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from services.p2p.eviction import Candidate, netgroup, protect, select_victim

SALT = b"\x5a" * 32

candidates = st.lists(st.builds(
    Candidate,
    key=st.binary(min_size=32, max_size=32),
    outbound=st.booleans(),
    connected=st.floats(0, 1e6, allow_nan=False),
    latency_ms=st.integers(-1, 5000),
    last_block=st.sampled_from([0.0, 10.0, 500.0]) | st.floats(0, 1e6, allow_nan=False),
    last_tx=st.sampled_from([0.0, 20.0]) | st.floats(0, 1e6, allow_nan=False),
    score=st.integers(-99, 0),
    netgroup=st.sampled_from(["", "10.0.0.0/24", "10.0.1.0/24", "2001:db8::/64"]),
), max_size=40, unique_by=lambda c: c.key)


@given(candidates, st.binary(min_size=0, max_size=32))
def test_never_a_protected_peer_never_an_outbound_one(pool: list[Candidate],
                                                      salt: bytes) -> None:
    victim = select_victim(pool, salt)
    kept, evictable = protect(pool, salt)
    assert {c.key for c in kept}.isdisjoint(c.key for c in evictable)
    assert all(not c.outbound for c in kept + evictable)
    if victim is None:
        assert not evictable
    else:
        assert victim in {c.key for c in evictable}
        assert victim not in {c.key for c in kept}
        assert not next(c for c in pool if c.key == victim).outbound


@given(candidates, st.randoms(use_true_random=False))
def test_the_same_input_in_any_order_names_the_same_victim(pool: list[Candidate],
                                                           rnd: random.Random) -> None:
    shuffled = list(pool)
    rnd.shuffle(shuffled)
    assert select_victim(shuffled, SALT) == select_victim(pool, SALT)


def peer(n: int, *, outbound: bool = False, connected: float | None = None,
         latency_ms: int = -1, last_block: float = 0.0, last_tx: float = 0.0, score: int = 0,
         group: str = "10.0.0.0/24") -> Candidate:
    return Candidate(bytes([n]) * 32, outbound, float(n) if connected is None else connected,
                     latency_ms, last_block, last_tx, score, group)


def test_a_full_house_of_alike_peers_loses_its_youngest_unprotected_one() -> None:
    pool = [peer(n) for n in range(1, 17)]  # 16 alike: 2 by netgroup, then the older half
    kept, evictable = protect(pool, SALT)
    assert len(kept) == 2 + 7 and len(evictable) == 7
    assert select_victim(pool, SALT) == max(c.key for c in evictable)  # the youngest


def test_round_trip_usefulness_and_age_protect() -> None:
    fast, blocks, txs = peer(20, latency_ms=3), peer(21, last_block=99.0), peer(22, last_tx=99.0)
    crowd = [peer(n) for n in range(1, 6)]
    kept, _ = protect([fast, blocks, txs, *crowd], SALT)
    assert {fast, blocks, txs} <= set(kept)
    # the youngest (21, 22, 20) are protected by what they did, not by their age
    assert select_victim([fast, blocks, txs, *crowd], SALT) not in {fast.key, blocks.key,
                                                                    txs.key}


def test_a_peer_that_misbehaved_goes_first() -> None:
    pool = [peer(n) for n in range(1, 17)]
    kept, evictable = protect(pool, SALT)
    oldest_evictable = min(evictable, key=lambda c: c.connected)
    bad = replace(oldest_evictable, score=-30)
    pool = [bad if c is oldest_evictable else c for c in pool]
    assert select_victim(pool, SALT) == bad.key


def test_the_most_represented_netgroup_gives_up_a_slot() -> None:
    loners = [peer(n, group=f"198.51.{n}.0/24") for n in (*range(1, 6), 16)]
    crowd = [peer(n, group="203.0.113.0/24") for n in range(6, 16)]  # came together
    victim = select_victim([*crowd, *loners], SALT)
    _, evictable = protect([*crowd, *loners], SALT)
    assert bytes([16]) * 32 in {c.key for c in evictable}  # the youngest of all...
    assert victim in {c.key for c in crowd}  # ...stays: the crowd gives up its youngest
    assert victim == max((c for c in evictable if c.netgroup == "203.0.113.0/24"),
                         key=lambda c: c.connected).key


def test_outbound_links_and_a_fully_protected_house_evict_nobody() -> None:
    assert select_victim([peer(n, outbound=True) for n in range(1, 30)], SALT) is None
    assert select_victim([peer(1)], SALT) is None  # one peer: protected by its netgroup
    assert select_victim([], SALT) is None


def test_netgroups_are_the_24_and_the_64() -> None:
    assert netgroup("203.0.113.77") == "203.0.113.0/24"
    assert netgroup("::ffff:203.0.113.77") == "203.0.113.0/24"  # IPv4-mapped: as IPv4
    assert netgroup("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert netgroup("127.0.0.3") == "127.0.0.0/24"
    assert netgroup("") == "" and netgroup("host.example") == "host.example"
