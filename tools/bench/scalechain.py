"""A big chain built in-process with the state service's own code, for `ccoin bench --scale`.

Submitting millions of transfers through REST would time the gateway for an hour; the chain
a scale run measures only has to be one a node could have built. So the builder does what a
node does between its pool and its disk, minus the pool: it signs transfers with
`common.crypto` (through `Transaction.create`), packs them into blocks with the template
builder (`services.state.templates.build_template`, which applies each one on an overlay and
computes the state root), seals each block with the authority's key exactly as the miner
does (`common.consensus.with_signer`, `solve_proof`, `sign_header`), and imports it with
`Chain.import_block`, which checks the header, the seal and the body and writes the block,
its indexes and the accounts in one WriteBatch. The template's state changes are handed to
the chain's template cache, as the state service does for its miner, so each block is
applied once. The result passes `ccoin node check`, and a node starts on it as on any
chain it built itself.

The workload (`ScalePlan`): `n_accounts` accounts, of which one in `SENDER_SHARE` signs
(keys from `scale_key`) and the rest only receive (addresses derived from a counter, no
key needed). The genesis funds one faucet account, which funds each sender in the first
blocks (so the genesis file stays small: every service that loads it hashes its alloc,
and a start would otherwise grow with the plan). Then the senders take turns, so a block
holds many senders with one nonce each; the first transfers create every receiving
account once, the rest go to random ones. Deterministic: the same plan gives the same
transfers.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

from common import authorities, consensus, crypto
from common.genesis import Genesis
from common.status import BlockStatus
from common.types import Block, Transaction
from runtime.keystore import Keystore
from services.state.chain import Chain
from services.state.store import Store
from services.state.templates import build_template
from tools.devnet import Devnet, create_devnet

SENDER_SHARE = 100  # one account in this many signs transfers; the others receive
MIN_SENDERS = 2
SENDER_FUNDS = 10**12
MAX_AMOUNT = 100  # each transfer moves 1..MAX_AMOUNT, fee 1
FEE = 1
SEED = 11
PROOF_TRIES = 1 << 20  # the genesis difficulty is a few bits: found at once


def scale_key(i: int) -> crypto.Signer:
    """The i-th sending account's key: seed = SHA-256(b"ccoin-scale-<i>") (not a bench
    workload key, so the e2e workload's nonces start at 0 on a built chain too)."""
    seed = hashlib.sha256(b"ccoin-scale-%d" % i).digest()
    return crypto.Signer(crypto.PrivateKey(crypto.KeyType.ED25519, seed))


def faucet_key() -> crypto.Signer:
    """The one account the genesis funds, which funds the senders."""
    seed = hashlib.sha256(b"ccoin-scale-faucet").digest()
    return crypto.Signer(crypto.PrivateKey(crypto.KeyType.ED25519, seed))


def receiver(i: int) -> bytes:
    """The i-th receiving account's address (nobody holds its key)."""
    return hashlib.sha256(b"ccoin-scale-account-%d" % i).digest()[:20]


