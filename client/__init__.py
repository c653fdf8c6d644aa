"""The Python client library of a ccoin node's REST API: the one client used by the `ccoin`
command line, the tests, the benchmark and any program that talks to a node over HTTP.

    from client import Client
    with Client("http://127.0.0.1:8000") as node:
        print(node.status().height)
        tx = node.send(signer, to=bytes.fromhex("11" * 20), amount=5, fee=1)
        info = node.wait_confirmed(tx.id.hex())       # a TxInfo, status "confirmed"
        assert node.tx_proof(tx.id.hex()).verify()      # Merkle proof against the header
        for event in node.events():                     # live events (server-sent events)
            print(event.seq, event.type, event.data)

`http` holds the `Client`, `results` and `network` the frozen dataclasses it returns,
`transactions` local signing and the JSON body of a transaction, `events` the live event
stream. Errors are the node's own typed errors (`common.errors`), rebuilt from each reply's
code.
"""

from client.events import Event
from client.http import DEFAULT_API, Client
from client.network import (
    ConsensusInfo,
    PeerAdded,
    PeerInfo,
    PeersInfo,
    SignerHealth,
    TipInfo,
    VotesInfo,
)
from client.results import (
    AccountChangeInfo,
    AccountInfo,
    AssumeValidStatus,
    BlockInfo,
    BlockPage,
    HistoryItem,
    HistoryPage,
    MempoolPage,
    NodeStatus,
    TxInfo,
    TxProof,
)
from client.transactions import parse_address, parse_hex, sign_transfer, tx_to_json

__all__ = [
    "DEFAULT_API", "AccountChangeInfo", "AccountInfo", "AssumeValidStatus", "BlockInfo",
    "BlockPage", "Client", "ConsensusInfo", "Event",
    "HistoryItem", "HistoryPage", "MempoolPage", "NodeStatus", "PeerAdded", "PeerInfo",
    "PeersInfo", "SignerHealth", "TipInfo", "TxInfo", "TxProof", "parse_address", "parse_hex",
    "VotesInfo", "sign_transfer", "tx_to_json",
]
