"""Authorities that change by vote (Clique, EIP-225): the header's `vote` field, the tally,
and the authority set at any block as a pure fold over the chain's headers.

**The field.** Every header carries `vote` (bytes). In PoW it is always empty. In PoA:

- on a **checkpoint** block (height a positive multiple of the genesis `epoch`, default
  30,000) it is the whole authority set, each address's 20 bytes in the set's order, and
  it must equal the set at the parent; the checkpoint clears every open vote;
- on any other block it is empty (no vote) or 21 bytes: the 20-byte address voted on and
  one byte, 1 to authorize it, 0 to deauthorize it. The voter is the block's sealer.

**The tally.** Each authority has at most one vote per proposal (address and direction);
a vote it already cast and that is still open is a duplicate, and a block carrying one is
invalid, as is a vote for what is already true (authorize an authority, deauthorize a
non-authority), a vote from a non-authority, one that would leave no authority or more
than `MAX_AUTHORITIES`, and one over the voter's `MAX_OPEN_VOTES` open votes (which keeps a
snapshot small). A proposal passes, at the block carrying the vote that makes it, when
more than half of the current authorities voted the same way on it: the set changes at
that block (an added address goes to the end of the order, a removed one leaves it), every
vote about that address is discarded, and a removed authority's own votes are discarded.
As in Clique a proposal is tallied only when a vote is cast, so one left above half by a
removal passes with the next vote for it.

**What follows the set.** The block that passes a vote was sealed under the set at its
parent; from the next block on the in-turn order (`signers[h % n]`), the recency window
(floor(n/2)) and the weights follow the new set (`common.consensus`).

**The snapshot.** `Snapshot` is the set, the open votes and the latest `MAX_CHANGES`
changes (for operators; not consensus). `apply_header(genesis, parent_snapshot, header)`
is the whole rule: the snapshot after a header from the one before it, so the snapshot at
any block is a fold from the genesis (`genesis_snapshot`) or, with the same signers and
votes, from its last checkpoint (`from_checkpoint`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from common import errors
from common.crypto import ADDRESS_LEN
from common.encoding import pack, unpack

DEFAULT_EPOCH = 30_000
MAX_AUTHORITIES = 128
MAX_OPEN_VOTES = 8  # per authority
MAX_CHANGES = 16
VOTE_LEN = ADDRESS_LEN + 1
AUTHORIZE, DEAUTHORIZE = 1, 0
MAX_VOTE_FIELD = ADDRESS_LEN * MAX_AUTHORITIES  # a checkpoint's list, at its longest


class Voting(Protocol):
    """What the tally reads of a header (a `common.types.BlockHeader` is one)."""

    @property
    def height(self) -> int: ...

    @property
    def coinbase(self) -> bytes: ...

    @property
    def vote(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Vote:
    """An open vote: `voter` would have `subject` authorized (or deauthorized); cast in the
    block at `height`."""

    voter: bytes
    subject: bytes
    authorize: bool
    height: int


@dataclass(frozen=True, slots=True)
class Change:
    """The set changed at `height`: `subject` was added (`authorize`) or removed."""

    height: int
    subject: bytes
    authorize: bool


@dataclass(frozen=True, slots=True)
class Proposal:
    """An open proposal and who voted for it, in the order they voted."""

    subject: bytes
    authorize: bool
    voters: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The authorities after a block, in their in-turn order, with the open votes (in the
    order cast) and the latest changes (oldest first)."""

    signers: tuple[bytes, ...]
    votes: tuple[Vote, ...] = ()
    changes: tuple[Change, ...] = ()

    def proposals(self) -> list[Proposal]:
        """The open votes grouped by proposal, in the order each was first voted for."""
        grouped: dict[tuple[bytes, bool], list[bytes]] = {}
        for vote in self.votes:
            grouped.setdefault((vote.subject, vote.authorize), []).append(vote.voter)
        return [Proposal(s, a, tuple(v)) for (s, a), v in grouped.items()]

    def has_voted(self, voter: bytes, subject: bytes, authorize: bool) -> bool:
        return any(v.voter == voter and v.subject == subject and v.authorize == authorize
                   for v in self.votes)

    def needed(self) -> int:
        """Votes a proposal needs to pass: more than half of the current authorities."""
        return len(self.signers) // 2 + 1

    def consensus_part(self) -> tuple[tuple[bytes, ...], tuple[Vote, ...]]:
        """What the rules depend on (the changes are history, kept for operators)."""
        return self.signers, self.votes

    def encode(self) -> bytes:
        return pack([list(self.signers),
                     [[v.voter, v.subject, v.authorize, v.height] for v in self.votes],
                     [[c.height, c.subject, c.authorize] for c in self.changes]])

    @staticmethod
    def decode(raw: bytes) -> Snapshot:
        value: Any = unpack(raw)
        try:
            signers, votes, changes = value
            return Snapshot(tuple(_address(s) for s in signers),
                            tuple(Vote(_address(a), _address(b), _bool(c), _int(d))
                                  for a, b, c, d in votes),
                            tuple(Change(_int(a), _address(b), _bool(c)) for a, b, c in changes))
        except (TypeError, ValueError):
            raise errors.Malformed("an authority snapshot must be [signers, votes, changes]"
                                   ) from None


