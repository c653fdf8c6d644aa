"""JSON <-> domain conversion for the REST gateway, and its strict validation.

Everything a client sends is checked here before it may reach the state service (DESIGN §1:
the gateway does the stateless work): JSON integers only (never a bool, a float or a
string), hex only where bytes are expected (even length, no whitespace, optional `0x`),
lengths bounded before anything is decoded, unknown fields refused. A transaction is then
built as a `common.types.Transaction`, whose constructor enforces every range, and checked
for its chain id and its signature. Every failure is a `CcoinError` whose `code` is what the
client sees (its class in `common.errors` declares the HTTP status).

These are plain functions over `orjson`-parsed values (no pydantic per item) so that the
batch route can validate thousands of transactions per second per worker; the pydantic
models in `services.api.models` exist only to document the same shapes in OpenAPI.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from common import crypto
from common.consensus import verify_transaction_signature
from common.errors import (
    CcoinError,
    Duplicate,
    Malformed,
    TooLarge,
    WrongChain,
)
from common.messages import (
    AccountReply,
    HistoryEntry,
    MiningReply,
    PeerEntry,
    PeersReply,
    SignersReply,
    StatusReply,
    TipEntry,
    TxProofReply,
    TxReply,
)
from common.types import MAX_AMOUNT, MAX_TX_BYTES, MAX_TX_DATA, Block, BlockHeader, Transaction

MAX_BATCH = 5000
MAX_PAGE = 100
MAX_MEMPOOL_PAGE = 1000

KEY_TYPE_NAMES = {int(crypto.KeyType.ED25519): "ed25519", int(crypto.KeyType.RSA): "rsa"}
KEY_TYPES_BY_NAME = {name: code for code, name in KEY_TYPE_NAMES.items()}

TX_FIELDS = ("chain_id", "nonce", "key_type", "public_key", "to", "amount", "fee", "data",
             "signature")
_TX_REQUIRED = frozenset(TX_FIELDS) - {"data"}
# `id` and `from` are derived, so a client may echo them back (e.g. re-posting a tx it got
# from GET /txs/{id}); when present they must match what the fields derive.
_TX_ALLOWED = frozenset(TX_FIELDS) | {"id", "from"}
_RAW_ALLOWED = frozenset({"raw", "id", "from"})
_SEND_ALLOWED = frozenset({"to", "amount", "fee", "data"})

_HEX = re.compile(r"[0-9a-fA-F]*")
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,18}")
# tcp://host:port, optionally #<the peer's CurveZMQ server key, 64 hex>
_ENDPOINT = re.compile(r"tcp://([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}(#[0-9a-fA-F]{64})?")


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}






# --- scalar parsers --------------------------------------------------------------------------


def loads(body: bytes) -> Any:
    """Parse a JSON body; anything orjson refuses (bad UTF-8, NaN, depth...) is malformed."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Malformed(f"body is not valid JSON: {exc}") from None


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def parse_int(value: Any, name: str, lo: int = 0, hi: int = MAX_AMOUNT) -> int:
    # `type(...) is int`: JSON `true` is a Python bool, which isinstance() calls an int.
    if type(value) is not int:
        raise Malformed(f"{name} must be a JSON integer, got {_kind(value)}")
    if not lo <= value <= hi:
        raise Malformed(f"{name} must be in [{lo}, {hi}]")
    return value


def parse_hex(value: Any, name: str, *, length: int | None = None,
              max_len: int | None = None) -> bytes:
    """Decode a hex string (`0x` prefix allowed) of exactly `length` or at most `max_len`
    bytes; the length is checked on the text, before decoding anything."""
    if type(value) is not str:
        raise Malformed(f"{name} must be a hex string, got {_kind(value)}")
    text = value[2:] if value[:2] in ("0x", "0X") else value
    if length is not None and len(text) != 2 * length:
        raise Malformed(f"{name} must be {2 * length} hex characters")
    if max_len is not None and len(text) > 2 * max_len:
        raise TooLarge(f"{name} longer than {max_len} bytes")
    if len(text) % 2 or not _HEX.fullmatch(text):
        raise Malformed(f"{name} is not valid hex")
    return bytes.fromhex(text)


def parse_address(value: Any, name: str = "address") -> bytes:
    return parse_hex(value, name, length=crypto.ADDRESS_LEN)


def parse_hash(value: Any, name: str = "hash") -> bytes:
    return parse_hex(value, name, length=crypto.HASH_LEN)


def parse_key_type(value: Any) -> int:
    if type(value) is str:
        code = KEY_TYPES_BY_NAME.get(value)
        if code is None:
            raise Malformed('key_type must be "ed25519" or "rsa"')
        return code
    if type(value) is int and value in KEY_TYPE_NAMES:
        return value
    raise Malformed('key_type must be "ed25519", "rsa", 0 or 1')


