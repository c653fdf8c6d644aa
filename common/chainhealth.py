"""Chain health: is the next block overdue, which authorities are sealing, who may seal next,
which turns went by unsealed, and one plain sentence saying why the chain waits.

Pure: the recent main-chain headers, the genesis, the pool's ready count and `now_ms` go in,
a `ChainHealth` comes out; no clock is read here. The state service runs it over its own
chain for `GET /api/v1/consensus`, `ccoin consensus`, the dashboard and `/metrics`.

**Due and overdue.** The head, at height H, was sealed at T. The miner's timing
(services/miner/miner.py) makes the next block due at T + one interval, or two while fewer
than `min_bound` transactions wait; with an empty pool and no empty blocks allowed, no block
is due at all (`idle`, never overdue). The block is **overdue** once its due time is more
than `grace` behind: in PoA half an interval (an out-of-turn authority may seal from then
on, so a healthy network is never overdue), at least 250 ms for sealing and relay; in PoW two
intervals (the proof search takes a random time; the retargeting tolerates double).

**Turns, counted from time as well as from blocks.** The k-th slot after the head (k = 1,
2, ...) belongs to `signers[(H + k) % n]` and passes at due + grace + (k - 1) intervals: a
slot that passed with no block is a turn missed by its authority. In the sealed window, a
block at height h that `signers[h % n]` did not seal is a turn it missed. Either way a turn
counts only for an authority the recency rule let seal (it sealed none of the floor(n/2)
blocks before): an authority forbidden to seal misses nothing.

**Live.** An authority that sealed a block of the window and has missed no turn since is
`live`; one that missed a turn after its last block (or missed one and sealed none) is
`offline`; with neither in the window it is `unknown`. Whether an authority's node is
connected as a peer is not known here: a p2p hello names a node key, not an authority.

**How many must be online.** A signer may seal at most one of any floor(n/2) + 1
consecutive blocks (Clique, EIP-225), so the chain moves only while floor(n/2) + 1
authorities take turns: n authorities tolerate floor((n - 1) / 2) offline, and with 2,
neither may fail.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from common.consensus import in_turn_signer, recency_window
from common.genesis import Genesis
from common.status import AuthorityState, ChainPace

MIN_GRACE_MS = 250  # sealing (HashCash at a few bits), import and relay on a loaded machine
POW_GRACE_INTERVALS = 2


class Sealed(Protocol):
    """What the rules read of a header (a `common.types.BlockHeader` is one)."""

    @property
    def height(self) -> int: ...

    @property
    def timestamp(self) -> int: ...

    @property
    def coinbase(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class AuthorityHealth:
    """One authority: `last_height` -1 and `last_timestamp` 0 when it sealed no block of the
    window; `missed` counts every turn it missed in the window, `missed_since_head` those
    that passed since the head (counted from time); `may_seal`: the recency rule lets it
    seal the next block."""

    address: bytes
    state: AuthorityState
    may_seal: bool
    sealed: int
    last_height: int
    last_timestamp: int
    missed: int
    missed_since_head: int


@dataclass(frozen=True, slots=True)
class ChainHealth:
    """The chain at `now_ms`: `due_ms` is when the next block is due (0: none is, idle),
    `overdue_ms` how far behind that it is once overdue (0 before), `needed` how many
    authorities must be online for the chain to move (0 in PoW), `summary` the sentence."""

    pace: ChainPace
    next_height: int
    in_turn: bytes
    head_timestamp: int
    since_head_ms: int
    due_ms: int
    overdue_ms: int
    interval_ms: int
    needed: int
    authorities: tuple[AuthorityHealth, ...]
    summary: str

    @property
    def overdue(self) -> bool:
        return self.pace in (ChainPace.LATE, ChainPace.WAITING)

    @property
    def may_seal(self) -> tuple[bytes, ...]:
        return tuple(a.address for a in self.authorities if a.may_seal)


# --- the figures -----------------------------------------------------------------------------


def needed_online(n: int) -> int:
    """Authorities that must take turns for the chain to move: floor(n/2) + 1."""
    return n // 2 + 1 if n else 0


def fault_tolerance(n: int) -> int:
    """Authorities that may be offline while the chain still moves: floor((n-1)/2)."""
    return (n - 1) // 2 if n else 0


def block_wait_ms(genesis: Genesis, ready: int) -> int | None:
    """From the head's timestamp to the next block's due time (the miner's timing), or None
    when no block is due: nothing to seal and empty blocks not allowed."""
    if ready == 0:
        return genesis.interval_ms if genesis.allow_empty else None
    if ready < genesis.min_bound:
        return 2 * genesis.interval_ms
    return genesis.interval_ms


def grace_ms(genesis: Genesis) -> int:
    """How far behind its due time the next block may be before it is overdue."""
    if not genesis.is_poa:
        return POW_GRACE_INTERVALS * genesis.interval_ms
    return max(genesis.interval_ms // 2, MIN_GRACE_MS)


def slots_passed(genesis: Genesis, head_timestamp: int, ready: int, now_ms: int) -> int:
    """How many slots after the head passed with no block (see the module docstring)."""
    wait = block_wait_ms(genesis, ready)
    if wait is None:
        return 0
    first = head_timestamp + wait + grace_ms(genesis)
    if now_ms <= first:
        return 0
    interval = genesis.interval_ms
    return (now_ms - first + interval - 1) // interval


def _turns_in(first_k: int, passed: int, n: int) -> int:
    """How many of the slots 1..passed fall on k = first_k, first_k + n, ..."""
    return 0 if passed < first_k else (passed - first_k) // n + 1


# --- the assessment --------------------------------------------------------------------------


def assess(genesis: Genesis, headers: Sequence[Sealed], *, window: int, now_ms: int,
           ready: int, signers: Sequence[bytes],
           joined: Mapping[bytes, int] | None = None) -> ChainHealth:
    """The chain's health at `now_ms`.

    `signers`: the authority set at the head (`common.authorities`), in its in-turn order;
    the turns of the whole window are counted as that set's, so a change of the set is
    counted at once; `joined`: the height at which an authority was voted in, before which
    it has no turn to miss (the turns of the others, before a change, are approximate).

    `headers`: consecutive main-chain headers, oldest first, ending with the head; the last
    `window` sealed ones (height >= 1) are looked at, any older ones only tell who sealed the
    blocks before them (the recency rule). `ready`: transactions ready for the next block."""
    if not headers:
        raise ValueError("assess needs at least the head")
    for before, after in zip(headers, headers[1:], strict=False):
        if after.height != before.height + 1:
            raise ValueError("headers must be consecutive, oldest first")
    head = headers[-1]
    next_height = head.height + 1
    wait = block_wait_ms(genesis, ready)
    due = head.timestamp + wait if wait is not None else 0
    late = wait is not None and now_ms > due + grace_ms(genesis)
    since = max(0, now_ms - head.timestamp)
    overdue_ms = now_ms - due if late else 0
    if not genesis.is_poa:
        pace = ChainPace.LATE if late else ChainPace.IDLE if wait is None else ChainPace.SEALING
        health = ChainHealth(pace, next_height, b"", head.timestamp, since, due, overdue_ms,
                             genesis.interval_ms, 0, (), "")
        return replace(health, summary=describe(health, genesis))

    miners = tuple(signers)
    n = len(miners)
    rw = recency_window(miners)
    sealed_blocks = [h for h in headers if h.height >= 1]
    coinbases = [h.coinbase for h in sealed_blocks]
    looked_at = max(0, len(sealed_blocks) - window)
    sealed = dict.fromkeys(miners, 0)
    last_height = dict.fromkeys(miners, -1)
    last_timestamp = dict.fromkeys(miners, 0)
    missed = dict.fromkeys(miners, 0)
    last_missed = dict.fromkeys(miners, -1)  # height of the latest turn missed in the window
    for i in range(looked_at, len(sealed_blocks)):
        block = sealed_blocks[i]
        if block.coinbase in sealed:
            sealed[block.coinbase] += 1
            last_height[block.coinbase] = block.height
            last_timestamp[block.coinbase] = block.timestamp
        turn = in_turn_signer(miners, block.height)
        prior = coinbases[max(0, i - rw):i] if rw else []
        if joined and block.height <= joined.get(turn, -1):
            continue  # not an authority yet
        if block.coinbase != turn and turn not in prior:
            missed[turn] += 1
            last_missed[turn] = block.height
    recent = set(coinbases[-rw:]) if rw else set()
    passed = slots_passed(genesis, head.timestamp, ready, now_ms)
    out = []
    for index, address in enumerate(miners):
        may_seal = address not in recent
        # slot k belongs to miners[(H + k) % n]: this authority's first slot is k = first_k
        first_k = (index - next_height) % n + 1
        since_head = _turns_in(first_k, passed, n) if may_seal else 0
        if since_head or last_missed[address] > last_height[address]:
            state = AuthorityState.OFFLINE
        elif last_height[address] >= 0:
            state = AuthorityState.LIVE
        else:
            state = AuthorityState.UNKNOWN
        out.append(AuthorityHealth(address, state, may_seal, sealed[address],
                                   last_height[address], last_timestamp[address],
                                   missed[address] + since_head, since_head))
    if not late:
        pace = ChainPace.IDLE if wait is None else ChainPace.SEALING
    elif all(a.state == AuthorityState.OFFLINE for a in out if a.may_seal):
        pace = ChainPace.WAITING
    else:
        pace = ChainPace.LATE
    health = ChainHealth(pace, next_height, in_turn_signer(miners, next_height),
                         head.timestamp, since, due, overdue_ms, genesis.interval_ms,
                         needed_online(n), tuple(out), "")
    return replace(health, summary=describe(health, genesis))


# --- the sentence ----------------------------------------------------------------------------


def short(address: bytes) -> str:
    """`9684…c624`: enough of an address to tell the authorities of a chain apart."""
    text = address.hex()
    return f"{text[:4]}…{text[-4:]}" if len(text) > 8 else text


def duration(ms: int) -> str:
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    if seconds < 86_400:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"
    return f"{int(seconds // 86_400)} days"


def _names(addresses: Sequence[bytes], most: int = 5) -> str:
    shown = [short(a) for a in addresses[:most]]
    if len(addresses) > most:
        shown.append(f"{len(addresses) - most} more")
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]


def _must_be_online(n: int) -> str:
    if n == 1:
        return "with 1 authority it must be online"
    if n == 2:
        return "with 2 authorities both must be online"
    return f"with {n} authorities at least {needed_online(n)} must be online"


def describe(health: ChainHealth, genesis: Genesis) -> str:
    """The plain sentence: what the chain is doing and, when it waits, why."""
    h = health
    block = f"block {h.next_height}"
    # the genesis timestamp is a constant of the genesis file, not a sealing time
    behind = ("no block since the genesis" if h.next_height == 1 else
              f"no block for {h.since_head_ms / genesis.interval_ms:.1f} intervals")
    if not genesis.is_poa:
        if h.pace == ChainPace.IDLE:
            return "idle: no transactions to mine, and the genesis allows no empty blocks"
        if h.pace == ChainPace.LATE:
            return (f"late: {block} is {duration(h.overdue_ms)} overdue ({behind}); no miner "
                    f"has found its proof of work yet")
        return f"mining normally: any miner may seal {block}"
    n = len(h.authorities)
    turn = next(a for a in h.authorities if a.address == h.in_turn)
    offline = [a.address for a in h.authorities if a.state == AuthorityState.OFFLINE]
    if h.pace == ChainPace.WAITING:
        who = "authority" if len(offline) == 1 else "authorities"
        verb = "is" if len(offline) == 1 else "are"
        return f"waiting: {who} {_names(offline)} {verb} offline; {_must_be_online(n)} ({behind})"
    out_of_turn = [a.address for a in h.authorities if a.may_seal and a is not turn]
    if turn.may_seal:
        whose = f"{block} is {short(turn.address)}'s turn"
    else:
        whose = (f"{block} goes to {_names(out_of_turn)} out of turn ({short(turn.address)}, "
                 f"in turn, sealed a recent block)")
    if h.pace == ChainPace.IDLE:
        return f"idle: no transactions to seal, and the genesis allows no empty blocks; {whose}"
    if h.pace == ChainPace.SEALING:
        return f"sealing normally: {whose}"
    parts = [f"late: {block} is {duration(h.overdue_ms)} overdue"]
    if turn.may_seal:  # its slot passed: it missed the turn, so it counts as offline
        parts.append(f"{short(turn.address)} (in turn) is offline")
    others_off = [a for a in out_of_turn if a in offline]
    if others_off:
        parts.append(f"{_names(others_off)} {'is' if len(others_off) == 1 else 'are'} offline")
    left = [a for a in out_of_turn if a not in offline]
    if left:
        parts.append(f"{_names(left)} may seal it out of turn")
    return "; ".join(parts)


# --- the operator's warning ------------------------------------------------------------------


def authorities_note(n: int) -> str | None:
    """One line for `ccoin genesis init` and `ccoin devnet` about a PoA genesis of `n`
    authorities: a warning when 2 (neither may fail), else how many may be offline; None
    in PoW."""
    if n == 0:
        return None
    if n == 2:
        return ("warning: 2 authorities tolerate no failure: under the recency rule the chain "
                "stops while either is offline (3 tolerate 1, 5 tolerate 2)")
    if n == 1:
        return "1 authority: the chain stops while it is offline"
    return (f"{n} authorities: the chain moves while at least {needed_online(n)} are online "
            f"(it tolerates {fault_tolerance(n)} offline)")


def removal_note(authorities: Sequence[AuthorityHealth], subject: bytes) -> str | None:
    """Before a vote to remove `subject` passes: a warning when the set left would have
    fewer live authorities than the floor(n/2) + 1 that must take turns (the chain would
    wait from that block on); None when enough are live, or `subject` is no authority."""
    if all(a.address != subject for a in authorities):
        return None
    left = [a for a in authorities if a.address != subject]
    live = sum(1 for a in left if a.state == AuthorityState.LIVE)
    need = needed_online(len(left))
    if live >= need:
        return None
    return (f"removing {short(subject)} leaves {len(left)} authorities of which {live} "
            f"{'is' if live == 1 else 'are'} live; {need} must be online, so the chain "
            f"would wait from the block that passes the vote")
