"""A peer given by its page URL (`http://localhost:5001/`, as sosocoin's users add peers):
read that node's `GET /api/v1/status` and take its `p2p_endpoint`.

`POST /peers` is an admin route, so only the operator makes the node fetch a URL. The read
is short (a few seconds, no redirects, at most `MAX_STATUS_BYTES`), and each way it can fail
has its own code: nothing answers (`peer_url_unreachable`), something answers that is not a
ccoin node (`peer_url_not_ccoin`), a ccoin node of another network or genesis
(`peer_wrong_network`), or one that runs no p2p service (`peer_no_p2p`). The status is
public, so no token is sent.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from common.errors import (
    Malformed,
    PeerNoP2P,
    PeerUrlNotCcoin,
    PeerUrlUnreachable,
    PeerWrongNetwork,
)
from services.api.schema import ENDPOINT_PATTERN

STATUS_PATH = "/api/v1/status"
FETCH_TIMEOUT = 3.0  # seconds, for the whole read: a node's status answers in milliseconds
MAX_STATUS_BYTES = 64 * 1024


def is_page_url(endpoint: str) -> bool:
    return endpoint.lower().startswith(("http://", "https://"))


def status_url(page: str) -> str:
    """The status route of the node whose page (or any of its URLs' bases) is `page`: its
    path is dropped, as a user may paste `http://host:5001/#/operate`."""
    try:
        parts = urlsplit(page)
        ok = parts.hostname is not None
        parts.port  # noqa: B018 (raises on a port that is not a number)
    except ValueError:
        ok = False
    if not ok:
        raise Malformed(f"{page[:100]!r} is not a node's page URL (e.g. http://host:8000/)")
    return urlunsplit((parts.scheme.lower(), parts.netloc, STATUS_PATH, "", ""))


async def fetch_status(url: str) -> dict[str, Any]:
    """The JSON object `url` answers, or the error saying why there is none."""
    import httpx  # here: an operator adds a peer by URL rarely; httpx costs ~9 MiB to load

    try:
        async with httpx.AsyncClient(timeout=FETCH_TIMEOUT, follow_redirects=False) as client, \
                client.stream("GET", url, headers={"Accept": "application/json"}) as reply:
            body = b""
            async for chunk in reply.aiter_bytes():
                body += chunk
                if len(body) > MAX_STATUS_BYTES:
                    raise PeerUrlNotCcoin(f"{url} answered more than {MAX_STATUS_BYTES} "
                                          "bytes: not a ccoin node's status")
    except httpx.TimeoutException:
        raise PeerUrlUnreachable(f"{url} did not answer within {FETCH_TIMEOUT:g} s") from None
    except httpx.HTTPError as exc:
        raise PeerUrlUnreachable(f"could not read {url}: {exc or type(exc).__name__}") \
            from None
    if reply.status_code != 200:
        raise PeerUrlNotCcoin(f"{url} answered HTTP {reply.status_code}, not a ccoin node's "
                              "status (give the node's page or API address, e.g. "
                              "http://host:8000/)")
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise PeerUrlNotCcoin(f"{url} did not answer a JSON status: not a ccoin node")
    return doc


async def resolve(page: str, network_id: int, genesis: bytes) -> str:
    """The p2p endpoint of the node at `page`, checked to share this node's network."""
    url = status_url(page)
    doc = await fetch_status(url)
    theirs_id, theirs_genesis = doc.get("network_id"), doc.get("genesis")
    if type(theirs_id) is not int or not isinstance(theirs_genesis, str):
        raise PeerUrlNotCcoin(f"{url} answered JSON without a network_id and genesis: "
                              "not a ccoin node")
    if theirs_id != network_id or theirs_genesis.lower() != genesis.hex():
        raise PeerWrongNetwork(
            f"the node at {page} runs network {theirs_id} with genesis "
            f"{theirs_genesis[:16]}…, this node network {network_id} with genesis "
            f"{genesis.hex()[:16]}…")
    endpoint = doc.get("p2p_endpoint")
    if endpoint is None or doc.get("p2p") is False:
        raise PeerNoP2P(f"the node at {page} has no p2p endpoint: its p2p service is not "
                        "running (or it is too old to say it)")
    if not isinstance(endpoint, str) or not ENDPOINT_PATTERN.fullmatch(endpoint):
        raise PeerUrlNotCcoin(f"{url} gave a p2p_endpoint that is not tcp://host:port: "
                              f"{str(endpoint)[:100]!r}")
    return endpoint
