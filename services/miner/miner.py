"""The miner: asks state for a block template, seals it, submits it; sleeps in between.

Timing policy (`plan`), with `interval` = genesis `interval_ms` and `parent` = the head:

- slot = parent.timestamp + interval. In PoA the in-turn authority (`signers[h % n]` for
  the new height h, `signers` the set at the head as state's status says: votes change
  it) seals at the slot; an out-of-turn authority adds a delay of interval/2 +
  random(0, interval/2), drawn once per head (Clique's wiggle), and never seals while its
  address is among the last floor(n/2) coinbases (the recency rule). PoW has no turns.
- Before the slot, a full pool (ready >= `max_bound`) is sealed at once (out-of-turn: once its
  delay after the parent has passed).
- At the slot: seal if ready >= `min_bound` (ready > 0), or an empty block if ready == 0 and
  `allow_empty`; if 0 < ready < `min_bound`, wait until slot + interval and seal anyway (no
  transaction waits forever); if ready == 0 and not `allow_empty`, wait for a transaction.
- Empty blocks carry `extra` = the genesis placeholder; timestamp = max(now, parent + 1 ms).
- While state cannot store a block (its status names a storage problem: a damaged
  database, a failed write, low disk space), nothing is sealed: the miner says so once,
  looks at the status as it does while waiting, and says so again when sealing resumes.

The miner never spins: it sleeps until its next decision time, wakes on a `head` event, a
`txs` event that may have filled a block (at most one look every 20 ms) or a
control request, and while waiting polls `GetStatus` at least every 200 ms. The HashCash
search runs in chunks of `CHUNK` nonces, yielding to the event loop between chunks, and is
dropped when a new head arrives or mining is switched off.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import zmq
import zmq.asyncio

from common import consensus, messages
from common.crypto import Signer
from common.encoding import unpack_canonical
from common.errors import CcoinError, StorageUnavailable, Unavailable
from common.genesis import Genesis
from common.types import ZERO_ADDRESS, BlockHeader, block_raw
from runtime import bus, buscurve
from runtime.config import NodeConfig, load_genesis
from runtime.keystore import Keystore
from runtime.service import now_ms

log = logging.getLogger("ccoin.miner")

CHUNK = 20_000  # nonces per proof-search slice: ~20-40 ms of hashing between yields
POLL_MS = 200  # longest sleep while waiting: how often the pool size is looked at
# New transactions that may fill a block get the pool looked at within this, not at every
# event: batches come by the dozen per second, each a `txs` event.
TXS_LOOK_MS = 20
BACKOFF_MIN_S = 0.25
BACKOFF_MAX_S = 5.0
STATUS_TIMEOUT_S = 1.0
TEMPLATE_TIMEOUT_S = 10.0
SUBMIT_TIMEOUT_S = 15.0
MAX_ERROR = 300  # characters of a failure kept for the status
STORAGE_PAUSE = "state cannot store blocks"


@dataclass(frozen=True, slots=True)
class Plan:
    """What to do for the current head: seal now, or look again at `wake_ms`.

    `wake_ms` is None when only a new head or a change in the pool can change the answer."""

    seal: bool
    wake_ms: int | None
    reason: str


NOT_AUTHORITY = "is not an authority of the current set: it seals once a vote adds it"


def plan(genesis: Genesis, status: messages.StatusReply, address: bytes, now: int,
         delay_ms: int) -> Plan:
    """The timing policy of the module docstring, as a pure function.

    `delay_ms` is this node's out-of-turn delay for the current head (ignored when in turn
    and in PoW)."""
    interval = genesis.interval_ms
    parent_ts = status.head_timestamp
    extra_delay = 0
    if status.storage:
        return Plan(False, None, f"{STORAGE_PAUSE}: {status.storage}")
    if genesis.is_poa:
        if address not in status.miners:
            return Plan(False, None, NOT_AUTHORITY)
        if address in status.recent_signers:
            return Plan(False, None, "sealed one of the last floor(n/2) blocks")
        if consensus.in_turn_signer(status.miners, status.height + 1) != address:
            extra_delay = delay_ms
    elif address in (b"", ZERO_ADDRESS):
        return Plan(False, None, "no coinbase address")
    ready = status.ready_count
    if ready >= genesis.max_bound:
        earliest = parent_ts + extra_delay
        if now >= earliest:
            return Plan(True, None, "full block")
        return Plan(False, earliest, "full block after the out-of-turn delay")
    slot = parent_ts + interval + extra_delay
    if now < slot:
        return Plan(False, slot, "waiting for the slot")
    if ready == 0:
        if genesis.allow_empty:
            return Plan(True, None, "empty block at the slot")
        return Plan(False, None, "no transactions and empty blocks are not allowed")
    if ready >= genesis.min_bound:
        return Plan(True, None, "block at the slot")
    late = slot + interval
    if now >= late:
        return Plan(True, None, f"{ready} < min_bound transactions waited an interval")
    return Plan(False, late, f"{ready} < min_bound transactions, sealing anyway at slot+interval")


def out_of_turn_delay(genesis: Genesis, rng: random.Random) -> int:
    """Clique's wiggle: interval/2 + random(0, interval/2)."""
    half = genesis.interval_ms // 2
    return half + rng.randint(0, half)


