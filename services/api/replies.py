"""What the REST gateway answers: every reply shape, declared once, and its rendering
(those of the node's own routes, peers, mining and health, are in `node_replies`).

Each shape is a `services.api.spec.Shape`: the OpenAPI response model and the JSON the
routes send are both derived from it, so `/docs` shows exactly the members a reply has. Most
replies are read from a bus reply or a domain object by attribute; what a route computes
(a page's offset, a status's explanation) it passes by name, and `Shape.render` refuses a
name the shape does not declare. `JSONResponse` writes them with orjson.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from common.messages import StatusReply, TxReply
from common.status import AssumeValidState, Direction, TipStatus, TxStatus
from common.types import Account, Block, BlockOutline, Transaction
from services.api.kinds import AnyJSON, Bool, Choice, Hex, Int, ListOf, Nullable, Text
from services.api.schema import KEY_TYPE_NAMES
from services.api.spec import Field, Rendered, Shape

INT, HEX, STR, BOOL = Int(), Hex(), Text(), Bool()
MAYBE_HEX, MAYBE_INT = Nullable(HEX), Nullable(INT)


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def or_none(value: bytes) -> bytes | None:
    return value or None


# --- errors ----------------------------------------------------------------------------------

ERROR_DETAIL = Shape("ErrorDetail", [
    Field("code", STR, "machine-readable error code (DESIGN §6)", example="bad_signature"),
    Field("message", STR, "human-readable explanation"),
])
ERROR_OUT = Shape("ErrorOut", [Field("error", ERROR_DETAIL)], examples=[
    {"error": {"code": "nonce_gap", "message": "nonce 9 is ahead of the next nonce 7"}}])


def error_body(error: Any) -> dict[str, Any]:
    """`{"error": {"code", "message"}}` of anything with a `code` and a `message` (a
    `CcoinError`, a state `TxRefusal`)."""
    return ERROR_OUT.render(error=error)


# --- transactions ----------------------------------------------------------------------------

_TX_EXAMPLE: dict[str, Any] = {
    "id": "9c" * 32, "from": "3f" * 20, "to": "11" * 20, "amount": 1000, "fee": 1, "nonce": 7,
    "data": "", "chain_id": 1337, "key_type": "ed25519", "public_key": "ab" * 32,
    "signature": "cd" * 64, "size": 141,
}

TX_OUT = Shape("TxOut", [
    Field("id", HEX),
    Field("from", HEX, src="sender"),
    Field("to", HEX),
    Field("amount", INT),
    Field("fee", INT),
    Field("nonce", INT),
    Field("data", HEX),
    Field("chain_id", INT),
    Field("key_type", Choice(("ed25519", "rsa")),
          src=lambda tx: KEY_TYPE_NAMES.get(tx.key_type, str(tx.key_type))),
    Field("public_key", HEX),
    Field("signature", HEX),
    Field("size", INT, src=lambda tx: len(tx.raw)),
], examples=[_TX_EXAMPLE])

TX_STATUS_OUT = TX_OUT.extend("TxStatusOut", [
    Field("status", Choice.of(TxStatus),
          "pending: ready in the pool; queued: in the pool behind a nonce gap "
          "(`expected_nonce`); confirmed: in a main-chain block; rejected: refused by the "
          "pool (`reason` is the error code); replaced: by a same-nonce transaction paying "
          "more (`replaced_by`); dropped: left the pool (`reason`: evicted, stale or "
          "reorg-conflict)", src=None),
    Field("explanation", STR, "the status in one human sentence", src=None),
    Field("block", MAYBE_HEX, src=None),
    Field("height", MAYBE_INT, src=None),
    Field("index", MAYBE_INT, src=None),
    Field("confirmations", INT, src=None),
    Field("expected_nonce", MAYBE_INT, "queued: the sender's next nonce", src=None),
    Field("reason", Nullable(STR), "rejected: the error code; dropped: evicted, stale or "
                                   "reorg-conflict", src=None),
    Field("replaced_by", MAYBE_HEX, "replaced: the id of the replacing transaction",
          src=None),
], doc="A transaction and what became of it; fields that do not apply to its status are "
       "null.", examples=[
    {**_TX_EXAMPLE, "status": "confirmed", "explanation": "in block 42 with 3 "
     "confirmation(s)", "block": "5e" * 32, "height": 42, "index": 0, "confirmations": 3,
     "expected_nonce": None, "reason": None, "replaced_by": None},
    {**_TX_EXAMPLE, "status": "queued", "explanation": "in the pool, waiting for nonce 3 "
     "of its sender before nonce 7 can be mined", "block": None, "height": None,
     "index": None, "confirmations": 0, "expected_nonce": 3, "reason": None,
     "replaced_by": None}])

DROP_REASONS = {
    "evicted": "evicted from the full pool by transactions paying higher fees",
    "stale": "no longer valid after a new block (its nonce was used or its sender cannot "
             "pay any more)",
    "reorg-conflict": "returned to the pool by a reorg but no longer valid on the new chain",
}


def explain(reply: TxReply, tx: Transaction) -> str:
    """One sentence saying what a transaction's status means and what happens next."""
    status = reply.status
    if status == TxStatus.PENDING:
        return "in the pool, ready for the next block"
    if status == TxStatus.QUEUED:
        return (f"in the pool, waiting for nonce {reply.expected_nonce} of its sender "
                f"before nonce {tx.nonce} can be mined")
    if status == TxStatus.CONFIRMED:
        return f"in block {reply.height} with {reply.confirmations} confirmation(s)"
    if status == TxStatus.REJECTED:
        return f"refused by the node's pool: {reply.reason}"
    if status == TxStatus.REPLACED:
        return (f"replaced by {reply.replaced_by.hex()}, which has the same sender and nonce "
                f"and pays a higher fee")
    if status == TxStatus.DROPPED:
        return "dropped from the pool: " + DROP_REASONS.get(reply.reason, reply.reason)
    return str(status)


