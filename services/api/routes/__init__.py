"""The gateway's routes, one module per area of the API (the tags of `/docs`).

- `chain`: status, blocks, forks and consensus health
- `consensus`: this node's authority-vote proposals (admin)
- `transactions`: submit (one or a batch), look up, prove; the pool
- `accounts`: balances, nonces and history
- `network`: peers and sync, through the p2p service (adding a peer and syncing: admin)
- `mining`: the node's miner (start and stop: admin)
- `wallet`: the node's own account (admin)
- `events`: live events, as server-sent events and over a WebSocket
- `node`: the gateway's health and Prometheus metrics

`deps` holds what they share (routers, the gateway dependency, the admin check).
"""

from __future__ import annotations

from fastapi import FastAPI

from services.api.routes import (
    accounts,
    chain,
    consensus,
    events,
    mining,
    network,
    node,
    transactions,
    wallet,
)

MODULES = (node, chain, consensus, transactions, accounts, network, events, mining, wallet)


def include(app: FastAPI) -> None:
    """Add every route of the API to `app`."""
    for module in MODULES:
        for router in module.ROUTERS:
            app.include_router(router)
