"""A typed Python client of a ccoin node's REST API (DESIGN §6): the one client used by the
`ccoin` command line, the tests and any program that talks to a node over HTTP.

    from common.client import Client
    with Client("http://127.0.0.1:8000") as node:
        print(node.status().height)
        tx = node.send(signer, to=bytes.fromhex("11" * 20), amount=5, fee=1)
        info = node.wait_confirmed(tx.id.hex())       # a TxInfo, status "confirmed"
        assert node.tx_proof(tx.id.hex()).verify()      # Merkle proof against the header
        for event in node.events():                     # live events (server-sent events)
            print(event.seq, event.type, event.data)

Results are frozen dataclasses; each keeps the node's JSON in `doc` (for `--json` output
and for fields newer than this client). Every failure is a `CcoinError`: an API error reply
is `ApiError` with the server's `code`, `message` and HTTP status, a node that cannot be
reached is `Unavailable`. Transactions are signed here, by the caller's key, never by the
node (`sign_transfer`): the private key stays local.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import orjson

from common.crypto import KeyType, Signer
from common.errors import CcoinError, Malformed, Unavailable
from common.merkle import verify_proof
from common.types import Transaction

DEFAULT_API = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = 10.0
KEY_TYPE_NAMES = {KeyType.ED25519: "ed25519", KeyType.RSA: "rsa"}
FINAL_FAILURES = ("rejected", "replaced", "dropped")
T = TypeVar("T")


# --- errors ----------------------------------------------------------------------------------


class ApiError(CcoinError):
    """the node answered with an error"""

    def __init__(self, code: str, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.status = status

    def __str__(self) -> str:
        return f"{self.code}: {self.args[0]}"


class TxTimeout(CcoinError):
    """transaction was not confirmed in time"""

    code = "timeout"


class TxFailed(CcoinError):
    """the transaction will never be confirmed (rejected, replaced or dropped)"""

    code = "tx_failed"

    def __init__(self, message: str, info: TxInfo) -> None:
        super().__init__(message)
        self.info = info


# --- input helpers ---------------------------------------------------------------------------


def parse_address(text: str, what: str = "address") -> bytes:
    """A 40-hex-character address (an optional 0x is accepted) as 20 bytes."""
    raw = text.strip().removeprefix("0x")
    try:
        value = bytes.fromhex(raw)
    except ValueError:
        value = b""
    if len(value) != 20:
        raise Malformed(f"{what} {text!r} is not a 40-hex-character address")
    return value


def parse_hex(text: str, what: str) -> bytes:
    try:
        return bytes.fromhex(text.strip().removeprefix("0x"))
    except ValueError:
        raise Malformed(f"{what} {text!r} is not hex") from None


def _hex(value: bytes | str) -> str:
    return value.hex() if isinstance(value, bytes) else value.strip().removeprefix("0x")


def tx_to_json(tx: Transaction) -> dict[str, Any]:
    """The JSON body of POST /api/v1/txs for a signed transaction."""
    return {
        "chain_id": tx.chain_id,
        "nonce": tx.nonce,
        "key_type": KEY_TYPE_NAMES[KeyType(tx.key_type)],
        "public_key": tx.public_key.hex(),
        "to": tx.to.hex(),
        "amount": tx.amount,
        "fee": tx.fee,
        "data": tx.data.hex(),
        "signature": tx.signature.hex(),
    }


def sign_transfer(signer: Signer, *, chain_id: int, nonce: int, to: bytes, amount: int,
                  fee: int = 0, data: bytes = b"") -> Transaction:
    """Build and sign a transfer locally (the node never sees the key)."""
    return Transaction.create(signer, chain_id=chain_id, nonce=nonce, to=to, amount=amount,
                              fee=fee, data=data)


# --- typed results ---------------------------------------------------------------------------


def _get(doc: Mapping[str, Any], key: str, kind: type[T]) -> T:
    """A required field of the node's JSON, of the given type (bool is never an int)."""
    value = doc.get(key)
    if kind is int and type(value) is not int or not isinstance(value, kind):
        raise Malformed(f"the node's reply has no {kind.__name__} {key!r}")
    return value


