"""A small typed client of a node's REST API (DESIGN §6), used by the `ccoin` command line,
the end-to-end tests and anything else that talks to a node over HTTP.

Every failure is a `CcoinError`: an API error reply becomes `ApiError` carrying the server's
`code` and `message`, a node that cannot be reached becomes `Unavailable`. Transactions are
signed by the caller (`sign_transfer`), never by the node: the private key stays local.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TypedDict, cast

import httpx

from common.crypto import KeyType, Signer
from common.errors import CcoinError, Malformed, Unavailable
from common.types import Transaction

DEFAULT_API = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = 10.0
KEY_TYPE_NAMES = {KeyType.ED25519: "ed25519", KeyType.RSA: "rsa"}


class Status(TypedDict, total=False):
    network_id: int
    genesis: str
    height: int
    head: str
    total_weight: int
    peers: int
    syncing: bool
    mining: bool
    version: str


class Account(TypedDict):
    address: str
    balance: int
    nonce: int
    pending_nonce: int


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


class Client:
    """Synchronous REST client of one node."""

    def __init__(self, base_url: str = DEFAULT_API, *, timeout: float = DEFAULT_TIMEOUT,
                 token: str = "", transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
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
            err = body.get("error") if isinstance(body, dict) else None
            if isinstance(err, dict):
                raise ApiError(str(err.get("code", "error")), str(err.get("message", "")),
                               response.status_code)
            # FastAPI's own errors ({"detail": ...}) and proxies' HTML pages
            detail = body.get("detail") if isinstance(body, dict) else None
            text = str(detail) if detail is not None else response.text[:200].strip()
            raise ApiError(f"http_{response.status_code}", text or response.reason_phrase,
                           response.status_code)
        if body is None:
            raise Malformed(f"{method} {path}: the node answered with non-JSON content")
        return body

    # --- reads ---------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return cast(dict[str, Any], self.request("GET", "/health"))

    def status(self) -> Status:
        return cast(Status, self.request("GET", "/api/v1/status"))

    def block(self, ref: int | str) -> dict[str, Any]:
        """One block by height or by hash (hex)."""
        return cast(dict[str, Any], self.request("GET", f"/api/v1/blocks/{ref}"))

    def block_count(self) -> int:
        return int(self.request("GET", "/api/v1/blocks/count")["count"])

    def tx(self, tx_id: str) -> dict[str, Any]:
        return cast(dict[str, Any], self.request("GET", f"/api/v1/txs/{tx_id}"))

    def account(self, address: str) -> Account:
        return cast(Account, self.request("GET", f"/api/v1/accounts/{address}"))

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

    def wallet_send(self, to: str, amount: int, fee: int | None = None,
                    data: str = "") -> str:
        """Send from the node's own account (admin route: the node signs)."""
        body: dict[str, Any] = {"to": to, "amount": amount}
        if fee is not None:
            body["fee"] = fee
        if data:
            body["data"] = data
        return str(self.request("POST", "/api/v1/wallet/send", json=body)["id"])

    def send(self, signer: Signer, *, to: bytes, amount: int, fee: int = 0,
             data: bytes = b"", nonce: int | None = None) -> Transaction:
        """Sign a transfer locally with the chain id and pending nonce the node reports,
        submit it, and return it."""
        chain_id = int(self.status()["network_id"])
        if nonce is None:
            nonce = int(self.account(signer.address.hex())["pending_nonce"])
        tx = sign_transfer(signer, chain_id=chain_id, nonce=nonce, to=to, amount=amount,
                           fee=fee, data=data)
        self.submit_tx(tx)
        return tx

    def wait_confirmed(self, tx_id: str, *, timeout: float = 60.0, poll: float = 0.5,
                       progress: Callable[[str, float], None] | None = None,
                       ) -> dict[str, Any]:
        """Poll GET /api/v1/txs/{id} until its status is `confirmed`; return it.

        `progress(status, elapsed)` is called after every poll. A node that is briefly
        unreachable (a restarting service) or does not know the id yet is polled again;
        only the deadline ends the wait, with `TxTimeout`."""
        start = time.monotonic()
        last = "unknown"
        while True:
            try:
                info = self.tx(tx_id)
                last = str(info.get("status", "unknown"))
                if last == "confirmed":
                    return info
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
