"""What a client may send the REST gateway: every request shape, declared once, and its parsers.

Everything a client sends is checked here before it may reach the state service (DESIGN §1:
the gateway does the stateless work). The shapes (a transaction in its two forms, a batch, a
wallet send, a peer to add) and the path and query parameters the routes parse themselves are
declarations of `services.api.spec`, so the OpenAPI document and these checks come from the
same lines: JSON integers only (never a bool, a float or a string), hex only where bytes are
expected (even length, no whitespace, optional `0x`), lengths bounded before anything is
decoded, unknown fields refused. A transaction is then built as a `common.types.Transaction`,
whose constructor enforces every range, and checked for its chain id and its signature.
Every failure is a `CcoinError` whose class (`common.errors`) declares the HTTP status.

The documented examples are real: the transactions are signed by a fixed example key for
chain 1337 (a dev chain's id), so "Try it out" in `/docs` posts a transaction that parses.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from common import crypto
from common.consensus import verify_transaction_signature
from common.encoding import MEDIA_TYPE, unpack
from common.errors import BadSignature, CcoinError, Duplicate, Malformed, TooLarge, WrongChain
from common.messages.control import MAX_ADD_PEER_WAIT_MS
from common.signed import SignedTx, read_tx
from common.types import MAX_AMOUNT, MAX_TX_BYTES, MAX_TX_DATA, Transaction
from services.api.kinds import AnyJSON, Bool, Hex, Int, Kind, ListOf, Parser, Text
from services.api.spec import Field, Param, Shape

MAX_BATCH = 5000
MAX_PAGE = 100
MAX_MEMPOOL_PAGE = 1000
MAX_CHAIN_ID = 2**32 - 1

KEY_TYPE_NAMES = {int(crypto.KeyType.ED25519): "ed25519", int(crypto.KeyType.RSA): "rsa"}
KEY_TYPES_BY_NAME = {name: code for code, name in KEY_TYPE_NAMES.items()}
TX_FIELDS = ("chain_id", "nonce", "key_type", "public_key", "to", "amount", "fee", "data",
             "signature")


def loads(body: bytes) -> Any:
    """Parse a JSON body; anything orjson refuses (bad UTF-8, NaN, depth...) is malformed."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Malformed(f"body is not valid JSON: {exc}") from None


# --- the kinds of value a request carries ----------------------------------------------------


class KeyTypeKind(Kind):
    """A key type by name ("ed25519", "rsa") or by its number (0, 1)."""

    __slots__ = ()

    def annotation(self) -> Any:
        return Literal["ed25519", "rsa", 0, 1]

    def parser(self) -> Parser:
        def parse(value: Any, _name: str) -> int:
            if type(value) is str:
                code = KEY_TYPES_BY_NAME.get(value)
                if code is None:
                    raise Malformed('key_type must be "ed25519" or "rsa"')
                return code
            if type(value) is int and value in KEY_TYPE_NAMES:
                return value
            raise Malformed('key_type must be "ed25519", "rsa", 0 or 1')

        return parse


_DECIMAL = re.compile(r"0|[1-9][0-9]{0,18}")


class BlockRefKind(Kind):
    """A path segment naming a block: a decimal height or a 64-hex hash -> (height, hash)."""

    __slots__ = ()
    # documents heights of up to 18 digits: every one of them is in range, so a client (or
    # the fuzz test) that follows the pattern is never refused; 19 digits are parsed too
    PATTERN = "^(0|[1-9][0-9]{0,17}|(0[xX])?[0-9a-fA-F]{64})$"

    def annotation(self) -> Any:
        return str

    def constraints(self) -> dict[str, Any]:
        return {"pattern": self.PATTERN}

    def parser(self) -> Parser:
        height, hash_ = AMOUNT.parser(), HASH.parser()

        def parse(text: str, _name: str) -> tuple[int, bytes]:
            if _DECIMAL.fullmatch(text):
                return height(int(text), "height"), b""
            if len(text) in (64, 66):
                return 0, hash_(text, "block hash")
            raise Malformed("a block is named by its height (decimal) or its hash (64 hex)")

        return parse


class CursorKind(Kind):
    """A position in an account's history, `height:index` -> (height, index)."""

    __slots__ = ()
    # documents only positions in range (19 digits < 2^64, 9 digits < 2^32), so a client
    # that follows the pattern is never refused; the parser takes the whole range
    PATTERN = "^[0-9]{1,19}:[0-9]{1,9}$"

    def annotation(self) -> Any:
        return str

    def constraints(self) -> dict[str, Any]:
        return {"pattern": self.PATTERN}

    def parser(self) -> Parser:
        form = re.compile("^[0-9]{1,20}:[0-9]{1,10}$")

        def parse(text: Any, name: str) -> tuple[int, int]:
            if type(text) is not str or not form.match(text):
                raise Malformed(f"{name} must be height:index, e.g. 42:0")
            height, index = (int(part) for part in text.split(":"))
            if height >= 2**64 or index >= 2**32:
                raise Malformed(f"{name}: height or index out of range")
            return height, index

        return parse


