"""What `GET /api/v1/consensus` answers: chain health (common/chainhealth.py, computed by the
state service at the gateway's clock) and the authority votes (common/authorities.py, also
what the proposal routes answer), declared once like every reply (`services.api.spec`).

Whether an authority's node is connected as a peer is not part of it: a p2p hello names the
node's key, not the authority's address, so a peer cannot be tied to an authority.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.chainhealth import AuthorityHealth, fault_tolerance, removal_note
from common.messages import (
    AuthoritiesReply,
    AuthorityChange,
    OpenProposal,
    OwnProposal,
    SignersReply,
    StatusReply,
)
from common.status import AuthorityState, ChainPace
from services.api.kinds import Choice, ListOf, Number
from services.api.replies import BOOL, HEX, INT, MAYBE_HEX, MAYBE_INT, STR
from services.api.spec import Field, Shape

OVERDUE = (ChainPace.LATE, ChainPace.WAITING)

SIGNER_OUT = Shape("SignerOut", [
    Field("address", HEX),
    Field("state", Choice.of(AuthorityState), "live: sealed in the window, no turn missed "
          "since; offline: missed a turn since its last block; unknown: neither in the window"),
    Field("may_seal", BOOL, "the recency rule lets it seal the next block"),
    Field("last_height", MAYBE_INT, "its last sealed block in the window (null: none)",
          src=lambda s: s.last_height if s.last_height >= 0 else None),
    Field("last_sealed_ms", MAYBE_INT, "that block's timestamp",
          src=lambda s: s.last_timestamp if s.last_height >= 0 else None),
    Field("sealed", INT, "blocks it sealed in the window"),
    Field("missed", INT, "turns it was free to take and missed in the window: heights sealed "
                         "by another, and slots since the head that passed with no block"),
    Field("missed_since_head", INT, "of those, the slots since the head (counted from time)"),
])
_SIGNER = {"address": "3f" * 20, "state": "live", "may_seal": True, "last_height": 41,
           "last_sealed_ms": 1767225599000, "sealed": 21, "missed": 0, "missed_since_head": 0}
_SIGNER_96 = {**_SIGNER, "address": "96" * 20, "may_seal": False, "last_height": 42,
              "last_sealed_ms": 1767225600000}
OPEN_PROPOSAL_OUT = Shape("OpenProposalOut", [
    Field("address", HEX),
    Field("authorize", BOOL, "true: to add it; false: to remove it"),
    Field("votes", INT, "authorities that voted so", src=lambda p: len(p.voters)),
    Field("voters", ListOf(HEX), "who, in the order they voted"),
])
CHANGE_OUT = Shape("AuthorityChangeOut", [
    Field("height", INT, "the block that passed the vote: the set changed there"),
    Field("address", HEX),
    Field("authorize", BOOL, "true: added; false: removed"),
])
OWN_PROPOSAL_OUT = Shape("OwnProposalOut", [
    Field("address", HEX),
    Field("authorize", BOOL),
    Field("done", BOOL, "already true at the head: nothing to vote"),
    Field("voted", BOOL, "this node's authority cast the vote, and it is still open"),
])
_VOTES = {"authorities": ["3f" * 20, "96" * 20], "needed": 2, "epoch": 30000,
          "next_checkpoint": 30000,
          "proposals": [{"address": "11" * 20, "authorize": True, "votes": 1,
                         "voters": ["3f" * 20]}],
          "changes": [{"height": 12, "address": "96" * 20, "authorize": True}],
          "own": [{"address": "11" * 20, "authorize": True, "done": False, "voted": True}],
          "warnings": []}
VOTES_OUT = Shape("VotesOut", [
    Field("authorities", ListOf(HEX), "the set at the head, in turn order", src="signers"),
    Field("needed", INT, "votes a proposal needs: more than half of the authorities"),
    Field("epoch", INT, "every this many blocks a checkpoint lists the set and clears the "
                        "open votes"),
    Field("next_checkpoint", INT, "the height of the next checkpoint (0 in PoW)"),
    Field("proposals", ListOf(OPEN_PROPOSAL_OUT), "open proposals and who voted for them"),
    Field("changes", ListOf(CHANGE_OUT), "the latest changes of the set, oldest first"),
    Field("own", ListOf(OWN_PROPOSAL_OUT), "what this node's miner votes for, in turn"),
    Field("warnings", ListOf(STR), "removals that would leave too few live authorities for "
                                   "the chain to move"),
], examples=[_VOTES], doc="Authority votes (Clique): the set, the open proposals with their "
   "voters, the latest changes, and this node's own proposals.")

_CONSENSUS = {
    "consensus": "poa", "state": "sealing", "overdue": False,
    "summary": "sealing normally: block 43 is 3f3f…3f3f's turn", "authorities": ["3f" * 20,
    "96" * 20], "in_turn": "3f" * 20, "next_height": 43, "may_seal_next": ["3f" * 20],
    "needed_online": 2, "tolerates": 0, "head_timestamp": 1767225600000, "since_head_ms": 400,
    "intervals_since_head": 0.4, "interval_ms": 1000, "due_ms": 1767225601000, "overdue_ms": 0,
    "window": 100, "recent_signers": ["96" * 20], "difficulty": 4,
    "signers": [_SIGNER, _SIGNER_96], "votes": _VOTES}
CONSENSUS_OUT = Shape("ConsensusOut", [
    Field("consensus", Choice(("poa", "pow")), src=None),
    Field("state", Choice.of(ChainPace), "sealing: on time; idle: no block due (nothing to "
          "seal, no empty blocks); late: overdue; waiting: overdue, and every authority that "
          "may seal it is offline", src="pace"),
    Field("overdue", BOOL, "the next block is more than half an interval (PoA; two in PoW) "
                           "behind its due time", src=lambda s: s.pace in OVERDUE),
    Field("summary", STR, "what the chain is doing and, when it waits, why"),
    Field("authorities", ListOf(HEX), src=None),
    Field("in_turn", MAYBE_HEX, "who should seal the next block (PoA)",
          src=lambda s: s.in_turn or None),
    Field("next_height", INT),
    Field("may_seal_next", ListOf(HEX), "authorities the recency rule lets seal it",
          src=lambda s: [e.address for e in s.signers if e.may_seal]),
    Field("needed_online", MAYBE_INT, "authorities that must be online: floor(n/2)+1",
          src=lambda s: s.needed or None),
    Field("tolerates", MAYBE_INT, "authorities that may be offline: floor((n-1)/2)",
          src=lambda s: fault_tolerance(len(s.signers)) if s.needed else None),
    Field("head_timestamp", INT, "ms since the epoch"),
    Field("since_head_ms", INT, "time since the head's timestamp"),
    Field("intervals_since_head", Number(), "the same in block intervals",
          src=lambda s: round(s.since_head_ms / s.interval_ms, 2)),
    Field("interval_ms", INT),
    Field("due_ms", MAYBE_INT, "when the next block is due (null: idle)",
          src=lambda s: s.due_ms or None),
    Field("overdue_ms", INT, "how far past its due time the next block is, once overdue"),
    Field("window", INT, "blocks looked at", src=None),
    Field("recent_signers", ListOf(HEX), src=None),
    Field("difficulty", INT, src=None),
    Field("signers", ListOf(SIGNER_OUT)),
    Field("votes", VOTES_OUT, src=None),
], examples=[_CONSENSUS, {
    **_CONSENSUS, "state": "waiting", "overdue": True, "since_head_ms": 2500,
    "intervals_since_head": 2.5, "overdue_ms": 1500, "summary": "waiting: authority 3f3f…3f3f "
    "is offline; with 2 authorities both must be online (no block for 2.5 intervals)",
    "signers": [{**_SIGNER, "state": "offline", "missed": 1, "missed_since_head": 1},
                _SIGNER_96]}],
   doc="Chain health: is the next block overdue, which authorities are live, who may seal "
       "next (the recency rule), and why the chain waits.")


@dataclass(frozen=True, slots=True)
class Votes:
    """What `VOTES_OUT` renders: state's `AuthoritiesReply` and the warnings the chain
    health gives."""

    signers: tuple[bytes, ...]
    needed: int
    epoch: int
    next_checkpoint: int
    proposals: tuple[OpenProposal, ...]
    changes: tuple[AuthorityChange, ...]
    own: tuple[OwnProposal, ...]
    warnings: list[str]


def votes_of(votes: AuthoritiesReply, signers: SignersReply) -> Votes:
    """With the chain health, a warning for each open or own removal that would leave too
    few live authorities (common/chainhealth.py `removal_note`)."""
    health = [AuthorityHealth(e.address, e.state, e.may_seal, e.sealed, e.last_height,
                              e.last_timestamp, e.missed, e.missed_since_head)
              for e in signers.signers]
    removals = dict.fromkeys([p.address for p in votes.proposals if not p.authorize]
                             + [o.address for o in votes.own if not o.authorize and not o.done])
    notes = [removal_note(health, subject) for subject in removals]
    return Votes(votes.signers, votes.needed, votes.epoch, votes.next_checkpoint,
                 votes.proposals, votes.changes, votes.own, [n for n in notes if n])


def votes_json(votes: AuthoritiesReply, signers: SignersReply) -> dict[str, Any]:
    """What POST and DELETE /consensus/proposals answer: `GET /consensus`'s `votes`."""
    return VOTES_OUT.render(votes_of(votes, signers))


def consensus_json(status: StatusReply, signers: SignersReply, window: int,
                   votes: AuthoritiesReply) -> dict[str, Any]:
    return CONSENSUS_OUT.render(signers, consensus="poa" if status.poa else "pow",
                                authorities=status.miners, window=window,
                                recent_signers=status.recent_signers,
                                difficulty=status.difficulty,
                                votes=votes_of(votes, signers))
