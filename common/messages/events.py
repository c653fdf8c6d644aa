"""The events the state service publishes (PUB) after each commit, one topic each."""

from __future__ import annotations

from common.fields import U63, U64, Hash32
from common.messages.envelope import Message, message
from common.status import RemovalReason


@message("ev_head")
class HeadEvent(Message):
    """Topic `head`: a block became the head; `pool_count` is the pool's size right after
    (so a chart of pool size per block needs no extra request)."""

    height: U63
    hash: Hash32
    total_weight: U64
    tx_count: U63
    timestamp: U63
    pool_count: U63


@message("ev_txs")
class TxsEvent(Message):
    """Topic `txs`: transactions the pool accepted."""

    ids: tuple[Hash32, ...]


@message("ev_reorg")
class ReorgEvent(Message):
    """Topic `reorg`: block hashes left and joined the main chain."""

    disconnected: tuple[Hash32, ...]
    connected: tuple[Hash32, ...]


@message("ev_txs_removed")
class TxsRemovedEvent(Message):
    """Topic `txs_removed`: transactions that left the pool other than by inclusion;
    `reasons[i]` says why `ids[i]` left."""

    ids: tuple[Hash32, ...]
    reasons: tuple[RemovalReason, ...]
