"""Readiness: is this node doing its job right now? (`GET /api/v1/ready`)

`/health` is liveness, Kubernetes' split: the gateway answers and reaches state. Readiness
asks more of the node, one check each, from what its services answered just now (`Facts`):

- **state**: the state service answered a status read within its timeout; on a gateway
  attached to a chain host over tcp:// the detail names that endpoint either way;
- **storage**: state may write: its status says why not (`StatusReply.storage`: the
  database is damaged, a write failed, or free disk space is below `chain.min_free_mb`;
  services/state/storage.py). State still answers then, and serves what it can read;
- **head**: the head advances when it should. It should while this node seals (its miner
  is on) or while a peer is ahead of it; then a head older than `stale_after_ms` (5
  intervals, at least 10 s) is not ready. A node with nothing to seal (empty blocks off and
  no transaction ready) and no peer ahead is ready with an old head: nothing is due;
- **miner**: not stuck. A miner that is on and whose rounds have failed for longer than
  `stale_after_ms` (state refusing its blocks, say), or that finished no round at all for
  that long, is not ready. Mining switched off is an operator's choice, not a fault: the
  check is then `skip`, as on a node that runs no miner;
- **p2p**: it answers. A p2p service that cannot listen exits (and the node with it), so one
  that answers is listening, or outbound-only by configuration. A node that runs no p2p
  (a single node) skips the check; one whose p2p does not answer is not ready.

Each check is `ok`, `fail` (with the reason) or `skip` (does not apply, or cannot be told
while another check fails: storage and head need state). The node is ready when no check
fails. `assess` is a pure function of the facts; the route gathers them
(services/api/routes/node.py). The reply shape is declared here, next to the checks it
shows, rather than in replies.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.messages import MiningReply, PeersReply, StatusReply
from services.api.kinds import Bool, Choice, ListOf, Text
from services.api.spec import Field, Shape

STALE_INTERVALS = 5  # a head or a miner quiet for this many block intervals is stuck...
MIN_STALE_MS = 10_000  # ...and for at least this long (a loaded machine, a 1 s interval)
OK, FAIL, SKIP = "ok", "fail", "skip"
CHECKS = ("state", "storage", "head", "miner", "p2p")


@dataclass(frozen=True, slots=True)
class Check:
    status: str  # OK, FAIL or SKIP
    detail: str  # one line: what was seen, why it fails, or why it does not apply


@dataclass(frozen=True, slots=True)
class Checks:
    state: Check
    storage: Check
    head: Check
    miner: Check
    p2p: Check


@dataclass(frozen=True, slots=True)
class Readiness:
    checks: Checks

    @property
    def reasons(self) -> list[str]:
        """`<check>: <why>` for every failing check, in order."""
        return [f"{name}: {check.detail}" for name in CHECKS
                if (check := getattr(self.checks, name)).status == FAIL]

    @property
    def ready(self) -> bool:
        return not self.reasons

    def line(self) -> str:
        """One line for `ccoin node status`."""
        return "ready" if self.ready else "not ready: " + "; ".join(self.reasons)


@dataclass(frozen=True, slots=True)
class Facts:
    """What the node's services answered for one readiness answer.

    `state` is None when state did not answer (`state_error` says how); `miner` / `peers`
    are None when that service did not answer, and `has_miner` / `has_p2p` say whether
    this node runs one at all. `interval_ms` and `allow_empty` are the genesis' (0 and
    True when unknown)."""

    now_ms: int
    state: StatusReply | None
    state_error: str
    has_miner: bool
    miner: MiningReply | None
    has_p2p: bool
    peers: PeersReply | None
    outbound_only: bool
    interval_ms: int
    allow_empty: bool
    attached: str = ""  # state's tcp:// endpoint and how it is reached; "" when local


def stale_after_ms(interval_ms: int) -> int:
    return max(STALE_INTERVALS * interval_ms, MIN_STALE_MS)


def _seconds(ms: int) -> str:
    return f"{ms / 1000:.0f} s"


def _state(f: Facts) -> Check:
    via = f" (chain host {f.attached})" if f.attached else ""
    if f.state is None:
        return Check(FAIL, f"state did not answer{via}: {f.state_error}")
    return Check(OK, f"height {f.state.height}{via}")


def _storage(f: Facts) -> Check:
    if f.state is None:
        return Check(SKIP, "needs state")
    if f.state.storage:
        return Check(FAIL, f.state.storage)
    free = f"{f.state.disk_free / 2**20:.0f} MB free"
    if f.state.min_free:
        free += f" (keeps {f.state.min_free / 2**20:.0f} MB)"
    return Check(OK, f"state reads and writes; {free}")


def _best_peer(f: Facts) -> int:
    return max((p.height for p in f.peers.peers), default=-1) if f.peers else -1


def _head(f: Facts) -> Check:
    status = f.state
    if status is None:
        return Check(SKIP, "needs state")
    age = max(0, f.now_ms - status.head_timestamp)
    limit = stale_after_ms(f.interval_ms)
    seen = f"head {status.height} is {_seconds(age)} old"
    if age <= limit:
        return Check(OK, seen)
    best = _best_peer(f)
    if best > status.height:
        return Check(FAIL, f"{seen} while a peer is at height {best}")
    sealing = f.miner is not None and f.miner.enabled
    if sealing and (f.allow_empty or status.ready_count > 0):
        return Check(FAIL, f"{seen} (over {STALE_INTERVALS} intervals of "
                           f"{_seconds(f.interval_ms)}) while this node seals")
    why = "nothing to seal" if sealing else "this node does not seal"
    return Check(OK, f"{seen}; {why} and no peer is ahead")


def _miner(f: Facts) -> Check:
    if not f.has_miner:
        return Check(SKIP, "no miner on this node")
    m = f.miner
    if m is None:
        return Check(FAIL, "the miner did not answer")
    if not m.enabled:
        return Check(SKIP, "not mining (switched off, or this node may not seal)")
    limit = stale_after_ms(f.interval_ms)
    if m.failing_since_ms and f.now_ms - m.failing_since_ms > limit:
        return Check(FAIL, f"its rounds have failed for {_seconds(f.now_ms - m.failing_since_ms)}"
                           f": {m.last_error}")
    if f.now_ms - m.last_round_ms > limit:
        return Check(FAIL, f"no sealing round for {_seconds(f.now_ms - m.last_round_ms)}")
    if m.failing_since_ms:
        return Check(OK, f"retrying after: {m.last_error}")
    return Check(OK, f"{m.blocks_sealed} block(s) sealed since it started")


def _p2p(f: Facts) -> Check:
    if not f.has_p2p:
        return Check(SKIP, "no p2p service on this node")
    if f.peers is None:
        return Check(FAIL, "p2p did not answer")
    how = "outbound only (p2p.outbound_only)" if f.outbound_only else "listening"
    return Check(OK, f"{how}, {len(f.peers.peers)} peer(s)")


def assess(facts: Facts) -> Readiness:
    """Every check of the module docstring, from `facts` alone."""
    return Readiness(Checks(_state(facts), _storage(facts), _head(facts), _miner(facts),
                            _p2p(facts)))


# --- the reply ---------------------------------------------------------------------------------

CHECK_OUT = Shape("ReadyCheck", [
    Field("status", Choice((OK, FAIL, SKIP)),
          "ok; fail: the node is not ready for this reason; skip: does not apply here, or "
          "cannot be told while another check fails"),
    Field("detail", Text(), "one line: what was seen, why it fails, or why it is skipped"),
])
_DOCS = {
    "state": "the state service answered a status read within its timeout",
    "storage": "state may write: its database is not damaged, its last write did not fail, "
               "and free disk space is above `chain.min_free_mb`",
    "head": f"the head is no older than {STALE_INTERVALS} block intervals (at least "
            f"{MIN_STALE_MS // 1000} s) while this node seals or a peer is ahead",
    "miner": "a miner that is on is not stuck: its rounds do not keep failing, and it "
             "finishes them; mining switched off is skipped",
    "p2p": "the p2p service answers (it listens, or is outbound-only by configuration)",
}
READY_OUT = Shape("ReadyOut", [
    Field("ready", Bool(), "true when no check fails"),
    Field("reasons", ListOf(Text()), "`<check>: <why>` for each failing check"),
    Field("checks", Shape("ReadyChecks", [Field(name, CHECK_OUT, _DOCS[name])
                                          for name in CHECKS])),
], doc="Whether this node is doing its job (readiness; `/health` is liveness): 200 when "
       "ready, 503 with the failing checks' reasons when not.", examples=[
    {"ready": True, "reasons": [], "checks": {
        "state": {"status": OK, "detail": "height 42"},
        "storage": {"status": OK, "detail": "state reads and writes; 50176 MB free "
                                              "(keeps 100 MB)"},
        "head": {"status": OK, "detail": "head 42 is 1 s old"},
        "miner": {"status": OK, "detail": "42 block(s) sealed since it started"},
        "p2p": {"status": OK, "detail": "listening, 3 peer(s)"}}},
    {"ready": False, "reasons": ["state: state did not answer: no reply within 3 s"],
     "checks": {
        "state": {"status": FAIL, "detail": "state did not answer: no reply within 3 s"},
        "storage": {"status": SKIP, "detail": "needs state"},
        "head": {"status": SKIP, "detail": "needs state"},
        "miner": {"status": OK, "detail": "retrying after: state unavailable"},
        "p2p": {"status": OK, "detail": "listening, 3 peer(s)"}}}])
