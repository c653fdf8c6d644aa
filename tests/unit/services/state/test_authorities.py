"""The authority set in state (services/state/chain.py, check.py, reindex.py): stored with each
block in its own batch, so an import, a reorg across a change, a restart, `node check` and
`node reindex` all agree (reindex keeps the node's proposals); a block sealed by an
authority voted out, or carrying an invalid vote, is refused with its code; the node's own
proposals go into its templates and survive a restart."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common import authorities as au
from common import errors
from common.genesis import Genesis
from common.types import Block
from services.state import schema
from services.state.chain import Chain
from services.state.check import check_chain
from services.state.reindex import reindex_chain
from services.state.store import Store
from tests.framework import rules as rh

NOW = 2**62
A, B, C, D = (rh.address(100 + i) for i in range(4))


def genesis() -> Genesis:
    return rh.poa_genesis(3, difficulty=0)


def test_a_reorg_across_a_change_restart_check_and_reindex_agree(tmp_path: Path) -> None:
    g = genesis()
    chain = Chain(Store(tmp_path), g)
    voting, plain = rh.Chain(g), rh.Chain(g)
    for _ in range(2):  # B and C, in turn, vote D in: the set changes at height 2
        chain.import_block(voting.build_and_apply(vote=au.encode_vote(D, True)), NOW)
    sealed_by_d = voting.build_and_apply()  # height 3: signers[3 % 4] = D, in turn
    chain.import_block(sealed_by_d, NOW)
    assert sealed_by_d.header.coinbase == D
    assert chain.authorities(chain.head.header.hash).signers == (A, B, C, D)
    # a heavier branch without the votes (4 in-turn blocks: 8 > 6) takes the set back
    for _ in range(4):
        chain.import_block(plain.build_and_apply(), NOW)
    assert chain.head.header.hash == plain.tip.hash
    assert chain.authorities(chain.head.header.hash) == plain.snapshot
    assert plain.snapshot.signers == (A, B, C)
    # ... and the voting branch, grown heavier (5 in-turn blocks), brings D back
    for _ in range(2):
        chain.import_block(voting.build_and_apply(), NOW)
    assert chain.head.header.hash == voting.tip.hash
    head_snapshot = chain.authorities(chain.head.header.hash)
    assert head_snapshot == voting.snapshot and head_snapshot.signers == (A, B, C, D)
    assert head_snapshot.changes == (au.Change(2, D, True),)
    chain.store.close()

    again = Chain(Store(tmp_path), g)  # a restart reads the same snapshots
    assert again.authorities(again.head.header.hash) == head_snapshot
    again.propose(A, False)
    again.store.close()
    assert check_chain(tmp_path, g).ok
    report = reindex_chain(tmp_path, g)
    assert report.height == 5 and report.side_blocks == 4
    rebuilt = Store(tmp_path)
    assert au.decode_proposals(rebuilt.metadata(schema.PROPOSALS)) == [(A, False)]
    for block in voting.blocks[1:] + plain.blocks[1:]:
        snapshot = voting.snapshots if block in voting.blocks else plain.snapshots
        assert rebuilt.authorities(block.hash) == snapshot[block.height]
    rebuilt.close()


def test_check_finds_a_wrong_snapshot(tmp_path: Path) -> None:
    g = genesis()
    chain = Chain(Store(tmp_path), g)
    ref = rh.Chain(g)
    chain.import_block(ref.build_and_apply(vote=au.encode_vote(D, True)), NOW)
    chain.store.db.put(schema.authorities_key(ref.tip.hash), au.genesis_snapshot([A]).encode())
    chain.store.close()
    report = check_chain(tmp_path, g)
    assert not report.ok
    assert any("authority snapshot differs" in p for p in report.problems)


def test_blocks_refused_for_their_votes_and_a_removed_sealer(tmp_path: Path) -> None:
    g = genesis()
    chain = Chain(Store(tmp_path), g)
    ref = rh.Chain(g)
    chain.import_block(ref.build_and_apply(vote=au.encode_vote(D, True)), NOW)  # B
    cases = [(au.encode_vote(A, True), errors.VoteAlreadyTrue),
             (au.encode_vote(D, False), errors.VoteAlreadyTrue),
             (D + b"\x07", errors.BadVote)]
    for vote, error in cases:
        with pytest.raises(error):
            chain.import_block(ref.build(vote=vote), NOW)
    # C (in turn at 2) votes itself out, then A (in turn at 3): 2 of 3 pass at height 3
    chain.import_block(ref.build_and_apply(vote=au.encode_vote(C, False)), NOW)
    with pytest.raises(errors.DuplicateVote):  # B's second vote for D while it is open
        chain.import_block(ref.build(vote=au.encode_vote(D, True),
                                     sealer=rh.authority_signer(B)), NOW)
    chain.import_block(ref.build_and_apply(vote=au.encode_vote(C, False)), NOW)
    assert chain.authorities(chain.head.header.hash).signers == (A, B)
    late = ref.build(sealer=rh.authority_signer(C))
    with pytest.raises(errors.UnauthorizedSigner):
        chain.import_block(late, NOW)


def test_the_nodes_proposals_go_into_its_templates_and_are_kept(tmp_path: Path) -> None:
    g = genesis()
    chain = Chain(Store(tmp_path), g)
    chain.propose(D, True)
    chain.propose(C, False)
    template = chain.template(B, NOW - 1, b"")
    assert au.decode_vote(template.header.vote) == (D, True)
    chain.store.close()
    chain = Chain(Store(tmp_path), g)
    assert chain.proposals == [(D, True), (C, False)]
    chain.propose(D, None)  # discarded: the next one is voted for
    assert au.decode_vote(chain.template(B, NOW - 1, b"").header.vote) == (C, False)
    assert chain.template(D, NOW - 1, b"").header.vote == b""  # D is no authority: no vote


# --- any votes, any reorgs: stored = folded along the branch = recomputed from a checkpoint ----

POOL = [rh.address(100 + i) for i in range(5)]


def _from_last_checkpoint(chain: Chain, block_hash: bytes, epoch: int) -> au.Snapshot:
    """The snapshot after a stored block, recomputed from its branch's last checkpoint (or
    the genesis) with state's own headers."""
    headers = []
    header = chain.header(block_hash)
    while header is not None and header.height > 0 and not au.is_checkpoint(epoch,
                                                                             header.height):
        headers.append(header)
        header = chain.header(header.parent)
    assert header is not None
    headers.reverse()
    if header.height == 0:
        snap = au.genesis_snapshot(chain.genesis.miners)
        for h in headers:
            snap = au.apply_header(True, epoch, snap, h)
        return snap
    return au.from_checkpoint(True, epoch, header, headers)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(st.tuples(st.integers(0, 4), st.sampled_from([0, 0, 0, 0, 1, 2, 3])),
                    min_size=4, max_size=30))
