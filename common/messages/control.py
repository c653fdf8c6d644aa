"""Control requests served by the p2p service (endpoint "p2p") and the miner, for the
gateway and the command line."""

from __future__ import annotations

from typing import Annotated

from common.fields import U63, OptHash32, Range
from common.messages.envelope import Message, message
from common.status import AssumeValidState, PeerDirection, PeerOutcome

MAX_ADD_PEER_WAIT_MS = 60_000

# --- p2p control ------------------------------------------------------------------------------


@message("get_peers")
class GetPeers(Message):
    pass


@message("peer_info")
class PeerEntry(Message):
    node_id: bytes
    endpoint: str
    direction: PeerDirection
    height: int
    head: bytes
    total_weight: int
    score: int
    latency_ms: int
    connected_ms: int


@message("assume_valid_info")
class AssumeValidInfo(Message):
    """Assume-valid sync (services/p2p/assumevalid.py) as p2p sees it: `target` the block
    the operator vouched for (empty: off); `height` its height once a peer's headers showed
    it or our chain holds it (0 before); `skipped` the transaction signatures not checked
    and `blocks` the synced blocks that skipped them, since p2p started."""

    target: OptHash32
    state: AssumeValidState
    height: U63
    skipped: U63
    blocks: U63


ASSUME_VALID_OFF = AssumeValidInfo(b"", AssumeValidState.OFF, 0, 0, 0)


@message("peers")
class PeersReply(Message):
    """`endpoint` is where other nodes reach this one, in the form `AddPeer` takes
    (`tcp://host:port`, with `#<curve key hex>` when CurveZMQ is on); "" while p2p listens
    nowhere dialable; `assume_valid` what assume-valid sync is doing."""

    peers: tuple[PeerEntry, ...]
    syncing: bool
    sync_target: int
    node_id: bytes
    banned: int
    endpoint: str
    assume_valid: AssumeValidInfo = ASSUME_VALID_OFF


@message("add_peer")
class AddPeer(Message):
    """`endpoint` is `tcp://host:port[#curvekey]`; p2p parses it (`wire.parse_peer_uri`).
    p2p answers once the handshake is done (`AddPeerReply`) or has failed (a typed error:
    `PeerRefused` and its kinds, or `PeerUnreachable` after `wait_ms`)."""

    endpoint: str
    wait_ms: Annotated[int, Range(1, MAX_ADD_PEER_WAIT_MS)]


@message("add_peer_reply")
class AddPeerReply(Message):
    """The node linked: `endpoint` as dialed (or the linked node's), `node_id` the node
    whose ACK proved its key there."""

    outcome: PeerOutcome
    node_id: bytes
    endpoint: str
    direction: PeerDirection


@message("sync_now")
class SyncNow(Message):
    pass


# --- miner control ----------------------------------------------------------------------------


@message("get_mining")
class GetMining(Message):
    pass


@message("set_mining")
class SetMining(Message):
    enabled: bool


@message("mining")
class MiningReply(Message):
    """`last_round_ms`: when the sealing loop last finished a round (a decision to wait, a
    block sealed, or a failure); `failing_since_ms`: when its current run of failed rounds
    began (0: the last round went fine), `last_error` the failure (one line, "" then)."""

    enabled: bool
    address: bytes
    blocks_sealed: int
    last_block: bytes
    last_sealed_ms: int
    last_round_ms: int
    failing_since_ms: int
    last_error: str
