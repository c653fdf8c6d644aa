"""In-process p2p nodes for the unit tests: the real state service and the real p2p node,
in the test's event loop, on inproc:// endpoints of one ZeroMQ context.

    async with LocalNet(tmp_path) as net:
        node = await net.node("a")               # state (LevelDB in tmp_path) + p2p
        peer = net.peer().connect(node.listen)   # a WirePeer on the node's ROUTER
        await peer.handshake()

Nothing is mocked: state is `services.state.service.StateService` over a `Chain` on a real
LevelDB, served by the real bus `Server` and `Publisher`; the node is `P2PNode` itself.
The maintenance tick does not run by itself (`Timing.tick` is an hour): a test calls
`node.tick(now)` with the time it wants, so timeouts are tested without waiting for them.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from types import TracebackType
from typing import Any

import zmq.asyncio

from common import messages as m
from common.crypto import KeyType, PrivateKey, Signer
from common.errors import NotFound
from common.genesis import Genesis, genesis_block
from common.types import Block, Transaction
from runtime.bus import BusClient, Publisher, Server
from services.p2p.node import P2PNode
from services.p2p.settings import P2PSettings, Timing
from services.state.chain import Chain
from services.state.mempool import Mempool
from services.state.service import StateService
from services.state.store import Store
from tests.framework import rules
from tests.framework.wire_peer import WirePeer

MANUAL = Timing(tick=3600.0)  # the tests call `tick` themselves


class LocalState:
    """The state service of one node, in this process."""

    def __init__(self, ctx: zmq.asyncio.Context, directory: Path, genesis: Genesis,
                 name: str) -> None:
        self.ctx = ctx
        self.endpoint = f"inproc://state-{name}"
        self.events = f"inproc://events-{name}"
        self.chain = Chain(Store(directory), genesis, mempool=Mempool(genesis.network_id))
        self.publisher = Publisher(ctx, self.events)
        self.server = Server(ctx, self.endpoint, "state",
                             StateService(self.chain, self.publisher).handlers())  # type: ignore[arg-type]
        self.client = BusClient(self.endpoint, ctx, timeout=10.0)
        self.task = asyncio.create_task(self.server.serve_forever(), name=f"state-{name}")

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        self.client.close()
        self.server.close()
        self.publisher.close()
        self.chain.store.close()

    async def status(self) -> m.StatusReply:
        return await self.client.request(m.GetStatus(), m.StatusReply)

    async def submit_blocks(self, blocks: list[Block]) -> list[m.BlockOutcome]:
        """Import blocks as a miner would (state publishes the new heads)."""
        result = await self.client.request(m.SubmitBlocks(tuple(b.raw for b in blocks)),
                                           m.SubmitBlocksResult, timeout=60)
        return list(result.outcomes)

    async def submit_txs(self, txs: list[Transaction]) -> list[str]:
        """Submit transactions as a client would; their error codes ("" when accepted)."""
        result = await self.client.request(m.SubmitTxs(tuple(t.raw for t in txs)),
                                           m.SubmitResult)
        return result.codes()

    async def tx_status(self, tx_id: bytes) -> str:
        """What state says of a transaction ("unknown" when it has never seen it)."""
        try:
            reply = await self.client.request(m.GetTx(tx_id), m.TxReply)
        except NotFound:
            return "unknown"
        return str(reply.status)

    async def statuses(self, txs: list[Transaction]) -> set[str]:
        return {await self.tx_status(t.id) for t in txs}

    async def has_block(self, block_hash: bytes) -> bool:
        reply = await self.client.request(m.HasBlocks((block_hash,)), m.HasBlocksReply)
        return bool(reply.known[0])


class LocalNet:
    """One context, the states and p2p nodes started in it, and the test peers; all closed
    on exit. Every node runs `genesis` (a one-authority PoA chain by default)."""

    def __init__(self, directory: Path, genesis: Genesis | None = None) -> None:
        self.directory = directory
        self.genesis = genesis or rules.poa_genesis(n_miners=1)
        self.genesis_hash = genesis_block(self.genesis).hash
        self.ctx = zmq.asyncio.Context()
        self.states: dict[str, LocalState] = {}
        self.nodes: dict[str, P2PNode] = {}
        self.peers: list[WirePeer] = []

    async def __aenter__(self) -> LocalNet:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        for peer in self.peers:
            peer.close()
        for node in self.nodes.values():
            await node.stop()
        for state in self.states.values():
            await state.close()
        self.ctx.destroy(linger=0)

    def state(self, name: str) -> LocalState:
        if name not in self.states:
            directory = self.directory / name
            directory.mkdir(parents=True, exist_ok=True)
            self.states[name] = LocalState(self.ctx, directory / "chain", self.genesis, name)
        return self.states[name]

    def settings(self, name: str, **overrides: Any) -> P2PSettings:
        state = self.state(name)
        base = P2PSettings(listen=f"inproc://p2p-{name}", state=state.endpoint,
                           events=state.events, control=f"inproc://p2p-control-{name}",
                           timing=MANUAL)
        return dataclasses.replace(base, **overrides)

    async def node(self, name: str, *, key: PrivateKey | None = None,
                   curve_keys: tuple[bytes, bytes] | None = None,
                   allow_list: frozenset[bytes] | None = None, **settings: Any) -> P2PNode:
        """Start node `name` (its state first, if it has none yet)."""
        signer = Signer(key or PrivateKey.generate(KeyType.ED25519))
        node = P2PNode(self.settings(name, **settings), self.genesis, self.ctx, signer,
                       curve_keys, allow_list)
        self.nodes[name] = node
        await node.start()
        return node

    def peer(self, **kwargs: Any) -> WirePeer:
        """A test peer of this network (not linked yet: `connect` or `bind` it)."""
        fields = {"network_id": self.genesis.network_id, "genesis": self.genesis_hash,
                  **kwargs}
        peer = WirePeer(self.ctx, **fields)
        self.peers.append(peer)
        return peer

    def control(self, name: str) -> BusClient:
        """A bus client of node `name`'s control socket."""
        return BusClient(self.nodes[name].settings.control, self.ctx, timeout=5.0, retries=0)