def _opt(doc: Mapping[str, Any], key: str, kind: type[T], default: T) -> T:
    value = doc.get(key, default)
    return value if isinstance(value, kind) and not (kind is int and type(value) is bool) \
        else default


def _doc(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Malformed(f"the node's {what} reply is not a JSON object")
    return value


@dataclass(frozen=True, slots=True)
class Status:
    network_id: int
    genesis: str
    height: int
    head: str
    total_weight: int
    peers: int
    syncing: bool
    mining: bool
    version: str
    consensus: str = ""
    mempool_count: int = 0
    doc: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> Status:
        d = _doc(value, "status")
        pool = d.get("mempool")
        pool = pool if isinstance(pool, dict) else {}
        return cls(_get(d, "network_id", int), _get(d, "genesis", str), _get(d, "height", int),
                   _get(d, "head", str), _get(d, "total_weight", int), _opt(d, "peers", int, 0),
                   _opt(d, "syncing", bool, False), _opt(d, "mining", bool, False),
                   _opt(d, "version", str, ""), _opt(d, "consensus", str, ""),
                   _opt(pool, "count", int, 0), d)


@dataclass(frozen=True, slots=True)
class Account:
    address: str
    balance: int
    nonce: int
    pending_nonce: int
    doc: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> Account:
        d = _doc(value, "account")
        return cls(_get(d, "address", str), _get(d, "balance", int), _get(d, "nonce", int),
                   _get(d, "pending_nonce", int), d)


@dataclass(frozen=True, slots=True)
class TxInfo:
    """A transaction and what became of it. `status`: pending | queued (waits for
    `expected_nonce`) | confirmed (`block`, `height`, `index`, `confirmations`) | rejected
    (`reason` is the error code) | replaced (`replaced_by`) | dropped (`reason`: evicted,
    stale or reorg-conflict)."""

    id: str
    sender: str
    to: str
    amount: int
    fee: int
    nonce: int
    data: str
    status: str
    block: str | None = None
    height: int | None = None
    index: int | None = None
    confirmations: int = 0
    reason: str | None = None
    replaced_by: str | None = None
    expected_nonce: int | None = None
    explanation: str = ""
    doc: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> TxInfo:
        d = _doc(value, "transaction")
        return cls(
            _get(d, "id", str), _get(d, "from", str), _get(d, "to", str),
            _get(d, "amount", int), _get(d, "fee", int), _get(d, "nonce", int),
            _opt(d, "data", str, ""), _opt(d, "status", str, "pending"),
            d.get("block"), d.get("height"), d.get("index"),
            _opt(d, "confirmations", int, 0), d.get("reason"), d.get("replaced_by"),
            d.get("expected_nonce"), _opt(d, "explanation", str, ""), d)

    @property
    def final(self) -> bool:
        """True when the status can no longer become `confirmed` by waiting."""
        return self.status in FINAL_FAILURES


@dataclass(frozen=True, slots=True)
class Block:
    hash: str
    height: int
    parent: str
    timestamp: int
    coinbase: str
    signer: str
    tx_root: str
    state_root: str
    tx_count: int
    txs: tuple[dict[str, Any] | str, ...]
    confirmations: int = 0
    on_main_chain: bool = True
    doc: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> Block:
        d = _doc(value, "block")
        h = _doc(d.get("header"), "block header")
        txs = tuple(d.get("txs") or ())
        return cls(_get(d, "hash", str), _get(h, "height", int), _opt(h, "parent", str, ""),
                   _opt(h, "timestamp", int, 0), _opt(h, "coinbase", str, ""),
                   _opt(h, "signer", str, ""), _opt(h, "tx_root", str, ""),
                   _opt(h, "state_root", str, ""), _opt(d, "tx_count", int, len(txs)), txs,
                   _opt(d, "confirmations", int, 0), _opt(d, "on_main_chain", bool, True), d)


@dataclass(frozen=True, slots=True)
class BlockPage:
    height: int
    blocks: tuple[Block, ...]
    doc: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> BlockPage:
        d = _doc(value, "blocks")
        return cls(_get(d, "height", int),
                   tuple(Block.from_json(b) for b in _get(d, "blocks", list)), d)


@dataclass(frozen=True, slots=True)
class TxProof:
    """A Merkle inclusion proof: `steps` lead from the transaction's leaf to `tx_root`,
    the root in the header of block `block`."""

    id: str
    block: str
    height: int
    index: int
    tx_root: str
    steps: tuple[tuple[bool, str], ...]
    doc: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> TxProof:
        d = _doc(value, "proof")
        steps = tuple((bool(_get(s, "left", bool)), _get(s, "hash", str))
                      for s in _get(d, "steps", list))
        return cls(_get(d, "id", str), _get(d, "block", str), _get(d, "height", int),
                   _get(d, "index", int), _get(d, "tx_root", str), steps, d)

    def verify(self, tx_root: str | bytes | None = None) -> bool:
        """Check the proof against `tx_root` (the header's, fetched separately to trust
        it) or, by default, against the root the proof names."""
        root = _hex(tx_root) if tx_root is not None else self.tx_root
        try:
            path = [(left, bytes.fromhex(h)) for left, h in self.steps]
            return verify_proof(bytes.fromhex(self.id), path, bytes.fromhex(root))
        except ValueError:
            return False


@dataclass(frozen=True, slots=True)
class HistoryItem:
    """One confirmed transaction of an account; `direction`: in | out | self."""

    id: str
    height: int
    index: int
    direction: str
    sender: str
    to: str
    amount: int
    fee: int
    nonce: int

    @classmethod
    def from_json(cls, value: Any) -> HistoryItem:
        d = _doc(value, "history item")
        return cls(_get(d, "id", str), _get(d, "height", int), _get(d, "index", int),
                   _get(d, "direction", str), _opt(d, "from", str, ""), _opt(d, "to", str, ""),
                   _opt(d, "amount", int, 0), _opt(d, "fee", int, 0), _opt(d, "nonce", int, 0))


@dataclass(frozen=True, slots=True)
class History:
    address: str
    total: int
    offset: int
    items: tuple[HistoryItem, ...]
    doc: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    next: str | None = None  # `before=` of the next (older) page; None on the last one

    @classmethod
    def from_json(cls, value: Any) -> History:
        d = _doc(value, "history")
        more = d.get("next")
        return cls(_get(d, "address", str), _get(d, "total", int), _opt(d, "offset", int, 0),
                   tuple(HistoryItem.from_json(i) for i in _get(d, "items", list)), d,
                   more if isinstance(more, str) else None)


@dataclass(frozen=True, slots=True)
class MempoolPage:
    count: int
    bytes: int
    offset: int
    txs: tuple[TxInfo, ...]
    doc: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> MempoolPage:
        d = _doc(value, "mempool")
        return cls(_get(d, "count", int), _get(d, "bytes", int), _opt(d, "offset", int, 0),
                   tuple(TxInfo.from_json(t) for t in _get(d, "txs", list)), d)


@dataclass(frozen=True, slots=True)
class ChainTip:
    """`status`: active (the head) | valid-fork | invalid."""

    hash: str
    height: int
    total_weight: int
    branch_length: int
    status: str

    @classmethod
    def from_json(cls, value: Any) -> ChainTip:
        d = _doc(value, "tip")
        return cls(_get(d, "hash", str), _get(d, "height", int), _get(d, "total_weight", int),
                   _get(d, "branch_length", int), _get(d, "status", str))


@dataclass(frozen=True, slots=True)
class SignerHealth:
    address: str
    last_height: int | None
    sealed: int
    missed: int

    @classmethod
    def from_json(cls, value: Any) -> SignerHealth:
        d = _doc(value, "signer")
        return cls(_get(d, "address", str), d.get("last_height"), _get(d, "sealed", int),
                   _get(d, "missed", int))


@dataclass(frozen=True, slots=True)
class Consensus:
    consensus: str
    authorities: tuple[str, ...]
    in_turn: str | None
    next_height: int
    window: int
    signers: tuple[SignerHealth, ...]
    doc: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> Consensus:
        d = _doc(value, "consensus")
        return cls(_get(d, "consensus", str), tuple(_get(d, "authorities", list)),
                   d.get("in_turn"), _get(d, "next_height", int), _get(d, "window", int),
                   tuple(SignerHealth.from_json(s) for s in _get(d, "signers", list)), d)


@dataclass(frozen=True, slots=True)
class Peer:
    node_id: str
    endpoint: str
    direction: str
    height: int
    head: str
    total_weight: int
    score: int
    latency_ms: int
    connected_ms: int

    @classmethod
    def from_json(cls, value: Any) -> Peer:
        d = _doc(value, "peer")
        return cls(_get(d, "node_id", str), _get(d, "endpoint", str), _get(d, "direction", str),
                   _get(d, "height", int), _get(d, "head", str), _get(d, "total_weight", int),
                   _get(d, "score", int), _get(d, "latency_ms", int),
                   _get(d, "connected_ms", int))


@dataclass(frozen=True, slots=True)
class Peers:
    """`p2p` is false when no p2p service answers on this node (then `peers` is empty)."""

    p2p: bool
    peers: tuple[Peer, ...]
    syncing: bool
    sync_target: int | None
    node_id: str | None
    banned: int
    doc: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> Peers:
        d = _doc(value, "peers")
        return cls(_get(d, "p2p", bool), tuple(Peer.from_json(p) for p in _get(d, "peers", list)),
                   _opt(d, "syncing", bool, False), d.get("sync_target"), d.get("node_id"),
                   _opt(d, "banned", int, 0), d)


@dataclass(frozen=True, slots=True)
class Event:
    """One live event: `seq` numbers the gateway's stream without gaps; `type` is head |
    reorg | txs_added | txs_removed | resync; `data` is the whole JSON object."""

    seq: int
    type: str
    data: dict[str, Any]


# --- server-sent events ----------------------------------------------------------------------


def parse_sse(lines: Iterator[str]) -> Iterator[tuple[str | None, str]]:
    """(id, data) of each event in a text/event-stream (W3C EventSource rules, minus
    `retry`); comments (heartbeats) are skipped."""
    data: list[str] = []
    event_id: str | None = None
    for line in lines:
        if line == "":
            if data:
                yield event_id, "\n".join(data)
            data, event_id = [], None
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
        elif name == "id":
            event_id = value


# --- the client ------------------------------------------------------------------------------


class Client:
    """Synchronous REST client of one node (httpx)."""

    def __init__(self, base_url: str = DEFAULT_API, *, timeout: float = DEFAULT_TIMEOUT,
                 token: str = "", transport: httpx.BaseTransport | None = None,
                 request_id: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if request_id:
            headers["X-Request-ID"] = request_id
        self.http = httpx.Client(base_url=self.base_url, timeout=timeout, headers=headers,
                                 transport=transport)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    # --- plumbing ------------------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send one request; return the decoded JSON body or raise a `CcoinError`."""
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise Unavailable(f"node at {self.base_url} did not answer in time") from None
        except httpx.TransportError as exc:
            reason = str(exc) or exc.__class__.__name__
            raise Unavailable(f"cannot reach node at {self.base_url}: {reason}") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400:
            raise _api_error(response, body)
        if body is None:
            raise Malformed(f"{method} {path}: the node answered with non-JSON content")
        return body

    # --- reads ---------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return _doc(self.request("GET", "/health"), "health")

    def status(self) -> Status:
        return Status.from_json(self.request("GET", "/api/v1/status"))

    def block(self, ref: int | str | bytes) -> Block:
        """One block by height or by hash (hex or bytes)."""
        key = ref.hex() if isinstance(ref, bytes) else str(ref)
        return Block.from_json(self.request("GET", f"/api/v1/blocks/{key}"))

    def blocks(self, start: int | None = None, limit: int = 20, order: str = "desc",
               full: bool = False) -> BlockPage:
        params: dict[str, Any] = {"limit": limit, "order": order, "full": full}
        if start is not None:
            params["start"] = start
        return BlockPage.from_json(self.request("GET", "/api/v1/blocks", params=params))

    def block_count(self) -> int:
        return _get(_doc(self.request("GET", "/api/v1/blocks/count"), "count"), "count", int)

    def tx(self, tx_id: str | bytes) -> TxInfo:
        return TxInfo.from_json(self.request("GET", f"/api/v1/txs/{_hex(tx_id)}"))

    def tx_proof(self, tx_id: str | bytes) -> TxProof:
        return TxProof.from_json(self.request("GET", f"/api/v1/txs/{_hex(tx_id)}/proof"))

    def account(self, address: str | bytes) -> Account:
        return Account.from_json(self.request("GET", f"/api/v1/accounts/{_hex(address)}"))

    def history(self, address: str | bytes, offset: int = 0, limit: int = 20,
                before: str | None = None) -> History:
        """One page, newest first; pass the previous page's `next` as `before` to go on."""
        params: dict[str, Any] = {"offset": offset, "limit": limit}
        if before is not None:
            params["before"] = before
        return History.from_json(self.request(
            "GET", f"/api/v1/accounts/{_hex(address)}/txs", params=params))

    def full_history(self, address: str | bytes, page: int = 100) -> Iterator[HistoryItem]:
        """Every confirmed transaction of the account, newest first, page by page."""
        before: str | None = None
        while True:
            got = self.history(address, limit=page, before=before)
            yield from got.items
            if got.next is None:
                return
            before = got.next

    def mempool(self, offset: int = 0, limit: int = 100,
                sender: str | bytes | None = None) -> MempoolPage:
        params: dict[str, Any] = {"offset": offset, "limit": limit}
        if sender is not None:
            params["sender"] = _hex(sender)
        return MempoolPage.from_json(self.request("GET", "/api/v1/mempool", params=params))

    def tips(self) -> tuple[ChainTip, ...]:
        doc = _doc(self.request("GET", "/api/v1/chain/tips"), "tips")
        return tuple(ChainTip.from_json(t) for t in _get(doc, "tips", list))

    def consensus(self, window: int | None = None) -> Consensus:
        params = {"window": window} if window is not None else {}
        return Consensus.from_json(self.request("GET", "/api/v1/consensus", params=params))

    def peers(self) -> Peers:
        return Peers.from_json(self.request("GET", "/api/v1/peers"))

    def mining(self) -> dict[str, Any]:
        return _doc(self.request("GET", "/api/v1/mining"), "mining")

    def metrics(self) -> str:
        """The Prometheus text exposition of GET /metrics."""
        try:
            response = self.http.get("/metrics")
        except httpx.TransportError as exc:
            raise Unavailable(f"cannot reach node at {self.base_url}: {exc}") from None
        if response.status_code >= 400:
            raise _api_error(response, None)
        return response.text

    # --- admin ---------------------------------------------------------------------------

    def add_peer(self, endpoint: str) -> None:
        self.request("POST", "/api/v1/peers", json={"endpoint": endpoint})

    def sync(self) -> None:
        self.request("POST", "/api/v1/sync")

    def set_mining(self, enabled: bool) -> dict[str, Any]:
        """Switch the node's miner on or off (admin); the miner's status after."""
        return _doc(self.request("POST", f"/api/v1/mining/{'start' if enabled else 'stop'}"),
                    "mining")

    def wallet_send(self, to: str, amount: int, fee: int | None = None,
                    data: str = "") -> str:
        """Send from the node's own account (admin route: the node signs)."""
        body: dict[str, Any] = {"to": to, "amount": amount}
        if fee is not None:
            body["fee"] = fee
        if data:
            body["data"] = data
        return str(self.request("POST", "/api/v1/wallet/send", json=body)["id"])

    # --- writes --------------------------------------------------------------------------

    def submit_tx(self, tx: Transaction) -> str:
        """POST one signed transaction; return its id (hex) once the node accepted it."""
        body = self.request("POST", "/api/v1/txs", json=tx_to_json(tx))
        return str(body.get("id", tx.id.hex())) if isinstance(body, dict) else tx.id.hex()

    def submit_batch(self, txs: Sequence[Transaction]) -> list[dict[str, Any]]:
        """POST many signed transactions; return the node's per-item results."""
        body = self.request("POST", "/api/v1/txs/batch",
                            json={"txs": [tx_to_json(tx) for tx in txs]})
        results = body.get("results") if isinstance(body, dict) else body
        if not isinstance(results, list):
            raise Malformed("batch reply has no results list")
        return results

    def send(self, signer: Signer, *, to: bytes, amount: int, fee: int = 0,
             data: bytes = b"", nonce: int | None = None) -> Transaction:
        """Sign a transfer locally with the chain id and pending nonce the node reports,
        submit it, and return it."""
        chain_id = self.status().network_id
        if nonce is None:
            nonce = self.account(signer.address).pending_nonce
        tx = sign_transfer(signer, chain_id=chain_id, nonce=nonce, to=to, amount=amount,
                           fee=fee, data=data)
        self.submit_tx(tx)
        return tx

    def wait_confirmed(self, tx_id: str, *, timeout: float = 60.0, poll: float = 0.5,
                       progress: Callable[[str, float], None] | None = None,
                       confirmations: int = 1) -> TxInfo:
        """Poll GET /api/v1/txs/{id} until it has `confirmations`; return it.

        `progress(text, elapsed)` is called after every poll with the status (and its
        explanation). A node that is briefly unreachable (a restarting service) or does not
        know the id yet is polled again; a transaction that was rejected, replaced or
        dropped raises `TxFailed` at once; the deadline raises `TxTimeout`."""
        start = time.monotonic()
        last = "unknown"
        while True:
            try:
                info = self.tx(tx_id)
                last = info.status + (f": {info.explanation}" if info.explanation else "")
                if info.status == "confirmed" and (confirmations <= 1
                                                   or info.confirmations >= confirmations):
                    return info
                if info.final:
                    raise TxFailed(f"transaction {tx_id} was {info.status}: "
                                   f"{info.explanation or info.reason or '?'}", info)
            except Unavailable:
                last = "node unreachable"
            except ApiError as exc:
                if exc.code not in ("not_found", "unavailable") and exc.status < 500:
                    raise
                last = "unknown to the node" if exc.code == "not_found" else exc.code
            elapsed = time.monotonic() - start
            if progress is not None:
                progress(last, elapsed)
            if elapsed >= timeout:
                raise TxTimeout(f"transaction {tx_id} not confirmed after {timeout:g}s "
                                f"(last status: {last})")
            time.sleep(min(poll, max(0.0, timeout - elapsed)))

    # --- live events ---------------------------------------------------------------------

    def events(self, since: int | None = None, *, types: Sequence[str] = (),
               reconnect: bool = True, retry_delay: float = 1.0,
               on_reconnect: Callable[[str], None] | None = None,
               ) -> Generator[Event, None, None]:
        """Follow GET /api/v1/events. With `reconnect`, a dropped stream is reopened with
        `Last-Event-ID` so no event is lost (a `resync` event says when the gateway could
        not replay everything: re-read the status then). `since` starts after that
        sequence number; by default only new events come."""
        last = since
        while True:
            headers = {"Last-Event-ID": str(last)} if last is not None else {}
            params = {"types": ",".join(types)} if types else {}
            try:
                with self.http.stream("GET", "/api/v1/events", headers=headers,
                                      params=params,
                                      timeout=httpx.Timeout(10.0, read=60.0)) as response:
                    if response.status_code >= 400:
                        response.read()
                        try:
                            body = response.json()
                        except ValueError:
                            body = None
                        raise _api_error(response, body)
                    for event_id, data in parse_sse(response.iter_lines()):
                        event = _event(data)
                        if event_id is not None and event_id.isdigit():
                            last = int(event_id)
                        yield event
                why = "the node closed the stream"
            except httpx.TransportError as exc:
                if not reconnect:
                    raise Unavailable(f"event stream from {self.base_url} ended: "
                                      f"{exc or exc.__class__.__name__}") from None
                why = str(exc) or exc.__class__.__name__
            if not reconnect:
                return
            if on_reconnect is not None:
                on_reconnect(why)
            time.sleep(retry_delay)


def _event(data: str) -> Event:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise Malformed("an event's data is not JSON") from None
    d = _doc(doc, "event")
    return Event(_get(d, "seq", int), _get(d, "type", str), d)


def _api_error(response: httpx.Response, body: Any) -> ApiError:
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        return ApiError(str(err.get("code", "error")), str(err.get("message", "")),
                        response.status_code)
    # FastAPI's own errors ({"detail": ...}) and proxies' HTML pages
    detail = body.get("detail") if isinstance(body, dict) else None
    text = str(detail) if detail is not None else response.text[:200].strip()
    return ApiError(f"http_{response.status_code}", text or response.reason_phrase,
                    response.status_code)
