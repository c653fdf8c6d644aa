"""Block templates: the unsealed block the miner asks for, and the memory of the ones handed
out, so the miner's own sealed block is not applied a second time on import.

`build_template` is a function of its inputs (the parent, an account view, the pool's
candidates in fee order): it applies each candidate on an overlay and keeps those that apply,
up to the block's byte budget. The chain drops the ones that no longer apply from the pool
and remembers the template's state changes in a `TemplateCache`.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

from common import errors
from common.genesis import Genesis
from common.ledger import (
    AccountView,
    Overlay,
    StateChanges,
    apply_transaction,
    credit_coinbase,
    finish,
)
from common.merkle import merkle_root
from common.types import MAX_BLOCK_BYTES, Block, BlockHeader, Transaction

TEMPLATE_CACHE = 8
HEADER_ROOM = 64 * 1024  # header and framing: a full block still decodes at a peer
TX_FRAMING = 3  # msgpack's bin header of one raw transaction in the block


@dataclass(frozen=True, slots=True)
class Template:
    """An unsealed block, the state changes it makes, and the candidates that no longer
    apply on its parent (to be dropped from the pool as stale)."""

    block: Block
    changes: StateChanges
    stale: tuple[Transaction, ...]


def build_template(genesis: Genesis, parent: BlockHeader, parent_state_value: int,
                   view: AccountView, candidates: Generator[Transaction, bool | None, None], *,
                   coinbase: bytes, timestamp: int, extra: bytes, difficulty: int,
                   vote: bytes = b"") -> Template:
    """A block on `parent` with the candidates that apply, in the order offered; the
    generator is told after each whether it applied (a rejected one ends its sender's run,
    `Mempool.select`). The coinbase gets the reward and the fees; `vote` is the header's
    (`common.authorities.next_vote`)."""
    state = Overlay(view)
    chosen: list[Transaction] = []
    stale: list[Transaction] = []
    fees = 0
    room = MAX_BLOCK_BYTES - HEADER_ROOM
    ok: bool | None = None
    while True:
        try:
            tx = candidates.send(ok) if ok is not None else next(candidates)
        except StopIteration:
            break
        if len(tx.raw) > room:
            break
        try:
            apply_transaction(state, tx, genesis.network_id)
        except errors.InvalidTransaction:
            stale.append(tx)
            ok = False
            continue
        chosen.append(tx)
        fees += tx.fee
        room -= len(tx.raw) + TX_FRAMING
        ok = True
    credit_coinbase(state, coinbase, genesis.reward + fees)
    changes = finish(state, fees, parent_state_value)
    header = BlockHeader(
        height=parent.height + 1, parent=parent.hash,
        timestamp=max(timestamp, parent.timestamp + 1), coinbase=coinbase,
        tx_root=merkle_root([tx.id for tx in chosen]), state_root=changes.state_root,
        difficulty=difficulty, nonce=0, extra=extra, vote=vote)
    return Template(Block(header, tuple(chosen)), changes, tuple(stale))


class TemplateCache:
    """The templates handed out on the current head, by what a sealed copy keeps of its
    template: parent, coinbase and transactions (`tx_root`). Sealing changes only the proof
    fields, so a submitted block that matches one, carries the same state root and holds
    that template's very transactions was built here: its body was checked as it was
    built, and its changes need not be computed again."""

    __slots__ = ("_items", "_limit")

    def __init__(self, limit: int = TEMPLATE_CACHE) -> None:
        self._items: dict[tuple[bytes, bytes, bytes], tuple[Block, StateChanges]] = {}
        self._limit = limit

    @staticmethod
    def _key(header: BlockHeader) -> tuple[bytes, bytes, bytes]:
        return header.parent, header.coinbase, header.tx_root

    def put(self, block: Block, changes: StateChanges) -> None:
        if len(self._items) >= self._limit:
            self._items.clear()
        self._items[self._key(block.header)] = (block, changes)

    def body(self, header: BlockHeader) -> Block | None:
        """The template a sealed `header` may have been made from (`Block.decode` takes its
        transactions only if they are the block's very bytes)."""
        item = self._items.get(self._key(header))
        return item[0] if item is not None else None

    def take(self, block: Block) -> StateChanges | None:
        """The changes of the template `block` was sealed from, if it was one of ours and
        holds that template's transactions (`body`)."""
        item = self._items.pop(self._key(block.header), None)
        if item is None:
            return None
        template, changes = item
        if block.txs is template.txs and changes.state_root == block.header.state_root:
            return changes
        return None

    def clear(self) -> None:
        """The head moved: templates on the old head are of no use."""
        self._items.clear()
