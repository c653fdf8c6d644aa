"""ccoin's rules, pure: domain types, canonical encoding, crypto, the typed errors, the bus and
wire message catalogues, the ledger and consensus rules, the genesis block.

Nothing here does I/O (no sockets, no clock reads, no processes) or imports the runtime, the
services or the tools: state, p2p, miner, api and the tests all call the very same functions
with explicit inputs (ethereum/execution-specs is the model).
"""

__version__ = "0.1.0"
