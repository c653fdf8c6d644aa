"""POST /peers given the other node's page URL (`services.api.peer_page`), against the real
state and p2p services in-process and a real second HTTP server on loopback playing the
other node's gateway: the node reads that status and dials its `p2p_endpoint`; each way a
URL gives no peer has its own code, and a node without p2p fetches nothing."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.unit.services.api.support import CHAIN, run, state_node
from tests.unit.services.api.test_network import error_of, listener
from tests.unit.services.api.test_routes import check


class OtherGateway:
    """A loopback HTTP server answering every GET with `status`/`body`; it records paths."""

    def __init__(self) -> None:
        self.status = 200
        self.body: bytes = b"{}"
        self.content_type = "application/json"
        self.paths: list[str] = []

    def answer(self, doc: Any = None, *, status: int = 200, raw: bytes | None = None,
               content_type: str = "application/json") -> None:
        self.status, self.content_type = status, content_type
        self.body = raw if raw is not None else json.dumps(doc).encode()

    @contextmanager
    def serving(self) -> Iterator[str]:
        other = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
                other.paths.append(self.path)
                self.send_response(other.status)
                self.send_header("Content-Type", other.content_type)
                self.send_header("Content-Length", str(len(other.body)))
                self.end_headers()
                self.wfile.write(other.body)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()


def status_doc(genesis: bytes, endpoint: str | None, **changes: Any) -> dict[str, Any]:
    doc = {"network_id": CHAIN, "genesis": genesis.hex(), "height": 3, "p2p": True,
           "p2p_endpoint": endpoint, "version": "0.0.0"}
    doc.update(changes)
    return doc


def test_add_peer_by_its_page_url(tmp_path: Path) -> None:
    other = OtherGateway()

    async def scenario() -> None:
        async with state_node(tmp_path, p2p=True) as node:
            http = node.http
            with other.serving() as url:
                peer = listener(node)
                other.answer(status_doc(node.genesis_hash, peer.endpoint))
                # as pasted from the browser's address bar: the path is not the status
                added, _ = await asyncio.gather(
                    http.post("/api/v1/peers", json={"endpoint": f"{url}/#/operate"}),
                    peer.handshake())
                body = check(node, "POST", "/api/v1/peers", added)
                assert body["outcome"] == "connected" and body["endpoint"] == peer.endpoint
                assert body["node_id"] == peer.node_id.hex()
                assert other.paths == ["/api/v1/status"]

                documented = node.app.openapi()["paths"]["/api/v1/peers"]["post"]["responses"]

                async def refused(status: int) -> tuple[str, str]:
                    reply = await http.post("/api/v1/peers", json={"endpoint": url + "/"})
                    assert str(status) in documented
                    return error_of(reply, status)

                other.answer(status_doc(b"\x07" * 32, peer.endpoint))
                code, message = await refused(409)
                assert code == "peer_wrong_network" and "genesis 0707070707070707" in message
                other.answer(status_doc(node.genesis_hash, peer.endpoint, network_id=CHAIN + 1))
                code, message = await refused(409)
                assert code == "peer_wrong_network" and f"network {CHAIN + 1}" in message
                other.answer(status_doc(node.genesis_hash, None, p2p=False))
                code, message = await refused(409)
                assert code == "peer_no_p2p" and "p2p service is not running" in message
                other.answer(raw=b"<html>sosocoin node</html>", content_type="text/html")
                code, message = await refused(422)
                assert code == "peer_url_not_ccoin" and "not a ccoin node" in message
                other.answer({"error": "nope"}, status=404)
                code, message = await refused(422)
                assert code == "peer_url_not_ccoin" and "HTTP 404" in message
                other.answer({"name": "some other JSON API"})
                code, _ = await refused(422)
                assert code == "peer_url_not_ccoin"
                other.answer(status_doc(node.genesis_hash, "udp://what"))
                code, message = await refused(422)
                assert code == "peer_url_not_ccoin" and "udp://what" in message
            peer.close()

            with socket.socket() as s:  # a port nothing listens on
                s.bind(("127.0.0.1", 0))
                closed = f"http://127.0.0.1:{s.getsockname()[1]}/"
            reply = await http.post("/api/v1/peers", json={"endpoint": closed})
            code, message = error_of(reply, 422)
            assert code == "peer_url_unreachable" and closed in message
            for bad in ("http://", "http://host:port/", "ftp://host/"):
                code, _ = error_of(await http.post("/api/v1/peers", json={"endpoint": bad}),
                                   400)
                assert code == "malformed", bad

    run(scenario)


def test_without_p2p_a_page_url_is_not_fetched(tmp_path: Path) -> None:
    other = OtherGateway()

    async def scenario() -> None:
        async with state_node(tmp_path) as node:
            with other.serving() as url:
                other.answer(status_doc(node.genesis_hash, "tcp://127.0.0.1:1"))
                reply = await node.http.post("/api/v1/peers", json={"endpoint": url})
                code, _ = error_of(reply, 503)
                assert code == "p2p_unavailable" and other.paths == []

    run(scenario)