@dataclass(frozen=True, slots=True)
class ScalePlan:
    """How big a chain to build: accounts, and transfers among them."""

    n_accounts: int
    n_transfers: int

    def __post_init__(self) -> None:
        if self.n_accounts < MIN_SENDERS + 1 or self.n_transfers < 0:
            raise ValueError(f"a scale chain needs >= {MIN_SENDERS + 1} accounts and >= 0 "
                             "transfers")

    @property
    def n_senders(self) -> int:
        return max(MIN_SENDERS, self.n_accounts // SENDER_SHARE)

    @property
    def total_transfers(self) -> int:
        """The faucet's funding transfers (one per sender), then the plan's."""
        return self.n_senders + self.n_transfers

    @property
    def n_receivers(self) -> int:
        return self.n_accounts - self.n_senders

    def senders(self) -> list[crypto.Signer]:
        return [scale_key(i) for i in range(self.n_senders)]

    def alloc(self) -> dict[bytes, int]:
        """The genesis alloc the chain starts from: the faucet, with every sender's funds."""
        return {faucet_key().address: self.n_senders * (SENDER_FUNDS + FEE)}

    def receivers(self) -> list[bytes]:
        return [receiver(i) for i in range(self.n_receivers)]


def transfers(plan: ScalePlan, senders: list[crypto.Signer], receivers: list[bytes],
              chain_id: int) -> Iterator[Transaction]:
    """The plan's transfers in order, signed as they are drawn: first the faucet funds
    each sender, then transfer i is sent by sender i mod S with its next nonce; the first
    ones go to each receiver in turn (so each receiving account exists), the rest to random
    accounts (receivers or senders)."""
    rng = random.Random(SEED)
    n_senders = len(senders)
    faucet = faucet_key()
    for k, sender in enumerate(senders):
        yield Transaction.create(faucet, chain_id=chain_id, nonce=k, to=sender.address,
                                 amount=SENDER_FUNDS, fee=FEE)
    everyone = len(receivers) + n_senders
    for i in range(plan.n_transfers):
        signer = senders[i % n_senders]
        if i < len(receivers):
            to = receivers[i]
        else:
            k = rng.randrange(everyone)
            to = receivers[k] if k < len(receivers) else senders[k - len(receivers)].address
        yield Transaction.create(signer, chain_id=chain_id, nonce=i // n_senders, to=to,
                                 amount=1 + rng.randrange(MAX_AMOUNT), fee=FEE)


def scale_devnet(workdir: Path, plan: ScalePlan, *, nodes: int, base_port: int,
                 interval_ms: int, max_bound: int, network_id: int,
                 extra_alloc: dict[bytes, int]) -> tuple[Devnet, list[crypto.Signer],
                                                         crypto.Signer]:
    """A single-authority devnet whose genesis funds the plan's faucet (and
    `extra_alloc`); returns it, the senders, and node 1's authority key to seal with."""
    senders = plan.senders()
    net = create_devnet(workdir, nodes=nodes, validators=1, base_port=base_port,
                        interval_ms=interval_ms, max_bound=max_bound, network_id=network_id,
                        extra_alloc={**extra_alloc, **plan.alloc()})
    first = net.nodes[0]
    key = Keystore(first.base_path / "keystore").load(first.account, net.password())
    return net, senders, crypto.Signer(key)


@dataclass(frozen=True, slots=True)
class Built:
    """What the builder made, and how long it took."""

    blocks: int
    transfers: int
    height: int
    seconds: float


def _offer(txs: list[Transaction]) -> Generator[Transaction, bool | None, None]:
    """The candidates of one block, as `build_template` draws them (it says after each
    whether it applied); every one applies, the plan's nonces and funds being right."""
    for tx in txs:
        applied = yield tx
        if applied is False:
            raise RuntimeError(f"a planned transfer did not apply: {tx.id.hex()[:16]}")


def build_chain(chain_dir: Path, genesis: Genesis, authority: crypto.Signer,
                plan: ScalePlan, senders: list[crypto.Signer], *, per_block: int | None = None,
                progress: Callable[[str], None] = lambda _: None) -> Built:
    """Grow the chain in `chain_dir` (created from `genesis` if new) by the plan's
    transfers (`total_transfers`), in blocks of `per_block` (default: the genesis's
    max_bound) sealed by `authority`, which must be the genesis's (first) authority;
    `senders` are `plan.senders()`. Blocks are 1 interval apart from the genesis timestamp:
    in the past, as a chain synced from the network is."""
    per_block = per_block or genesis.max_bound
    started = time.monotonic()
    receivers = plan.receivers()
    source = transfers(plan, senders, receivers, genesis.network_id)
    store = Store(chain_dir)
    blocks = done = 0
    try:
        chain = Chain(store, genesis)
        last_report = started
        while done < plan.total_transfers:
            txs = [tx for _, tx in zip(range(per_block), source, strict=False)]
            block = _seal_next(chain, genesis, authority, txs)
            result = chain.import_block(block, now_ms=int(time.time() * 1000))
            if result.status != BlockStatus.HEAD:
                raise RuntimeError(f"block {block.height} was not made head: {result.status}")
            blocks += 1
            done += len(txs)
            if time.monotonic() - last_report > 10:
                last_report = time.monotonic()
                progress(f"{done:,} of {plan.total_transfers:,} transfers in {blocks} blocks "
                         f"({done / (last_report - started):,.0f}/s)")
        height = chain.head.header.height
    finally:
        store.close()
    return Built(blocks, done, height, time.monotonic() - started)


def _seal_next(chain: Chain, genesis: Genesis, authority: crypto.Signer,
               txs: list[Transaction]) -> Block:
    """The next block on the chain's head with `txs`, sealed as the miner seals it; its
    state changes are left in the chain's template cache, as for the node's own miner."""
    head = chain.head
    parent = head.header
    vote = b""
    if genesis.is_poa:
        vote = authorities.next_vote(genesis.epoch, chain.authorities(parent.hash),
                                     parent.height + 1, authority.address, chain.proposals)
    built = build_template(
        genesis, parent, head.meta.state_value, chain.account, _offer(txs),
        coinbase=authority.address, timestamp=parent.timestamp + genesis.interval_ms,
        extra=b"" if txs else genesis.placeholder_extra(),
        difficulty=chain.next_difficulty(parent), vote=vote)
    if len(built.block.txs) != len(txs) or built.stale:
        raise RuntimeError(f"block {parent.height + 1}: {len(built.stale)} transfers did not "
                           f"apply, {len(txs) - len(built.block.txs)} did not fit")
    chain.templates.put(built.block, built.changes)
    header = built.block.header
    solved = consensus.seal(header, authority if genesis.is_poa else None, PROOF_TRIES)
    if solved is None:
        raise RuntimeError(f"no proof for block {header.height} in {PROOF_TRIES} tries")
    return Block(solved, built.block.txs)
