"""OpenAPI documentation of the REST shapes (DESIGN §6).

These pydantic models are never used to parse or serialise a request on the hot path: the
routes read raw bodies and validate them with `services.api.schema` (strict, and fast enough
for thousands of transactions per second), and return `orjson` responses. The models only
tell `/docs` and `/openapi.json` what those functions accept and produce.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Hex = str
HEX = r"^(0x)?([0-9a-fA-F]{2})*$"  # what every hex input must look like
ADDRESS = r"^(0x)?[0-9a-fA-F]{40}$"
HASH = r"^(0x)?[0-9a-fA-F]{64}$"


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(_Doc):
    code: str = Field(examples=["bad_signature"],
                      description="machine-readable error code (DESIGN §6)")
    message: str = Field(description="human-readable explanation")


class ErrorOut(_Doc):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"error": {"code": "nonce_gap", "message": "nonce 9 is ahead of the next nonce 7"}}]})

    error: ErrorDetail


class Health(_Doc):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"status": "ok", "gateway": "ok", "state": "ok", "version": "0.1.0"}]})

    status: Literal["ok", "unavailable"]
    gateway: Literal["ok"]
    state: Literal["ok", "unavailable"]
    version: str
    error: ErrorDetail | None = None


class Mempool(_Doc):
    count: int
    bytes: int
    ready: int


class StatusOut(_Doc):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "network_id": 1337, "genesis": "7c" * 32, "height": 42, "head": "5e" * 32,
        "head_timestamp": 1767225600000, "total_weight": 84, "state_root": "2e" * 32,
        "peers": 3, "syncing": False, "mining": True, "version": "0.1.0", "consensus": "poa",
        "difficulty": 4, "authorities": ["3f" * 20], "recent_signers": ["3f" * 20],
        "mempool": {"count": 2, "bytes": 282, "ready": 2}}]})

    network_id: int
    genesis: Hex
    height: int
    head: Hex
    head_timestamp: int = Field(description="milliseconds since the epoch")
    total_weight: int
    state_root: Hex
    peers: int
    syncing: bool
    mining: bool
    version: str
    consensus: Literal["poa", "pow"]
    difficulty: int
    authorities: list[Hex]
    recent_signers: list[Hex]
    mempool: Mempool


class CountOut(_Doc):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"count": 43}]})

    count: int


_TX_IN_EXAMPLE: dict[str, Any] = {
    "chain_id": 1337, "nonce": 7, "key_type": "ed25519", "public_key": "ab" * 32,
    "to": "11" * 20, "amount": 1000, "fee": 1, "data": "", "signature": "cd" * 64,
}


class TxIn(_Doc):
    """A signed transaction. The signature covers the canonical encoding of every other
    field (docs/protocol.md). `id` and `from` may be echoed back and must then match."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_TX_IN_EXAMPLE]})

    chain_id: int = Field(ge=0, lt=2**32, description="the genesis network_id")
    nonce: int = Field(ge=0, lt=2**63)
    key_type: Literal["ed25519", "rsa", 0, 1]
    public_key: Hex = Field(description="32 bytes (Ed25519) or DER SubjectPublicKeyInfo (RSA)",
                            pattern=HEX, max_length=1202)
    to: Hex = Field(min_length=40, max_length=42, description="40 hex characters",
                    pattern=ADDRESS)
    amount: int = Field(ge=1, lt=2**63)
    fee: int = Field(ge=0, lt=2**63)
    data: Hex = Field(default="", max_length=2048, description="at most 1024 bytes",
                      pattern=HEX)
    signature: Hex = Field(pattern=HEX, max_length=1026)
    id: Hex | None = Field(default=None, pattern=HASH)
    from_: Hex | None = Field(default=None, alias="from", pattern=ADDRESS)


class RawTxIn(_Doc):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"raw": "99cd0539..."}]})

    """A signed transaction as the hex of its canonical msgpack encoding."""

    raw: Hex = Field(max_length=4096, pattern=HEX)
    id: Hex | None = Field(default=None, pattern=HASH)
    from_: Hex | None = Field(default=None, alias="from", pattern=ADDRESS)


