"""The state service: the chain, the world state, the mempool and its journal, block
templates; the only process that opens LevelDB (`store.py`). `service.py` serves it on the
bus and publishes what it commits."""