def tx_status_json(reply: TxReply) -> dict[str, Any]:
    """GET /txs/{id}: the transaction with its explained status."""
    tx = Transaction.decode(reply.tx)
    status = reply.status
    confirmed = status == TxStatus.CONFIRMED
    return TX_STATUS_OUT.render(
        tx, status=status, explanation=explain(reply, tx),
        block=reply.block_hash if confirmed else None,
        height=reply.height if confirmed else None,
        index=reply.index if confirmed else None,
        confirmations=reply.confirmations if confirmed else 0,
        expected_nonce=reply.expected_nonce if status == TxStatus.QUEUED else None,
        reason=reply.reason if status in (TxStatus.REJECTED, TxStatus.DROPPED) else None,
        replaced_by=reply.replaced_by if status == TxStatus.REPLACED else None)


ID_OUT = Shape("IdOut", [Field("id", HEX)], examples=[{"id": "9c" * 32}])
SEND_OUT = Shape("SendOut", [Field("id", HEX), Field("nonce", INT),
                             Field("from", HEX, src="sender")],
                 examples=[{"id": "9c" * 32, "nonce": 7, "from": "3f" * 20}])

BATCH_ITEM = Shape("BatchItem", [
    Field("id", MAYBE_HEX, required=False),
    Field("status", Choice(("accepted",)), required=False),
    Field("error", Nullable(ERROR_DETAIL), required=False),
])
BATCH_OUT = Shape("BatchOut", [
    Field("results", ListOf(Rendered(BATCH_ITEM)), "one per submitted item, in order"),
    Field("accepted", INT),
], examples=[{"results": [
    {"id": "9c" * 32, "status": "accepted"},
    {"id": "8b" * 32, "error": {"code": "bad_signature", "message": "signature does not verify"}},
    {"error": {"code": "malformed", "message": "transaction must be a JSON object"}}],
    "accepted": 1}])

