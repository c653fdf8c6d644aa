"""The REST client of a ccoin node (DESIGN §6): one `Client` per node, over httpx.

Every failure is a `CcoinError` from `common.errors`: an error reply comes back as the class
its code is registered to (`NonceTooLow`, `NotFound`, `Forbidden`...; `remote` is set), an
unknown code as a plain `CcoinError` keeping that code and the HTTP status, and a node that
cannot be reached as `Unavailable`.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from functools import cache
from typing import Any

import httpx
import orjson

from client.events import Event, event_from_json, parse_sse
from client.network import ConsensusInfo, PeerAdded, PeersInfo, TipInfo, VotesInfo
from client.results import (
    AccountInfo,
    BlockInfo,
    BlockPage,
    HistoryItem,
    HistoryPage,
    MempoolPage,
    NodeStatus,
    ReadyInfo,
    TxInfo,
    TxProof,
    json_object,
    required,
)
from client.transactions import as_hex, sign_transfer, tx_to_json
from common.crypto import Signer
from common.encoding import MEDIA_TYPE, pack, unpack
from common.errors import (
    CcoinError,
    Malformed,
    NotFound,
    TxFailed,
    TxTimeout,
    Unavailable,
    error_from_code,
)
from common.status import TxStatus
from common.types import Transaction

DEFAULT_API = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = 10.0


@cache
def tls_context() -> ssl.SSLContext:
    """httpx's default TLS context, made once per process: httpx makes one per client, and
    loading the CA bundle costs ~19 ms of CPU, more than a whole request to a local node."""
    return httpx.create_ssl_context()


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
                                 transport=transport, verify=tls_context())

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    # --- plumbing ------------------------------------------------------------------------

    def request(self, method: str, path: str, *, answers: tuple[int, ...] = (),
                **kwargs: Any) -> Any:
        """Send one request; return the decoded JSON (or msgpack) body or raise a
        `CcoinError`. An error status in `answers` is an answer, not a failure: its body is
        returned."""
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise Unavailable(f"node at {self.base_url} did not answer in time") from None
        except httpx.TransportError as exc:
            reason = str(exc) or exc.__class__.__name__
            raise Unavailable(f"cannot reach node at {self.base_url}: {reason}") from None
        try:
            if response.headers.get("content-type", "").startswith(MEDIA_TYPE):
                body = unpack(response.content)
            else:
                body = orjson.loads(response.content)
        except (ValueError, CcoinError):  # not JSON, or msgpack that does not read
            body = None
        if response.status_code >= 400 and response.status_code not in answers:
            raise _api_error(response, body)
        if body is None:
            raise Malformed(f"{method} {path}: the node answered with content that does not "
                            "read as JSON or msgpack")
        return body

    # --- reads ---------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return json_object(self.request("GET", "/health"), "health")

    def ready(self) -> ReadyInfo:
        """Readiness (503, not ready, is an answer here, not an error)."""
        return ReadyInfo.from_json(self.request("GET", "/api/v1/ready", answers=(503,)))

    def status(self) -> NodeStatus:
        return NodeStatus.from_json(self.request("GET", "/api/v1/status"))

    def block(self, ref: int | str | bytes) -> BlockInfo:
        """One block by height or by hash (hex or bytes)."""
        key = ref.hex() if isinstance(ref, bytes) else str(ref)
        return BlockInfo.from_json(self.request("GET", f"/api/v1/blocks/{key}"))

    def blocks(self, start: int | None = None, limit: int = 20, order: str = "desc",
               full: bool = False) -> BlockPage:
        params: dict[str, Any] = {"limit": limit, "order": order, "full": full}
        if start is not None:
            params["start"] = start
        return BlockPage.from_json(self.request("GET", "/api/v1/blocks", params=params))

    def block_count(self) -> int:
        doc = json_object(self.request("GET", "/api/v1/blocks/count"), "count")
        return required(doc, "count", int)

    def tx(self, tx_id: str | bytes) -> TxInfo:
        return TxInfo.from_json(self.request("GET", f"/api/v1/txs/{as_hex(tx_id)}"))

    def tx_proof(self, tx_id: str | bytes) -> TxProof:
        return TxProof.from_json(self.request("GET", f"/api/v1/txs/{as_hex(tx_id)}/proof"))

    def account(self, address: str | bytes) -> AccountInfo:
        return AccountInfo.from_json(self.request("GET", f"/api/v1/accounts/{as_hex(address)}"))

    def history(self, address: str | bytes, offset: int = 0, limit: int = 20,
                before: str | None = None) -> HistoryPage:
        """One page, newest first; pass the previous page's `next` as `before` to go on."""
        params: dict[str, Any] = {"offset": offset, "limit": limit}
        if before is not None:
            params["before"] = before
        return HistoryPage.from_json(self.request(
            "GET", f"/api/v1/accounts/{as_hex(address)}/txs", params=params))

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
            params["sender"] = as_hex(sender)
        return MempoolPage.from_json(self.request("GET", "/api/v1/mempool", params=params))

    def tips(self) -> tuple[TipInfo, ...]:
        doc = json_object(self.request("GET", "/api/v1/chain/tips"), "tips")
        return tuple(TipInfo.from_json(t) for t in required(doc, "tips", list))

    def consensus(self, window: int | None = None) -> ConsensusInfo:
        params = {"window": window} if window is not None else {}
        return ConsensusInfo.from_json(self.request("GET", "/api/v1/consensus", params=params))

    def votes(self) -> VotesInfo:
        """The authority votes: the set, open proposals, changes, this node's proposals."""
        doc = json_object(self.request("GET", "/api/v1/consensus", params={"window": 100}),
                          "consensus")
        return VotesInfo.from_json(required(doc, "votes", dict))

    def propose(self, address: str | bytes, authorize: bool) -> VotesInfo:
        """Make the node's miner vote to authorize (or deauthorize) `address` (admin)."""
        body = {"address": as_hex(address), "authorize": authorize}
        return VotesInfo.from_json(self.request("POST", "/api/v1/consensus/proposals",
                                                json=body))

    def discard(self, address: str | bytes) -> VotesInfo:
        """Stop the node's miner voting about `address` (admin); `NotFound` if it was not."""
        return VotesInfo.from_json(self.request(
            "DELETE", f"/api/v1/consensus/proposals/{as_hex(address)}"))

    def peers(self) -> PeersInfo:
        return PeersInfo.from_json(self.request("GET", "/api/v1/peers"))

    def mining(self) -> dict[str, Any]:
        return json_object(self.request("GET", "/api/v1/mining"), "mining")

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

    def add_peer(self, endpoint: str, wait: float | None = None) -> PeerAdded:
        """Ask the node to link to a peer (admin) and wait for the outcome: connected, or
        already connected; a refusal raises `PeerRefused` (or one of its kinds), no
        handshake within `wait` seconds (the node's default: 5) `PeerUnreachable`."""
        body: dict[str, Any] = {"endpoint": endpoint}
        if wait is not None:
            body["wait_ms"] = max(1, round(wait * 1000))
        # the node answers only after its wait: the HTTP timeout must outlast it
        timeout = (wait if wait is not None else 5.0) + DEFAULT_TIMEOUT
        return PeerAdded.from_json(self.request("POST", "/api/v1/peers", json=body,
                                                timeout=timeout))

    def sync(self) -> None:
        self.request("POST", "/api/v1/sync")

    def set_mining(self, enabled: bool) -> dict[str, Any]:
        """Switch the node's miner on or off (admin); the miner's status after."""
        return json_object(self.request("POST", f"/api/v1/mining/{'start' if enabled else 'stop'}"),
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

    def submit_batch(self, txs: Sequence[Transaction], *,
                     raw_ids: bool = False) -> list[dict[str, Any]]:
        """POST many signed transactions; return the node's per-item results, as the JSON
        form has them (ids in hex), or with `raw_ids` each id as its 32 bytes (no hex to
        write per transaction, for a caller that keeps ids as bytes). They go in the batch
        route's binary form, a msgpack array of their canonical encodings, and the reply
        comes in msgpack: no JSON or hex to build or read on the node, for a bench or a
        wallet that posts thousands at a time."""
        body = self.request("POST", "/api/v1/txs/batch", content=pack([tx.raw for tx in txs]),
                            headers={"content-type": MEDIA_TYPE, "accept": MEDIA_TYPE})
        results = body.get("results") if isinstance(body, dict) else None
        if isinstance(results, list):  # JSON: a node from before the msgpack reply
            if not raw_ids:
                return results
            try:
                return [{**r, "id": bytes.fromhex(r["id"])} if "id" in r else r
                        for r in results]
            except (TypeError, ValueError):
                raise Malformed("batch reply has an id that is not hex") from None
        if not isinstance(results, tuple) or not all(
                type(r) is dict and type(r.get("id", b"")) is bytes for r in results):
            raise Malformed("batch reply has no results list")
        if raw_ids:
            return list(results)
        return [{**r, "id": r["id"].hex()} if "id" in r else r for r in results]

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
                if info.status == TxStatus.CONFIRMED and (confirmations <= 1
                                                   or info.confirmations >= confirmations):
                    return info
                if info.final:
                    raise TxFailed(f"transaction {tx_id} was {info.status}: "
                                   f"{info.explanation or info.reason or '?'}", info)
            except Unavailable:
                last = "node unreachable"
            except NotFound:
                last = "unknown to the node"
            except CcoinError as exc:
                if exc.http_status < 500:
                    raise
                last = exc.code
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
                        event = event_from_json(data)
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


def _api_error(response: httpx.Response, body: Any) -> CcoinError:
    """The typed error an error reply stands for (`common.errors`): the class registered for
    its code, so a caller catches `NonceTooLow` here as it would from the bus."""
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        return error_from_code(str(err.get("code", "error")), str(err.get("message", "")),
                               response.status_code)
    # FastAPI's own errors ({"detail": ...}) and proxies' HTML pages: no code of ours
    detail = body.get("detail") if isinstance(body, dict) else None
    text = str(detail) if detail is not None else response.text[:200].strip()
    return error_from_code(f"http_{response.status_code}", text or response.reason_phrase,
                           response.status_code)
