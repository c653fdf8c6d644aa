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


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(_Doc):
    code: str = Field(examples=["bad_signature"],
                      description="machine-readable error code (DESIGN §6)")
    message: str = Field(description="human-readable explanation")


class ErrorOut(_Doc):
    error: ErrorDetail


class Health(_Doc):
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
    count: int


class TxIn(_Doc):
    """A signed transaction. The signature covers the canonical encoding of every other
    field (docs/protocol.md). `id` and `from` may be echoed back and must then match."""

    chain_id: int = Field(ge=0, lt=2**32, description="the genesis network_id")
    nonce: int = Field(ge=0, lt=2**63)
    key_type: Literal["ed25519", "rsa", 0, 1]
    public_key: Hex = Field(description="32 bytes (Ed25519) or DER SubjectPublicKeyInfo (RSA)")
    to: Hex = Field(min_length=40, max_length=42, description="40 hex characters")
    amount: int = Field(ge=1, lt=2**63)
    fee: int = Field(ge=0, lt=2**63)
    data: Hex = Field(default="", max_length=2048, description="at most 1024 bytes")
    signature: Hex
    id: Hex | None = None
    from_: Hex | None = Field(default=None, alias="from")


class RawTxIn(_Doc):
    """A signed transaction as the hex of its canonical msgpack encoding."""

    raw: Hex = Field(max_length=4096)
    id: Hex | None = None
    from_: Hex | None = Field(default=None, alias="from")


class BatchIn(_Doc):
    txs: list[TxIn | RawTxIn] = Field(max_length=5000)


class IdOut(_Doc):
    id: Hex


class SendOut(_Doc):
    id: Hex
    nonce: int
    from_: Hex = Field(alias="from")


class BatchItem(BaseModel):
    id: Hex | None = None
    status: Literal["accepted"] | None = None
    error: ErrorDetail | None = None


class BatchOut(_Doc):
    results: list[BatchItem] = Field(description="one per submitted item, in order")
    accepted: int


class TxOut(_Doc):
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
    status: Literal["pending", "queued", "confirmed"]
    block: Hex | None
    height: int | None
    index: int | None
    confirmations: int


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


class BlockOut(_Doc):
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
    height: int
    blocks: list[BlockSummary]


class AccountOut(_Doc):
    address: Hex
    balance: int
    nonce: int
    pending_nonce: int = Field(description="the nonce the account's next transaction needs")


class MempoolOut(_Doc):
    count: int
    bytes: int
    offset: int
    limit: int
    txs: list[TxOut]


class MiningOut(_Doc):
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
    to: Hex = Field(min_length=40, max_length=42)
    amount: int = Field(ge=1, lt=2**63)
    fee: int = Field(default=0, ge=0, lt=2**63)
    data: Hex = Field(default="", max_length=2048)


def body(model: type[BaseModel] | tuple[type[BaseModel], ...]) -> dict[str, Any]:
    """`openapi_extra` documenting a JSON request body the route reads by itself."""
    models = model if isinstance(model, tuple) else (model,)
    refs = [{"$ref": f"#/components/schemas/{m.__name__}"} for m in models]
    schema = refs[0] if len(refs) == 1 else {"oneOf": refs}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


REQUEST_MODELS: tuple[type[BaseModel], ...] = (TxIn, RawTxIn, BatchIn, SendIn)
