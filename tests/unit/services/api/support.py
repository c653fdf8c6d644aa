"""What the gateway's unit tests share: signed transactions, and the app served in-process.

Two ways to serve the app, both through httpx's ASGI transport (no socket, no uvicorn) and
the app's own lifespan:
- `offline_app`: its bus endpoints are ipc:// files that do not exist, so nothing answers;
  for the answers the gateway gives by itself (errors, validation, absent services).
- `state_node`: a real state service (LevelDB in a temporary directory) served over
  inproc:// in the same event loop, sharing the app's ZeroMQ context; for routes that
  need real replies (with `p2p=True`, the real p2p node too, listening on loopback tcp).
  No process is started.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import zmq.asyncio

from common.crypto import KeyType, PrivateKey, Signer
from common.encoding import pack
from common.errors import CcoinError
from common.genesis import Genesis, genesis_block, parse_genesis
from common.types import TX_DOMAIN, Transaction
from runtime.bus import Publisher, Server
from runtime.config import NodeConfig, parse_config
from services.api import schema
from services.api.app import create_app
from services.api.gateway import Gateway
from services.p2p.node import P2PNode
from services.p2p.settings import P2PSettings, Timing
from services.state.service import StateService, open_chain
from services.state.storage import MB, StorageGuard

CHAIN = schema.EXAMPLE_CHAIN
ED = Signer(PrivateKey(KeyType.ED25519, bytes(range(32))))
TO = bytes.fromhex("11" * 20)
FUNDS = 10**12
DROP = object()  # `as_json(tx, field=DROP)` leaves the field out


def signed(nonce: int = 0, chain_id: int = CHAIN, signer: Signer = ED, **kw: Any) -> Transaction:
    return Transaction.create(signer, chain_id=chain_id, nonce=nonce, to=TO,
                              amount=kw.pop("amount", 10), fee=kw.pop("fee", 1), **kw)


def signed_anyway(amount: int, signature: bytes | None = None) -> bytes:
    """A canonical transaction whose amount is out of its bounds, signed all the same."""
    fields = signed(0).fields()
    fields[5] = amount
    fields[-1] = signature if signature is not None else ED.sign(pack([TX_DOMAIN,
                                                                      *fields[:-1]]))
    return pack(fields)


def as_json(tx: Transaction, **changes: Any) -> dict[str, Any]:
    """The fields form of `tx` (TxIn), with `changes` applied."""
    doc: dict[str, Any] = {
        "chain_id": tx.chain_id, "nonce": tx.nonce,
        "key_type": schema.KEY_TYPE_NAMES[tx.key_type], "public_key": tx.public_key.hex(),
        "to": tx.to.hex(), "amount": tx.amount, "fee": tx.fee, "data": tx.data.hex(),
        "signature": tx.signature.hex(),
    }
    doc.update(changes)
    return {k: v for k, v in doc.items() if v is not DROP}


def code_of(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
    with pytest.raises(CcoinError) as info:
        fn(*args, **kwargs)
    return info.value.code


@asynccontextmanager
async def serving(app: Any, *, raise_app_exceptions: bool = True,
                  ) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of `app`, from a loopback address, inside the app's lifespan.
    Starlette re-raises an unhandled exception after answering 500 (for the server's log);
    `raise_app_exceptions=False` lets the client see that 500 instead."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 4242),
                                        raise_app_exceptions=raise_app_exceptions)
        async with httpx.AsyncClient(transport=transport,
                                     base_url="http://127.0.0.1:8000") as client:
            yield client


def offline_config(tmp_path: Path, **api: Any) -> NodeConfig:
    run = tmp_path / "run"
    return parse_config({
        "app": {"base_path": str(tmp_path)},
        "api": api,
        "endpoints": {name: f"ipc://{run}/no-{name}.sock"
                      for name in ("state", "events", "miner", "p2p")},
    })


@asynccontextmanager
async def offline_app(tmp_path: Path, **api: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway app with nothing behind it."""
    app = create_app(offline_config(tmp_path, **api), CHAIN, body_limit=64 * 1024)
    async with serving(app) as client:
        yield client


@asynccontextmanager
async def bus_server(ctx: zmq.asyncio.Context, endpoint: str,
                     handlers: Mapping[Any, Callable[[Any], Any]],
                     ) -> AsyncIterator[Server]:
    """A real `runtime.bus.Server` answering with `handlers` (the test's stand-in for a
    service), serving in this event loop until the block ends."""
    server = Server(ctx, endpoint, "test", dict(handlers))
    task = asyncio.get_running_loop().create_task(server.serve_forever())
    try:
        yield server
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        server.close()


