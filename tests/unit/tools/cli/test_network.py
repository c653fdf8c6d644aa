"""`ccoin peers add`, `ccoin peers` and `ccoin status` (tools/cli/network.py, client.py; its
assume-valid line, and `ccoin node status`'s)
against a node served in this process: the gateway under uvicorn on a loopback port, over
the real state and p2p services (tests/unit/services/api/support.py), with a test peer for
the node to dial. The command runs in a thread while the event loop serves it."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import uvicorn

from common import wire
from runtime.config import parse_config
from tests.conftest import Run, one_line_error
from tests.framework.util import wait_until_async
from tests.framework.wire_peer import WirePeer
from tests.unit.services.api.support import CHAIN, state_node
from tests.unit.services.api.support import run as run_async
from tools.cli.node import api_lines

ASSUMED = bytes.fromhex("6a" * 32)  # a block the node never finds: assume-valid searching


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_peers_add_prints_the_outcome_and_status_the_endpoint(run: Run, tmp_path: Path) -> None:
    cli = run

    async def scenario() -> None:
        async with state_node(tmp_path, p2p=True, p2p_settings={"assume_valid": ASSUMED}) \
                as node:
            assert node.p2p is not None
            port = free_port()
            server = uvicorn.Server(uvicorn.Config(node.app, host="127.0.0.1", port=port,
                                                   lifespan="off", log_level="warning"))
            serving = asyncio.create_task(server.serve())
            api = ("--api", f"http://127.0.0.1:{port}")
            try:
                await wait_until_async(lambda: server.started, timeout=30,
                                       what="uvicorn serving the gateway")
                peer = WirePeer(node.p2p.ctx, network_id=CHAIN,
                                genesis=node.genesis_hash).bind("tcp://127.0.0.1:0")
                (code, out, err), _ = await asyncio.gather(
                    asyncio.to_thread(cli, "peers", "add", peer.endpoint, *api),
                    peer.handshake())
                assert (code, err) == (0, "")
                assert out == (f"connected to {peer.node_id.hex()} at {peer.endpoint} "
                               "(outbound)\n")
                code, out, _ = await asyncio.to_thread(cli, "peers", "add", peer.endpoint, *api)
                assert out.startswith(f"already connected to {peer.node_id.hex()}")
                with socket.socket() as s:
                    s.bind(("127.0.0.1", 0))
                    silent = f"tcp://127.0.0.1:{s.getsockname()[1]}"
                code, out, err = await asyncio.to_thread(cli, "peers", "add", silent,
                                                         "--timeout", "0.3", *api)
                one_line_error(code, err, "peer_unreachable", f"no handshake with {silent} "
                                                              "within 0.3 s")
                stranger = WirePeer(node.p2p.ctx, network_id=CHAIN + 1,
                                    genesis=node.genesis_hash).bind("tcp://127.0.0.1:0")
                adding = asyncio.create_task(asyncio.to_thread(cli, "peers", "add",
                                                               stranger.endpoint, *api))
                await stranger.expect(wire.Hello)
                await stranger.hello()
                code, out, err = await adding
                one_line_error(code, err, "peer_wrong_network", stranger.endpoint)
                code, _, err = await asyncio.to_thread(cli, "peers", "add", silent,
                                                       "--timeout", "0", *api)
                one_line_error(code, err, "--timeout must be more than 0")

                listen = node.p2p.me.listen
                code, out, _ = await asyncio.to_thread(cli, "status", *api)
                assert f"p2p_endpoint  {listen}\n" in out
                assert (f"assume_valid  block {ASSUMED.hex()} not found yet in the peers' "
                        "headers; 0 signatures skipped in 0 blocks\n") in out
                # `ccoin node status` asks the same gateway, after its services' states
                local = parse_config({"app": {"base_path": str(tmp_path / "cli")},
                                      "api": {"host": "127.0.0.1", "port": port}})
                lines = await asyncio.to_thread(api_lines, local)
                assert lines[0].startswith("readiness: ")
                assert lines[1:] == [f"assume-valid: block {ASSUMED.hex()} not found yet in "
                                     "the peers' headers; 0 signatures skipped in 0 blocks"]
                code, out, _ = await asyncio.to_thread(cli, "peers", *api)
                assert out.rstrip().endswith(f"reachable at {listen}")
                for p in (peer, stranger):
                    p.close()
            finally:
                server.should_exit = True
                await serving

    run_async(scenario)