PROOF_STEP_OUT = Shape("ProofStepOut", [
    Field("left", BOOL, "the sibling is on the left: node = H(0x01 || sibling || acc); else "
                        "H(0x01 || acc || sibling)"),
    Field("hash", HEX),
])
PROOF_OUT = Shape("ProofOut", [
    Field("id", HEX),
    Field("block", HEX, "hash of the block holding the transaction", src="block_hash"),
    Field("height", INT),
    Field("index", INT, "position of the transaction in the block"),
    Field("tx_root", HEX, "the block header's tx_root"),
    Field("steps", ListOf(PROOF_STEP_OUT), "siblings from the leaf up to the root"),
], doc="Merkle inclusion proof of a confirmed transaction: start from leaf = "
       "SHA-256(0x00 || id), fold in each step, compare with the header's `tx_root`.",
   examples=[{"id": "9c" * 32, "block": "5e" * 32, "height": 42, "index": 2,
              "tx_root": "7a" * 32, "steps": [{"left": False, "hash": "01" * 32},
                                              {"left": True, "hash": "02" * 32}]}])

MEMPOOL_OUT = Shape("MempoolOut", [
    Field("count", INT, "transactions in the whole pool"),
    Field("bytes", INT, "their encoded size", src="size"),
    Field("offset", INT, src=None),
    Field("limit", INT, src=None),
    Field("sender", MAYBE_HEX, "the sender this page is narrowed to, if any", src=None),
    Field("txs", ListOf(TX_OUT), "arrival order; one sender's in nonce order", src=None),
], examples=[{"count": 1, "bytes": 141, "offset": 0, "limit": 100, "sender": None,
              "txs": [_TX_EXAMPLE]}])

POOL_SAMPLE_OUT = Shape("PoolSampleOut", [
    Field("height", INT, "the block that became the head", src=lambda s: s[0]),
    Field("count", INT, "transactions in the pool right after", src=lambda s: s[1]),
])
POOL_HISTORY_OUT = Shape("PoolHistoryOut", [
    Field("samples", ListOf(POOL_SAMPLE_OUT), src=None),
], doc="The pool's size at each of the last heads this gateway saw (since it started), "
       "oldest first; after a reorg, the samples of the abandoned blocks are gone.",
   examples=[{"samples": [{"height": 41, "count": 12}, {"height": 42, "count": 3}]}])


# --- the chain -------------------------------------------------------------------------------

MEMPOOL_STATUS = Shape("Mempool", [
    Field("count", INT, src="mempool_count"),
    Field("bytes", INT, src="mempool_bytes"),
    Field("ready", INT, src="ready_count"),
])


STORAGE_STATUS = Shape("Storage", [
    Field("ok", BOOL, "false while state refuses transactions and blocks (see `problem`)",
          src=lambda status: not status.storage),
    Field("problem", STR, "why, in one line (\"\" when ok): the database is damaged (run "
                          "`ccoin node check`), a write failed (state reopens the database "
                          "once the disk takes writes again), or free space is below "
                          "`chain.min_free_mb`", src="storage"),
    Field("free_bytes", INT, "free space for the chain database", src="disk_free"),
    Field("min_free_bytes", INT, "`chain.min_free_mb` in bytes: below it, transactions and "
                                 "blocks are refused (0: no such guard)", src="min_free"),
])


_SHOWN = (AssumeValidState.FOUND, AssumeValidState.REACHED)

ASSUME_VALID_STATUS = Shape("AssumeValid", [
    Field("block", MAYBE_HEX, "the block `sync.assume_valid` (or `ccoin node start "
                              "--assume-valid`) vouches for; null when assume-valid is off",
          src=lambda a: or_none(a.target)),
    Field("state", Choice.of(AssumeValidState),
          "off; searching: no peer's headers have shown the block yet (each sync round walks "
          "them first); found: a peer's chain holds it at `height`, and synced blocks up to it "
          "skip their signatures; missing: the last peer's chain does not hold it, so its "
          "blocks are synced with every signature verified; reached: our chain holds it, and "
          "every block after it is verified in full"),
    Field("height", MAYBE_INT, "the block's height once found or reached (null before)",
          src=lambda a: a.height if a.state in _SHOWN else None),
    Field("signatures_skipped", INT, "transaction signatures sync did not check for it, "
                                     "since p2p started (seals, Merkle roots, state roots and "
                                     "balances were)", src="skipped"),
    Field("blocks_skipped", INT, "synced blocks whose signatures were not checked, since p2p "
                                 "started", src="blocks"),
], doc="Assume-valid sync (README: Assume-valid sync).")