AMOUNT = Int(0, MAX_AMOUNT)
HASH = Hex(length=crypto.HASH_LEN)
ADDRESS = Hex(length=crypto.ADDRESS_LEN)
# tcp://host:port, optionally #<the peer's CurveZMQ server key, 64 hex>
TCP_ENDPOINT = (r"tcp://([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}"
                r"(#[0-9a-fA-F]{64})?")
ENDPOINT_PATTERN = re.compile(TCP_ENDPOINT)
# or the other node's page URL (sosocoin's way): its status names the p2p endpoint
ENDPOINT = Text(max_length=256, pattern=rf"(?:{TCP_ENDPOINT}|https?://\S+)",
                hint="endpoint must look like tcp://host:port (or tcp://host:port#<curve key, "
                     "64 hex>), or be the other node's page URL, http://host:port/")


# --- the documented examples: real transactions ------------------------------------------------

EXAMPLE_CHAIN = 1337
EXAMPLE_SIGNER = crypto.Signer(crypto.PrivateKey(
    crypto.KeyType.ED25519, hashlib.sha256(b"ccoin api docs example").digest()))


def _example_tx(nonce: int) -> Transaction:
    return Transaction.create(EXAMPLE_SIGNER, chain_id=EXAMPLE_CHAIN, nonce=nonce,
                              to=bytes.fromhex("11" * 20), amount=1000, fee=1)


def _fields_json(tx: Transaction) -> dict[str, Any]:
    return {"chain_id": tx.chain_id, "nonce": tx.nonce,
            "key_type": KEY_TYPE_NAMES[tx.key_type], "public_key": tx.public_key.hex(),
            "to": tx.to.hex(), "amount": tx.amount, "fee": tx.fee, "data": tx.data.hex(),
            "signature": tx.signature.hex()}


EXAMPLE_TXS = tuple(_example_tx(n) for n in range(4))


# --- request bodies --------------------------------------------------------------------------

_ECHOED = (  # derived, so a client may send them back (e.g. re-posting what GET /txs/{id}
    # showed); when present they must match what the transaction derives
    Field("id", HASH, "the transaction id; must match", required=False),
    Field("from", ADDRESS, "the sender's address; must match the public key", required=False),
)

TX_IN = Shape("TxIn", [
    Field("chain_id", Int(0, MAX_CHAIN_ID), "the genesis network_id"),
    Field("nonce", AMOUNT),
    Field("key_type", KeyTypeKind()),
    Field("public_key", Hex(max_len=crypto.RSA_MAX_PUBLIC_LEN),
          "32 bytes (Ed25519) or DER SubjectPublicKeyInfo (RSA)"),
    Field("to", ADDRESS, "40 hex characters"),
    Field("amount", Int(1, MAX_AMOUNT)),
    Field("fee", AMOUNT),
    Field("data", Hex(max_len=MAX_TX_DATA), f"at most {MAX_TX_DATA} bytes", default=""),
    Field("signature", Hex(max_len=crypto.RSA_MAX_SIGNATURE_LEN)),
    *_ECHOED,
], doc="A signed transaction. The signature covers the canonical encoding of every other "
       "field (docs/protocol.md). `id` and `from` may be echoed back and must then match.",
   examples=[_fields_json(EXAMPLE_TXS[0])], what="transaction")

RAW_TX_IN = Shape("RawTxIn", [
    Field("raw", Hex(max_len=MAX_TX_BYTES), "hex of the canonical msgpack encoding"),
    *_ECHOED,
], doc="A signed transaction as the hex of its canonical msgpack encoding.",
   examples=[{"raw": EXAMPLE_TXS[1].raw.hex()}], what="transaction")

BATCH_IN = Shape("BatchIn", [
    Field("txs", ListOf(AnyJSON(), MAX_BATCH), "TxIn or RawTxIn objects"),
], doc=f"Up to {MAX_BATCH} transactions, each in a form POST /txs takes (`TxIn` or "
       "`RawTxIn`). Items are checked one by one: an item that is not a valid transaction "
       "fails alone, with its error in its place of `results`, and the others go ahead.",
   examples=[{"txs": [_fields_json(EXAMPLE_TXS[2]), {"raw": EXAMPLE_TXS[3].raw.hex()}]}],
   what="batch")