def test_snapshots_agree_after_any_votes_and_reorgs(tmp_path: Path,
                                                    ops: list[tuple[int, int]]) -> None:
    """Each op extends the reference chain by a block voting to add POOL[subject] (D, E) or
    remove it (A, B, C), a block without a vote when that vote is invalid now; with
    `back` > 0 it first takes that many blocks off it (a fork: state keeps the old
    branch, and the heavier one is its head). Every block state stored has the snapshot the
    fold along its branch gives, which is also the one recomputed from its last checkpoint;
    and the head's is its own branch's."""
    g = rh.poa_genesis(3, difficulty=0, epoch=4)
    with tempfile.TemporaryDirectory(dir=tmp_path) as path:
        chain = Chain(Store(Path(path)), g)
        ref = rh.Chain(g)
        expected: dict[bytes, au.Snapshot] = {}
        for subject, back in ops:
            for _ in range(min(back, len(ref.blocks) - 1)):
                ref.undo()
            vote = au.encode_vote(POOL[subject], subject >= 3)  # add D, E; remove A, B, C
            try:
                block = ref.build(vote=b"" if au.is_checkpoint(4, ref.tip.height + 1)
                                  else vote)
                ref.apply(block)
            except errors.InvalidBlock:
                block = ref.build_and_apply()  # the vote was invalid: a block without one
            chain.import_block(block, NOW)
            expected[block.hash] = ref.snapshot
        for block_hash, snapshot in expected.items():
            assert chain.authorities(block_hash) == snapshot
            assert (_from_last_checkpoint(chain, block_hash, 4).consensus_part()
                    == snapshot.consensus_part())
        head = chain.head.header.hash
        assert chain.authorities(head) == expected.get(head, au.genesis_snapshot(g.miners))
        chain.store.close()


def test_a_template_at_a_checkpoint_lists_the_set_and_imports(tmp_path: Path) -> None:
    g = rh.poa_genesis(3, difficulty=0, epoch=2)
    chain = Chain(Store(tmp_path), g)
    ref = rh.Chain(g)
    chain.import_block(ref.build_and_apply(vote=au.encode_vote(D, True)), NOW)
    chain.propose(D, True)  # C, in turn at the checkpoint, votes nothing there
    template = chain.template(C, ref.tip.timestamp + g.interval_ms, b"")
    assert template.header.vote == A + B + C
    sealed = rh.seal(g, template.header, rh.authority_signer(C))
    chain.import_block(Block(sealed, template.txs), NOW)
    assert chain.authorities(sealed.hash) == au.Snapshot((A, B, C))  # B's vote cleared