def _consensus(status: StatusReply) -> str:
    return "poa" if status.poa else "pow"


STATUS_OUT = Shape("StatusOut", [
    Field("network_id", INT),
    Field("genesis", HEX),
    Field("height", INT),
    Field("head", HEX),
    Field("head_timestamp", INT, "milliseconds since the epoch"),
    Field("total_weight", INT),
    Field("state_root", HEX),
    Field("peers", INT, "connected peers; 0 when no p2p service answers (see `p2p`)", src=None),
    Field("p2p_endpoint", Nullable(STR), "where other nodes reach this one, as POST /peers "
                                         "takes it (with `#<curve key>` when CurveZMQ is on); "
                                         "null when it listens nowhere", src=None),
    Field("chain_host", Nullable(STR), "the state service this gateway reaches over tcp:// "
                                       "(on another host), and how; null when local", src=None),
    Field("syncing", BOOL, src=None),
    Field("p2p", BOOL, "false when no p2p service answers on this node: `peers` and "
                       "`syncing` are then unknown, not zero", src=None),
    Field("mining", BOOL, src=None),
    Field("validator", BOOL, "false when no miner answers on this node (a basic node)",
          src=None),
    Field("version", STR, src=None),
    Field("consensus", Choice(("poa", "pow")), src=_consensus),
    Field("difficulty", INT, "HashCash bits the next block needs (a genesis file's "
                             "`difficulty` counts hex digits: 4 bits each)"),
    Field("authorities", ListOf(HEX), src="miners"),
    Field("recent_signers", ListOf(HEX)),
    Field("mempool", MEMPOOL_STATUS, src=lambda status: status),
    Field("storage", STORAGE_STATUS, src=lambda status: status),
    Field("assume_valid", Nullable(ASSUME_VALID_STATUS), "what assume-valid sync is doing; "
                                                         "null when no p2p service answers",
          src=None),
], examples=[{
    "network_id": 1337, "genesis": "7c" * 32, "height": 42, "head": "5e" * 32,
    "head_timestamp": 1767225600000, "total_weight": 84, "state_root": "2e" * 32,
    "peers": 3, "p2p_endpoint": "tcp://10.0.0.7:30333", "chain_host": None, "syncing": False,
    "p2p": True,
    "mining": True, "validator": True,
    "version": "0.1.0", "consensus": "poa",
    "difficulty": 4, "authorities": ["3f" * 20], "recent_signers": ["3f" * 20],
    "mempool": {"count": 2, "bytes": 282, "ready": 2},
    "storage": {"ok": True, "problem": "", "free_bytes": 52613349376,
                "min_free_bytes": 104857600},
    "assume_valid": {"block": "6a" * 32, "state": "reached", "height": 40000,
                     "signatures_skipped": 1250000, "blocks_skipped": 40000}}])

COUNT_OUT = Shape("CountOut", [Field("count", INT)], examples=[{"count": 43}])