SEND_IN = Shape("SendIn", [
    Field("to", ADDRESS),
    Field("amount", Int(1, MAX_AMOUNT)),
    Field("fee", AMOUNT, default=0),
    Field("data", Hex(max_len=MAX_TX_DATA), default=""),
], examples=[{"to": "11" * 20, "amount": 1000, "fee": 1, "data": "cafe"}], what="send")

ADD_PEER_WAIT_MS = 5000  # how long p2p waits for the handshake unless told otherwise
PEER_IN = Shape("PeerIn", [
    Field("endpoint", ENDPOINT, "tcp://host:port, with #<its CurveZMQ server key> when the "
                                "peer uses CurveZMQ and its key is not known; or the other "
                                "node's page URL (http://host:port/): this node reads its "
                                "GET /api/v1/status and dials its `p2p_endpoint`",
          example="tcp://10.0.0.7:30333"),
    Field("wait_ms", Int(1, MAX_ADD_PEER_WAIT_MS), "how long to wait for the handshake "
                                                   "before answering `peer_unreachable`",
          default=ADD_PEER_WAIT_MS),
], examples=[{"endpoint": "tcp://10.0.0.7:30333"}, {"endpoint": "http://10.0.0.7:8000/"}],
   what="peer")

PROPOSAL_IN = Shape("ProposalIn", [
    Field("address", ADDRESS, "the address to vote on (40 hex)"),
    Field("authorize", Bool(), "true: vote to add it to the authorities; false: to remove it"),
], examples=[{"address": "11" * 20, "authorize": True}], what="proposal",
   doc="What this node's miner votes for, in the blocks it seals, until it is discarded.")

REQUEST_SHAPES: tuple[Shape, ...] = (TX_IN, RAW_TX_IN, BATCH_IN, SEND_IN, PEER_IN, PROPOSAL_IN)


# --- path and query parameters the routes parse themselves ------------------------------------

TX_ID = Param(HASH, "transaction id", "transaction id (64 hex)", "9c" * 32)
ACCOUNT = Param(ADDRESS, "address", "account address (40 hex)", "3f" * 20)
BLOCK_REF = Param(BlockRefKind(), "block", "a height (decimal) or a block hash (64 hex)", "42")
PROPOSED = Param(ADDRESS, "address", "the address a proposal of this node is about (40 hex)",
                 "11" * 20)
SENDER = Param(ADDRESS, "sender", "only this sender's transactions, in nonce order", "3f" * 20)
BEFORE = Param(CursorKind(), "before", "only entries older than this position "
               "(`height:index`, the `next` of the previous page)", "42:0")


# --- transactions in -------------------------------------------------------------------------


def tx_from_json(value: Any) -> Transaction:
    """A well-formed (not yet signature-checked) transaction from its JSON form:
    the fields (`TxIn`), or `{"raw": <hex of the canonical encoding>}` (`RawTxIn`)."""
    if type(value) is dict and "raw" in value:
        doc = RAW_TX_IN.parse(value)
        tx = Transaction.decode(doc["raw"])
    else:
        doc = TX_IN.parse(value)
        tx = Transaction(doc["chain_id"], doc["nonce"], doc["key_type"], doc["public_key"],
                         doc["to"], doc["amount"], doc["fee"], doc["data"], doc["signature"])
    if "id" in doc and doc["id"] != tx.id:
        raise Malformed("id does not match the transaction's fields")
    if "from" in doc and doc["from"] != tx.sender:
        raise Malformed("from does not match the public key")
    return tx


def check_chain(tx: Transaction | SignedTx, chain_id: int) -> None:
    if tx.chain_id != chain_id:
        raise WrongChain(f"transaction is for chain {tx.chain_id}, this node is {chain_id}")


def check_tx(tx: Transaction, chain_id: int) -> None:
    """The stateless checks that need no account: chain id, then the signature."""
    check_chain(tx, chain_id)
    verify_transaction_signature(tx)


def parse_submission(value: Any, chain_id: int) -> Transaction:
    """The body of POST /txs: a verified transaction."""
    tx = tx_from_json(value)
    check_tx(tx, chain_id)
    return tx


@dataclass(frozen=True, slots=True)
class Rejected:
    """A batch item the gateway refused; `id` is known when the item was a well-formed
    transaction (bad signature, wrong chain, duplicate)."""

    error: CcoinError
    id: bytes = b""


def is_msgpack(content_type: str) -> bool:
    """Whether a request's `Content-Type` names the binary batch form (parameters ignored)."""
    return content_type.partition(";")[0].strip().lower() == MEDIA_TYPE


