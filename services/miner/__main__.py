"""`python -m services.miner --config node.json`: the block sealer (see `miner.py`)."""

from runtime.service import run_service
from services.miner.miner import main

if __name__ == "__main__":
    run_service("miner", main)