@asynccontextmanager
async def gateway_over(tmp_path: Path, handlers: Mapping[Any, Callable[[Any], Any]],
                       ) -> AsyncIterator[tuple[Gateway, Server]]:
    """A started `Gateway` whose state is a `bus_server` with `handlers`, over inproc://."""
    tag = os.urandom(4).hex()
    config = parse_config({"app": {"base_path": str(tmp_path)},
                           "endpoints": {"state": f"inproc://state-{tag}",
                                         "events": f"inproc://events-{tag}"}})
    ctx = zmq.asyncio.Context()
    async with bus_server(ctx, config.endpoint("state"), handlers) as server:
        gw = Gateway(config, CHAIN, ctx)
        await gw.start()
        try:
            yield gw, server
        finally:
            await gw.close()
    ctx.destroy(linger=0)


def run(scenario: Callable[[], Awaitable[Any]]) -> Any:
    """Run an async test body in a fresh event loop."""
    return asyncio.run(scenario())  # type: ignore[arg-type]


# --- a real state service in-process ---------------------------------------------------------


def genesis_text(alloc: dict[bytes, int]) -> str:
    """A proof-of-work dev chain (no authorities, difficulty 0) with these balances."""
    return json.dumps({
        "network_id": CHAIN, "miners": [],
        "block_mining": {"interval": 10, "max_bound": 1000, "min_bound": 0, "reward": 100,
                         "difficulty": 0, "allow_empty": True,
                         "placeholder_data": ["rnd", 15]},
        "max_peers": 0,
        "genesis_block": {"coinbase": "", "coinbase_reward": 0, "difficulty": 0,
                          "timestamp": 1_700_000_000_000},
        "alloc": {a.hex(): {"balance": b} for a, b in alloc.items()},
    })


@dataclass
class StateNode:
    http: httpx.AsyncClient
    app: Any
    service: StateService
    config: NodeConfig
    serving: asyncio.Task[None]  # the state server's loop: cancel it and state goes silent
    genesis_hash: bytes
    p2p: P2PNode | None = None


@asynccontextmanager
async def state_node(tmp_path: Path, *, funded: tuple[bytes, ...] = (),
                     config: dict[str, Any] | None = None, genesis: Genesis | None = None,
                     p2p: bool = False, p2p_settings: Mapping[str, Any] | None = None,
                     **api: Any) -> AsyncIterator[StateNode]:
    """The gateway app over a real state service (inproc://), accounts `funded`; `config`
    adds sections to the node config (its `endpoints` replace the defaults they name: a
    stand-in miner, say), `api` settings to its `api` section; `genesis` replaces the
    proof-of-work dev chain; `p2p` starts the real p2p node as well (its maintenance tick
    left to the test; `p2p_settings` replace its `P2PSettings` fields)."""
    tag = os.urandom(4).hex()
    run_dir = tmp_path / "run"
    p2p_control = f"inproc://p2p-control-{tag}" if p2p else f"ipc://{run_dir}/no-p2p.sock"
    sections = dict(config or {})
    node_config = parse_config({
        "app": {"base_path": str(tmp_path)},
        "api": api,
        "endpoints": {"state": f"inproc://state-{tag}", "events": f"inproc://events-{tag}",
                      "miner": f"ipc://{run_dir}/no-miner.sock",
                      "p2p": p2p_control,
                      **sections.pop("endpoints", {})},
        **sections,
    })
    genesis = genesis or parse_genesis(genesis_text({a: FUNDS for a in funded}))
    chain = open_chain(node_config, genesis)
    ctx = zmq.asyncio.Context()
    publisher = Publisher(ctx, node_config.endpoint("events"))
    service = StateService(chain, publisher,
                           StorageGuard(node_config.chain_dir, node_config.min_free_mb * MB))
    server = Server(ctx, node_config.endpoint("state"), "state",
                    service.handlers())  # type: ignore[arg-type]
    serve = asyncio.get_running_loop().create_task(server.serve_forever())
    app = create_app(node_config, genesis.network_id, ctx=ctx, genesis=genesis)
    node = None
    if p2p:
        settings = P2PSettings(listen="tcp://127.0.0.1:0", state=node_config.endpoint("state"),
                               events=node_config.endpoint("events"), control=p2p_control,
                               timing=Timing(tick=3600.0), **(p2p_settings or {}))
        node = P2PNode(settings, genesis, ctx, Signer(PrivateKey.generate(KeyType.ED25519)))
        await node.start()
    try:
        async with serving(app) as http:
            yield StateNode(http, app, service, node_config, serve, genesis_block(genesis).hash,
                            node)
    finally:
        if node is not None:
            await node.stop()
        serve.cancel()
        try:
            await serve
        except asyncio.CancelledError:
            pass
        server.close()
        publisher.close()
        chain.store.close()
        ctx.destroy(linger=0)