HEADER_OUT = Shape("HeaderOut", [
    Field("height", INT),
    Field("parent", HEX),
    Field("timestamp", INT, "milliseconds since the epoch"),
    Field("coinbase", HEX),
    Field("tx_root", HEX),
    Field("state_root", HEX),
    Field("difficulty", INT, "HashCash bits: leading zero bits the seal hash has at least"),
    Field("nonce", INT),
    Field("extra", HEX),
    Field("vote", HEX, "the sealer's authority vote: an address and 01 (add) or 00 (remove); "
                       "a checkpoint's authority list; empty for none (protocol §6.1)"),
    Field("signer", HEX),
    Field("signer_key_type", STR, src=lambda h: KEY_TYPE_NAMES.get(
        h.signer_key_type, str(h.signer_key_type)) if h.signer_public_key else ""),
    Field("signer_public_key", HEX),
    Field("signature", HEX),
    Field("seal_hash", HEX),
])
_HEADER_EXAMPLE: dict[str, Any] = {
    "height": 42, "parent": "4d" * 32, "timestamp": 1767225600000, "coinbase": "3f" * 20,
    "tx_root": "7a" * 32, "state_root": "2e" * 32, "difficulty": 4, "nonce": 17,
    "extra": "", "vote": "", "signer": "3f" * 20, "signer_key_type": "ed25519",
    "signer_public_key": "ab" * 32, "signature": "cd" * 64, "seal_hash": "0e" * 32,
}

_BLOCK_FIELDS = (
    Field("hash", HEX),
    Field("header", HEADER_OUT),
)
_BLOCK_SIZES = (
    Field("tx_count", INT, src=lambda b: len(b.tx_ids)),
    Field("size", INT),
)
ACCOUNT_STATE_OUT = Shape("AccountStateOut", [Field("balance", INT), Field("nonce", INT)])
ACCOUNT_CHANGE_OUT = Shape("AccountChangeOut", [
    Field("address", HEX),
    Field("before", ACCOUNT_STATE_OUT, "as it was before the block",
          src=lambda c: Account(c.balance_before, c.nonce_before)),
    Field("after", ACCOUNT_STATE_OUT, "as the block left it (later blocks may have changed "
                                      "it again)",
          src=lambda c: Account(c.balance_after, c.nonce_after)),
])
BLOCK_OUT = Shape("BlockOut", [
    *_BLOCK_FIELDS,
    Field("txs", ListOf(TX_OUT)),
    *_BLOCK_SIZES,
    Field("total_weight", INT, src=None),
    Field("confirmations", INT, src=None),
    Field("on_main_chain", BOOL, src=None),
    Field("changes", Nullable(ListOf(ACCOUNT_CHANGE_OUT)),
          "the accounts the block changed, before -> after, in the order it first touched "
          "them (the genesis block: its initial accounts, from 0); null for a block off the "
          "main chain, whose state the node does not keep; absent with changes=false",
          required=False, src=None),
], examples=[{"hash": "5e" * 32, "header": _HEADER_EXAMPLE, "txs": [_TX_EXAMPLE],
              "tx_count": 1, "size": 512, "total_weight": 84, "confirmations": 1,
              "on_main_chain": True, "changes": [
                  {"address": "3f" * 20, "before": {"balance": 5000, "nonce": 7},
                   "after": {"balance": 3999, "nonce": 8}},
                  {"address": "11" * 20, "before": {"balance": 0, "nonce": 0},
                   "after": {"balance": 1000, "nonce": 0}}]}])
BLOCK_SUMMARY = Shape("BlockSummary", [
    *_BLOCK_FIELDS,
    Field("txs", ListOf(AnyJSON()), "transaction ids, or whole transactions with full=true",
          src=lambda b: [i.hex() for i in b.tx_ids]),
    *_BLOCK_SIZES,
    Field("confirmations", INT, src=None),
])
BLOCKS_OUT = Shape("BlocksOut", [
    Field("height", INT),
    Field("blocks", ListOf(Rendered(BLOCK_SUMMARY)), src=None),
], examples=[{"height": 42, "blocks": [{
    "hash": "5e" * 32, "header": _HEADER_EXAMPLE, "txs": ["9c" * 32], "tx_count": 1,
    "size": 512, "confirmations": 1}]}])


def block_summary_json(block: Block | BlockOutline, *, confirmations: int) -> dict[str, Any]:
    """A block of a page: a whole `Block` lists its transactions, an outline their ids."""
    if isinstance(block, Block):
        return BLOCK_SUMMARY.render(block, confirmations=confirmations,
                                    txs=[TX_OUT.render(tx) for tx in block.txs])
    return BLOCK_SUMMARY.render(block, confirmations=confirmations)


