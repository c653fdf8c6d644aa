"""The p2p service: this node's links to other nodes (docs/protocol.md §13), built like
Bitcoin Core's test framework: a transport that only moves frames (`transport.py`, ZAP in
runtime/zap.py, `curve.py`), handlers by concern (`handshake`, `liveness`, `txs`, `blocks`, `sync`,
`pex`, `discipline`, `control`) and a small node that wires them with one dispatch table
(`node.py`)."""
