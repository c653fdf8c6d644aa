"""The authority votes (common/authorities.py): the field, the tally, the checkpoint, the
invalid votes and their codes, and the fold recomputed from a checkpoint (property test)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common import authorities as au
from common import consensus, errors
from tests.framework import rules
from tests.framework.rules import address

A, B, C, D, E = (address(100 + i) for i in range(5))
EPOCH = 30_000


@dataclass(frozen=True)
class H:
    """What the tally reads of a header."""

    height: int
    coinbase: bytes
    vote: bytes = b""


def vote(height: int, voter: bytes, subject: bytes, authorize: bool) -> H:
    return H(height, voter, au.encode_vote(subject, authorize))


def fold(snap: au.Snapshot, *headers: H, epoch: int = EPOCH) -> au.Snapshot:
    for header in headers:
        snap = au.apply_header(True, epoch, snap, header)
    return snap


def expect(code: str, snap: au.Snapshot, header: H, epoch: int = EPOCH) -> None:
    with pytest.raises(errors.InvalidBlock) as info:
        au.apply_header(True, epoch, snap, header)
    assert info.value.code == code


def test_a_majority_adds_at_the_block_that_passes_it() -> None:
    snap = au.genesis_snapshot([A, B, C])
    one = fold(snap, vote(1, A, D, True))
    assert one.signers == (A, B, C)
    assert one.proposals() == [au.Proposal(D, True, (A,))] and one.needed() == 2
    two = fold(one, vote(2, B, D, True))
    assert two.signers == (A, B, C, D) and two.votes == ()  # D's votes go with the pass
    assert two.changes == (au.Change(2, D, True),)


def test_a_removal_discards_the_removed_authoritys_votes() -> None:
    snap = fold(au.genesis_snapshot([A, B, C, D]), vote(1, A, E, True), vote(2, A, D, False),
                vote(3, D, E, True), vote(4, B, D, False))
    assert [v.voter for v in snap.votes] == [A, A, D, B]
    gone = fold(snap, vote(5, C, D, False))  # 3 of 4
    assert gone.signers == (A, B, C)
    assert [(v.voter, v.subject) for v in gone.votes] == [(A, E)]  # D's vote for E discarded
    assert gone.needed() == 2


def test_invalid_votes_have_their_codes() -> None:
    snap = fold(au.genesis_snapshot([A, B, C]), vote(1, A, D, True))
    expect("vote_already_true", snap, vote(2, B, C, True))
    expect("vote_already_true", snap, vote(2, B, D, False))
    expect("duplicate_vote", snap, vote(2, A, D, True))
    expect("unauthorized_signer", snap, vote(2, E, D, True))
    expect("bad_vote", snap, H(2, B, D + b"\x02"))
    expect("bad_vote", snap, H(2, B, D))  # 20 bytes: no direction
    two_votes = au.encode_vote(D, True) + au.encode_vote(E, True)
    expect("bad_vote", snap, H(2, B, two_votes))  # over the limit: one vote per block
    with pytest.raises(errors.BadVote, match="PoW"):
        au.apply_header(False, EPOCH, au.genesis_snapshot([]), vote(1, A, D, True))
    alone = au.genesis_snapshot([A])
    expect("bad_vote", alone, vote(1, A, A, False))  # the last authority stays
    many = au.genesis_snapshot([A, B, C, D])
    for i in range(au.MAX_OPEN_VOTES):
        many = fold(many, vote(i + 1, A, address(200 + i), True))
    expect("bad_vote", many, vote(99, A, address(300), True))


def test_checkpoints_list_the_set_and_clear_votes() -> None:
    snap = fold(au.genesis_snapshot([A, B, C]), vote(1, A, D, True), epoch=4)
    assert au.is_checkpoint(4, 4) and not au.is_checkpoint(4, 0)
    expect("bad_checkpoint", snap, H(4, B, b""), epoch=4)
    expect("bad_checkpoint", snap, H(4, B, B + A + C), epoch=4)  # order counts
    expect("bad_checkpoint", snap, vote(4, B, D, True), epoch=4)  # no vote at a checkpoint
    after = fold(snap, H(4, B, A + B + C), epoch=4)
    assert after.signers == (A, B, C) and after.votes == ()
    assert au.next_vote(4, snap, 4, B, [(D, True)]) == A + B + C


def test_next_vote_skips_what_is_true_or_cast() -> None:
    snap = fold(au.genesis_snapshot([A, B, C]), vote(1, A, D, True))
    wanted = [(B, True), (D, True), (C, False)]
    assert au.next_vote(EPOCH, snap, 2, A, wanted) == au.encode_vote(C, False)
    assert au.next_vote(EPOCH, snap, 2, B, wanted) == au.encode_vote(D, True)
    assert au.next_vote(EPOCH, snap, 2, E, wanted) == b""  # not an authority: no vote
    assert au.decode_proposals(au.encode_proposals(wanted)) == wanted


def test_snapshot_encoding_round_trips_and_refuses_junk() -> None:
    snap = fold(au.genesis_snapshot([A, B, C]), vote(1, A, D, True), vote(2, B, D, True),
                vote(3, C, E, True))
    assert au.Snapshot.decode(snap.encode()) == snap
    with pytest.raises(errors.Malformed):
        au.Snapshot.decode(b"\x93\x90\x90\x01")


# --- the fold, recomputed from any checkpoint -------------------------------------------------

POOL = [address(100 + i) for i in range(7)]


@settings(max_examples=150, deadline=None)
@given(epoch=st.integers(2, 9), genesis_n=st.integers(1, 4),
       steps=st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6), st.booleans(),
                                st.booleans()), max_size=60))
def test_the_set_from_a_checkpoint_equals_the_incremental_one(
        epoch: int, genesis_n: int, steps: list[tuple[int, int, bool, bool]]) -> None:
    """Any sequence of votes, the invalid ones refused (and changing nothing): the snapshot
    after every block equals the one folded from the last checkpoint, and the set is never
    empty, never repeats an address, and holds no vote for what is already true."""
    snap = au.genesis_snapshot(POOL[:genesis_n])
    headers: list[H] = []
    snapshots = [snap]
    for voter_i, subject_i, authorize, silent in steps:
        height = len(headers) + 1
        voter = snap.signers[voter_i % len(snap.signers)]
        if au.is_checkpoint(epoch, height):
            header = H(height, voter, au.checkpoint_field(snap))
        elif silent:
            header = H(height, voter, b"")
        else:
            header = vote(height, voter, POOL[subject_i], authorize)
        try:
            snap = au.apply_header(True, epoch, snap, header)
        except errors.InvalidBlock as exc:
            assert exc.code in ("vote_already_true", "duplicate_vote", "bad_vote")
            continue
        headers.append(header)
        snapshots.append(snap)
        assert snap.signers and len(set(snap.signers)) == len(snap.signers)
        assert all((v.subject in snap.signers) != v.authorize for v in snap.votes)
        assert all(v.voter in snap.signers for v in snap.votes)
    for i, header in enumerate(headers):
        if au.is_checkpoint(epoch, header.height):
            for j in range(i, len(headers)):
                recomputed = au.from_checkpoint(True, epoch, header, headers[i + 1:j + 1])
                assert recomputed.consensus_part() == snapshots[j + 1].consensus_part()


# --- through the consensus rules: who seals, in turn, and the weights ------------------------


def test_a_voted_in_authority_seals_in_turn_and_a_voted_out_one_is_refused() -> None:
    chain = rules.Chain(rules.poa_genesis(3, difficulty=0))
    g = chain.genesis
    chain.build_and_apply(vote=au.encode_vote(D, True))  # height 1: B in turn
    chain.build_and_apply(vote=au.encode_vote(D, True))  # height 2: C: passes
    assert chain.snapshot.signers == (A, B, C, D)
    assert consensus.recency_window(chain.snapshot.signers) == 2
    # height 3 goes to signers[3 % 4] = D, in turn, weight 2
    block = chain.build_and_apply()
    assert block.header.coinbase == D
    assert consensus.block_weight(g, block.header, (A, B, C, D)) == 2
    for height in (4, 5, 6):  # in turn A, B and C itself vote C out (3 of 4)
        assert chain.build_and_apply(vote=au.encode_vote(C, False)).height == height
    assert chain.snapshot.signers == (A, B, D)
    assert chain.snapshot.changes == (au.Change(2, D, True), au.Change(6, C, False))
    late = chain.build(sealer=rules.authority_signer(C))
    with pytest.raises(errors.UnauthorizedSigner):
        chain.validate(late)
    assert chain.build_and_apply().header.coinbase == B  # height 7: (A, B, D)[7 % 3]