class BatchIn(_Doc):
    """Up to 5000 transactions, each in a form POST /txs takes (`TxIn` or `RawTxIn`). Items
    are checked one by one: an item that is not a valid transaction fails alone, with its
    error in its place of `results`, and the others go ahead."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"txs": [_TX_IN_EXAMPLE, {"raw": "99cd0539..."}]}]})

    txs: list[Any] = Field(max_length=5000, description="TxIn or RawTxIn objects")


class IdOut(_Doc):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"id": "9c" * 32}]})

    id: Hex


class SendOut(_Doc):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"id": "9c" * 32, "nonce": 7, "from": "3f" * 20}]})

    id: Hex
    nonce: int
    from_: Hex = Field(alias="from")


class BatchItem(BaseModel):
    id: Hex | None = None
    status: Literal["accepted"] | None = None
    error: ErrorDetail | None = None


class BatchOut(_Doc):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"results": [
        {"id": "9c" * 32, "status": "accepted"},
        {"id": "8b" * 32,
         "error": {"code": "bad_signature", "message": "signature does not verify"}},
        {"error": {"code": "malformed", "message": "transaction must be a JSON object"}}],
        "accepted": 1}]})

    results: list[BatchItem] = Field(description="one per submitted item, in order")
    accepted: int


_TX_EXAMPLE: dict[str, Any] = {
    "id": "9c" * 32, "from": "3f" * 20, "to": "11" * 20, "amount": 1000, "fee": 1, "nonce": 7,
    "data": "", "chain_id": 1337, "key_type": "ed25519", "public_key": "ab" * 32,
    "signature": "cd" * 64, "size": 141,
}


class TxOut(_Doc):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_TX_EXAMPLE]})

    id: Hex
    from_: Hex = Field(alias="from")
    to: Hex
    amount: int
    fee: int
    nonce: int
    data: Hex
    chain_id: int
    key_type: Literal["ed25519", "rsa"]
    public_key: Hex
    signature: Hex
    size: int


class TxStatusOut(TxOut):
    """A transaction and what became of it; fields that do not apply to its status are
    null."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {**_TX_EXAMPLE, "status": "confirmed", "explanation": "in block 42 with 3 "
         "confirmation(s)", "block": "5e" * 32, "height": 42, "index": 0, "confirmations": 3,
         "expected_nonce": None, "reason": None, "replaced_by": None},
        {**_TX_EXAMPLE, "status": "queued", "explanation": "in the pool, waiting for nonce 3 "
         "of its sender before nonce 7 can be mined", "block": None, "height": None,
         "index": None, "confirmations": 0, "expected_nonce": 3, "reason": None,
         "replaced_by": None},
    ]})

    status: Literal["pending", "queued", "confirmed", "rejected", "replaced", "dropped"] = \
        Field(description="pending: ready in the pool; queued: in the pool behind a nonce gap "
                          "(`expected_nonce`); confirmed: in a main-chain block; rejected: "
                          "refused by the pool (`reason` is the error code); replaced: by a "
                          "same-nonce transaction paying more (`replaced_by`); dropped: left "
                          "the pool (`reason`: evicted, stale or reorg-conflict)")
    explanation: str = Field(description="the status in one human sentence")
    block: Hex | None
    height: int | None
    index: int | None
    confirmations: int
    expected_nonce: int | None = Field(description="queued: the sender's next nonce")
    reason: str | None = Field(description="rejected: the error code; dropped: evicted, "
                                           "stale or reorg-conflict")
    replaced_by: Hex | None = Field(description="replaced: the id of the replacing transaction")


class HeaderOut(_Doc):
    height: int
    parent: Hex
    timestamp: int = Field(description="milliseconds since the epoch")
    coinbase: Hex
    tx_root: Hex
    state_root: Hex
    difficulty: int
    nonce: int
    extra: Hex
    signer: Hex
    signer_key_type: str
    signer_public_key: Hex
    signature: Hex
    seal_hash: Hex


_HEADER_EXAMPLE: dict[str, Any] = {
    "height": 42, "parent": "4d" * 32, "timestamp": 1767225600000, "coinbase": "3f" * 20,
    "tx_root": "7a" * 32, "state_root": "2e" * 32, "difficulty": 4, "nonce": 17,
    "extra": "", "signer": "3f" * 20, "signer_key_type": "ed25519",
    "signer_public_key": "ab" * 32, "signature": "cd" * 64, "seal_hash": "0e" * 32,
}


