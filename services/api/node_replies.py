"""The reply shapes of the node's own routes: its peers, its miner and its health (the
chain's, the transactions' and the accounts' are in `replies`, declared the same way)."""

from __future__ import annotations

from typing import Any

from common.messages import PeersReply
from common.status import PeerDirection, PeerOutcome
from services.api.kinds import Bool, Choice, Hex, Int, ListOf, Nullable, Text
from services.api.replies import ERROR_DETAIL, or_none
from services.api.spec import Field, Shape

INT, HEX, STR, BOOL = Int(), Hex(), Text(), Bool()
MAYBE_HEX, MAYBE_INT = Nullable(HEX), Nullable(INT)


# --- network and mining ----------------------------------------------------------------------

PEER_OUT = Shape("PeerOut", [
    Field("node_id", HEX),
    Field("endpoint", STR),
    Field("direction", Choice.of(PeerDirection)),
    Field("height", INT),
    Field("head", HEX),
    Field("total_weight", INT),
    Field("score", INT),
    Field("latency_ms", INT),
    Field("connected_ms", INT),
])
PEERS_OUT = Shape("PeersOut", [
    Field("p2p", BOOL, "false when no p2p service answers on this node", src=None),
    Field("peers", ListOf(PEER_OUT)),
    Field("syncing", BOOL),
    Field("sync_target", MAYBE_INT, src=lambda r: r.sync_target if r.syncing else None),
    Field("node_id", MAYBE_HEX),
    Field("banned", INT),
    Field("endpoint", Nullable(STR), "this node's, as in GET /status `p2p_endpoint`",
          src=lambda r: r.endpoint or None),
], examples=[{"p2p": False, "peers": [], "syncing": False, "sync_target": None,
              "node_id": None, "banned": 0, "endpoint": None}])


def peers_json(reply: PeersReply | None) -> dict[str, Any]:
    """GET /peers; `None` is a node where no p2p service answers."""
    if reply is None:
        return PEERS_OUT.render(p2p=False, peers=(), syncing=False, sync_target=None,
                                node_id=None, banned=0, endpoint=None)
    return PEERS_OUT.render(reply, p2p=True)


ADD_PEER_OUT = Shape("AddPeerOut", [
    Field("outcome", Choice.of(PeerOutcome), "connected: a new link, its handshake done; "
                                             "already_connected: a link was there before"),
    Field("node_id", HEX, "the node whose key the handshake proved"),
    Field("endpoint", STR),
    Field("direction", Choice.of(PeerDirection), "who dialed the link"),
], doc="A refusal is an error: 409 `peer_wrong_network`, `peer_banned`, `peer_full`, "
       "`peer_is_self` or `peer_refused` (the message says which side refused and why), 504 "
       "`peer_unreachable` when no handshake came within `wait_ms`.",
   examples=[{"outcome": "connected", "node_id": "4e" * 32,
              "endpoint": "tcp://10.0.0.7:30333", "direction": "outbound"}])


OK_OUT = Shape("OkOut", [Field("ok", Choice((True,)))], examples=[{"ok": True}])
OK = OK_OUT.render(ok=True)

MINING_OUT = Shape("MiningOut", [
    Field("mining", BOOL, src="enabled"),
    Field("validator", BOOL, "false on a node that runs no miner", src=lambda _: True),
    Field("address", MAYBE_HEX),
    Field("blocks_sealed", INT),
    Field("last_block", MAYBE_HEX, src=lambda s: or_none(s.last_block)),
    Field("last_sealed_ms", MAYBE_INT, src=lambda s: s.last_sealed_ms or None),
    Field("failing_since_ms", MAYBE_INT, "when its current run of failed rounds began (null: "
          "its last round went fine)", src=lambda s: s.failing_since_ms or None),
    Field("last_error", STR, "why its last round failed, in one line (\"\" when it did not): "
          "state refusing its block, state unavailable, storage...", src="last_error"),
], examples=[{"mining": True, "validator": True, "address": "3f" * 20, "blocks_sealed": 42,
              "last_block": "5e" * 32, "last_sealed_ms": 1767225600000,
              "failing_since_ms": None, "last_error": ""}])
NO_MINER = MINING_OUT.render(mining=False, validator=False, address=None, blocks_sealed=0,
                             last_block=None, last_sealed_ms=None, failing_since_ms=None,
                             last_error="")


def mining_json(status: Any) -> dict[str, Any]:
    """Miner status; `None` is a node without a miner (a basic node)."""
    return NO_MINER if status is None else MINING_OUT.render(status)


# --- the node --------------------------------------------------------------------------------

HEALTH = Shape("Health", [
    Field("status", Choice(("ok", "degraded", "unavailable")),
          "`degraded` (200): state answers but refuses writes until its storage problem "
          "clears by itself (low disk space, a failed write); `unavailable` (503): state "
          "does not answer, or its database is damaged (only the operator can clear that)",
          src=None),
    Field("gateway", Choice(("ok",)), src=None),
    Field("state", Choice(("ok", "unavailable")), src=None),
    Field("storage", STR, "\"ok\", or state's storage problem in one line", src=None),
    Field("version", STR, src=None),
    Field("error", Nullable(ERROR_DETAIL), required=False),
], examples=[{"status": "ok", "gateway": "ok", "state": "ok", "storage": "ok",
              "version": "0.1.0"}])
