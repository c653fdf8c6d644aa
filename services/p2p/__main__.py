"""`python -m services.p2p --config node.json`: the p2p service (see `node.py`)."""

from runtime.service import run_service
from services.p2p.node import main

if __name__ == "__main__":
    run_service("p2p", main)