class BlockOut(_Doc):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "hash": "5e" * 32, "header": _HEADER_EXAMPLE, "txs": [_TX_EXAMPLE], "tx_count": 1,
        "size": 512, "total_weight": 84, "confirmations": 1, "on_main_chain": True}]})

    hash: Hex
    header: HeaderOut
    txs: list[TxOut]
    tx_count: int
    size: int
    total_weight: int
    confirmations: int
    on_main_chain: bool


class BlockSummary(_Doc):
    hash: Hex
    header: HeaderOut
    txs: list[Any] = Field(description="transaction ids, or whole transactions with full=true")
    tx_count: int
    size: int
    confirmations: int


class BlocksOut(_Doc):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "height": 42, "blocks": [{"hash": "5e" * 32, "header": _HEADER_EXAMPLE,
                                  "txs": ["9c" * 32], "tx_count": 1, "size": 512,
                                  "confirmations": 1}]}]})

    height: int
    blocks: list[BlockSummary]


class AccountOut(_Doc):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"address": "3f" * 20, "balance": 1000, "nonce": 7, "pending_nonce": 9}]})

    address: Hex
    balance: int
    nonce: int
    pending_nonce: int = Field(description="the nonce the account's next transaction needs")


class MempoolOut(_Doc):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"count": 1, "bytes": 141, "offset": 0, "limit": 100, "sender": None,
         "txs": [_TX_EXAMPLE]}]})

    count: int = Field(description="transactions in the whole pool")
    bytes: int = Field(description="their encoded size")
    offset: int
    limit: int
    sender: Hex | None = Field(description="the sender this page is narrowed to, if any")
    txs: list[TxOut] = Field(description="arrival order; one sender's in nonce order")


class PoolSampleOut(_Doc):
    height: int = Field(description="the block that became the head")
    count: int = Field(description="transactions in the pool right after")


class PoolHistoryOut(_Doc):
    """The pool's size at each of the last heads this gateway saw (since it started), oldest
    first; after a reorg, the samples of the abandoned blocks are gone."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"samples": [{"height": 41, "count": 12}, {"height": 42, "count": 3}]}]})

    samples: list[PoolSampleOut]


class ProofStepOut(_Doc):
    left: bool = Field(description="the sibling is on the left: node = H(0x01 || sibling || "
                                   "acc); else H(0x01 || acc || sibling)")
    hash: Hex


class ProofOut(_Doc):
    """Merkle inclusion proof of a confirmed transaction: start from leaf =
    SHA-256(0x00 || id), fold in each step, compare with the header's `tx_root`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "id": "9c" * 32, "block": "5e" * 32, "height": 42, "index": 2, "tx_root": "7a" * 32,
        "steps": [{"left": False, "hash": "01" * 32}, {"left": True, "hash": "02" * 32}]}]})

    id: Hex
    block: Hex = Field(description="hash of the block holding the transaction")
    height: int
    index: int = Field(description="position of the transaction in the block")
    tx_root: Hex = Field(description="the block header's tx_root")
    steps: list[ProofStepOut] = Field(description="siblings from the leaf up to the root")


class HistoryItemOut(_Doc):
    id: Hex
    height: int
    index: int
    direction: Literal["in", "out", "self"]
    from_: Hex | None = Field(default=None, alias="from")
    to: Hex | None = None
    amount: int | None = None
    fee: int | None = None
    nonce: int | None = None
    data: Hex | None = None
    block: Hex | None = None
    confirmations: int | None = None


class HistoryOut(_Doc):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "address": "11" * 20, "total": 1, "offset": 0, "limit": 20, "before": None,
        "next": None, "items": [{
            "id": "9c" * 32, "height": 42, "index": 0, "direction": "in", "from": "3f" * 20,
            "to": "11" * 20, "amount": 1000, "fee": 1, "nonce": 7, "data": "",
            "block": "5e" * 32, "confirmations": 3}]}]})

    address: Hex
    total: int = Field(description="confirmed transactions of the account")
    offset: int
    limit: int
    before: str | None = Field(description="the position this page starts below, if given")
    next: str | None = Field(description="older entries follow: pass this as `?before=` for "
                                         "the next page; null on the last page")
    items: list[HistoryItemOut] = Field(description="newest first")