def _address(value: Any) -> bytes:
    if type(value) is not bytes or len(value) != ADDRESS_LEN:
        raise ValueError("not an address")
    return value


def _bool(value: Any) -> bool:
    if type(value) is not bool:
        raise ValueError("not a bool")
    return value


def _int(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise ValueError("not a height")
    return value


# --- the field --------------------------------------------------------------------------------


def encode_vote(subject: bytes, authorize: bool) -> bytes:
    """The `vote` field of a block whose sealer votes on `subject`."""
    if len(subject) != ADDRESS_LEN:
        raise errors.Malformed("a vote names a 20-byte address")
    return subject + bytes([AUTHORIZE if authorize else DEAUTHORIZE])


def decode_vote(field: bytes) -> tuple[bytes, bool] | None:
    """(subject, authorize) of a non-checkpoint block's `vote` field; None when empty."""
    if not field:
        return None
    if len(field) != VOTE_LEN or field[-1] not in (AUTHORIZE, DEAUTHORIZE):
        raise errors.BadVote(f"a vote is 21 bytes (an address, then 1 to authorize or 0 to "
                             f"deauthorize); this one is {len(field)} bytes")
    return field[:ADDRESS_LEN], field[-1] == AUTHORIZE


def is_checkpoint(epoch: int, height: int) -> bool:
    return height > 0 and height % epoch == 0


def checkpoint_field(snapshot: Snapshot) -> bytes:
    """The `vote` field of a checkpoint block: the whole set, in order."""
    return b"".join(snapshot.signers)


def decode_checkpoint(field: bytes) -> tuple[bytes, ...]:
    if not field or len(field) % ADDRESS_LEN:
        raise errors.BadCheckpoint(f"a checkpoint lists the authorities, 20 bytes each; its "
                                   f"field is {len(field)} bytes")
    return tuple(field[i:i + ADDRESS_LEN] for i in range(0, len(field), ADDRESS_LEN))


# --- the fold ---------------------------------------------------------------------------------


def genesis_snapshot(miners: Iterable[bytes]) -> Snapshot:
    """The set at the genesis block: its `miners` (empty in PoW)."""
    return Snapshot(tuple(miners))


def apply_header(poa: bool, epoch: int, parent: Snapshot, header: Voting) -> Snapshot:
    """The snapshot after `header` (a `BlockHeader`: height, coinbase, vote) given the one at
    its parent; raises the `InvalidBlock` its vote field earns. The seal itself (signed by an
    authority of `parent.signers`, whose address is the coinbase) is `consensus.check_seal`'s."""
    field = header.vote
    if not poa:
        if field:
            raise errors.BadVote("a PoW block carries no vote")
        return parent
    if is_checkpoint(epoch, header.height):
        if field != checkpoint_field(parent):
            listed = len(field) // ADDRESS_LEN if len(field) % ADDRESS_LEN == 0 else "?"
            raise errors.BadCheckpoint(f"checkpoint {header.height} must list the "
                                       f"{len(parent.signers)} authorities in order; it lists "
                                       f"{listed} that differ")
        return replace(parent, votes=())
    vote = decode_vote(field)
    if vote is None:
        return parent
    subject, authorize = vote
    voter = header.coinbase
    signers = parent.signers
    if voter not in signers:
        raise errors.UnauthorizedSigner(f"{voter.hex()} is not an authority and may not vote")
    if (subject in signers) == authorize:
        state = "already an authority" if authorize else "not an authority"
        raise errors.VoteAlreadyTrue(f"{subject.hex()} is {state}")
    if parent.has_voted(voter, subject, authorize):
        raise errors.DuplicateVote(f"{voter.hex()} already voted to "
                                   f"{_verb(authorize)} {subject.hex()}")
    # the latest vote of a voter on a subject counts (an earlier one, either way, goes)
    votes = [v for v in parent.votes if not (v.voter == voter and v.subject == subject)]
    if sum(1 for v in votes if v.voter == voter) >= MAX_OPEN_VOTES:
        raise errors.BadVote(f"{voter.hex()} already has {MAX_OPEN_VOTES} open votes")
    votes.append(Vote(voter, subject, authorize, header.height))
    count = sum(1 for v in votes if v.subject == subject and v.authorize == authorize)
    if 2 * count <= len(signers):
        return replace(parent, votes=tuple(votes))
    if authorize:
        if len(signers) >= MAX_AUTHORITIES:
            raise errors.BadVote(f"the set already has {MAX_AUTHORITIES} authorities")
        new_signers = (*signers, subject)
    else:
        if len(signers) == 1:
            raise errors.BadVote("the vote would remove the last authority")
        new_signers = tuple(s for s in signers if s != subject)
    kept = tuple(v for v in votes
                 if v.subject != subject and (authorize or v.voter != subject))
    changes = (*parent.changes, Change(header.height, subject, authorize))[-MAX_CHANGES:]
    return Snapshot(new_signers, kept, changes)


def from_checkpoint(poa: bool, epoch: int, checkpoint: Voting,
                    headers: Iterable[Voting]) -> Snapshot:
    """The snapshot after `headers` (consecutive, the first one the checkpoint's child),
    computed from the checkpoint header alone: its listed set, no open votes, no history."""
    snap = Snapshot(decode_checkpoint(checkpoint.vote))
    for header in headers:
        snap = apply_header(poa, epoch, snap, header)
    return snap


def _verb(authorize: bool) -> str:
    return "authorize" if authorize else "deauthorize"


def next_vote(epoch: int, snapshot: Snapshot, height: int, voter: bytes,
              wanted: Iterable[tuple[bytes, bool]]) -> bytes:
    """The `vote` field `voter` puts in a block at `height` on top of `snapshot`: the list at
    a checkpoint; otherwise the first of its `wanted` proposals that is valid now (not already
    true, not already cast by it, within its open votes), or none. A miner that keeps its
    proposals in this order rotates through them only as they pass: one vote per block."""
    if is_checkpoint(epoch, height):
        return checkpoint_field(snapshot)
    if voter not in snapshot.signers:
        return b""
    open_votes = sum(1 for v in snapshot.votes if v.voter == voter)
    for subject, authorize in wanted:
        if (subject in snapshot.signers) == authorize:
            continue
        if snapshot.has_voted(voter, subject, authorize):
            continue
        if open_votes >= MAX_OPEN_VOTES:
            break
        if not authorize and len(snapshot.signers) == 1:
            continue
        if authorize and len(snapshot.signers) >= MAX_AUTHORITIES:
            continue
        return encode_vote(subject, authorize)
    return b""


# --- a node's own proposals (what its miner votes for) -----------------------------------------

MAX_PROPOSALS = 64


def encode_proposals(proposals: Iterable[tuple[bytes, bool]]) -> bytes:
    return pack([[subject, authorize] for subject, authorize in proposals])


def decode_proposals(raw: bytes | None) -> list[tuple[bytes, bool]]:
    """A node's stored proposals, in order (none when `raw` is None)."""
    if raw is None:
        return []
    try:
        return [(_address(s), _bool(a)) for s, a in unpack(raw)]
    except (TypeError, ValueError):
        raise errors.Malformed("stored proposals must be [[address, authorize], ...]") from None