def parse_block_ref(text: str) -> tuple[int, bytes]:
    """A path segment naming a block: a decimal height or a 64-hex hash -> (height, hash)."""
    if _DECIMAL.fullmatch(text):
        return parse_int(int(text), "height"), b""
    if len(text) in (64, 66):
        return 0, parse_hash(text, "block hash")
    raise Malformed("a block is named by its height (decimal) or its hash (64 hex)")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number with a fraction",
            str: "a string", list: "an array", dict: "an object"}.get(type(value), "a value")


def _object(value: Any, what: str, allowed: frozenset[str]) -> Mapping[str, Any]:
    if type(value) is not dict:
        raise Malformed(f"{what} must be a JSON object, got {_kind(value)}")
    unknown = value.keys() - allowed
    if unknown:
        names = ", ".join(name[:40] for name in sorted(unknown)[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise Malformed(f"{what}: unknown field(s) {names}{more}")
    return value


# --- transactions in -------------------------------------------------------------------------


def tx_from_json(value: Any) -> Transaction:
    """A well-formed (not yet signature-checked) transaction from its JSON form:
    the fields, or `{"raw": <hex of the canonical encoding>}`."""
    if type(value) is dict and "raw" in value:
        doc = _object(value, "transaction", _RAW_ALLOWED)
        tx = Transaction.decode(parse_hex(doc["raw"], "raw", max_len=MAX_TX_BYTES))
    else:
        doc = _object(value, "transaction", _TX_ALLOWED)
        missing = _TX_REQUIRED - doc.keys()
        if missing:
            raise Malformed(f"transaction: missing field(s) {', '.join(sorted(missing))}")
        key_type = parse_key_type(doc["key_type"])
        tx = Transaction(
            chain_id=parse_int(doc["chain_id"], "chain_id", 0, 2**32 - 1),
            nonce=parse_int(doc["nonce"], "nonce"),
            key_type=key_type,
            public_key=parse_hex(doc["public_key"], "public_key",
                                 max_len=crypto.RSA_MAX_PUBLIC_LEN),
            to=parse_address(doc["to"], "to"),
            amount=parse_int(doc["amount"], "amount", 1),
            fee=parse_int(doc["fee"], "fee"),
            data=parse_hex(doc.get("data", ""), "data", max_len=MAX_TX_DATA),
            signature=parse_hex(doc["signature"], "signature",
                                max_len=crypto.RSA_MAX_SIGNATURE_LEN),
        )
    if "id" in doc and parse_hash(doc["id"], "id") != tx.id:
        raise Malformed("id does not match the transaction's fields")
    if "from" in doc and parse_address(doc["from"], "from") != tx.sender:
        raise Malformed("from does not match the public key")
    return tx


def check_tx(tx: Transaction, chain_id: int) -> None:
    """The stateless checks that need no account: chain id, then the signature."""
    if tx.chain_id != chain_id:
        raise WrongChain(f"transaction is for chain {tx.chain_id}, this node is {chain_id}")
    verify_transaction_signature(tx)


def parse_submission(value: Any, chain_id: int) -> Transaction:
    tx = tx_from_json(value)
    check_tx(tx, chain_id)
    return tx


@dataclass(frozen=True, slots=True)
class Rejected:
    """A batch item the gateway refused; `id` is known when the item was a well-formed
    transaction (bad signature, wrong chain, duplicate)."""

    error: CcoinError
    id: bytes = b""


def parse_batch(body: bytes, chain_id: int) -> list[Transaction | Rejected]:
    """The batch body `{"txs": [...]}` -> per item a verified transaction or its rejection.

    A body that is not that shape fails as a whole; an item fails alone. The second
    occurrence of one transaction in a batch is a `duplicate` (state never sees it twice)."""
    doc = _object(loads(body), "batch", frozenset({"txs"}))
    items = doc.get("txs")
    if type(items) is not list:
        raise Malformed('batch must be {"txs": [transaction, ...]}')
    if len(items) > MAX_BATCH:
        raise TooLarge(f"batch of {len(items)} transactions exceeds {MAX_BATCH}")
    out: list[Transaction | Rejected] = []
    seen: set[bytes] = set()
    for item in items:
        try:
            tx = tx_from_json(item)
        except CcoinError as exc:
            out.append(Rejected(exc))
            continue
        try:
            check_tx(tx, chain_id)
        except CcoinError as exc:
            out.append(Rejected(exc, tx.id))
            continue
        if tx.id in seen:
            out.append(Rejected(Duplicate("same transaction as an earlier item of this batch"),
                                tx.id))
            continue
        seen.add(tx.id)
        out.append(tx)
    return out


@dataclass(frozen=True, slots=True)
class SendRequest:
    """Body of POST /wallet/send: what the node should sign and submit from its account."""

    to: bytes
    amount: int
    fee: int
    data: bytes


def parse_send(value: Any) -> SendRequest:
    doc = _object(value, "send", _SEND_ALLOWED)
    for name in ("to", "amount"):
        if name not in doc:
            raise Malformed(f"send: missing field {name}")
    return SendRequest(
        to=parse_address(doc["to"], "to"),
        amount=parse_int(doc["amount"], "amount", 1),
        fee=parse_int(doc.get("fee", 0), "fee"),
        data=parse_hex(doc.get("data", ""), "data", max_len=MAX_TX_DATA),
    )


# --- domain out ------------------------------------------------------------------------------


def tx_json(tx: Transaction) -> dict[str, Any]:
    return {
        "id": tx.id.hex(),
        "from": tx.sender.hex(),
        "to": tx.to.hex(),
        "amount": tx.amount,
        "fee": tx.fee,
        "nonce": tx.nonce,
        "data": tx.data.hex(),
        "chain_id": tx.chain_id,
        "key_type": KEY_TYPE_NAMES.get(tx.key_type, str(tx.key_type)),
        "public_key": tx.public_key.hex(),
        "signature": tx.signature.hex(),
        "size": len(tx.raw),
    }


def header_json(h: BlockHeader) -> dict[str, Any]:
    return {
        "height": h.height,
        "parent": h.parent.hex(),
        "timestamp": h.timestamp,
        "coinbase": h.coinbase.hex(),
        "tx_root": h.tx_root.hex(),
        "state_root": h.state_root.hex(),
        "difficulty": h.difficulty,
        "nonce": h.nonce,
        "extra": h.extra.hex(),
        "signer": h.signer.hex(),
        "signer_key_type": KEY_TYPE_NAMES.get(h.signer_key_type, str(h.signer_key_type))
        if h.signer_public_key else "",
        "signer_public_key": h.signer_public_key.hex(),
        "signature": h.signature.hex(),
        "seal_hash": h.seal_hash.hex(),
    }


def block_json(block: Block, *, full: bool = True, **extra: Any) -> dict[str, Any]:
    """Block JSON; `full=False` lists transaction ids instead of whole transactions."""
    return {
        "hash": block.hash.hex(),
        "header": header_json(block.header),
        "txs": [tx_json(tx) for tx in block.txs] if full else [tx.id.hex() for tx in block.txs],
        "tx_count": len(block.txs),
        "size": len(block.raw),
        **extra,
    }


TX_STATUSES = ("pending", "queued", "confirmed", "rejected", "replaced", "dropped")
DROP_REASONS = {
    "evicted": "evicted from the full pool by transactions paying higher fees",
    "stale": "no longer valid after a new block (its nonce was used or its sender cannot "
             "pay any more)",
    "reorg-conflict": "returned to the pool by a reorg but no longer valid on the new chain",
}


def explain(reply: TxReply, tx: Transaction) -> str:
    """One sentence saying what a transaction's status means and what happens next."""
    if reply.status == "pending":
        return "in the pool, ready for the next block"
    if reply.status == "queued":
        return (f"in the pool, waiting for nonce {reply.expected_nonce} of its sender "
                f"before nonce {tx.nonce} can be mined")
    if reply.status == "confirmed":
        return f"in block {reply.height} with {reply.confirmations} confirmation(s)"
    if reply.status == "rejected":
        return f"refused by the node's pool: {reply.reason}"
    if reply.status == "replaced":
        return (f"replaced by {reply.replaced_by.hex()}, which has the same sender and nonce "
                f"and pays a higher fee")
    if reply.status == "dropped":
        return "dropped from the pool: " + DROP_REASONS.get(reply.reason, reply.reason)
    return reply.status


def tx_reply_json(reply: TxReply) -> dict[str, Any]:
    """A transaction with its explained status (GET /txs/{id}); fields that do not apply to
    the status are null."""
    tx = Transaction.decode(reply.tx)
    confirmed = reply.status == "confirmed"
    return {
        **tx_json(tx),
        "status": reply.status,
        "explanation": explain(reply, tx),
        "block": reply.block_hash.hex() if confirmed else None,
        "height": reply.height if confirmed else None,
        "index": reply.index if confirmed else None,
        "confirmations": reply.confirmations if confirmed else 0,
        "expected_nonce": reply.expected_nonce if reply.status == "queued" else None,
        "reason": reply.reason if reply.status in ("rejected", "dropped") else None,
        "replaced_by": reply.replaced_by.hex() if reply.status == "replaced" else None,
    }


def proof_json(reply: TxProofReply) -> dict[str, Any]:
    return {
        "id": reply.id.hex(),
        "block": reply.block_hash.hex(),
        "height": reply.height,
        "index": reply.index,
        "tx_root": reply.tx_root.hex(),
        "steps": [{"left": s.left, "hash": s.hash.hex()} for s in reply.steps],
    }


def history_item_json(item: HistoryEntry, tx: TxReply | None) -> dict[str, Any]:
    """A history entry; the transaction's fields when state still serves it."""
    out: dict[str, Any] = {"id": item.id.hex(), "height": item.height, "index": item.index,
                           "direction": item.direction}
    if tx is not None and tx.tx:
        t = Transaction.decode(tx.tx)
        out.update({"from": t.sender.hex(), "to": t.to.hex(), "amount": t.amount,
                    "fee": t.fee, "nonce": t.nonce, "data": t.data.hex(),
                    "block": tx.block_hash.hex() if tx.block_hash else None,
                    "confirmations": tx.confirmations})
    return out


def tip_json(tip: TipEntry) -> dict[str, Any]:
    return {"hash": tip.hash.hex(), "height": tip.height, "total_weight": tip.total_weight,
            "branch_length": tip.branch_length, "status": tip.status}


def consensus_json(status: StatusReply, signers: SignersReply, window: int) -> dict[str, Any]:
    return {
        "consensus": "poa" if status.poa else "pow",
        "authorities": [a.hex() for a in status.miners],
        "in_turn": signers.in_turn.hex() if signers.in_turn else None,
        "next_height": signers.next_height,
        "window": window,
        "recent_signers": [s.hex() for s in status.recent_signers],
        "difficulty": status.difficulty,
        "signers": [{"address": s.address.hex(),
                     "last_height": s.last_height if s.last_height >= 0 else None,
                     "sealed": s.sealed, "missed": s.missed} for s in signers.signers],
    }


def peer_json(p: PeerEntry) -> dict[str, Any]:
    return {"node_id": p.node_id.hex(), "endpoint": p.endpoint, "direction": p.direction,
            "height": p.height, "head": p.head.hex(), "total_weight": p.total_weight,
            "score": p.score, "latency_ms": p.latency_ms, "connected_ms": p.connected_ms}


def peers_json(reply: PeersReply | None) -> dict[str, Any]:
    """GET /peers; `None` is a node where no p2p service answers."""
    if reply is None:
        return {"p2p": False, "peers": [], "syncing": False, "sync_target": None,
                "node_id": None, "banned": 0}
    return {"p2p": True, "peers": [peer_json(p) for p in reply.peers],
            "syncing": reply.syncing,
            "sync_target": reply.sync_target if reply.syncing else None,
            "node_id": reply.node_id.hex(), "banned": reply.banned}


def parse_endpoint(value: Any) -> str:
    """Body of POST /peers: `{"endpoint": "tcp://host:port"}`."""
    doc = _object(value, "peer", frozenset({"endpoint"}))
    endpoint = doc.get("endpoint")
    if type(endpoint) is not str:
        raise Malformed('peer must be {"endpoint": "tcp://host:port"}')
    if len(endpoint) > 256 or not _ENDPOINT.fullmatch(endpoint):
        raise Malformed("endpoint must look like tcp://host:port (or tcp://host:port#<curve "
                        "key, 64 hex>)")
    return endpoint


def account_json(reply: AccountReply) -> dict[str, Any]:
    return {"address": reply.address.hex(), "balance": reply.balance, "nonce": reply.nonce,
            "pending_nonce": reply.pending_nonce}


def mining_json(status: MiningReply | None) -> dict[str, Any]:
    """Miner status; `None` is a node without a miner (a basic node)."""
    if status is None:
        return {"mining": False, "validator": False, "address": None, "blocks_sealed": 0,
                "last_block": None, "last_sealed_ms": None}
    return {"mining": status.enabled, "validator": True, "address": status.address.hex(),
            "blocks_sealed": status.blocks_sealed,
            "last_block": status.last_block.hex() if status.last_block else None,
            "last_sealed_ms": status.last_sealed_ms or None}


def status_json(status: StatusReply, *, mining: bool, version: str, peers: int = 0,
                syncing: bool = False) -> dict[str, Any]:
    return {
        "network_id": status.network_id,
        "genesis": status.genesis.hex(),
        "height": status.height,
        "head": status.head.hex(),
        "head_timestamp": status.head_timestamp,
        "total_weight": status.total_weight,
        "state_root": status.state_root.hex(),
        "peers": peers,
        "syncing": syncing,
        "mining": mining,
        "version": version,
        "consensus": "poa" if status.poa else "pow",
        "difficulty": status.difficulty,
        "authorities": [m.hex() for m in status.miners],
        "recent_signers": [s.hex() for s in status.recent_signers],
        "mempool": {"count": status.mempool_count, "bytes": status.mempool_bytes,
                    "ready": status.ready_count},
    }