class TipOut(_Doc):
    hash: Hex
    height: int
    total_weight: int
    branch_length: int = Field(description="blocks from the main chain to this tip (0 for "
                                           "the head)")
    status: Literal["active", "valid-fork", "invalid"]


class TipsOut(_Doc):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"tips": [
        {"hash": "5e" * 32, "height": 42, "total_weight": 84, "branch_length": 0,
         "status": "active"},
        {"hash": "6f" * 32, "height": 40, "total_weight": 79, "branch_length": 1,
         "status": "valid-fork"}]}]})

    tips: list[TipOut]


class SignerOut(_Doc):
    address: Hex
    last_height: int | None = Field(description="height of its last sealed block in the "
                                                "window, null when none")
    sealed: int = Field(description="blocks it sealed in the window")
    missed: int = Field(description="its in-turn slots sealed by someone else in the window")


class ConsensusOut(_Doc):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "consensus": "poa", "authorities": ["3f" * 20], "in_turn": "3f" * 20,
        "next_height": 43, "window": 100, "recent_signers": ["3f" * 20], "difficulty": 4,
        "signers": [{"address": "3f" * 20, "last_height": 42, "sealed": 42, "missed": 0}]}]})

    consensus: Literal["poa", "pow"]
    authorities: list[Hex]
    in_turn: Hex | None = Field(description="who should seal the next block (PoA)")
    next_height: int
    window: int = Field(description="blocks looked at")
    recent_signers: list[Hex]
    difficulty: int
    signers: list[SignerOut]


class PeerOut(_Doc):
    node_id: Hex
    endpoint: str
    direction: Literal["inbound", "outbound"]
    height: int
    head: Hex
    total_weight: int
    score: int
    latency_ms: int
    connected_ms: int


class PeersOut(_Doc):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"p2p": False, "peers": [], "syncing": False, "sync_target": None, "node_id": None,
         "banned": 0}]})

    p2p: bool = Field(description="false when no p2p service answers on this node")
    peers: list[PeerOut]
    syncing: bool
    sync_target: int | None
    node_id: Hex | None
    banned: int


class PeerIn(_Doc):
    endpoint: str = Field(max_length=256, examples=["tcp://10.0.0.7:30333"],
                          pattern=r"^tcp://([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}"
                                  r"(#[0-9a-fA-F]{64})?$",
                          description="tcp://host:port, with #<its CurveZMQ server key> when "
                                      "the peer uses CurveZMQ and its key is not known")


class OkOut(_Doc):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"ok": True}]})

    ok: Literal[True]


class MiningOut(_Doc):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"mining": True, "validator": True, "address": "3f" * 20, "blocks_sealed": 42,
         "last_block": "5e" * 32, "last_sealed_ms": 1767225600000}]})

    mining: bool
    validator: bool = Field(description="false on a node that runs no miner")
    address: Hex | None
    blocks_sealed: int
    last_block: Hex | None
    last_sealed_ms: int | None


class WalletOut(AccountOut):
    key_type: str | None
    public_key: Hex | None
    can_sign: bool


class SendIn(_Doc):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"to": "11" * 20, "amount": 1000, "fee": 1, "data": "cafe"}]})

    to: Hex = Field(min_length=40, max_length=42, pattern=ADDRESS)
    amount: int = Field(ge=1, lt=2**63)
    fee: int = Field(default=0, ge=0, lt=2**63)
    data: Hex = Field(default="", max_length=2048, pattern=HEX)


def body(model: type[BaseModel] | tuple[type[BaseModel], ...]) -> dict[str, Any]:
    """`openapi_extra` documenting a JSON request body the route reads by itself."""
    models = model if isinstance(model, tuple) else (model,)
    refs = [{"$ref": f"#/components/schemas/{m.__name__}"} for m in models]
    schema = refs[0] if len(refs) == 1 else {"oneOf": refs}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


REQUEST_MODELS: tuple[type[BaseModel], ...] = (TxIn, RawTxIn, BatchIn, SendIn, PeerIn)
