"""The named states and reasons that cross the bus and the REST API.

Each is a `StrEnum`, so its members are the very strings the bus, the JSON and the docs
carry (`TxStatus.CONFIRMED == "confirmed"`), while code names a state instead of spelling
it. Decoding a message or a reply turns the string back into the member and refuses any
other value.
"""

from __future__ import annotations

from enum import StrEnum


class TxStatus(StrEnum):
    """What became of a transaction (`GET /txs/{id}`)."""

    PENDING = "pending"  # in the pool, executable
    QUEUED = "queued"  # in the pool, waiting for an earlier nonce
    CONFIRMED = "confirmed"  # in a main-chain block
    REJECTED = "rejected"  # refused at submission; the reason is the error code
    REPLACED = "replaced"  # a same-nonce transaction with a higher fee took its place
    DROPPED = "dropped"  # left the pool without being confirmed (a `RemovalReason`)

    @property
    def final(self) -> bool:
        """True when waiting can no longer make it `confirmed`."""
        return self in (TxStatus.REJECTED, TxStatus.REPLACED, TxStatus.DROPPED)


class RemovalReason(StrEnum):
    """Why a transaction left the pool other than by inclusion in a block."""

    REPLACED = "replaced"
    EVICTED = "evicted"  # the pool was full and a better-paying transaction came
    STALE = "stale"  # a block made its nonce or balance impossible
    REORG_CONFLICT = "reorg-conflict"  # a reorg brought back a transaction it conflicts with


class BlockStatus(StrEnum):
    """Where a submitted block landed."""

    HEAD = "head"  # it is the new head
    SIDE = "side"  # stored on a lighter branch
    KNOWN = "known"  # we had it already
    ERROR = "error"  # refused (the outcome carries the error code)


class TipStatus(StrEnum):
    """A known chain tip (`GET /chain/tips`)."""

    ACTIVE = "active"  # the head
    VALID_FORK = "valid-fork"  # a stored, lighter branch
    INVALID = "invalid"


class ChainPace(StrEnum):
    """Whether the next block comes on time (`GET /consensus`, common/chainhealth.py)."""

    SEALING = "sealing"  # not overdue
    IDLE = "idle"  # no block is due: nothing to seal, and empty blocks are not allowed
    LATE = "late"  # overdue, but an authority that may seal it is not known to be offline
    WAITING = "waiting"  # overdue, and every authority that may seal it is offline


class AuthorityState(StrEnum):
    """What the recent chain says of an authority (common/chainhealth.py)."""

    LIVE = "live"  # sealed a recent block and has missed no turn since
    OFFLINE = "offline"  # missed a turn since its last block
    UNKNOWN = "unknown"  # the window shows neither


class Direction(StrEnum):
    """A history entry, seen from the account."""

    IN = "in"
    OUT = "out"
    SELF = "self"


class PeerDirection(StrEnum):
    """Who opened a p2p link."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"


class AssumeValidState(StrEnum):
    """What assume-valid sync is doing (services/p2p/assumevalid.py; `GET /status`'s
    `assume_valid`)."""

    OFF = "off"  # no block configured: every signature is verified
    SEARCHING = "searching"  # no peer's headers have shown the block yet (walked each round)
    FOUND = "found"  # a peer's headers hold it: synced blocks up to it skip signatures
    MISSING = "missing"  # the last peer's chain does not hold it: synced in full from it
    REACHED = "reached"  # our chain holds it: every later block is verified in full


class PeerOutcome(StrEnum):
    """What an operator's `AddPeer` achieved (a refusal is an error, not an outcome)."""

    CONNECTED = "connected"  # a new link, its handshake done
    ALREADY_CONNECTED = "already_connected"  # a ready link to that node was there before