TIP_OUT = Shape("TipOut", [
    Field("hash", HEX),
    Field("height", INT),
    Field("total_weight", INT),
    Field("branch_length", INT, "blocks from the main chain to this tip (0 for the head)"),
    Field("status", Choice.of(TipStatus)),
])
TIPS_OUT = Shape("TipsOut", [Field("tips", ListOf(TIP_OUT))], examples=[{"tips": [
    {"hash": "5e" * 32, "height": 42, "total_weight": 84, "branch_length": 0,
     "status": "active"},
    {"hash": "6f" * 32, "height": 40, "total_weight": 79, "branch_length": 1,
     "status": "valid-fork"}]}])

# --- accounts --------------------------------------------------------------------------------

ACCOUNT_OUT = Shape("AccountOut", [
    Field("address", HEX),
    Field("balance", INT),
    Field("nonce", INT),
    Field("pending_nonce", INT, "the nonce the account's next transaction needs"),
], examples=[{"address": "3f" * 20, "balance": 1000, "nonce": 7, "pending_nonce": 9}])

WALLET_OUT = ACCOUNT_OUT.extend("WalletOut", [
    Field("pending_out", INT, "amount + fee of the account's transactions in the pool",
          src=None),
    Field("available", INT, "balance − pending_out: what a new send may still spend",
          src=None),
    Field("key_type", Nullable(STR), "ed25519 or rsa; null when the key is not loaded",
          src=None),
    Field("public_key", MAYBE_HEX, "the key's public half (the private key is never served)",
          src=None),
    Field("can_sign", BOOL, src=None),
], examples=[{"address": "3f" * 20, "balance": 1000, "nonce": 7, "pending_nonce": 9,
              "pending_out": 202, "available": 798, "key_type": "ed25519",
              "public_key": "ab" * 32, "can_sign": True}])

_TX_DETAIL = "only when the node still serves the transaction"
HISTORY_ITEM_OUT = Shape("HistoryItemOut", [
    Field("id", HEX),
    Field("height", INT),
    Field("index", INT),
    Field("direction", Choice.of(Direction)),
    *(Field(name, kind, _TX_DETAIL, required=False) for name, kind in (
        ("from", MAYBE_HEX), ("to", MAYBE_HEX), ("amount", MAYBE_INT), ("fee", MAYBE_INT),
        ("nonce", MAYBE_INT), ("data", MAYBE_HEX), ("block", MAYBE_HEX),
        ("confirmations", MAYBE_INT))),
])


def history_item_json(item: Any, tx: TxReply | None) -> dict[str, Any]:
    """A history entry; the transaction's fields when state still serves it."""
    if tx is None or not tx.tx:
        return HISTORY_ITEM_OUT.render(item)
    t = Transaction.decode(tx.tx)
    return HISTORY_ITEM_OUT.render(item, **{
        "from": t.sender, "to": t.to, "amount": t.amount, "fee": t.fee, "nonce": t.nonce,
        "data": t.data, "block": or_none(tx.block_hash), "confirmations": tx.confirmations})


HISTORY_OUT = Shape("HistoryOut", [
    Field("address", HEX, src=None),
    Field("total", INT, "confirmed transactions of the account"),
    Field("offset", INT, src=None),
    Field("limit", INT, src=None),
    Field("before", Nullable(STR), "the position this page starts below, if given", src=None),
    Field("next", Nullable(STR), "older entries follow: pass this as `?before=` for the next "
                                 "page; null on the last page", src=None),
    Field("items", ListOf(Rendered(HISTORY_ITEM_OUT)), "newest first", src=None),
], examples=[{
    "address": "11" * 20, "total": 1, "offset": 0, "limit": 20, "before": None, "next": None,
    "items": [{"id": "9c" * 32, "height": 42, "index": 0, "direction": "in",
               "from": "3f" * 20, "to": "11" * 20, "amount": 1000, "fee": 1, "nonce": 7,
               "data": "", "block": "5e" * 32, "confirmations": 3}]}])
