"""A node's REST API as the functional tests read it: plain JSON over HTTP (TCP, or a unix
socket forwarded into a network namespace), plus the error-shape check every interface test
makes. The typed client library (`client.Client`) is what users call; these helpers stay
close to the wire so a test sees exactly what the gateway answered."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from common.types import Transaction


class RestApi:
    """One node's REST API, over TCP or (for a node in another network namespace) over a
    unix socket forwarded into that namespace."""

    def __init__(self, name: str, url: str | None = None, uds: str | None = None) -> None:
        self.name = name
        transport = httpx.HTTPTransport(uds=uds) if uds else None
        self.http = httpx.Client(base_url=url or "http://node", transport=transport,
                                 timeout=10)

    def get(self, path: str, **params: Any) -> Any:
        r = self.http.get(path, params=params or None)
        r.raise_for_status()
        return r.json()

    def up(self) -> bool:
        try:
            return self.http.get("/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def status(self) -> dict[str, Any]:
        return dict(self.get("/api/v1/status"))

    def height(self) -> int:
        return int(self.status()["height"])

    def block(self, ref: int | str) -> dict[str, Any]:
        return dict(self.get(f"/api/v1/blocks/{ref}"))

    def tx_status(self, tx_id: str) -> dict[str, Any] | None:
        r = self.http.get(f"/api/v1/txs/{tx_id}")
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return dict(r.json())

    def confirmed(self, tx_id: str) -> bool:
        doc = self.tx_status(tx_id)
        return doc is not None and doc.get("status") == "confirmed"

    def balance(self, address: bytes) -> int:
        return int(self.get(f"/api/v1/accounts/{address.hex()}")["balance"])

    def pending_nonce(self, address: bytes) -> int:
        return int(self.get(f"/api/v1/accounts/{address.hex()}")["pending_nonce"])

    def submit(self, txs: Sequence[Transaction]) -> list[dict[str, Any]]:
        r = self.http.post("/api/v1/txs/batch", json={"txs": [{"raw": t.raw.hex()}
                                                               for t in txs]})
        r.raise_for_status()
        return list(r.json()["results"])

    def submit_all(self, txs: Sequence[Transaction]) -> None:
        """Submit `txs`; every one must be accepted."""
        refused = [r for r in self.submit(txs) if r.get("status") != "accepted"]
        assert not refused, refused[:3]

    def chain(self, upto: int) -> list[dict[str, Any]]:
        """Main-chain blocks 1..upto (headers only), oldest first."""
        out: list[dict[str, Any]] = []
        start = 1
        while start <= upto:
            page = self.get("/api/v1/blocks", start=start, limit=min(100, upto - start + 1),
                            order="asc")["blocks"]
            if not page:
                break
            out.extend(page)
            start = out[-1]["header"]["height"] + 1
        return out[:upto]

    def close(self) -> None:
        self.http.close()


def assert_error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """`r` is the gateway's error shape: `{"error": {"code", "message"}}` with `status`."""
    assert r.status_code == status, (r.status_code, r.text)
    body: dict[str, Any] = r.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, r.text
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body


def same_head(apis: Sequence[RestApi]) -> str | None:
    """The head every node reports, when they all report the same one."""
    heads = {a.status()["head"] for a in apis}
    return heads.pop() if len(heads) == 1 else None


def assert_one_chain(apis: Sequence[RestApi], upto: int | None = None) -> list[dict[str, Any]]:
    """Every node has the same block hash and state root at every height up to `upto`
    (default: the lowest height among them). Returns that chain."""
    if upto is None:
        upto = min(a.height() for a in apis)
    chains = [a.chain(upto) for a in apis]
    reference = [(b["hash"], b["header"]["state_root"]) for b in chains[0]]
    assert len(reference) == upto
    for api, chain in zip(apis[1:], chains[1:], strict=True):
        mine = [(b["hash"], b["header"]["state_root"]) for b in chain]
        if mine != reference:
            first = next(i for i, (x, y) in enumerate(zip(mine, reference, strict=False))
                         if x != y) if len(mine) == len(reference) else len(mine)
            raise AssertionError(f"{api.name} differs from {apis[0].name} at height "
                                 f"{first + 1}: {mine[first:first + 1]} vs "
                                 f"{reference[first:first + 1]}")
    return chains[0]
