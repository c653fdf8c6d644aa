"""`python -m services.state --config node.json`: the state service (see `service.py`)."""

from runtime.service import run_service
from services.state.service import main

if __name__ == "__main__":
    run_service("state", main)