def accepts_msgpack(accept: str) -> bool:
    """Whether a request's `Accept` names the binary form, with a weight above 0."""
    for media_range in accept.split(","):
        kind, *params = media_range.split(";")
        if kind.strip().lower() != MEDIA_TYPE:
            continue
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    return float(value) > 0
                except ValueError:
                    return False
        return True
    return False


def _tx_from_bin(item: Any) -> SignedTx:
    if type(item) is not bytes:
        raise Malformed("an item must be a bin: a transaction's canonical encoding")
    return read_tx(item)


def _tx_from_json(item: Any) -> SignedTx:
    return SignedTx.of(tx_from_json(item))


def read_batch(body: bytes, chain_id: int, *, binary: bool = False
               ) -> list[SignedTx | Rejected]:
    """A batch body -> per item a transaction of this chain, as its signature check reads
    it, or its rejection; signatures are not checked yet (`settle_batch`). The body is
    `{"txs": [...]}` (JSON), or with `binary` a msgpack array of bins, each a transaction's
    canonical encoding: no JSON and no hex for a client that has the raw transactions (the
    Python client's bulk send).

    A binary item is read as p2p reads a block's (`signed.read_tx`: canonical, and the
    fields its signature check needs), not decoded in full: state decodes every submitted
    transaction anyway and refuses one whose other fields are out of bounds (`malformed`,
    `too_large`), the same answer the gateway would give. A JSON item is decoded in full:
    it has to be built from its fields.

    A body that is not that shape fails as a whole; an item fails alone."""
    items: Sequence[Any]
    if binary:
        items = unpack(body)
        if type(items) is not tuple:
            raise Malformed("body must be a msgpack array of transactions")
        if len(items) > MAX_BATCH:
            raise TooLarge(f"a batch of {len(items)} transactions exceeds {MAX_BATCH}")
    else:
        items = BATCH_IN.parse(loads(body))["txs"]
    parse = _tx_from_bin if binary else _tx_from_json
    out: list[SignedTx | Rejected] = []
    for item in items:
        try:
            tx = parse(item)
        except CcoinError as exc:
            out.append(Rejected(exc))
            continue
        try:
            check_chain(tx, chain_id)
        except WrongChain as exc:
            out.append(Rejected(exc, tx.id))
            continue
        out.append(tx)
    return out


def settle_batch(items: list[SignedTx | Rejected],
                 verified: Sequence[bool]) -> list[SignedTx | Rejected]:
    """`read_batch`'s items with the signature outcomes of its transactions (`verified`, one
    per transaction, in order) -> per item a verified transaction or its rejection. The
    second occurrence of one transaction is a `duplicate` (state never sees it twice)."""
    outcomes = iter(verified)
    out: list[SignedTx | Rejected] = []
    seen: set[bytes] = set()
    for item in items:
        if isinstance(item, Rejected):
            out.append(item)
        elif not next(outcomes):
            out.append(_unverified(item))
        elif item.id in seen:
            out.append(Rejected(Duplicate("same transaction as an earlier item of this batch"),
                                item.id))
        else:
            seen.add(item.id)
            out.append(item)
    return out


def _unverified(tx: SignedTx) -> Rejected:
    """The refusal of a transaction whose signature does not verify: `malformed` (or
    `too_large`) when one of its fields is out of bounds too, as a full decode would have
    said before the signature was checked, else `bad_signature`."""
    try:
        Transaction.decode(tx.raw)
    except CcoinError as exc:
        return Rejected(exc)
    return Rejected(BadSignature("signature does not verify"), tx.id)


def parse_batch(body: bytes, chain_id: int, *, binary: bool = False
                ) -> list[SignedTx | Rejected]:
    """`read_batch` then `settle_batch`, every signature checked on this thread."""
    items = read_batch(body, chain_id, binary=binary)
    return settle_batch(items, [tx.verifies() for tx in items if isinstance(tx, SignedTx)])


# --- other bodies ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendRequest:
    """Body of POST /wallet/send: what the node should sign and submit from its account."""

    to: bytes
    amount: int
    fee: int
    data: bytes


def parse_send(value: Any) -> SendRequest:
    doc = SEND_IN.parse(value)
    return SendRequest(doc["to"], doc["amount"], doc["fee"], doc["data"])


def parse_add_peer(value: Any) -> tuple[str, int]:
    """Body of POST /peers: `{"endpoint": "tcp://host:port", "wait_ms": 5000}` (or the
    other node's page URL as `endpoint`: `services.api.peer_page` resolves it)."""
    doc = PEER_IN.parse(value)
    return doc["endpoint"], doc["wait_ms"]
