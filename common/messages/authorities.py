"""The state service's requests about authority votes (common/authorities.py): the set at the
head with its open proposals and latest changes, and this node's own proposals (what its
miner votes for), which `SetProposal` changes."""

from __future__ import annotations

from typing import Annotated

from common.authorities import MAX_AUTHORITIES
from common.fields import U32, U63, Address20, Len
from common.messages.envelope import Message, message

Signers = Annotated[tuple[Address20, ...], Len(0, MAX_AUTHORITIES)]


@message("get_authorities")
class GetAuthorities(Message):
    """The authorities at the head (`AuthoritiesReply`)."""

    pass


@message("open_proposal")
class OpenProposal(Message):
    """A proposal some authorities voted for, with who, in the order they voted."""

    address: Address20
    authorize: bool
    voters: Signers


@message("authority_change")
class AuthorityChange(Message):
    """The set changed at `height`: `address` added (`authorize`) or removed."""

    height: U63
    address: Address20
    authorize: bool


@message("own_proposal")
class OwnProposal(Message):
    """One of this node's proposals; `done`: already true at the head (nothing to vote);
    `voted`: this node's authority has cast the vote and it is open."""

    address: Address20
    authorize: bool
    done: bool
    voted: bool


@message("authorities")
class AuthoritiesReply(Message):
    """`signers` in their in-turn order (empty in PoW); `needed`: votes a proposal needs
    (more than half of them); `next_checkpoint`: the next height whose block lists the set
    and clears the open votes; `changes` oldest first; `own`: this node's proposals."""

    signers: Signers
    needed: U32
    epoch: U63
    next_checkpoint: U63
    proposals: tuple[OpenProposal, ...]
    changes: tuple[AuthorityChange, ...]  # at most MAX_CHANGES (16)
    own: tuple[OwnProposal, ...]  # at most MAX_PROPOSALS (64)


@message("set_proposal")
class SetProposal(Message):
    """Make this node's miner vote to authorize (or deauthorize) `address`, replacing any
    proposal about it; `discard`: forget the proposal about it instead (`not_found` if none).
    Answered with the `AuthoritiesReply` after the change."""

    address: Address20
    authorize: bool
    discard: bool
