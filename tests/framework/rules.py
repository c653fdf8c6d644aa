"""Builders shared by the rules' tests: deterministic keys, genesis files, signed transactions,
and a small dict-backed chain that builds and seals valid blocks with the very code the node
uses (`common.ledger`'s overlay and `common.consensus`'s seal and proof search).

Nothing here decides validity: a block built by `Chain.build` is valid only because the
rules in `common/` say so when `Chain.apply` checks it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any

from common import authorities, consensus, crypto, ledger
from common.genesis import Genesis, genesis_block, parse_genesis
from common.merkle import merkle_root
from common.statehash import from_scratch, root_of
from common.types import EMPTY_ACCOUNT, Account, Block, BlockHeader, Transaction

CHAIN_ID = 7
GENESIS_TIME = 1_700_000_000_000
INTERVAL_MS = 10_000


def key(n: int) -> crypto.PrivateKey:
    """The n-th deterministic Ed25519 key: seed = SHA-256(b"ccoin-vector-<n>")."""
    seed = hashlib.sha256(b"ccoin-vector-%d" % n).digest()
    return crypto.PrivateKey(crypto.KeyType.ED25519, seed)


def signer(n: int) -> crypto.Signer:
    return crypto.Signer(key(n))


def address(n: int) -> bytes:
    return key(n).address


def genesis_doc(*, miners: Sequence[bytes] = (), difficulty: int = 0, reward: int = 100,
                alloc: dict[bytes, int] | None = None, network_id: int = CHAIN_ID,
                interval_ms: int = INTERVAL_MS, retarget_blocks: int = 10,
                max_bound: int = 1000, genesis_difficulty: int = 0,
                genesis_timestamp: int = GENESIS_TIME, epoch: int | None = None,
                ) -> dict[str, Any]:
    """A genesis file (as the JSON object) in ccoin's shape; both difficulties in bits (the
    file's `difficulty_bits`: its `difficulty` would count hex digits); `epoch` left out
    (its default) unless given."""
    if alloc is None:
        alloc = {address(i): 1_000_000 for i in range(1, 4)}
    return {
        "network_id": network_id,
        "miners": [m.hex() for m in miners],
        "block_mining": {
            "interval": max(interval_ms // 1000, 1), "interval_ms": interval_ms,
            "max_bound": max_bound, "min_bound": 0, "reward": reward,
            "difficulty_bits": difficulty, "allow_empty": True, "placeholder_data": ["rnd", 15],
            "retarget_blocks": retarget_blocks,
            **({"epoch": epoch} if epoch is not None else {}),
        },
        "max_peers": 0,
        "genesis_block": {"coinbase": "", "coinbase_reward": 0,
                          "difficulty_bits": genesis_difficulty,
                          "timestamp": genesis_timestamp},
        "alloc": {a.hex(): {"balance": b} for a, b in alloc.items()},
    }


def make_genesis(**kwargs: Any) -> Genesis:
    """Parse a genesis built by `genesis_doc` through the real parser."""
    return parse_genesis(json.dumps(genesis_doc(**kwargs)))


def poa_genesis(n_miners: int = 3, difficulty: int = 4, **kwargs: Any) -> Genesis:
    """PoA with authorities key(100), key(101), ...; HashCash at `difficulty` bits."""
    return make_genesis(miners=[address(100 + i) for i in range(n_miners)],
                        difficulty=difficulty, **kwargs)


def transfer(sender: int | crypto.Signer, to: bytes, amount: int, *, nonce: int, fee: int = 0,
             data: bytes = b"", chain_id: int = CHAIN_ID) -> Transaction:
    s = signer(sender) if isinstance(sender, int) else sender
    return Transaction.create(s, chain_id=chain_id, nonce=nonce, to=to, amount=amount, fee=fee,
                              data=data)


def state_changes(view: ledger.AccountView, parent_value: int, txs: Iterable[Transaction],
                  coinbase: bytes, chain_id: int, reward: int) -> ledger.StateChanges:
    """What `ledger.apply_block` computes, without the final state-root comparison: the
    miner's side of the rule (the header's state root is taken from here)."""
    state = ledger.Overlay(view)
    fees = ledger.apply_transactions(state, txs, chain_id)
    ledger.credit_coinbase(state, coinbase, reward + fees)
    return ledger.finish(state, fees, parent_value)


def authority_signer(addr: bytes) -> crypto.Signer:
    """The key of an authority address: authorities are `signer(100 + i)`."""
    for n in range(100, 100 + authorities.MAX_AUTHORITIES):
        if address(n) == addr:
            return signer(n)
    raise KeyError(f"{addr.hex()} is not one of the test authorities")


def seal(genesis: Genesis, header: BlockHeader, sealer: crypto.Signer | None) -> BlockHeader:
    """HashCash proof, then (PoA) the seal signature over the seal hash."""
    solved = consensus.seal(header, sealer, 1 << 24)
    assert solved is not None
    return solved


class Chain:
    """A chain over a dict-backed world state: build valid blocks, check and apply them."""

    def __init__(self, genesis: Genesis) -> None:
        self.genesis = genesis
        self.blocks: list[Block] = [genesis_block(genesis)]
        self.accounts: dict[bytes, Account] = {
            a: acc for a, acc in genesis.initial_accounts().items() if not acc.is_empty()}
        self.state_value = from_scratch(self.accounts.items())
        self.values: list[int] = [self.state_value]  # state value after each block
        self.changes: list[ledger.StateChanges] = []
        # the authorities after each block (common.authorities)
        self.snapshots: list[authorities.Snapshot] = [
            authorities.genesis_snapshot(genesis.miners)]

    # --- reading ---------------------------------------------------------------------------

    def view(self, address: bytes) -> Account:
        return self.accounts.get(address, EMPTY_ACCOUNT)

    @property
    def tip(self) -> BlockHeader:
        return self.blocks[-1].header

    @property
    def snapshot(self) -> authorities.Snapshot:
        """The authorities after the tip."""
        return self.snapshots[-1]

    def recent_signers(self) -> list[bytes]:
        """Coinbases of the blocks after genesis, oldest first (consensus slices the window)."""
        return [b.header.coinbase for b in self.blocks[1:]]

    def anchor_timestamp(self, height: int) -> int | None:
        anchor = consensus.retarget_anchor_height(self.genesis, height)
        return None if anchor is None else self.blocks[anchor].header.timestamp

    def total_supply(self) -> int:
        return sum(acc.balance for acc in self.accounts.values())

    def default_sealer(self, height: int) -> bytes:
        """The in-turn authority, or when the recency rule forbids it (just after the set
        changed) the first in turn order that may seal."""
        signers = self.snapshot.signers
        window = consensus.recency_window(signers)
        recent = self.recent_signers()[-window:] if window else []
        order = [consensus.in_turn_signer(signers, height), *signers]
        return next((a for a in order if a not in recent), order[0])

    # --- building --------------------------------------------------------------------------

    def build(self, txs: Sequence[Transaction] = (), *, sealer: crypto.Signer | None = None,
              coinbase: bytes | None = None, timestamp: int | None = None, extra: bytes = b"",
              reward: int | None = None, vote: bytes | None = None,
              **overrides: Any) -> Block:
        """A valid block on the tip (unless `overrides` break it): Merkle root of `txs`, the
        state root after applying them plus `reward` (default: the genesis reward) and fees to
        the coinbase, the required difficulty, a HashCash proof and, in PoA, the seal of
        `sealer` (default: `default_sealer`), and `vote` (default: none, or the list a
        checkpoint carries)."""
        g = self.genesis
        parent = self.tip
        height = parent.height + 1
        if g.is_poa and sealer is None:
            sealer = authority_signer(self.default_sealer(height))
        if coinbase is None:
            coinbase = sealer.address if sealer is not None else address(0)
        if vote is None:
            vote = (authorities.checkpoint_field(self.snapshot)
                    if g.is_poa and authorities.is_checkpoint(g.epoch, height) else b"")
        changes = state_changes(self.view, self.state_value, txs, coinbase, g.network_id,
                                g.reward if reward is None else reward)
        header = BlockHeader(
            height=height, parent=parent.hash,
            timestamp=parent.timestamp + g.interval_ms if timestamp is None else timestamp,
            coinbase=coinbase, tx_root=merkle_root([tx.id for tx in txs]),
            state_root=changes.state_root,
            difficulty=consensus.next_difficulty(g, parent, self.anchor_timestamp(height)),
            nonce=0, extra=extra, vote=vote)
        if overrides:
            header = header.replace(**overrides)
        return Block(seal(g, header, sealer), tuple(txs))

    # --- checking and applying -------------------------------------------------------------

    def validate(self, block: Block, *, now_ms: int | None = None) -> authorities.Snapshot:
        """Check `block` against the tip; the authorities after it."""
        header = block.header
        snapshot = consensus.validate_header(
            self.genesis, self.tip, header,
            now_ms=header.timestamp if now_ms is None else now_ms,
            recent_signers=self.recent_signers(),
            anchor_timestamp=self.anchor_timestamp(header.height), snapshot=self.snapshot)
        consensus.validate_body(self.genesis, block)
        return snapshot

    def apply(self, block: Block, *, validate: bool = True) -> ledger.StateChanges:
        """Check `block` against the tip and commit it; nothing changes if it raises."""
        g = self.genesis
        snapshot = (self.validate(block) if validate else
                    authorities.apply_header(g.is_poa, g.epoch, self.snapshot, block.header))
        changes = ledger.apply_block(self.view, self.state_value, block, self.genesis.network_id,
                                     self.genesis.reward)
        self._write(changes.after)
        self.state_value = changes.state_value
        self.blocks.append(block)
        self.values.append(changes.state_value)
        self.changes.append(changes)
        self.snapshots.append(snapshot)
        return changes

    def build_and_apply(self, txs: Sequence[Transaction] = (), **kwargs: Any) -> Block:
        block = self.build(txs, **kwargs)
        self.apply(block)
        return block

    def undo(self) -> Block:
        """Disconnect the tip by restoring the accounts it touched (`changes.before`)."""
        block = self.blocks.pop()
        changes = self.changes.pop()
        self.values.pop()
        self.snapshots.pop()
        self._write(changes.before)
        self.state_value = self.values[-1]
        return block

    def _write(self, accounts: dict[bytes, Account]) -> None:
        for addr, acc in accounts.items():
            if acc.is_empty():
                self.accounts.pop(addr, None)
            else:
                self.accounts[addr] = acc

    def state_root(self) -> bytes:
        return root_of(self.state_value)

    def scratch_root(self) -> bytes:
        return root_of(from_scratch(self.accounts.items()))
