"""Client of the network's discovery service (one HTTP service per network, like the seed's).

Every `HEARTBEAT_S` the node registers itself (`POST {url}/register` with
`{"network_id", "genesis", "node_id", "endpoint", "curve_key"}`, bytes in hex) and lists the
live nodes of its network (`GET {url}/nodes?network_id=..&genesis=..` →
`{"nodes": [{..same fields.., "last_seen": ms}]}`), which go into the address book.
Discovery is a convenience, not a dependency: when it is down the node logs it once, keeps
its peers (bootnodes, PEX) and tries again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from common import wire
from common.errors import Malformed

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("ccoin.p2p.discovery")

HEARTBEAT_S = 10.0
TIMEOUT_S = 3.0
MAX_NODES = 256


def parse_node(item: Any) -> wire.PeerAddr:
    """One entry of the list reply, checked like anything else from the network."""
    if not isinstance(item, dict):
        raise Malformed("node entry must be an object")
    try:
        node_id = bytes.fromhex(item["node_id"])
        curve_key = bytes.fromhex(item.get("curve_key") or "")
    except (KeyError, TypeError, ValueError):
        raise Malformed("node_id / curve_key must be hex") from None
    return wire.PeerAddr(node_id, str(item.get("endpoint")), curve_key)


class DiscoveryClient:
    def __init__(self, url: str, registration: Callable[[], dict[str, Any]],
                 on_nodes: Callable[[list[wire.PeerAddr]], None]) -> None:
        self.url = url.rstrip("/")
        self.registration = registration
        self.on_nodes = on_nodes
        self.healthy: bool | None = None
        self.rounds = 0

    async def once(self, http: httpx.AsyncClient) -> int:
        me = self.registration()
        if me.get("endpoint"):
            r = await http.post(f"{self.url}/register", json=me)
            r.raise_for_status()
        r = await http.get(f"{self.url}/nodes", params={"network_id": me["network_id"],
                                                        "genesis": me["genesis"]})
        r.raise_for_status()
        items = r.json().get("nodes", [])
        if not isinstance(items, list):
            raise Malformed("nodes must be a list")
        found = []
        for item in items[:MAX_NODES]:
            try:
                found.append(parse_node(item))
            except Malformed as exc:
                log.debug("discovery: skipping an entry: %s", exc)
        self.on_nodes(found)
        return len(found)

    async def run(self) -> None:
        # imported here: a node without a discovery service (most) is spared httpx's ~9 MiB
        import httpx

        async with httpx.AsyncClient(timeout=TIMEOUT_S) as http:
            while True:
                try:
                    count = await self.once(http)
                    if self.healthy is not True:
                        log.info("discovery %s: registered, %d node(s) listed", self.url, count)
                    self.healthy = True
                except (httpx.HTTPError, ValueError, Malformed) as exc:
                    if self.healthy is not False:
                        log.warning("discovery %s unreachable (%s); keeping peers, retrying "
                                    "every %.0f s", self.url, exc, HEARTBEAT_S)
                    self.healthy = False
                self.rounds += 1
                await asyncio.sleep(HEARTBEAT_S)
