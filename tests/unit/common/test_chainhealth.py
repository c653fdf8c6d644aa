"""Chain health (common/chainhealth.py): overdue, who may seal next, live and offline
authorities, turns missed by time as well as by blocks, and the sentence; properties over
random Clique histories, and the sentences an operator reads in each situation."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common import chainhealth as ch
from common.genesis import Genesis
from common.status import AuthorityState, ChainPace
from tests.framework.rules import GENESIS_TIME, address, poa_genesis

INTERVAL = 1_000
GENESES = {n: poa_genesis(n, interval_ms=INTERVAL) for n in range(1, 7)}
POW = poa_genesis(0, interval_ms=INTERVAL)
PROPERTY = settings(max_examples=150, deadline=None)


@dataclass(frozen=True)
class Header:
    height: int
    timestamp: int
    coinbase: bytes


def genesis_header() -> Header:
    return Header(0, GENESIS_TIME, bytes(20))


def chain_of(g: Genesis, sealers: list[int], gaps: list[int] | None = None) -> list[Header]:
    """Headers 0..len(sealers): block h sealed by miners[sealers[h-1]], `gaps[h-1]` ms after
    its parent (one interval when not given)."""
    out = [genesis_header()]
    for i, who in enumerate(sealers):
        gap = gaps[i] if gaps else INTERVAL
        out.append(Header(i + 1, out[-1].timestamp + gap, g.miners[who]))
    return out


def by_address(health: ch.ChainHealth) -> dict[bytes, ch.AuthorityHealth]:
    return {a.address: a for a in health.authorities}


def in_turn_history(g: Genesis, length: int) -> list[int]:
    return [h % len(g.miners) for h in range(1, length + 1)]


# --- random Clique histories -----------------------------------------------------------------


@st.composite
def histories(draw: st.DrawFn) -> tuple[Genesis, list[Header], int, int]:
    """A valid PoA history (every block's sealer obeys the recency rule), a window, and a
    moment after the head."""
    n = draw(st.integers(1, 6))
    g = GENESES[n]
    rw = n // 2
    headers = [genesis_header()]
    for height in range(1, draw(st.integers(0, 25)) + 1):
        recent = [h.coinbase for h in headers[1:]][-rw:] if rw else []
        allowed = [a for a in g.miners if a not in recent]
        turn = g.miners[height % n]
        sealer = turn if turn in allowed and draw(st.booleans()) else draw(
            st.sampled_from(allowed))
        gap = draw(st.integers(1, 3 * INTERVAL))
        headers.append(Header(height, headers[-1].timestamp + gap, sealer))
    window = draw(st.integers(1, 30))
    later = draw(st.integers(0, 12 * INTERVAL))
    return g, headers, window, headers[-1].timestamp + later


def slots_by_brute_force(g: Genesis, head: Header, now: int, recent: set[bytes]
                         ) -> dict[bytes, int]:
    """The missed slots since the head, one slot at a time (the rules compute them
    arithmetically)."""
    out = dict.fromkeys(g.miners, 0)
    k = 1
    while now > head.timestamp + INTERVAL + ch.grace_ms(g) + (k - 1) * INTERVAL:
        owner = g.miners[(head.height + k) % len(g.miners)]
        if owner not in recent:
            out[owner] += 1
        k += 1
    return out


@PROPERTY
@given(histories())
def test_turns_recency_and_missed_slots_against_random_histories(
        case: tuple[Genesis, list[Header], int, int]) -> None:
    g, headers, window, now = case
    n, rw = len(g.miners), len(g.miners) // 2
    health = ch.assess(g, headers, window=window, now_ms=now, ready=0, signers=g.miners)
    head = headers[-1]
    sealed = [h for h in headers if h.height >= 1]
    recent = {h.coinbase for h in sealed[-rw:]} if rw else set()
    assert health.next_height == head.height + 1
    assert health.in_turn == g.miners[(head.height + 1) % n]
    assert set(health.may_seal) == set(g.miners) - recent
    assert len(health.may_seal) >= n - rw  # someone may always seal
    assert health.needed == n // 2 + 1
    by_slot = slots_by_brute_force(g, head, now, recent)
    looked_at = sealed[-window:]
    for a in health.authorities:
        assert a.missed_since_head == by_slot[a.address]
        mine = [h for h in looked_at if h.coinbase == a.address]
        assert a.sealed == len(mine)
        assert a.last_height == (mine[-1].height if mine else -1)
        # a turn is missed only by an authority the recency rule let seal
        turns = [h for h in looked_at if g.miners[h.height % n] == a.address
                 and h.coinbase != a.address
                 and a.address not in [p.coinbase for p in sealed if
                                       h.height - rw <= p.height < h.height]]
        assert a.missed == len(turns) + a.missed_since_head
        missed_after = any(t.height > a.last_height for t in turns) or a.missed_since_head
        expected = (AuthorityState.OFFLINE if missed_after else
                    AuthorityState.LIVE if mine else AuthorityState.UNKNOWN)
        assert a.state == expected
    overdue = now > head.timestamp + INTERVAL + ch.grace_ms(g)
    assert health.overdue == overdue
    assert health.overdue_ms == (now - head.timestamp - INTERVAL if overdue else 0)
    if health.pace == ChainPace.WAITING:
        assert all(a.state == AuthorityState.OFFLINE for a in health.authorities if a.may_seal)
    assert health.summary.split(":")[0] == {
        ChainPace.SEALING: "sealing normally", ChainPace.LATE: "late",
        ChainPace.WAITING: "waiting"}[health.pace]


@PROPERTY
@given(histories(), st.integers(1, 20 * INTERVAL))
def test_time_only_makes_things_worse(case: tuple[Genesis, list[Header], int, int],
                                      more: int) -> None:
    """With no new block, a later moment never un-misses a turn or un-overdues the chain."""
    g, headers, window, now = case
    before = ch.assess(g, headers, window=window, now_ms=now, ready=0, signers=g.miners)
    after = ch.assess(g, headers, window=window, now_ms=now + more, ready=0, signers=g.miners)
    assert after.overdue >= before.overdue and after.overdue_ms >= before.overdue_ms
    old = by_address(before)
    for a in after.authorities:
        assert a.missed_since_head >= old[a.address].missed_since_head
        assert a.missed >= old[a.address].missed
        if old[a.address].state == AuthorityState.OFFLINE:
            assert a.state == AuthorityState.OFFLINE


@given(st.integers(1, 1000))
def test_needed_and_tolerated_add_up(n: int) -> None:
    assert ch.needed_online(n) + ch.fault_tolerance(n) == n
    assert ch.fault_tolerance(n) == (n - 1) // 2


# --- what the operator reads -----------------------------------------------------------------


def test_one_of_two_authorities_stopped_is_named_within_two_intervals() -> None:
    g = GENESES[2]
    headers = chain_of(g, in_turn_history(g, 6))  # block 6 by miners[0]: miners[1]'s turn
    head = headers[-1]
    on_time = ch.assess(g, headers, window=100, now_ms=head.timestamp + INTERVAL, ready=0,
                        signers=g.miners)
    assert on_time.pace == ChainPace.SEALING and not on_time.overdue
    assert on_time.summary == f"sealing normally: block 7 is {ch.short(g.miners[1])}'s turn"
    stalled = ch.assess(g, headers, window=100, now_ms=head.timestamp + 2 * INTERVAL - 1,
                        ready=0, signers=g.miners)
    assert stalled.pace == ChainPace.WAITING and stalled.overdue
    assert stalled.summary == (f"waiting: authority {ch.short(g.miners[1])} is offline; with 2 "
                               f"authorities both must be online (no block for 2.0 intervals)")
    states = by_address(stalled)
    assert states[g.miners[1]].state == AuthorityState.OFFLINE
    assert states[g.miners[0]].state == AuthorityState.LIVE  # held back by the recency rule
    assert not states[g.miners[0]].may_seal and states[g.miners[0]].missed_since_head == 0


def test_missed_turns_are_counted_from_time() -> None:
    """The issue's "missed turns 0 for both" while the chain stood still: each slot that
    passes counts for the authority whose slot it is, if it may seal."""
    g = GENESES[2]
    headers = chain_of(g, in_turn_history(g, 4))
    head = headers[-1]
    ten_intervals = ch.assess(g, headers, window=100, now_ms=head.timestamp + 10 * INTERVAL,
                              ready=0, signers=g.miners)
    states = by_address(ten_intervals)
    # slots 1, 3, 5, 7, 9 are miners[1]'s; 2, 4, 6, 8 miners[0]'s, who may not seal
    assert states[g.miners[1]].missed_since_head == 5 == states[g.miners[1]].missed
    assert states[g.miners[0]].missed == 0


def test_three_authorities_one_offline_is_late_not_waiting() -> None:
    g = GENESES[3]
    headers = chain_of(g, in_turn_history(g, 5))  # block 6 is miners[0]'s turn
    head = headers[-1]
    late = ch.assess(g, headers, window=100, now_ms=head.timestamp + 1600, ready=0,
                     signers=g.miners)
    assert late.pace == ChainPace.LATE and late.overdue_ms == 600
    # miners[2] sealed the head; miners[1] may still seal out of turn
    assert late.summary == (f"late: block 6 is 0.6 s overdue; {ch.short(g.miners[0])} (in turn)"
                            f" is offline; {ch.short(g.miners[1])} may seal it out of turn")
    # an out-of-turn block arrives: miners[0]'s missed turn stays in the window
    headers.append(Header(6, head.timestamp + 1800, g.miners[1]))
    moved = ch.assess(g, headers, window=100, now_ms=head.timestamp + 1900, ready=0,
                      signers=g.miners)
    states = by_address(moved)
    assert moved.pace == ChainPace.SEALING
    assert (states[g.miners[0]].missed, states[g.miners[0]].state) == (1, AuthorityState.OFFLINE)
    assert states[g.miners[1]].state == AuthorityState.LIVE


def test_in_turn_authority_held_back_by_the_recency_rule() -> None:
    g = GENESES[3]
    # block 3 (miners[0]'s turn) sealed out of turn by miners[1]; block 4 is miners[1]'s turn
    headers = chain_of(g, [1, 2, 1])
    health = ch.assess(g, headers, window=100, now_ms=headers[-1].timestamp + 10, ready=0,
                       signers=g.miners)
    assert health.in_turn == g.miners[1] and g.miners[1] not in health.may_seal
    assert health.summary == (
        f"sealing normally: block 4 goes to {ch.short(g.miners[0])} and {ch.short(g.miners[2])}"
        f" out of turn ({ch.short(g.miners[1])}, in turn, sealed a recent block)")


def test_waiting_names_every_offline_authority_and_how_many_are_needed() -> None:
    g = GENESES[5]
    # miners[3] and miners[4] (blocks 3 and 4) seal; 0, 1 and 2 are gone
    headers = chain_of(g, [1, 2, 3, 4])
    health = ch.assess(g, headers, window=100, now_ms=headers[-1].timestamp + 6 * INTERVAL,
                       ready=0, signers=g.miners)
    assert health.pace == ChainPace.WAITING
    offline = [ch.short(g.miners[i]) for i in (0, 1, 2)]
    assert health.summary.startswith(
        f"waiting: authorities {offline[0]}, {offline[1]} and {offline[2]} are offline; with "
        f"5 authorities at least 3 must be online")


def test_a_single_authority() -> None:
    g = GENESES[1]
    headers = chain_of(g, [0, 0])
    health = ch.assess(g, headers, window=100, now_ms=headers[-1].timestamp + 5 * INTERVAL,
                       ready=0, signers=g.miners)
    assert health.pace == ChainPace.WAITING
    assert health.summary.startswith(f"waiting: authority {ch.short(g.miners[0])} is offline; "
                                     f"with 1 authority it must be online")


def test_no_block_is_due_without_transactions_when_empty_blocks_are_not_allowed() -> None:
    g = replace(GENESES[2], allow_empty=False, min_bound=5)
    headers = chain_of(g, in_turn_history(g, 3))
    head = headers[-1]
    idle = ch.assess(g, headers, window=100, now_ms=head.timestamp + 60 * INTERVAL, ready=0,
                     signers=g.miners)
    assert idle.pace == ChainPace.IDLE and idle.due_ms == 0 and not idle.overdue
    assert all(a.missed_since_head == 0 for a in idle.authorities)
    assert idle.summary.startswith("idle: no transactions to seal")
    # fewer than min_bound transactions wait one more interval before they are sealed
    few = ch.assess(g, headers, window=100, now_ms=head.timestamp + 2 * INTERVAL, ready=2,
                    signers=g.miners)
    assert few.due_ms == head.timestamp + 2 * INTERVAL and not few.overdue
    enough = ch.assess(g, headers, window=100, now_ms=head.timestamp + 2 * INTERVAL, ready=5,
                       signers=g.miners)
    assert enough.due_ms == head.timestamp + INTERVAL and enough.overdue


def test_proof_of_work_has_no_authorities_and_a_wider_grace() -> None:
    headers = [genesis_header(), Header(1, GENESIS_TIME + INTERVAL, b"\x11" * 20)]
    head = headers[-1]
    fine = ch.assess(POW, headers, window=10, now_ms=head.timestamp + 2 * INTERVAL, ready=0,
                     signers=POW.miners)
    assert fine.pace == ChainPace.SEALING and fine.authorities == () and fine.in_turn == b""
    assert fine.summary == "mining normally: any miner may seal block 2"
    late = ch.assess(POW, headers, window=10, now_ms=head.timestamp + 4 * INTERVAL, ready=0,
                     signers=POW.miners)
    assert late.pace == ChainPace.LATE and late.needed == 0
    assert late.summary.startswith("late: block 2 is 3.0 s overdue (no block for 4.0 intervals)")


def test_headers_must_be_consecutive() -> None:
    g = GENESES[2]
    with pytest.raises(ValueError):
        ch.assess(g, [], window=1, now_ms=0, ready=0, signers=g.miners)
    with pytest.raises(ValueError):
        ch.assess(g, [genesis_header(), Header(2, GENESIS_TIME + 1, g.miners[0])], window=1,
                  now_ms=0, ready=0, signers=g.miners)


@pytest.mark.parametrize("n, needle", [
    (0, None),
    (1, "1 authority: the chain stops while it is offline"),
    (2, "warning: 2 authorities tolerate no failure"),
    (3, "3 authorities: the chain moves while at least 2 are online (it tolerates 1 offline)"),
    (4, "4 authorities: the chain moves while at least 3 are online (it tolerates 1 offline)"),
])
def test_the_note_about_how_many_authorities_may_fail(n: int, needle: str | None) -> None:
    note = ch.authorities_note(n)
    assert note == needle if needle is None else note is not None and note.startswith(needle)
    assert note is None or "\n" not in note


def test_durations_read_naturally() -> None:
    assert [ch.duration(ms) for ms in (400, 59_940, 61_000, 3_725_000, 3 * 86_400_000)] == [
        "0.4 s", "59.9 s", "1 min 1 s", "1 h 2 min", "3 days"]


def test_a_chain_still_at_its_genesis() -> None:
    """The genesis timestamp is the file's constant (0 by default), not a sealing time."""
    g = GENESES[2]
    health = ch.assess(g, [genesis_header()], window=100, now_ms=GENESIS_TIME + 10 * INTERVAL,
                       ready=0, signers=g.miners)
    assert health.pace == ChainPace.WAITING and health.next_height == 1
    assert health.summary.endswith("both must be online (no block since the genesis)")


# --- a set changed by vote ----------------------------------------------------------------------


def test_an_authority_voted_in_missed_no_turn_before_it_joined() -> None:
    """Three authorities seal 6 blocks in turn; a fourth, voted in at block 6, is counted
    with the new set at once (in turn for block 7) but missed none of the turns the new
    order gives it before it joined; removal warnings name what the chain would need."""
    g = GENESES[3]
    a, b, c = g.miners
    d = address(999)
    headers = chain_of(g, in_turn_history(g, 6))
    now = headers[-1].timestamp + INTERVAL // 2
    health = ch.assess(g, headers, window=10, now_ms=now, ready=0, signers=(a, b, c, d),
                       joined={d: 6})
    rows = by_address(health)
    assert rows[d].missed == 0 and rows[d].state == AuthorityState.UNKNOWN
    assert health.in_turn == d and health.needed == 3  # block 7 is (a, b, c, d)[7 % 4]
    counted_before = ch.assess(g, headers, window=10, now_ms=now, ready=0,
                               signers=(a, b, c, d))
    assert by_address(counted_before)[d].missed > 0  # what `joined` leaves out
    assert ch.removal_note(health.authorities, a) is None  # b and c live, 2 of 3 needed
    assert ch.removal_note(health.authorities, address(998)) is None  # no authority
    # only a and b sealed: c is offline, d unknown; without a, b alone is live of 3
    two = ch.assess(g, chain_of(g, [0, 1, 0, 1, 0, 1]), window=10, now_ms=now, ready=0,
                    signers=(a, b, c, d), joined={d: 6})
    assert ch.removal_note(two.authorities, a) == (
        f"removing {ch.short(a)} leaves 3 authorities of which 1 is live; 2 must be online, "
        "so the chain would wait from the block that passes the vote")