class Miner:
    """One node's miner: the control server, the head subscriber and the sealing loop."""

    def __init__(self, config: NodeConfig, genesis: Genesis, signer: Signer | None,
                 ctx: zmq.asyncio.Context, *, clock: Callable[[], int] = now_ms,
                 rng: random.Random | None = None) -> None:
        self.config = config
        self.genesis = genesis
        self.signer = signer
        self.address = signer.address if signer is not None else config.account_address
        self.ctx = ctx
        self.clock = clock
        self.rng = rng or random.Random()
        self.enabled = config.mining_autostart
        self.idle_reason = self._idle_reason()
        self.blocks_sealed = 0
        self.last_block = b""
        self.last_sealed_ms = 0
        # how the sealing loop is doing, for readiness (services/api/readiness.py): a loop
        # that keeps failing, or finishes no round at all, is stuck
        self.last_round_ms = self.clock()
        self.failing_since_ms = 0
        self.last_error = ""
        self.curve = buscurve.for_config(config)  # tcp:// endpoints: CurveZMQ
        self.guard = buscurve.Guard(ctx, self.curve)
        self.state = bus.BusClient(config.endpoint("state"), ctx, curve=self.curve)
        self.server = bus.Server(ctx, config.endpoint("miner"), "miner", {
            messages.GetMining: self.get_mining,
            messages.SetMining: self.set_mining,
        }, guard=self.guard)
        self._wake = asyncio.Event()
        self._last_look = 0.0  # monotonic s: when the loop last asked state for its status
        self._look_soon: asyncio.TimerHandle | None = None
        # the pool's ready count at the last look, and the transactions announced since: an
        # upper bound on what is ready now (some may wait for a nonce, some have left)
        self._ready_seen = 0
        self._added_since = 0
        self._head_events = 0
        self._event_head = b""
        self._delay: tuple[bytes, int] = (b"", 0)
        self._last_reason = ""

    # --- identity and control ----------------------------------------------------------------

    def _idle_reason(self) -> str:
        """Why this node can never seal on this chain ("" when it can)."""
        if self.address in (b"", ZERO_ADDRESS):
            return "no client.account_address configured"
        # an address outside the current set waits for a vote (`plan` says so), keyed
        if self.genesis.is_poa and self.signer is None:
            return f"no validator key for {self.address.hex()} loaded"
        return ""

    @property
    def active(self) -> bool:
        return self.enabled and not self.idle_reason

    def status(self) -> messages.MiningReply:
        """`enabled` is true only when the node is really mining (switched on and allowed)."""
        return messages.MiningReply(self.active, self.address, self.blocks_sealed,
                                     self.last_block, self.last_sealed_ms,
                                     self.last_round_ms, self.failing_since_ms,
                                     self.last_error)

    def get_mining(self, _: messages.GetMining) -> messages.MiningReply:
        return self.status()

    def set_mining(self, request: messages.SetMining) -> messages.MiningReply:
        if request.enabled != self.enabled:
            log.info("mining %s", "started" if request.enabled else "stopped")
        if request.enabled and self.idle_reason:
            log.warning("cannot mine: %s", self.idle_reason)
        if request.enabled and not self.enabled:
            self.last_round_ms = self.clock()  # idle until now: no round was due
        self.enabled = request.enabled
        self._wake.set()
        return self.status()

    # --- main loop -----------------------------------------------------------------------

    async def run(self) -> None:
        if self.idle_reason:
            log.warning("miner idle: %s (still answering control requests)", self.idle_reason)
        else:
            mode = "PoA authority" if self.genesis.is_poa else "PoW"
            log.info("mining as %s %s, %s", mode, self.address.hex(),
                     "enabled" if self.enabled else "disabled until started")
        tasks = [asyncio.create_task(self.server.serve_forever(), name="miner-control"),
                 asyncio.create_task(self._listen(), name="miner-events"),
                 asyncio.create_task(self._mine_forever(), name="miner-loop")]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()  # a crashed task is a bug: surface it
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.state.close()
            self.server.close()
            self.guard.close()

    async def _listen(self) -> None:
        """Head events wake the loop; stale work is dropped by comparing heads. New
        transactions that may fill a block wake it too (`_on_txs`): a full pool is sealed at
        once, not at the next poll.

        A lost event (PUB drops at its high-water mark) costs at most one status poll, so
        sequence gaps need no handling here."""
        events = bus.Subscription(self.ctx, self.config.endpoint("events"), (b"head", b"txs"),
                                  curve=self.curve)
        try:
            async for event in events:
                if isinstance(event.message, messages.HeadEvent):
                    self._event_head = event.message.hash
                    self._head_events += 1
                    self._wake.set()
                elif isinstance(event.message, messages.TxsEvent):
                    self._on_txs(len(event.message.ids))
        finally:
            if self._look_soon is not None:
                self._look_soon.cancel()
            events.close()

    def _on_txs(self, added: int) -> None:
        """`added` transactions entered the pool: if it may now fill a block, wake the loop
        to look, at most once every `TXS_LOOK_MS`. Below that nothing is asked of state:
        single submissions come by the thousand per second."""
        self._added_since += added
        if self._ready_seen + self._added_since < self.genesis.max_bound:
            return
        if self._look_soon is not None:
            return  # a look is due already
        wait = TXS_LOOK_MS / 1000 - (time.monotonic() - self._last_look)
        if wait <= 0:
            self._wake.set()
        else:
            self._look_soon = asyncio.get_running_loop().call_later(wait, self._look_due)

    def _look_due(self) -> None:
        self._look_soon = None
        self._wake.set()

    async def _sleep(self, seconds: float) -> None:
        """Sleep up to `seconds`; a head event or a control request ends it early."""
        if seconds > 0:
            try:
                async with asyncio.timeout(seconds):  # not wait_for: it can swallow a cancel
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def _mine_forever(self) -> None:
        backoff = BACKOFF_MIN_S
        while True:
            self._wake.clear()
            if not self.active:
                await self._wake.wait()
                continue
            try:
                # counted from before the question: what arrives meanwhile may be counted
                # twice (a needless look), never missed
                self._last_look, self._added_since = time.monotonic(), 0
                status = await self.state.request(messages.GetStatus(), messages.StatusReply,
                                                  timeout=STATUS_TIMEOUT_S, retries=0)
                self._ready_seen = status.ready_count
                now = self.clock()
                decision = plan(self.genesis, status, self.address, now, self._delay_for(status))
                if decision.seal:
                    self._note(decision, status)
                    sealed = await self._seal(status, decision)
                    self._round_done()
                    backoff = BACKOFF_MIN_S
                    if not sealed:
                        await self._sleep(POLL_MS / 1000)
                    continue
                self._note(decision, status)
                self._round_done()
                wait_ms = POLL_MS if decision.wake_ms is None else decision.wake_ms - now
                backoff = BACKOFF_MIN_S
                await self._sleep(min(max(wait_ms, 1), POLL_MS) / 1000)
            except StorageUnavailable as exc:  # until its status says so: pause (`plan`)
                self._round_done(f"{STORAGE_PAUSE}: {exc.message}")
                log.warning("%s: %s; looking again in %.2f s", STORAGE_PAUSE, exc.message,
                            backoff)
                await self._sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
            except Unavailable as exc:
                self._round_done(f"state unavailable: {exc}")
                log.warning("state unavailable (%s); retrying in %.2f s", exc, backoff)
                await self._sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
            except CcoinError as exc:
                self._round_done(f"rejected by state: {exc.code}: {exc.message}")
                log.warning("rejected by state: %s: %s; re-planning in %.2f s",
                            exc.code, exc.message, backoff)
                await self._sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
            except Exception as exc:
                self._round_done(f"round failed: {type(exc).__name__}: {exc}")
                log.exception("mining round failed; retrying in %.2f s", backoff)
                await self._sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)

    def _round_done(self, error: str = "") -> None:
        """A round ended, well or with `error` (kept to one line, for readiness)."""
        now = self.clock()
        self.last_round_ms = now
        if not error:
            self.failing_since_ms, self.last_error = 0, ""
            return
        if not self.failing_since_ms:
            self.failing_since_ms = now
        self.last_error = " ".join(error.split())[:MAX_ERROR]

    def _delay_for(self, status: messages.StatusReply) -> int:
        """The out-of-turn delay for this head, drawn once per head."""
        if self._delay[0] != status.head:
            self._delay = (status.head, out_of_turn_delay(self.genesis, self.rng))
        return self._delay[1]

    def _note(self, decision: Plan, status: messages.StatusReply) -> None:
        """Log a waiting reason once per change, not once per poll; a pause for storage as a
        warning, and its end."""
        if decision.reason != self._last_reason:
            paused = decision.reason.startswith(STORAGE_PAUSE)
            if paused and not self._last_reason.startswith(STORAGE_PAUSE):
                log.warning("sealing paused: %s", decision.reason)
            elif not paused and self._last_reason.startswith(STORAGE_PAUSE):
                log.info("sealing resumed: state stores blocks again")
            if decision.reason == NOT_AUTHORITY:
                log.info("%s %s", self.address.hex(), NOT_AUTHORITY)
            elif self._last_reason == NOT_AUTHORITY:
                log.info("%s is an authority now: sealing in turn", self.address.hex())
            self._last_reason = decision.reason
            log.debug("height %d: %s (ready %d)", status.height + 1, decision.reason,
                      status.ready_count)

    def _stale(self, status: messages.StatusReply, since: int) -> bool:
        if not self.active:
            return True
        return self._head_events != since and self._event_head != status.head

    # --- sealing -------------------------------------------------------------------------

    async def _seal(self, status: messages.StatusReply, decision: Plan) -> bool:
        """Build, seal and submit one block on `status.head`; False when the work was dropped."""
        since = self._head_events
        self._last_reason = ""
        placeholder = self.genesis.placeholder_extra()
        timestamp = max(self.clock(), status.head_timestamp + 1)
        extra = placeholder if status.ready_count == 0 else b""
        template = await self.state.request(
            messages.GetTemplate(self.address, timestamp, extra), messages.TemplateReply,
            timeout=TEMPLATE_TIMEOUT_S, retries=1)
        header = BlockHeader.from_fields(unpack_canonical(template.header))
        if header.parent != status.head or header.height != status.height + 1:
            log.debug("template is not on head %s: re-planning", status.head.hex()[:12])
            return False
        if not template.count:
            if not self.genesis.allow_empty:
                log.debug("pool emptied before the template; waiting")
                return False
            if not header.extra:
                header = header.replace(extra=placeholder)
        if self.signer is not None and self.genesis.is_poa:
            header = consensus.with_signer(header, self.signer)
        solved = consensus.solve_proof(header, CHUNK)
        while solved is None:
            await asyncio.sleep(0)
            if self._stale(status, since):
                log.info("dropping work on height %d: new head or mining stopped",
                         header.height)
                return False
            header = header.replace(nonce=(header.nonce + CHUNK) % 2**64)
            solved = consensus.solve_proof(header, CHUNK)
        header = solved
        if self.signer is not None and self.genesis.is_poa:
            header = consensus.sign_header(header, self.signer)
        if self._stale(status, since):
            log.info("dropping sealed block %d: new head or mining stopped", header.height)
            return False
        result = await self.state.request(
            messages.SubmitBlock(block_raw(header, template.body)), messages.BlockResult,
            timeout=SUBMIT_TIMEOUT_S, retries=2)
        self.blocks_sealed += 1
        self.last_block = result.hash
        self.last_sealed_ms = self.clock()
        log.info("sealed block %d (%s, %d txs): %s", result.height, decision.reason,
                 template.count, result.status,
                 extra={"height": result.height, "hash": result.hash.hex()})
        return True


def load_signer(config: NodeConfig, genesis: Genesis) -> Signer | None:
    """The validator key, when this node may seal PoA blocks (PoW needs only the address):
    any address's, since a vote may make it an authority later."""
    if not genesis.is_poa or not config.account_address:
        return None
    store = Keystore(config.keystore_dir)
    if (config.account_address not in genesis.miners
            and not store.path_of(config.account_address).is_file()):
        return None  # idle, saying why: no key to seal with if a vote adds it
    key = store.load(config.account_address, config.password())
    return Signer(key)


async def main(config: NodeConfig) -> None:
    genesis = load_genesis(config.genesis_file())
    signer = load_signer(config, genesis)
    ctx = zmq.asyncio.Context()
    try:
        await Miner(config, genesis, signer, ctx).run()
    finally:
        ctx.destroy(linger=0)
