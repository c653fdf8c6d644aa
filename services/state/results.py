"""What the chain's import and queries return: frozen dataclasses with named fields.

The state service maps each of these to its bus reply field by field (`service.py`), so a
reader sees `tip.branch_length`, never `tip[3]`. Statuses are the `common.status` enums:
the very strings the bus and the REST API carry.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.status import BlockStatus, Direction, TipStatus, TxStatus
from common.types import Account, Block
from services.state.mempool import Removed


@dataclass(frozen=True, slots=True)
class ImportResult:
    """Where an imported block landed; for a new head, the blocks that joined and left the
    main chain (a reorg) and the pool transactions that left because of it."""

    status: BlockStatus  # head | side | known
    block: Block
    connected: tuple[Block, ...] = ()
    disconnected: tuple[Block, ...] = ()
    removed: tuple[Removed, ...] = ()


@dataclass(frozen=True, slots=True)
class TxFate:
    """What became of a transaction that is neither pending nor confirmed."""

    status: TxStatus  # rejected | replaced | dropped
    reason: str  # the error code, or a `RemovalReason` (evicted | stale | reorg-conflict)
    by: bytes  # the replacing transaction
    raw: bytes


@dataclass(frozen=True, slots=True)
class TxLocation:
    """Where a main-chain transaction is: its block and its position in that block."""

    block_hash: bytes
    index: int


@dataclass(frozen=True, slots=True)
class TxState:
    """A transaction as `GET /txs/{id}` reports it. The block fields are set when it is
    confirmed, `expected_nonce` when it is queued, `reason` / `replaced_by` when it left
    the pool unconfirmed (`TxFate`)."""

    status: TxStatus
    raw: bytes
    block_hash: bytes = b""
    height: int = -1
    index: int = -1
    confirmations: int = 0
    reason: str = ""
    replaced_by: bytes = b""
    expected_nonce: int = -1


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    """One main-chain transaction in an account's history, seen from that account."""

    txid: bytes
    height: int
    index: int
    direction: Direction


@dataclass(frozen=True, slots=True)
class AccountHistory:
    """One page of an account's history, newest first; `total` counts every entry the
    account has, `more` says older entries follow the page's last record."""

    total: int
    records: tuple[HistoryRecord, ...]
    more: bool


@dataclass(frozen=True, slots=True)
class TxInclusion:
    """A confirmed transaction's Merkle path to its block's `tx_root`; each step is
    (sibling is on the left, sibling hash), as `common.merkle.verify_proof` takes them."""

    txid: bytes
    block_hash: bytes
    height: int
    index: int
    tx_root: bytes
    steps: tuple[tuple[bool, bytes], ...]


@dataclass(frozen=True, slots=True)
class BranchTip:
    """A stored block with no child: the head, a lighter branch, or a block found invalid.
    `branch_length` counts a fork's blocks off the main chain (0 for the head)."""

    hash: bytes
    height: int
    total_weight: int
    branch_length: int
    status: TipStatus



@dataclass(frozen=True, slots=True)
class AccountChange:
    """An account a main-chain block changed: as it was before the block and after it."""

    address: bytes
    before: Account
    after: Account
